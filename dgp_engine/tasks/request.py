"""What a front end asks for, and the one place it is resolved into a run.

The three front ends meet here: the command line (``dgp inpaint …``: its arguments), a
batch worker (the job's settings and one picture) and the app (its task settings and the
working region) each build a :class:`RestoreRequest`; :func:`resolve_request` turns it,
once, into what the loop needs (:class:`ResolvedRestore`), and :meth:`ResolvedRestore.start`
plans the photo and starts the run::

    request = RestoreRequest(task_spec("inpaint"), model="bundled", mask=hole)
    ready = resolve_request(request)   # device, threads, precision, prior, class, preset
    job = ready.start(photo)           # a RestorationJob: iterate it; job.cancel() stops it
    for report in job: ...
    result = job.result

The request holds the task's :class:`~dgp_engine.method.taskspec.TaskSpec`, looked up
once where the front end got the task (the CLI's sub-command, a batch setting, the
app's list); nothing further down looks the task up by its name.

Resolution checks in the order that fails cheapest first: the request's own values (at
construction), the device, the precision on that device, then the prior loads and the
class and preset are chosen for it.  The command line and batch refuse a device or
precision the machine lacks; the app runs anyway on the CPU or in "auto" precision and
says so (``fall_back=True``: the sentence is in ``notices``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DeviceError, InputError
from ..files.photos import Photo
from ..method.compute import check_precision, generator_weights, resolve_precision
from ..method.face_align import FaceAlignment, FacePoints
from ..method.presets import Preset
from ..method.region import RegionLike
from ..method.taskspec import TaskSpec, task_spec
from ..priors.load import Prior
from .restore import RestorationJob, resolve_preset, restore_image

#: How a prior is loaded: (model name or folder, device) → Prior.
PriorLoader = Callable[[str, torch.device], Prior]


@dataclass(frozen=True)
class RestoreRequest:
    """One restoration as a front end asks for it: plain values, checked at construction
    where no model is needed (an unknown precision, threads below 1)."""

    task: TaskSpec  # a name is looked up here (the only lookup)
    model: str = "bundled"  # registry name or model folder
    preset: str | Preset | None = None  # name, .toml file, a Preset; None: the task's
    # default for the model (taskspec)
    iterations_scale: float | None = None  # every stage's iterations × this
    class_spec: str | int | None = "auto"  # id, class name; "auto"/None: z selection picks
    seed: int = 0
    exact: bool = False  # the reference's arithmetic (float32 only)
    device: str | None = None  # cpu, cuda[:N], mps, gpu, auto;
    # None: $DGP_STUDIO_DEVICE, else auto
    precision: str = "auto"  # dgp_engine.method.compute.PRECISIONS
    threads: int | None = None  # None: every core but one (system.runtime)
    # the picture's part: where to work and what to fill
    region: RegionLike | None = None  # x, y, size square of the photo
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # True = fill
    factor: int | None = None  # super-resolution factor (None: largest that fits)
    feather: int | None = None  # seam width, photo px (None: scaled to the region)
    save_state: bool = False  # the front end saves the reconstruction too
    # an aligned face (docs/method.md#aligned-faces): its left eye, right eye and mouth
    # ("x,y x,y x,y" or FacePoints), or the FaceAlignment itself (its origin: where the
    # picture given lies in the photo); None: a face prior finds the face by itself
    face_points: FacePoints | FaceAlignment | str | None = None
    aligned: bool = False  # the photo already is an aligned face crop (face priors)

    def __post_init__(self) -> None:
        if isinstance(self.task, str):
            object.__setattr__(self, "task", task_spec(self.task))
        object.__setattr__(self, "precision", check_precision(self.precision, self.exact))
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise InputError(
                f"The number of threads must be a whole number of at least 1, not {self.threads!r}."
            )

        if self.feather is not None and (
            isinstance(self.feather, bool) or not isinstance(self.feather, int) or self.feather < 0
        ):
            raise InputError(
                f"The seam width (feather) must be a whole number of pixels, 0 or more, "
                f"not {self.feather!r}."
            )

    @property
    def task_name(self) -> str:
        return self.task.name

    def for_picture(
        self,
        *,
        mask: np.ndarray | None = None,
        region: RegionLike | None = None,
        face_points: FacePoints | FaceAlignment | str | None = None,
    ) -> RestoreRequest:
        """The same request for another picture (a batch's next item, the app's crop): its
        mask, region and face points (a face prior finds another picture's face anew
        when none are given); everything :func:`resolve_request` decides stays the same."""
        return dataclasses.replace(self, mask=mask, region=region, face_points=face_points)


@dataclass(frozen=True)
class ResolvedRestore:
    """A request resolved: what the loop needs, decided once."""

    request: RestoreRequest
    prior: Prior
    device: torch.device
    threads: int
    precision: str  # the request's, or "auto" after a fall-back
    class_id: int | None  # None: z selection picks the class
    preset: Preset  # scaled by the request's iterations_scale
    notices: tuple[str, ...] = ()  # what a fall-back changed, one sentence each

    @property
    def task(self) -> TaskSpec:
        return self.request.task

    @property
    def compute_precision(self) -> str:
        """What the run computes in on this device: "fp32", "tf32" or "bf16" (a
        StyleGAN2 prior computes in float32)."""
        if self.prior.family == "stylegan2":
            return "fp32"
        weights = generator_weights(self.prior.G)
        return resolve_precision(self.precision, self.device, self.request.exact, weights=weights)

    def for_picture(
        self, *, mask: np.ndarray | None = None, region: RegionLike | None = None
    ) -> ResolvedRestore:
        """This resolution for another picture (see :meth:`RestoreRequest.for_picture`):
        nothing is resolved again."""
        return dataclasses.replace(self, request=self.request.for_picture(mask=mask, region=region))

    def start(
        self,
        photo: Photo | np.ndarray,
        *,
        cancel: threading.Event | None = None,
        z_init: torch.Tensor | None = None,
    ) -> RestorationJob:
        """Plan ``photo`` (bad input — an empty mask, a region outside the photo — fails
        here, before any long work) and return the run to iterate.  ``cancel``: an event
        that cancels the run when set (a Ctrl-C handler's, the app worker's), as
        ``job.cancel()`` does."""
        r = self.request
        return restore_image(
            self.prior,
            photo,
            r.task,
            mask=r.mask,
            region=r.region,
            factor=r.factor,
            class_id=self.class_id,
            preset=self.preset,
            seed=r.seed,
            exact=r.exact,
            cancel=cancel,
            feather=r.feather,
            z_init=z_init,
            precision=self.precision,
            face_points=r.face_points,
            aligned=r.aligned,
        )


def run_device(name: str | None, *, fall_back: bool = False) -> tuple[torch.device, str | None]:
    """(device, notice): the device called ``name`` (see
    :func:`dgp_engine.system.device.select_device`).  A GPU that is missing is refused
    (DeviceError), or with ``fall_back`` replaced by the CPU with the reason."""
    from ..system.device import select_device

    try:
        return select_device(name), None
    except DeviceError as exc:
        if not fall_back:
            raise
        return torch.device("cpu"), f"{exc} Running on the CPU instead."


def run_precision(
    name: str, device: torch.device, exact: bool, *, fall_back: bool = False
) -> tuple[str, str | None]:
    """(precision, notice): ``name`` when ``device`` computes in it; else refused
    (DeviceError: TF32 off NVIDIA GPUs, bfloat16 on Apple MPS), or with ``fall_back``
    replaced by "auto" with the reason."""
    try:
        if check_precision(name, exact) != "auto":  # "auto" is decided with the model
            resolve_precision(name, device, exact)
        return name, None
    except DeviceError as exc:
        if not fall_back:
            raise
        return "auto", f"{exc} Running with 'auto' instead."


def _load_prior(model: str, device: torch.device) -> Prior:
    from ..priors import load

    return load.load_prior(model, device=device)


def resolve_request(
    request: RestoreRequest, *, load: PriorLoader | None = None, fall_back: bool = False
) -> ResolvedRestore:
    """Everything the front ends used to prepare each on its own, once: the device, the
    engine's threads (set here: call it in the thread that runs the engine), the
    precision on that device, the prior (``load``: the app's catalog, which keeps the
    last one; default :func:`dgp_engine.priors.load.load_prior`), the class and the
    preset.  A device or precision the machine lacks is refused before the model loads,
    unless ``fall_back`` (the app) replaces it, saying so in ``notices``."""
    from ..system.runtime import configure

    notices: list[str] = []
    device, notice = run_device(request.device, fall_back=fall_back)
    if notice:
        notices.append(notice)
    precision, notice = run_precision(request.precision, device, request.exact, fall_back=fall_back)
    if notice:
        notices.append(notice)
    threads = configure(request.threads)
    prior = (load or _load_prior)(request.model, device)
    class_id = prior.choose_class(request.class_spec)
    preset = resolve_preset(
        request.preset, request.task, prior.name, request.iterations_scale, family=prior.family
    )
    return ResolvedRestore(
        request, prior, device, threads, precision, class_id, preset, tuple(notices)
    )


__all__ = [
    "PriorLoader",
    "ResolvedRestore",
    "RestoreRequest",
    "resolve_request",
    "run_device",
    "run_precision",
]

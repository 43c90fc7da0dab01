"""The one place where the app calls the engine to restore a working region.

The engine's ``dgp_engine.tasks.restore.restore_image`` plans the task (crop, resize,
observation), runs the DGP iterator and composes the output back (hole-only
blend for inpainting, feathered square otherwise, colour transfer in Lab for
colorization).  The app hands it the working region plus a one-pixel margin of
the picture (so seams are feathered exactly as on the full photo) instead of a
float copy of a possibly 100-megapixel picture, and gets back the changed patch.
Colorization is the exception: it covers the whole picture at any aspect ratio
(``region`` None; the engine fits it into the model's square and keeps L at full
resolution), as ``dgp colorize`` does without ``--region``.

What a task is (its label, whether it takes a mask, whether it makes a new picture,
its default preset for a model, its working region around a mask) comes from the
engine's table, ``dgp_engine.method.taskspec``, so the app and the CLI cannot diverge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dgp_engine import Preset, Prior, Report
from dgp_engine.files.photos import Photo, unit_to_uint8
from dgp_engine.method.region import resize
from dgp_engine.method.state import ReconstructionState
from dgp_engine.method.taskspec import TASK_SPECS, task_spec
from dgp_engine.tasks.restore import TaskPlan, compose_output, restore_image

# Engine task names the app runs with the picture's mask (it must lie in the region) and
# those whose output is a new, larger picture, both read from the engine's table.
NEEDS_MASK = frozenset(s.name for s in TASK_SPECS if s.uses_mask)
NEW_PICTURE = frozenset(s.name for s in TASK_SPECS if s.new_picture)


@dataclass
class RegionRequest:
    """Everything one run needs; plain data so the worker thread owns its copy."""

    task: str                         # engine task name (dgp_engine.method.taskspec)
    model: str
    image: np.ndarray                 # the region plus a margin (crop), H×W×3 uint8
    mask: np.ndarray                  # the crop's mask, H×W uint8, 255 = fill
    bounds: tuple[int, int, int, int]  # x0, y0, x1, y1 of the crop in the picture
    preset: Preset
    class_id: int | None = None
    seed: int = 0
    device: str = "auto"
    region: tuple[int, int, int] | None = None  # x, y, side inside the crop
    precision: str = "auto"           # dgp_engine.method.compute.PRECISIONS
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RegionResult:
    patch: np.ndarray | None          # the new crop content (same size as the crop)
    picture: np.ndarray | None        # a new picture (super-resolution), else None
    output: np.ndarray                # model output at native resolution (uint8)
    state: ReconstructionState
    cancelled: bool
    notes: list[str] = field(default_factory=list)
    # the loaded prior the run started from (read-only: the run trained its own copy of
    # G, kept in ``state``), so the Manipulate panel renders the result with it
    prior: Prior | None = None
    # another model output (a jitter, category or morph candidate, uint8 at any size) put
    # into the picture exactly as this result was: the crop's new content (or the new
    # picture for super-resolution)
    compose: Callable[[np.ndarray], np.ndarray] | None = None


def resolve_device(name: str) -> tuple[str, str | None]:
    """(device, warning): a GPU that is missing falls back to the CPU with the
    engine's explanation, so a run never fails only for that."""
    from dgp_engine.errors import DeviceError
    from dgp_engine.system.device import select_device

    try:
        return str(select_device(name or "auto")), None
    except DeviceError as exc:
        return "cpu", f"{exc} Running on the CPU instead."


def resolve_precision(name: str, device: str) -> tuple[str, str | None]:
    """(precision, warning): a precision the run's device cannot compute in (TF32 off
    NVIDIA GPUs, bfloat16 on Apple MPS) falls back to "auto" with the engine's
    explanation, as a missing GPU falls back to the CPU."""
    import torch

    from dgp_engine.errors import DeviceError
    from dgp_engine.method.compute import resolve_precision as engine_precision

    try:
        engine_precision(name, torch.device(device), exact=False)
        return name, None
    except DeviceError as exc:
        return "auto", f"{exc} Running with 'auto' instead."


def available_devices() -> list[str]:
    from dgp_engine.system.device import available_devices as engine_devices

    out = ["auto"] + [d for d in engine_devices() if d != "auto"]
    return out if "cpu" in out else out + ["cpu"]


class RegionJob:
    """Iterate to get the engine's reports; ``result`` is set at the end.  Bad input
    (empty mask, region too large for super-resolution …) raises at construction."""

    def __init__(self, prior: Prior, request: RegionRequest, cancel: threading.Event):
        self.request = request
        self.result: RegionResult | None = None
        spec = task_spec(request.task)
        mask = (request.mask > 127) if spec.uses_mask else None
        h, w = request.image.shape[:2]
        region = request.region
        if region is not None and tuple(region) == (0, 0, w) and w == h:
            region = None  # the region is the whole crop
        self.job = restore_image(prior, request.image, request.task, mask=mask, region=region,
                                 class_id=request.class_id, preset=request.preset,
                                 seed=request.seed, cancel=cancel,
                                 precision=request.precision)

    @property
    def notes(self) -> list[str]:
        return self.job.notes

    def __iter__(self) -> Iterator[Report]:
        yield from self.job
        r = self.job.result
        if r is None:
            return
        pixels = unit_to_uint8(r.photo.rgb)
        new_picture = task_spec(self.request.task).new_picture
        self.result = RegionResult(None if new_picture else pixels,
                                   pixels if new_picture else None,
                                   unit_to_uint8(r.model_output), r.state, r.cancelled,
                                   list(self.job.notes),
                                   compose=composer(self.job.photo, self.job.plan))


def composer(photo: Photo, plan: TaskPlan) -> Callable[[np.ndarray], np.ndarray]:
    """A model output (uint8, resized to the model's square when it is not) composed into
    ``photo`` by the engine with ``plan``, as the run's own output was.  Holds only the
    photo and the plan (not the run, its optimiser or its generator)."""
    def compose(model_output: np.ndarray) -> np.ndarray:
        res = plan.view.resolution
        out = np.asarray(model_output, dtype=np.float32) / 255.0
        if out.shape[:2] != (res, res):
            out = resize(out, res, res)
        return unit_to_uint8(compose_output(photo, plan, out).rgb)

    return compose

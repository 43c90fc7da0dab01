"""The one place where the app calls the engine to restore a working region.

The app's run is a :class:`RegionRequest`: the engine's
:class:`~dgp_engine.tasks.request.RestoreRequest` (task, model, preset, class, seed,
device, precision, threads, the region and mask of the crop), built from the task
settings exactly as the CLI builds it from its arguments, plus the crop itself.  The
engine resolves it (``resolve_request``, with ``fall_back``: a missing GPU or a precision
the device lacks runs anyway on the CPU or in "auto", with a notice), plans the task
(crop, resize, observation), runs the DGP iterator and composes the output back
(hole-only blend for inpainting, feathered square otherwise, colour transfer in Lab for
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
from dgp_engine.method.face_align import FaceAlignment, FacePoints
from dgp_engine.method.region import resize
from dgp_engine.method.state import ReconstructionState
from dgp_engine.method.taskspec import TASK_SPECS, TaskSpec
from dgp_engine.tasks.request import ResolvedRestore, RestoreRequest
from dgp_engine.tasks.restore import TaskPlan, compose_output

# Engine task names the app runs with the picture's mask (it must lie in the region) and
# those whose output is a new, larger picture, both read from the engine's table.
NEEDS_MASK = frozenset(s.name for s in TASK_SPECS if s.uses_mask)
NEW_PICTURE = frozenset(s.name for s in TASK_SPECS if s.new_picture)


@dataclass
class RegionRequest:
    """Everything one run needs; plain data so the worker thread owns its copy."""

    restore: RestoreRequest  # the engine's request (its region and mask: the crop's)
    image: np.ndarray  # the region plus a margin (crop), H×W×3 uint8
    bounds: tuple[int, int, int, int]  # x0, y0, x1, y1 of the crop in the picture
    region: tuple[int, int, int] | None = None  # x, y, side inside the crop (the preview's)
    extra: dict[str, Any] = field(default_factory=dict)  # the task settings, saved with the result

    @classmethod
    def for_crop(
        cls,
        settings: RestoreRequest,
        image: np.ndarray,
        mask: np.ndarray,
        bounds: tuple[int, int, int, int],
        region: tuple[int, int, int] | None,
        extra: dict[str, Any],
        face_points: FaceAlignment | FacePoints | None = None,
    ) -> RegionRequest:
        """The run of ``settings`` on a crop of the picture: the engine works on
        ``region`` of it (None, or the whole square crop: all of it), or on the aligned
        face ``face_points`` (its origin: the crop's place in the picture), and fills ``mask`` (the
        crop's, uint8, 255 = fill) when the task takes one."""
        h, w = image.shape[:2]
        work = None if region is None or (tuple(region) == (0, 0, w) and w == h) else region
        hole = (mask > 127) if settings.task.uses_mask else None
        restore = settings.for_picture(mask=hole, region=work, face_points=face_points)
        return cls(restore, image, bounds, region, extra)

    @property
    def spec(self) -> TaskSpec:
        return self.restore.task

    @property
    def task(self) -> str:
        """The engine's task name (dgp_engine.method.taskspec)."""
        return self.restore.task.name

    @property
    def model(self) -> str:
        return self.restore.model

    @property
    def preset(self) -> Preset:
        preset = self.restore.preset
        assert isinstance(preset, Preset)  # the app sends the preset it scaled
        return preset

    @property
    def precision(self) -> str:
        return self.restore.precision


@dataclass
class RegionResult:
    patch: np.ndarray | None  # the new crop content (same size as the crop)
    picture: np.ndarray | None  # a new picture (super-resolution), else None
    output: np.ndarray  # model output at native resolution (uint8)
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


def available_devices() -> list[str]:
    from dgp_engine.system.device import available_devices as engine_devices

    out = ["auto"] + [d for d in engine_devices() if d != "auto"]
    return out if "cpu" in out else out + ["cpu"]


class RegionJob:
    """Iterate to get the engine's reports; ``result`` is set at the end.  Bad input
    (empty mask, region too large for super-resolution …) raises at construction.
    ``cancel``: the worker's event (set by the job's cancel), which cancels the run."""

    def __init__(self, ready: ResolvedRestore, request: RegionRequest, cancel: threading.Event):
        self.request = request
        self.result: RegionResult | None = None
        self.job = ready.start(request.image, cancel=cancel)

    @property
    def notes(self) -> list[str]:
        return self.job.notes

    def __iter__(self) -> Iterator[Report]:
        yield from self.job
        r = self.job.result
        if r is None:
            return
        pixels = unit_to_uint8(r.photo.rgb)
        new_picture = self.request.spec.new_picture
        self.result = RegionResult(
            None if new_picture else pixels,
            pixels if new_picture else None,
            unit_to_uint8(r.model_output),
            r.state,
            r.cancelled,
            list(self.job.notes),
            compose=composer(self.job.photo, self.job.plan),
        )


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

"""The run controller: owns a run's request and its lifecycle (model loads, start,
pause, resume, cancel, the result into the history) so the main window only glues
widgets to it.

Engine work runs as generator jobs on the engine's worker lane (one QThread; see
:mod:`.thread_worker` and :mod:`.worker`); each is presented as a :class:`~.jobs.Job`
(``job_added``) like every other background job.  The worker's signals connect only
to slots of this object and of the jobs, which live in the GUI thread."""

from __future__ import annotations

import functools
import logging
from functools import partial
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from dgp_engine import DGPError, InputError
from dgp_engine.method.face_align import FaceAlignment, FacePoints, check_face_points
from dgp_engine.method.taskspec import task_spec
from dgp_engine.tasks.request import RestoreRequest

from .catalog import ModelCatalog
from .engine_session import RegionRequest, RegionResult
from .guidance import run_advisory
from .jobs import Job, JobProgress, JobState
from .model.state import AppState, HistoryEntry
from .model.task_settings import TaskSettings
from .thread_worker import GeneratorWorker, WorkerLane, describe_error
from .worker import EngineRunner, ModelInfo, Notice, Progress, RunStarted, load_error

log = logging.getLogger(__name__)


def model_resolution(model: str, state: AppState) -> int:
    """The installed model's resolution (the state's while it is not known)."""
    from dgp_engine.priors import registry

    try:
        installed = registry.installed(model) if model else None
    except (DGPError, OSError, ValueError):
        installed = None
    return installed.config.resolution if installed is not None else state.model_resolution


def face_prior(model: str) -> bool:
    """The installed model ``model`` is a face prior (its install record says "ffhq")."""
    if not model:
        return False
    from dgp_engine.priors import registry

    try:
        installed = registry.installed(model)
    except (DGPError, OSError, ValueError):
        return False
    return installed is not None and bool(installed.alignment)


class RunController(QObject):
    model_ready = Signal(ModelInfo)
    run_started = Signal()  # the model is loaded, the engine runs
    progress = Signal(Progress)  # throttled by the engine lane
    frame = Signal(np.ndarray)  # H×W×3 uint8 preview (≈10 per second)
    # the result and its history entry (None when the picture went away meanwhile)
    finished = Signal(RegionResult, object)
    failed = Signal(str)  # a readable message (a run or a model load)
    warning = Signal(str)
    job_added = Signal(object)  # every Job this controller starts

    def __init__(
        self,
        state: AppState,
        settings: TaskSettings,
        catalog: ModelCatalog,
        threads: int,
        preview_fps: float = 10.0,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.state = state
        self.settings = settings
        self.runner = EngineRunner(catalog, threads, preview_fps)
        self.lane = WorkerLane("dgp-engine", self)
        self.request: RegionRequest | None = None
        self.job: Job | None = None  # the current (or last) run
        self._alive: set[Job] = set()  # jobs until they end (no Qt parent)

    # --- requests ---------------------------------------------------------------------
    def build_request(self) -> RegionRequest:
        """The request for the picture's working region with the current settings (the
        engine's RestoreRequest, as the CLI builds it from its arguments); raises
        InputError with what to do when it cannot run."""
        st, s = self.state, self.settings
        if not st.has_picture:
            raise InputError("Open a picture first (Ctrl+O, drag and drop, or paste).")
        if not s.model:
            raise InputError("No model is installed: use Models → Download or import….")
        assert st.picture is not None
        settings = RestoreRequest(
            task_spec(s.task),
            model=s.model,
            preset=s.preset_for_run(),
            class_spec=s.class_id(),
            seed=s.seed,
            device=s.device,
            precision=s.precision,
            threads=self.runner.threads,
        )
        face = self._face_request(settings, s.as_dict())
        if face is not None:
            return face
        if settings.task.region.whole_photo:
            # the whole picture at any aspect ratio, fitted into the model's square by
            # the engine exactly as the CLI does it without a region
            w, h = st.size
            return RegionRequest.for_crop(
                settings, st.picture.pixels.copy(), st.mask.copy(), (0, 0, w, h), None, s.as_dict()
            )
        if st.region is None:
            st.reset_region()
        assert st.region is not None
        x, y, side = st.region
        if settings.task.uses_mask and not (st.mask[y : y + side, x : x + side] > 127).any():
            if st.mask_bounds() is None:
                raise InputError(
                    "The mask is empty: paint the area to fill with the brush (B) "
                    "or select it (M, L) before running inpainting."
                )
            raise InputError(
                "The mask lies outside the working region: press Ctrl+R to put "
                "the region around the mask, or move it with F."
            )
        # the region plus one pixel of picture around it, so the engine feathers the
        # seam exactly as on the whole picture
        w, h = st.size
        x0, y0 = max(0, x - 1), max(0, y - 1)
        x1, y1 = min(w, x + side + 1), min(h, y + side + 1)
        return RegionRequest.for_crop(
            settings,
            st.picture.pixels[y0:y1, x0:x1].copy(),
            st.mask[y0:y1, x0:x1].copy(),
            (x0, y0, x1, y1),
            (x - x0, y - y0, side),
            s.as_dict(),
        )

    def _face_request(
        self, settings: RestoreRequest, extra: dict[str, Any]
    ) -> RegionRequest | None:
        """The request on the aligned face (docs/method.md#aligned-faces) when the three
        face points are placed, or the model is a face prior (then the detector places
        them, if one is installed; else InputError says to place them); None: a square
        region as usual.  The crop is the face's square (bounds) plus a small margin."""
        st = self.state
        assert st.picture is not None
        if len(st.face_points) < 3:
            if not face_prior(self.settings.model):
                return None
            from dgp_engine.method.face_detect import detect_face_points, detector_name

            found = detect_face_points(st.picture.pixels)
            if found is None:
                why = (
                    "no face detector is installed"
                    if detector_name() is None
                    else "no face was found in the picture"
                )
                raise InputError(
                    f"{self.settings.model} is a face prior and {why}: choose Face points "
                    "(P) and click the left eye, the right eye and the mouth, then run again."
                )
            st.set_face_points(found.as_list(), "Detect face points")  # to check and move
        points, _ = check_face_points(FacePoints(*st.face_points), st.size)
        face = FaceAlignment.from_points(points, model_resolution(self.settings.model, st))
        # the pixels the engine reads for this face (its square and the sampling's reach):
        # the face sent with that part's origin gives the CLI's pixels on the whole photo
        x0, y0, x1, y1 = face.source_box(st.size)
        mask = st.mask[y0:y1, x0:x1]
        if settings.task.needs_mask and not (mask > 127).any():
            raise InputError(
                "The mask lies outside the aligned face: paint what to fill on the face, "
                "or clear the face points (Shift+P) to work on a square region."
            )
        return RegionRequest.for_crop(
            settings,
            st.picture.pixels[y0:y1, x0:x1].copy(),
            mask.copy(),
            (x0, y0, x1, y1),
            None,
            extra,
            face_points=face.with_origin(x0, y0),
        )

    # --- lifecycle --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.request is not None

    def _start(self, worker: GeneratorWorker, title: str) -> Job:
        job = Job.for_worker(worker, title)
        worker.yielded.connect(self._on_value)
        self._alive.add(job)
        job.ended.connect(self._forget)
        self.job_added.emit(job)
        self.lane.start(worker)
        return job

    def load_model(self, name: str, device: str) -> Job | None:
        """Load ``name`` in the engine's thread (its info comes as ``model_ready``)."""
        if not name or self.running:
            return None
        worker = GeneratorWorker(self.runner.load, name, device, describe=partial(load_error, name))
        job = self._start(worker, f"Loading model {name}")
        job.ended.connect(self._on_load_ended)
        return job

    def start(self, request: RegionRequest) -> Job:
        """Run ``request``; its result goes into the history (``finished``)."""
        if self.running:
            raise InputError("A run is in progress.")
        self.request = request
        self.state.set_running(True)
        log.info(
            "run %s on %s, region %s, %d iterations",
            request.task,
            request.model,
            request.bounds,
            request.preset.total_iterations,
        )
        worker = GeneratorWorker(
            self.runner.run,
            request,
            cooperative=True,
            describe=functools.partial(describe_error, activity="the run"),
        )
        worker.progress.connect(self._on_progress)
        title = f"{request.spec.label} · {request.model}"
        self.job = self._start(worker, title)
        self.job.ended.connect(self._on_run_ended)
        return self.job

    # Flags only (thread-safe): the lane's thread is busy inside the run.
    def pause(self) -> None:
        if self.running and self.job is not None:
            self.job.pause()

    def resume(self) -> None:
        if self.job is not None:
            self.job.resume()

    def cancel(self) -> bool:
        if self.running and self.job is not None:
            self.job.cancel()
            return True
        return False

    def set_threads(self, n: int) -> None:
        """Applied inside the engine's thread before its next job."""
        self.runner.set_threads(n)

    @property
    def threads(self) -> int:
        return self.runner.threads

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Cancel whatever runs and end the engine's thread."""
        return self.lane.stop(timeout_ms)

    # --- from the engine lane (delivered in the GUI thread) ---------------------------
    @Slot(object)
    def _on_value(self, value: object) -> None:
        if isinstance(value, np.ndarray):
            self.frame.emit(value)
        elif isinstance(value, ModelInfo):
            self.model_ready.emit(value)
        elif isinstance(value, Notice):
            self.warning.emit(value.message)
        elif isinstance(value, RunStarted):
            self.run_started.emit()

    @Slot(object)
    def _on_progress(self, p: JobProgress) -> None:
        if isinstance(p.detail, Progress):
            self.progress.emit(p.detail)

    @Slot(object)
    def _on_load_ended(self, job: Job) -> None:
        if job.state == JobState.FAILED:
            self.failed.emit(job.error)

    @Slot(object)
    def _on_run_ended(self, job: Job) -> None:
        req, self.request = self.request, None
        self.state.set_running(False)
        result = job.result if isinstance(job.result, RegionResult) else None
        if job.state == JobState.FAILED or result is None:
            self.failed.emit(job.error or "The run ended without a result.")
            return
        if req is None or self.state.picture is None:
            self.finished.emit(result, None)
            return
        step = result.state.progress.get("step", 0)
        title = f"{req.spec.label} · {req.model} · {step} it"
        after = result.patch if result.patch is not None else result.picture
        assert after is not None
        entry = HistoryEntry(
            title,
            req.bounds,
            req.image,
            after,
            result.output,
            cancelled=result.cancelled,
            settings=req.extra,
            state=result.state,
            picture=result.picture,
            compose=result.compose,
        )
        # the region advisory was said before the run (the task panel's note): not again
        prior = result.prior
        advised = run_advisory(
            req.task,
            req.region,
            prior.resolution if prior is not None else self.state.model_resolution,
            None if req.restore.mask is None else req.restore.mask.astype(np.uint8) * 255,
        )
        for note in result.notes:
            if advised is None or note != advised.message:
                log.info(note)
        # a result layer over the picture (a cancelled run's last frame too); Apply bakes it
        self.state.add_result(entry)
        self.finished.emit(result, entry)

    @Slot(object)
    def _forget(self, job: Job) -> None:
        self._alive.discard(job)

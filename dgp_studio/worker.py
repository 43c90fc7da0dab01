"""The engine worker: a QObject living in its own QThread that drives the engine
iterator and reports back with signals (connected only to GUI-thread objects).

Cancel/pause/resume are plain thread-safe flags set from the GUI thread, checked
every iteration; cancel is a message, never a kill."""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, Signal, Slot

from dgp_engine import DGPError, Prior, Report
from dgp_engine.pictures import to_uint8

from .catalog import ModelCatalog
from .engine_session import RegionJob, RegionRequest, RegionResult, resolve_device

log = logging.getLogger(__name__)

PREVIEW_SIDE = 256


@dataclass
class Progress:
    phase: str
    stage: int
    num_stages: int
    iteration: int
    stage_iterations: int
    step: int
    total: int
    losses: dict[str, float]
    elapsed: float
    eta: float | None
    loss_history: list[float] = field(default_factory=list)


@dataclass
class ModelInfo:
    name: str
    resolution: int
    class_names: list[str]
    device: str
    # The loaded prior itself: runs never modify it (each trains its own copy of G),
    # so the Manipulate panel renders from it in its own thread.
    prior: Prior | None = None


def progress_of(report: Report, history: list[float]) -> Progress:
    """The GUI's copy of an engine report: plain numbers (stage count and time left
    as the engine measured them) and the loss history thinned to 200 points."""
    if len(history) > 200:
        stride = len(history) / 200
        hist = [history[int(i * stride)] for i in range(200)]
    else:
        hist = list(history)
    return Progress(report.phase, report.stage, report.num_stages, report.iteration,
                    report.stage_iterations, report.step, report.total, dict(report.losses),
                    report.elapsed, report.eta, hist)


@contextmanager
def young_collections_only():
    """No automatic full garbage collections while the worker works.

    A generation-2 collection walks every object torch and Qt created (measured
    80–480 ms here) holding the GIL, which freezes the UI thread.  Objects alive
    now are frozen out of the collector's sight for good (they are long-lived:
    modules, models) and the automatic collector is paused; ``collect_young()``
    (every few iterations) still frees cycles made during a run."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # e.g. a model loaded meanwhile
        if was_enabled:
            gc.enable()


def warm_up_torch() -> None:
    """Take the first optimiser step now: it imports torch's compiler machinery
    lazily (~200,000 new objects), and the collections that follow would stall the
    UI in the middle of the first run otherwise."""
    w = torch.zeros(4, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()


def collect_young() -> None:
    gc.collect(1)


class EngineWorker(QObject):
    model_ready = Signal(ModelInfo)
    started = Signal()
    progress = Signal(Progress)       # throttled
    frame = Signal(np.ndarray)        # H×W×3 uint8 (throttled to ~preview_fps)
    finished = Signal(RegionResult)
    failed = Signal(str)              # a readable message
    warning = Signal(str)

    def __init__(self, catalog: ModelCatalog, threads: int, preview_fps: float = 10.0):
        super().__init__()
        self.catalog = catalog
        self.threads = max(1, int(threads))
        self.frame_interval = 1.0 / max(0.5, preview_fps)
        self.cancel_event = threading.Event()
        self.resume_event = threading.Event()
        self.resume_event.set()
        self._prior: Prior | None = None
        self._prior_key: tuple[str, str] | None = None
        self._configured = False
        self._warm = False

    # --- called from the GUI thread (thread-safe flags) -------------------------
    def arm(self) -> None:
        """Reset the flags for a new run (before requesting it)."""
        self.cancel_event.clear()
        self.resume_event.set()

    def cancel(self) -> None:
        self.cancel_event.set()
        self.resume_event.set()

    def pause(self) -> None:
        self.resume_event.clear()

    def resume(self) -> None:
        self.resume_event.set()

    def set_threads(self, n: int) -> None:
        """Applied inside the worker thread before its next job."""
        self.threads = max(1, int(n))
        self._configured = False

    # --- slots run in the worker thread ---------------------------------------
    def _configure(self) -> None:
        if not self._configured:
            # inside the worker thread: the thread that runs the engine's ops
            try:
                from dgp_engine import runtime

                runtime.configure(self.threads)
            except ImportError:
                torch.set_num_threads(self.threads)
            self._configured = True
            log.info("engine threads: %d", torch.get_num_threads())
            if not self._warm:
                warm_up_torch()
                self._warm = True

    def _get_prior(self, name: str, device: str) -> Prior:
        dev, warn = resolve_device(device)
        if warn:
            self.warning.emit(warn)
        key = (name, dev)
        if self._prior_key != key:
            self._prior = None
            log.info("loading model %s on %s", name, dev)
            self._prior = self.catalog.load(name, dev)
            self._prior_key = key
            self.model_ready.emit(ModelInfo(name, self._prior.resolution,
                                            list(self._prior.class_names)
                                            or [f"class {i}" for i in
                                                range(self._prior.config.n_classes)], dev,
                                            self._prior))
        assert self._prior is not None
        return self._prior

    @Slot(str, str)
    def load_model(self, name: str, device: str) -> None:
        try:
            with young_collections_only():
                self._configure()
                self._get_prior(name, device)
        except DGPError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 — shown to the user, logged in full
            log.error("loading %s failed:\n%s", name, traceback.format_exc())
            self.failed.emit(f"Could not load the model {name!r}: {exc}")

    @Slot(RegionRequest)
    def run(self, request: RegionRequest) -> None:
        """Flags are reset by ``arm()`` in the GUI thread when the run is requested,
        so a Cancel that comes before this slot starts is not lost."""
        try:
            with young_collections_only():
                self._configure()
                prior = self._get_prior(request.model, request.device)
                job = RegionJob(prior, request, self.cancel_event)
                self.started.emit()
                self._drive(job, prior)
        except DGPError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("Out of memory: choose a smaller model or working region.")
        except Exception as exc:  # noqa: BLE001
            log.error("run failed:\n%s", traceback.format_exc())
            self.failed.emit(f"The run stopped on an unexpected error: {exc}. "
                             "Details are in the log panel.")

    def _drive(self, job: RegionJob, prior: Prior) -> None:
        history: list[float] = []
        last_frame = last_progress = 0.0
        for n, report in enumerate(job):
            if n % 25 == 24:
                collect_young()
            if not self.resume_event.is_set():
                while not self.resume_event.wait(0.05):
                    pass
            if report.done:
                continue  # the job composites after the engine's last report
            now = time.perf_counter()
            if report.phase == "optimize" and "total" in report.losses:
                history.append(report.losses["total"])
            final_of_phase = report.iteration == report.stage_iterations
            if report.image is not None and (now - last_frame >= self.frame_interval
                                             or final_of_phase):
                self.frame.emit(to_uint8(report.image[0], PREVIEW_SIDE))
                last_frame = now
            if now - last_progress >= 0.05 or final_of_phase:
                self.progress.emit(progress_of(report, history))
                last_progress = now
        result: RegionResult | None = job.result
        if result is None:
            self.failed.emit("The run ended without a result.")
            return
        result.prior = prior  # read-only for everyone: a run trains its own copy of G
        self.frame.emit(result.output)
        self.finished.emit(result)

class WorkerThread(QObject):
    """Owns the QThread and the worker; the GUI talks to it, never to the thread."""

    run_requested = Signal(RegionRequest)
    load_requested = Signal(str, str)

    def __init__(self, catalog: ModelCatalog, threads: int, preview_fps: float = 10.0,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("dgp-engine")
        self.worker = EngineWorker(catalog, threads, preview_fps)
        self.worker.moveToThread(self.thread)
        self.run_requested.connect(self.worker.run)
        self.load_requested.connect(self.worker.load_model)
        self.thread.start()

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Cancel whatever runs, end the thread's event loop and wait for it."""
        self.worker.cancel()
        self.thread.quit()
        return self.thread.wait(timeout_ms)

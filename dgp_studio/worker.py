"""The engine's side of the app: generator functions run on the engine's worker lane
(:mod:`.thread_worker`), so engine runs use the same worker as every other compute
job.  :class:`EngineRunner` keeps what the lane's thread loaded between jobs (the
prior, the thread settings); :meth:`EngineRunner.run` resolves the run's
:class:`~dgp_engine.tasks.request.RestoreRequest` in the lane's thread (as the CLI
resolves its arguments, falling back to the CPU or "auto" precision with a notice),
drives the engine iterator and yields downscaled preview frames (≈10 per second) and
progress; a bare ``yield`` per engine report lets the worker check pause and cancel
every iteration.  Cancel is a message, never a kill: the worker's cancel event is
handed to the engine run (``cancel=``), which stops at its next check and ends with its
last frame.
A run that fails part-way (the device ran out of memory) first sends the newest frame
it reached, so the preview keeps what the run got to."""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from dgp_engine import DGPError, Prior, Report
from dgp_engine.method.pictures import signed_to_uint8
from dgp_engine.tasks.request import resolve_request, run_device

from .catalog import ModelCatalog
from .engine_session import RegionJob, RegionRequest, RegionResult
from .jobs import JobProgress

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
    return Progress(
        report.phase,
        report.stage,
        report.num_stages,
        report.iteration,
        report.stage_iterations,
        report.step,
        report.total,
        dict(report.losses),
        report.elapsed,
        report.eta,
        hist,
    )


@contextmanager
def young_collections_only() -> Iterator[None]:
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


@dataclass
class Notice:
    """A warning for the status bar (e.g. a missing GPU, the CPU used instead)."""

    message: str


@dataclass
class RunStarted:
    """The model is loaded and the engine starts the run."""


def load_error(name: str, exc: BaseException) -> str:
    if isinstance(exc, DGPError):
        return str(exc)
    log.error(
        "loading %s failed:\n%s",
        name,
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )
    return f"Could not load the model {name!r}: {exc}"


def job_progress(p: Progress) -> JobProgress:
    """The job protocol's view of an engine progress report."""
    if p.phase == "select":
        return JobProgress(
            None, f"choosing a starting point ({p.iteration}/{p.stage_iterations})", p
        )
    return JobProgress(p.step / max(1, p.total), f"iteration {p.step}/{p.total}", p)


class EngineRunner:
    """The engine lane's state and its generator functions (run in the lane's thread).

    ``threads`` is applied inside that thread before its next job."""

    def __init__(self, catalog: ModelCatalog, threads: int, preview_fps: float = 10.0):
        self.catalog = catalog
        self.threads = max(1, int(threads))
        self.frame_interval = 1.0 / max(0.5, preview_fps)
        self._prior: Prior | None = None
        self._prior_key: tuple[str, str] | None = None
        self._new_model: ModelInfo | None = None  # loaded since the last job said so
        self._configured = False
        self._warm = False

    def set_threads(self, n: int) -> None:
        self.threads = max(1, int(n))
        self._configured = False

    def _configure(self) -> None:
        if not self._configured:
            # inside the worker thread: the thread that runs the engine's ops
            try:
                from dgp_engine.system import runtime

                runtime.configure(self.threads)
            except ImportError:
                torch.set_num_threads(self.threads)
            self._configured = True
            log.info("engine threads: %d", torch.get_num_threads())
            if not self._warm:
                warm_up_torch()
                self._warm = True

    def _load_prior(self, name: str, device: torch.device) -> Prior:
        """The prior ``name`` on ``device``: the one loaded last when it is the same
        (the engine's loader for this lane; :attr:`_new_model` says when it loaded)."""
        key = (name, str(device))
        if self._prior_key != key:
            # forget the old one first: a load that fails leaves no prior, not a stale key
            self._prior, self._prior_key = None, None
            log.info("loading model %s on %s", name, device)
            self._prior = self.catalog.load(name, str(device))
            self._prior_key = key
            self._new_model = ModelInfo(
                name,
                self._prior.resolution,
                list(self._prior.class_names)
                or [f"class {i}" for i in range(self._prior.n_classes)],
                str(device),
                self._prior,
            )
        assert self._prior is not None
        return self._prior

    def _model_news(self) -> Iterator[ModelInfo]:
        if self._new_model is not None:
            info, self._new_model = self._new_model, None
            yield info

    def load(self, name: str, device: str) -> Iterator[Notice | ModelInfo]:
        """Load a model (a generator job); yields its info when it is new."""
        with young_collections_only():
            self._configure()
            dev, notice = run_device(device or "auto", fall_back=True)
            if notice:
                yield Notice(notice)
            self._load_prior(name, dev)
            yield from self._model_news()

    def run(
        self, request: RegionRequest, cancel: threading.Event
    ) -> Generator[object, None, RegionResult]:
        """One run (a cooperative generator job: ``cancel`` goes to the engine's run,
        which ends with its last frame).  Yields notices, the model's info when it
        loads another one, :class:`RunStarted`, preview frames (H×W×3 uint8) and
        :class:`JobProgress` with the engine's :class:`Progress`; returns the
        :class:`RegionResult`."""
        with young_collections_only():
            self._configure()
            ready = resolve_request(request.restore, load=self._load_prior, fall_back=True)
            for notice in ready.notices:
                yield Notice(notice)
            yield from self._model_news()
            job = RegionJob(ready, request, cancel)
            yield RunStarted()
            yield from self._drive(job)
        result: RegionResult | None = job.result
        if result is None:
            raise DGPError("The run ended without a result.")
        result.prior = ready.prior  # read-only for everyone: a run trains its own copy of G
        yield result.output
        return result

    def _drive(self, job: RegionJob) -> Iterator[Any]:  # Any: its bare `yield`s (None or Any only)
        history: list[float] = []
        last_frame = last_progress = 0.0
        unsent: torch.Tensor | None = None  # the newest frame the throttle held back
        try:
            for n, report in enumerate(job):
                if n % 25 == 24:
                    collect_young()
                yield  # pause and cancel are checked every iteration
                if report.done:
                    continue  # the job composites after the engine's last report
                now = time.perf_counter()
                if report.phase == "optimize" and "total" in report.losses:
                    history.append(report.losses["total"])
                final_of_phase = report.iteration == report.stage_iterations
                if report.image is not None:
                    if now - last_frame >= self.frame_interval or final_of_phase:
                        yield signed_to_uint8(report.image[0], PREVIEW_SIDE)
                        last_frame, unsent = now, None
                    else:
                        unsent = report.image
                if now - last_progress >= 0.05 or final_of_phase:
                    yield job_progress(progress_of(report, history))
                    last_progress = now
        except DGPError:
            # e.g. out of device memory part-way: the preview keeps the last frame reached
            if unsent is not None:
                yield signed_to_uint8(unsent[0], PREVIEW_SIDE)
            raise

"""The one job protocol the UI sees, whatever runs the work.

Compute (engine runs, model loads) runs as a generator on a worker thread
(:mod:`.thread_worker`); I/O (model downloads and imports) runs as a coroutine on
the app's asyncio loop (qasync).  Both are presented as a :class:`Job`: a state
(queued, running, paused, finished, cancelled, failed), a :class:`JobProgress`
(fraction and text, plus the full report for panels that draw more), ``cancel()``,
``error`` (the engine's sentence) and ``result`` — so panels and the status bar
(:class:`JobStatus`, fed by a :class:`JobList`) treat them alike.  Like
krita-ai-diffusion's jobs, cancel is a message: the work winds down and the job
ends in ``cancelled`` (possibly with a result, e.g. a run's last frame)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

log = logging.getLogger(__name__)


def _ignore(_report: Any) -> None:
    pass


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (JobState.FINISHED, JobState.CANCELLED, JobState.FAILED)


@dataclass(frozen=True)
class JobProgress:
    """How far a job is: ``fraction`` in 0…1 (None while it cannot tell), a short
    ``text`` for people, and the full report (``detail``) for panels that show more."""

    fraction: float | None
    text: str = ""
    detail: Any = None


class Job(QObject):
    """One piece of background work as the UI sees it.  Lives in the GUI thread; the
    code that drives the work calls the ``set_*``/``finish``/``fail`` methods (or
    :meth:`for_worker` wires a generator worker to them)."""

    state_changed = Signal(str)  # JobState value
    progress_changed = Signal(object)  # JobProgress
    ended = Signal(object)  # the job, once finished, cancelled or failed

    def __init__(
        self,
        title: str,
        kind: str = "compute",
        *,
        canceller: Callable[[], None] | None = None,
        pauser: tuple[Callable[[], None], Callable[[], None]] | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.title = title
        self.kind = kind  # "compute" or "io"
        self.state = JobState.QUEUED
        self.progress = JobProgress(None, "Waiting…")
        self.error = ""
        self.exception: BaseException | None = None
        self.result: Any = None
        self.cancel_requested = False
        self._canceller = canceller
        self._pauser = pauser
        self.worker: Any = None  # the generator worker of a compute job

    # --- for the UI -----------------------------------------------------------------
    @property
    def can_pause(self) -> bool:
        return self._pauser is not None

    def cancel(self) -> None:
        if self.state.ended or self.cancel_requested:
            return
        self.cancel_requested = True
        if self._canceller is not None:
            self._canceller()

    def pause(self) -> None:
        if self._pauser is not None and not self.state.ended:
            self._pauser[0]()

    def resume(self) -> None:
        if self._pauser is not None and not self.state.ended:
            self._pauser[1]()

    # --- for the code that drives the work --------------------------------------------
    def set_state(self, state: JobState) -> None:
        if self.state.ended or state == self.state:
            return
        self.state = state
        self.state_changed.emit(state.value)
        if state.ended:
            self.ended.emit(self)

    def set_progress(self, progress: JobProgress) -> None:
        self.progress = progress
        self.progress_changed.emit(progress)

    def start(self) -> None:
        self.set_state(JobState.RUNNING)

    def finish(self, result: Any = None) -> None:
        self.result = result
        self.set_state(JobState.FINISHED)

    def mark_cancelled(self, result: Any = None) -> None:
        if result is not None:
            self.result = result
        self.set_state(JobState.CANCELLED)

    def fail(self, message: str, exception: BaseException | None = None) -> None:
        self.error = message
        self.exception = exception
        self.set_state(JobState.FAILED)

    # --- a compute job: a generator worker --------------------------------------------
    @classmethod
    def for_worker(cls, worker: Any, title: str, parent: QObject | None = None) -> Job:
        """A job driven by a :class:`~.thread_worker.GeneratorWorker` (connect before
        the worker starts)."""
        job = cls(
            title,
            "compute",
            canceller=worker.quit,
            pauser=(worker.pause, worker.resume),
            parent=parent,
        )
        job.worker = worker
        worker.started.connect(job._on_started)
        worker.progress.connect(job._on_progress)
        worker.paused.connect(job._on_paused)
        worker.resumed.connect(job._on_resumed)
        worker.returned.connect(job._on_returned)
        worker.errored.connect(job._on_errored)
        worker.cancelled.connect(job._on_cancelled)
        worker.finished.connect(job._on_finished)
        return job

    @Slot()
    def _on_started(self) -> None:
        self.start()

    @Slot(object)
    def _on_progress(self, progress: JobProgress) -> None:
        self.set_progress(progress)

    @Slot()
    def _on_paused(self) -> None:
        if self.state == JobState.RUNNING:
            self.set_state(JobState.PAUSED)

    @Slot()
    def _on_resumed(self) -> None:
        if self.state == JobState.PAUSED:
            self.set_state(JobState.RUNNING)

    @Slot(object)
    def _on_returned(self, value: Any) -> None:
        self.result = value

    @Slot(str)
    def _on_errored(self, message: str) -> None:
        self.fail(message)

    @Slot()
    def _on_cancelled(self) -> None:
        self.mark_cancelled()

    @Slot()
    def _on_finished(self) -> None:
        self.finish(self.result)  # unless it already ended (cancelled, failed)


class AsyncJob(Job):
    """An I/O job: a coroutine on the app's asyncio (qasync) loop, never on the GUI
    thread's stack; without a running loop (qasync missing) the same coroutine runs on
    a private loop in a helper thread whose reports and outcome come back as queued
    signals.  ``cancel_event`` is set by cancel as well as cancelling the task, so the
    engine's own worker threads see it even if the loop ends first."""

    _report = Signal(object)
    _outcome = Signal(object, object, bool)  # result, exception, cancelled

    def __init__(self, title: str, parent: QObject | None = None):
        super().__init__(title, "io", canceller=self._cancel_task, parent=parent)
        self.cancel_event = threading.Event()
        self._task: asyncio.Task[Any] | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._on_report: Callable[[Any], None] = _ignore
        self._report.connect(self._deliver)
        self._outcome.connect(self._settle)

    def start_coroutine(
        self,
        factory: Callable[[Callable[[Any], None]], Awaitable[Any]],
        on_report: Callable[[Any], None] = _ignore,
    ) -> None:
        """Run ``factory(report)``; each report reaches ``on_report`` in the GUI thread."""
        self._on_report = on_report
        self.start()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no qasync loop: a private one in a helper thread
            loop = asyncio.new_event_loop()
            task = loop.create_task(self._run_off_gui(factory(self._report.emit)))
            self._thread_loop, self._task = loop, task
            threading.Thread(
                target=_run_loop, args=(loop, task), name="dgp-io-job", daemon=True
            ).start()
            return
        self._task = loop.create_task(self.run(factory(on_report)))

    async def run(self, coro: Awaitable[Any]) -> None:
        """Await ``coro`` on the running loop and settle the job from its outcome."""
        self.start()
        try:
            result = await coro
        except asyncio.CancelledError:
            self._settle(None, None, True)
        except Exception as exc:  # noqa: BLE001 — the engine's errors say what to do
            self._settle(None, exc, False)
        else:
            self._settle(result, None, False)

    async def _run_off_gui(self, coro: Awaitable[Any]) -> None:
        try:
            result = await coro
        except asyncio.CancelledError:
            self._outcome.emit(None, None, True)
        except Exception as exc:  # noqa: BLE001 — reported in the GUI thread
            self._outcome.emit(None, exc, False)
        else:
            self._outcome.emit(result, None, False)

    @property
    def busy(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING) and self._task is not None

    def _cancel_task(self) -> None:
        self.cancel_event.set()
        if self._task is None:
            return
        if self._thread_loop is not None:
            self._thread_loop.call_soon_threadsafe(self._task.cancel)
        else:
            self._task.cancel()

    @Slot(object)
    def _deliver(self, report: Any) -> None:
        self._on_report(report)

    @Slot(object, object, bool)
    def _settle(self, result: Any, exc: BaseException | None, cancelled: bool) -> None:
        self._task = None
        self._thread_loop = None
        if cancelled:
            self.mark_cancelled()
        elif exc is not None:
            from dgp_engine import DGPError

            if not isinstance(exc, DGPError):
                log.error("%s failed", self.title, exc_info=exc)  # a bug: the log keeps it
            self.fail(str(exc), exc)
        else:
            self.finish(result)


def _run_loop(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    try:
        loop.run_until_complete(task)
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


class JobList(QObject):
    """The app's jobs now running (compute and I/O alike), oldest first."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.jobs: list[Job] = []
        self.last_ended: Job | None = None

    @Slot(object)
    def add(self, job: Job) -> None:
        if job in self.jobs or job.state.ended:
            return
        self.jobs.append(job)
        job.ended.connect(self._ended)
        job.state_changed.connect(self._job_changed)
        job.progress_changed.connect(self._job_changed)
        self.changed.emit()

    def current(self) -> Job | None:
        return self.jobs[-1] if self.jobs else None

    @Slot(object)
    def _ended(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        self.last_ended = job
        self.changed.emit()

    @Slot()
    def _job_changed(self, *_args: Any) -> None:
        self.changed.emit()


_ENDED_WORDS = {
    JobState.FINISHED: "done",
    JobState.CANCELLED: "cancelled",
    JobState.FAILED: "failed",
}


class JobStatus(QWidget):
    """The status bar's view of the jobs: the newest running job's title, progress and
    a Cancel button (with how many others run); after the last one ends, how it ended,
    for a few seconds."""

    LINGER_MS = 6000

    def __init__(self, jobs: JobList, parent: QWidget | None = None):
        super().__init__(parent)
        self.jobs = jobs
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setAccessibleName("Current job")
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Job progress")
        self.bar.setMaximumWidth(140)
        self.bar.setMaximumHeight(16)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel job")
        self.cancel_button.setFlat(True)
        for w in (self.label, self.bar, self.cancel_button):
            lay.addWidget(w)
        self._linger = QTimer(self)
        self._linger.setSingleShot(True)
        self._linger.timeout.connect(self._hide_ended)
        self.cancel_button.clicked.connect(self.cancel_current)
        jobs.changed.connect(self.refresh)
        self.refresh()

    def cancel_current(self) -> None:
        job = self.jobs.current()
        if job is not None:
            job.cancel()

    @Slot()
    def refresh(self) -> None:
        job = self.jobs.current()
        if job is None:
            ended = self.jobs.last_ended
            if ended is None:
                self.setVisible(False)
                return
            words = _ENDED_WORDS.get(ended.state, ended.state.value)
            text = f"{ended.title}: {words}"
            if ended.state == JobState.FAILED and ended.error:
                text += f" — {ended.error}"
            self.label.setText(text)
            self.bar.setVisible(False)
            self.cancel_button.setVisible(False)
            self.setVisible(True)
            self._linger.start(self.LINGER_MS)
            return
        self._linger.stop()
        p = job.progress
        more = len(self.jobs.jobs) - 1
        state = " (paused)" if job.state == JobState.PAUSED else ""
        self.label.setText(f"{job.title}{state}: {p.text}" + (f" (+{more} more)" if more else ""))
        if p.fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * min(1.0, max(0.0, p.fraction))))
        self.bar.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(not job.cancel_requested)
        self.setVisible(True)

    @Slot()
    def _hide_ended(self) -> None:
        if self.jobs.current() is None:
            self.setVisible(False)

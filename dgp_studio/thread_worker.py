"""One way to run compute off the UI thread: a generator function run by a worker.

In the spirit of napari's ``thread_worker``: the function ``yield``s values; a
:class:`GeneratorWorker` runs it on a :class:`WorkerLane` (one QThread that runs its
workers one after another, so a lane keeps what its thread loaded: a prior, a
renderer) and emits ``started``, ``yielded``, ``progress`` (for yielded
:class:`~.jobs.JobProgress`), ``paused``/``resumed``, ``returned`` (the generator's
return value), ``errored`` (a readable sentence), ``cancelled`` and, always last,
``finished``; a bare ``yield`` is only a checkpoint.  ``pause()``, ``resume()`` and
``quit()`` set thread-safe flags that the worker checks between yields; cancel is a
message, never a kill.  A
*cooperative* function also receives the cancel event as ``cancel=`` and winds down
itself (the engine keeps its last frame as a result), so it is not closed early.

Signals are emitted from the lane's thread; connect them only to slots of objects
living in the GUI thread (a bare lambda would run in the worker thread)."""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from dgp_engine import DGPError

from .jobs import JobProgress

log = logging.getLogger(__name__)


def describe_error(exc: BaseException, activity: str = "background work") -> str:
    """The sentence shown when ``activity`` ("the run", "rendering", …) fails: the
    engine's own for its errors; anything else is a bug, logged in full."""
    if isinstance(exc, DGPError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Out of memory: choose a smaller model or working region."
    log.error(
        "%s failed:\n%s",
        activity,
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )
    return (
        f"{activity[:1].upper()}{activity[1:]} stopped on an unexpected error: {exc}. "
        "Details are in the log panel."
    )


class GeneratorWorker(QObject):
    started = Signal()
    yielded = Signal(object)
    progress = Signal(object)  # JobProgress
    paused = Signal()
    resumed = Signal()
    returned = Signal(object)  # the generator's return value
    errored = Signal(str)  # a readable sentence
    cancelled = Signal()
    finished = Signal()  # always, last

    def __init__(
        self,
        func: Callable[..., Iterator[Any]],
        *args: Any,
        cooperative: bool = False,
        start_if_cancelled: bool | None = None,
        describe: Callable[[BaseException], str] = describe_error,
        **kwargs: Any,
    ):
        super().__init__()
        self._func, self._args, self._kwargs = func, args, kwargs
        self.cooperative = cooperative
        # a cooperative function runs even when cancelled before it starts (an engine run
        # then ends at once with what it has) unless told otherwise
        self.start_if_cancelled = cooperative if start_if_cancelled is None else start_if_cancelled
        self.describe = describe
        self.abort_event = threading.Event()
        self._resume_event = threading.Event()
        self._resume_event.set()
        self.done = False

    # --- any thread (flags) -----------------------------------------------------------
    def quit(self) -> None:
        """Ask the work to stop: checked between yields (and by a cooperative function)."""
        self.abort_event.set()
        self._resume_event.set()

    cancel = quit

    def pause(self) -> None:
        if not self.abort_event.is_set():
            self._resume_event.clear()

    def resume(self) -> None:
        self._resume_event.set()

    @property
    def abort_requested(self) -> bool:
        return self.abort_event.is_set()

    @property
    def is_paused(self) -> bool:
        return not self._resume_event.is_set()

    # --- the lane's thread ------------------------------------------------------------
    def work(self) -> None:
        """Run the generator to its end (called by the lane, in its thread)."""
        try:
            if self.abort_event.is_set() and not self.start_if_cancelled:
                self.cancelled.emit()  # cancelled before it started: nothing runs
                return
            self.started.emit()
            kwargs = dict(self._kwargs)
            if self.cooperative:
                kwargs["cancel"] = self.abort_event
            gen = self._func(*self._args, **kwargs)
            try:
                value = self._drive(gen)
            except Exception as exc:  # noqa: BLE001 — reported as a sentence
                self.errored.emit(self.describe(exc))
                return
            if value is not _CLOSED:
                self.returned.emit(value)
            if self.abort_event.is_set():
                self.cancelled.emit()
        finally:
            self.done = True
            self.finished.emit()

    def _drive(self, gen: Iterator[Any]) -> Any:
        while True:
            if self.abort_event.is_set() and not self.cooperative:
                gen.close()  # type: ignore[attr-defined]
                return _CLOSED
            if not self._resume_event.is_set():
                self.paused.emit()
                while not self._resume_event.wait(0.05):
                    pass
                self.resumed.emit()
                continue
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            if value is None:
                continue  # a bare ``yield``: pause and cancel were checked, nothing to send
            if isinstance(value, JobProgress):
                self.progress.emit(value)
            else:
                self.yielded.emit(value)


_CLOSED = object()  # the generator was closed between yields (not cooperative)


class _LaneRunner(QObject):
    """Lives in the lane's thread; runs queued workers in order."""

    done = Signal(object)  # the worker, once the runner no longer holds it

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.queue: deque[GeneratorWorker] = deque()
        self.current: GeneratorWorker | None = None

    @Slot()
    def drain(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                worker = self.current = self.queue.popleft()
            try:
                worker.work()
            finally:
                with self.lock:
                    self.current = None
                # the queued signal keeps the worker alive until the GUI thread has it,
                # so the QObject is never deleted from this thread
                self.done.emit(worker)
                del worker


class WorkerLane(QObject):
    """One QThread that runs :class:`GeneratorWorker`\\ s one after another.  Lives in
    the GUI thread; the GUI talks to it, never to the thread."""

    _wake = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._live: set[GeneratorWorker] = set()
        # not ``thread``: that would hide QObject.thread() (the thread the lane lives in)
        self.qthread = QThread()
        self.qthread.setObjectName(name)
        self._runner = _LaneRunner()
        self._runner.moveToThread(self.qthread)
        self._wake.connect(self._runner.drain)
        self._runner.done.connect(self._forget)
        self.qthread.start()

    def start(self, worker: GeneratorWorker) -> GeneratorWorker:
        """Queue ``worker`` behind what the lane runs now."""
        worker.setParent(self)  # owned here (GUI thread) until the lane is done with it
        self._live.add(worker)
        with self._runner.lock:
            self._runner.queue.append(worker)
        self._wake.emit()
        return worker

    def workers(self) -> list[GeneratorWorker]:
        """The running worker, then the queued ones."""
        with self._runner.lock:
            running = [self._runner.current] if self._runner.current else []
            return running + list(self._runner.queue)

    def quit_all(self, keep: Callable[[GeneratorWorker], bool] | None = None) -> None:
        for w in self.workers():
            if keep is None or not keep(w):
                w.quit()

    @Slot(object)
    def _forget(self, worker: GeneratorWorker) -> None:
        self._live.discard(worker)
        worker.setParent(None)  # Python owns it again: freed with its last reference

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Quit every worker, end the thread's event loop and wait for it."""
        self.quit_all()
        self.qthread.quit()
        return self.qthread.wait(timeout_ms)

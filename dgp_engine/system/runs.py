"""The shell every long operation of the engine runs in: an iterator of small reports
that can be cancelled.

    run = reconstruct(...)       # or restore_image(...), Renderer.jitter(...), AnimationExport(...)
    for report in run:           # one report per step of work (an iteration, a frame)
        ...
    run.cancel()                 # from any thread: the run stops at its next check
    run.cancelled                # True once it stopped early because of that

Cancel is a request, never a kill: the run checks it between steps, ends with what it
reached (a reconstruction still gives a state, a render job keeps its frames, an export
writes nothing) and says so in ``cancelled``.  :meth:`CancellableRun.cancel` is the one
way to ask; it only sets a :class:`threading.Event`, so any thread (a GUI's, a signal
handler's) may call it.  A run may be given an event at construction instead of making
its own: then whoever sets that event (the ``dgp`` command's Ctrl-C handler, the app's
worker, another run this one is part of) cancels it too, and several runs stop together.

Nothing here knows what a run computes: :mod:`dgp_engine.method.reconstruct`,
:mod:`dgp_engine.method.manipulate`, :mod:`dgp_engine.tasks.restore` and
:mod:`dgp_engine.files.animation` subclass it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

ReportT = TypeVar("ReportT")


class CancellableRun(Generic[ReportT]):
    """An iterator of reports with :meth:`cancel`.

    Subclasses write :meth:`_reports` (a generator) and call :meth:`_stop_requested`
    between steps: it is true once cancel was asked, and marks the run ``cancelled``,
    so "cancelled" always means the same thing: asked to stop, and stopped before its
    work was done.  Iterating again continues the same run (it is one generator)."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self._cancel_event = cancel if cancel is not None else threading.Event()
        self.cancelled = False
        self._iter: Iterator[ReportT] | None = None

    def cancel(self) -> None:
        """Ask the run to stop at its next check (thread-safe; asking again is harmless)."""
        self._cancel_event.set()

    @property
    def cancel_requested(self) -> bool:
        """Cancel was asked (the run may not have reached its next check yet)."""
        return self._cancel_event.is_set()

    def _stop_requested(self) -> bool:
        """The check a run makes between steps: True (and the run marked cancelled) once
        cancel was asked; the run then ends with what it has."""
        if self._cancel_event.is_set():
            self.cancelled = True
            return True
        return False

    def _linked_event(self) -> threading.Event:
        """The event inside, for a run this one drives, so one cancel stops both (a
        restoration and its reconstruction)."""
        return self._cancel_event

    def _reports(self) -> Iterator[ReportT]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[ReportT]:
        if self._iter is None:
            self._iter = self._reports()
        return self._iter

    def __next__(self) -> ReportT:
        return next(iter(self))


__all__ = ["CancellableRun"]

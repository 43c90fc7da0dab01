"""What Ctrl-C and SIGTERM do to a ``dgp`` command: one state machine for the whole run.

::

    running ──1st signal──▶ stopping ──2nd signal──▶ abandoned
                              │                        (KeyboardInterrupt: the write in
                              │                         progress deletes its temp file;
                              ▼                         nothing partial is left)
        the current step finishes (a model load, one optimisation iteration, a file
        being written), then what is finished is saved; nothing unfinished is saved
        under the output name (a run stopped before its first optimisation step
        writes nothing)

The handler is installed by :func:`dgp_engine.cli.main` before any sub-command module
(and torch) is imported, so a signal in the first second is a request like any other,
never a traceback. The handler only sets flags and writes its notice straight to file
descriptor 2 (a buffered ``print`` from a signal handler can collide with the progress
bar's own write). Commands read :func:`current` and pass its ``event`` to the engine.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

RUNNING = "running"
STOPPING = "stopping"
ABANDONED = "abandoned"

_NOTICE = {
    "work": "Stopping: finishing the current step, then saving what is finished… "
    "(press Ctrl-C again to abandon; no partial file is left)",
    "write": "Finishing writing the result… (press Ctrl-C again to abandon; no partial file "
    "is left)",
}


class Interrupts:
    """The signal state of one command run (see the module doc)."""

    def __init__(self) -> None:
        self.event = threading.Event()  # set on the first signal: the engine's cancel flag
        self.state = RUNNING
        self.signum: int | None = None
        self.phase = "work"  # "work" or "write": only chooses the notice

    @property
    def stop_requested(self) -> bool:
        return self.state != RUNNING

    @property
    def exit_code(self) -> int:
        """128 + the first signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        if self.state == RUNNING:
            self.state = STOPPING
            self.signum = signum
            self.event.set()
            _notice(_NOTICE.get(self.phase, _NOTICE["work"]))
            return
        self.state = ABANDONED
        raise KeyboardInterrupt

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around the final writes: a first signal now only announces that the write
        finishes; a second abandons it."""
        self.phase = "write"
        try:
            yield
        finally:
            self.phase = "work"


_current: Interrupts | None = None


def current() -> Interrupts:
    """The state machine of the command being run (a fresh, uninstalled one outside
    :func:`installed`, e.g. when a command function is called directly)."""
    global _current
    if _current is None:
        _current = Interrupts()
    return _current


@contextmanager
def installed(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[Interrupts]:
    """Handle ``signums`` with a fresh :class:`Interrupts` while the block runs (main thread
    only; elsewhere signals cannot be caught and the machine is merely created)."""
    global _current
    machine = Interrupts()
    previous_machine, _current = _current, machine
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for s in signums:
            previous[s] = signal.signal(s, machine.handle)
    try:
        yield machine
    finally:
        for s, h in previous.items():
            signal.signal(s, signal.SIG_DFL if h is None else h)
        _current = previous_machine


def _notice(text: str) -> None:
    try:
        os.write(2, f"\n{text}\n".encode())
    except OSError:
        pass

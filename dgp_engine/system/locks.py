"""Exclusive locks on files: the one way the engine keeps two runs off the same work.

A lock is a small file beside what it guards, locked through the ``filelock`` package
(``flock`` on Unix): the kernel drops the lock when its process ends, even on SIGKILL, so
the file a killed run leaves behind is simply taken by the next run — nothing stale can
block. Taking a lock never waits: a lock another process holds raises :class:`LockBusy`
at once, with the note its holder wrote into the file ("pid 123, started …"), so the
refusal can say who holds it. Used for the output a command writes
(:func:`dgp_engine.system.fileio.claim_output`) and for a batch output folder's journal.

Before handing the path to ``filelock`` the file is opened here: a lock path that is a
folder, in a missing folder or in one that takes no new files (``/proc``, read-only
mounts) fails with the system's own OSError, never as "busy" and never by creating
folders.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import filelock

_NOTE_BYTES = 200


class LockBusy(OSError):
    """Another process holds the lock on ``path``; ``holder`` is its note ("" if none)."""

    def __init__(self, path: Path, holder: str):
        super().__init__(
            errno.EBUSY,
            f"{path} is locked by another process" + (f" ({holder})" if holder else ""),
            str(path),
        )
        self.path = path
        self.holder = holder


class HeldLock:
    """A lock this process holds; :meth:`release` gives it up (idempotent). Unless
    ``keep_file``, the lock file is removed on release — unlinked while still held, so a
    process waiting on the old file sees it gone instead of locking a file nobody else
    can see (``filelock`` checks for that after locking)."""

    def __init__(self, path: Path, lock: filelock.BaseFileLock, keep_file: bool):
        self.path = path
        self._lock = lock
        self._keep_file = keep_file
        self._pid = os.getpid()

    @property
    def held(self) -> bool:
        return self._lock.is_locked and self._pid == os.getpid()

    def release(self) -> None:
        if not self.held:  # released already, or a forked child's copy: the parent's lock
            return
        with contextlib.suppress(OSError):
            if self._keep_file:
                _write_note(self.path, "")
            else:
                self.path.unlink()
        self._lock.release(force=True)


def take_lock(path: str | Path, note: str, *, keep_file: bool = False) -> HeldLock:
    """Lock ``path`` (created if missing) for this process now, writing ``note`` into it,
    or raise :class:`LockBusy` if another process (or another lock of this process)
    holds it. OSError as the system reports it when the file cannot be opened."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask
    try:
        note_before = os.read(fd, _NOTE_BYTES)
    except OSError:
        note_before = b""
    finally:
        os.close(fd)
    lock = filelock.FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        # The note is read again now; the one read before helps where a filelock version
        # truncated the file when it tried to lock it.
        raise LockBusy(path, read_note(path) or _text(note_before)) from None
    held = HeldLock(path, lock, keep_file)
    try:
        _write_note(path, note)
    except OSError:
        pass  # the note only names the holder in a refusal; the lock is what counts
    return held


def remove_if_unheld(path: str | Path) -> bool:
    """Remove the lock file ``path`` if nobody holds it (what a killed run left). Returns
    whether it was removed; a held lock is left alone."""
    path = Path(path)
    lock = filelock.FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        return False
    try:
        path.unlink(missing_ok=True)  # unlinked while held, as HeldLock.release does
    finally:
        lock.release(force=True)
    return True


def read_note(path: str | Path) -> str:
    """The note the holder of the lock ``path`` wrote ("" when none can be read)."""
    try:
        with open(path, "rb") as fh:
            return _text(fh.read(_NOTE_BYTES))
    except OSError:
        return ""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").strip()


def _write_note(path: Path, note: str) -> None:
    fd = os.open(path, os.O_WRONLY)  # a second descriptor: flock stays with the lock's own
    try:
        os.ftruncate(fd, 0)
        os.write(fd, note.encode("utf-8")[:_NOTE_BYTES])
    finally:
        os.close(fd)

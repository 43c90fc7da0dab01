"""The job journal: one SQLite file in the output folder that says, for every input,
where it stands (pending, running, done, failed + reason, skipped), how long it took
and with which settings — so a run that was killed, rebooted or stopped resumes
where it was.

Only the driver process writes it (workers send results back), and every change is
committed at once: a SIGKILL loses at most the items that were running, which the
next run finds as ``running`` and starts again.  A lock file beside it (``flock``,
released by the OS when the process dies) makes a second run on the same output
folder refuse instead of doing the same work twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DGPError, OutputError

PENDING, RUNNING, DONE, FAILED, SKIPPED = "pending", "running", "done", "failed", "skipped"
STATUSES = (PENDING, RUNNING, DONE, FAILED, SKIPPED)
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, pid INTEGER,
    backend TEXT, workers INTEGER, outcome TEXT);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    rel TEXT UNIQUE NOT NULL,        -- input path relative to the input folder
    output TEXT NOT NULL,            -- output path relative to the output folder
    state_file TEXT,                 -- reconstruction file relative to the output folder
    mask TEXT,                       -- mask file used (absolute)
    status TEXT NOT NULL,
    reason TEXT,                     -- why it failed or was skipped
    in_size INTEGER, in_mtime INTEGER, in_sha TEXT,   -- the input as it was when run
    settings TEXT,                   -- digest of the settings it was run with
    out_sha TEXT,                    -- digest of the output this journal wrote
    attempts INTEGER NOT NULL DEFAULT 0,
    run INTEGER,                     -- the run that last started it
    worker TEXT, class_id INTEGER, notes TEXT,
    started REAL, finished REAL, seconds REAL);
"""


class JournalLocked(DGPError):
    """Another batch run holds the output folder."""


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ItemRow:
    id: int
    rel: str
    output: str
    state_file: str | None
    mask: str | None
    status: str
    reason: str | None
    in_size: int | None
    in_mtime: int | None
    in_sha: str | None
    settings: str | None
    out_sha: str | None
    attempts: int
    run: int | None
    worker: str | None
    class_id: int | None
    notes: str | None
    started: float | None
    finished: float | None
    seconds: float | None


class _FolderLock:
    """An exclusive, non-blocking lock on a file; the OS drops it with the process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
        except OSError:
            try:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            raise JournalLocked(
                f"Another batch run is using {self.path.parent.parent}"
                + (f" ({holder})" if holder else "")
                + ": wait for it to finish, stop it, or choose another output folder.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
                 .encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)  # closing drops the lock
            self.fd = None


def _lock_fd(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class Journal:
    """The journal of the batch job in ``work_dir`` (``OUT_DIR/.dgp-batch``)."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = Path(work_dir)
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"Could not create {self.work_dir}: {exc.strerror or exc}.") \
                from exc
        self.lock = _FolderLock(self.work_dir / "lock")
        self.lock.acquire()
        try:
            self.db = sqlite3.connect(self.work_dir / "journal.sqlite", timeout=10,
                                      isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self.lock.release()
            raise OutputError(f"The batch journal in {self.work_dir} cannot be used "
                              f"({exc}).") from exc
        self.run_id: int | None = None

    # --- job-level settings -------------------------------------------------------------
    def get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM job WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: object) -> None:
        self.db.execute("INSERT OR REPLACE INTO job(key, value) VALUES (?, ?)",
                        (key, json.dumps(value, sort_keys=True)))

    # --- runs -----------------------------------------------------------------------------
    def start_run(self, backend: str, workers: int) -> int:
        cur = self.db.execute(
            "INSERT INTO runs(started, pid, backend, workers) VALUES (?, ?, ?, ?)",
            (time.time(), os.getpid(), backend, workers))
        self.run_id = int(cur.lastrowid or 0)
        return self.run_id

    def finish_run(self, outcome: str) -> None:
        if self.run_id is not None:
            self.db.execute("UPDATE runs SET finished=?, outcome=? WHERE id=?",
                            (time.time(), outcome, self.run_id))

    # --- items ----------------------------------------------------------------------------
    def items(self, status: str | None = None) -> list[ItemRow]:
        q = "SELECT * FROM items" + (" WHERE status=?" if status else "") + " ORDER BY id"
        return [ItemRow(**dict(r)) for r in self.db.execute(q, (status,) if status else ())]

    def item(self, rel: str) -> ItemRow | None:
        r = self.db.execute("SELECT * FROM items WHERE rel=?", (rel,)).fetchone()
        return ItemRow(**dict(r)) if r else None

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"):
            out[status] = n
        return out

    def add(self, rel: str, output: str, state_file: str | None, mask: str | None) -> None:
        self.db.execute(
            "INSERT INTO items(rel, output, state_file, mask, status) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(rel) DO UPDATE SET output=excluded.output, "
            "state_file=excluded.state_file, mask=excluded.mask",
            (rel, output, state_file, mask, PENDING))

    def set_status(self, rel: str, status: str, reason: str | None = None) -> None:
        self.db.execute("UPDATE items SET status=?, reason=? WHERE rel=?", (status, reason, rel))

    def mark_running(self, rel: str, *, size: int, mtime: int, sha: str, settings: str,
                     worker: str) -> None:
        self.db.execute(
            "UPDATE items SET status=?, reason=NULL, in_size=?, in_mtime=?, in_sha=?, "
            "settings=?, attempts=attempts+1, run=?, worker=?, started=?, finished=NULL, "
            "seconds=NULL WHERE rel=?",
            (RUNNING, size, mtime, sha, settings, self.run_id, worker, time.time(), rel))

    def mark_writing(self, rel: str, out_sha: str) -> None:
        """Before the output is renamed into place: a run killed between the rename and
        :meth:`mark_done` is recognised as done by the next run (same digest on disk)."""
        self.db.execute("UPDATE items SET out_sha=? WHERE rel=?", (out_sha, rel))

    def mark_done(self, rel: str, *, seconds: float, class_id: int | None,
                  notes: list[str]) -> None:
        self.db.execute(
            "UPDATE items SET status=?, reason=NULL, finished=?, seconds=?, class_id=?, "
            "notes=? WHERE rel=?",
            (DONE, time.time(), seconds, class_id, "\n".join(notes) or None, rel))

    def mark_failed(self, rel: str, reason: str, seconds: float | None = None) -> None:
        self.db.execute("UPDATE items SET status=?, reason=?, finished=?, seconds=? WHERE rel=?",
                        (FAILED, reason, time.time(), seconds, rel))

    def back_to_pending(self, rel: str, reason: str | None = None) -> None:
        self.db.execute("UPDATE items SET status=?, reason=? WHERE rel=?",
                        (PENDING, reason, rel))

    def reset_all(self) -> None:
        self.db.execute("UPDATE items SET status=?, reason=NULL, settings=NULL", (PENDING,))

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            self.lock.release()

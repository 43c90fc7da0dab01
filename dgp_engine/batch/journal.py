"""The job journal: one SQLite file in the output folder that says, for every input,
where it stands (pending, running, done, failed + reason, skipped), how long it took
and with which settings — so a run that was killed, rebooted or stopped resumes
where it was.

Only the driver process writes it (workers send results back), and every change is
committed at once: a SIGKILL loses at most the items that were running, which the
next run finds as ``running`` and starts again.  A lock file beside it
(:mod:`dgp_engine.system.locks`: released by the OS when the process dies) makes a second
run on the same output folder refuse instead of doing the same work twice.

The journal is read as untrusted data: before a run uses it, its pages, tables and every
value are checked (:meth:`Journal._check`), and any SQLite error later becomes one of our
errors.  A damaged journal is refused with what to do (``--restart``, which keeps the
damaged file aside and starts a new one); it is never deleted or repaired in place.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import DGPError, OutputError
from ..system.locks import HeldLock, LockBusy, take_lock

PENDING, RUNNING, DONE, FAILED, SKIPPED = "pending", "running", "done", "failed", "skipped"
STATUSES = (PENDING, RUNNING, DONE, FAILED, SKIPPED)
SCHEMA_VERSION = 1
JOURNAL_FILE = "journal.sqlite"
DAMAGED_SUFFIX = ".damaged"

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


# --- file names in the journal ---------------------------------------------------------------
# SQLite text is UTF-8, and a file name need not be: an old archive's Latin-1 "café.png"
# comes from the file system as surrogates, which sqlite3 cannot store (a batch over such a
# folder once ended in a UnicodeEncodeError before it started). Names that are UTF-8 are
# stored as they are (so journals of earlier versions read the same); any other is stored
# as "/" + its bytes percent-encoded — no relative path starts with "/", so the two forms
# never meet.
_ENCODED = "/"


def stored_name(name: str) -> str:
    """A relative path (input or output, '/'-separated) as the journal stores it."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return _ENCODED + urllib.parse.quote(os.fsencode(name), safe="/")


def read_name(text: str) -> str:
    """The path :func:`stored_name` stored (surrogates where it is not UTF-8)."""
    if text.startswith(_ENCODED):
        return os.fsdecode(urllib.parse.unquote_to_bytes(text[len(_ENCODED) :]))
    return text


def shown_name(name: str) -> str:
    """A path as messages and pages show it: bytes that are not UTF-8 as U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace") if _has_surrogates(name) else name


def _text(message: str | None) -> str | None:
    """A reason or note as the journal stores it (it may quote a name that is not UTF-8)."""
    return None if message is None else shown_name(message)


def _has_surrogates(name: str) -> bool:
    try:
        name.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


class JournalLocked(DGPError):
    """Another batch run holds the output folder."""


class JournalDamaged(OutputError):
    """The journal is not one this version can trust: damaged pages, tables or values
    changed by hand or by another program, or written by a newer version."""


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


_ITEM_COLUMNS = [f.name for f in fields(ItemRow)]
_ITEM_SELECT = "SELECT " + ", ".join(_ITEM_COLUMNS) + " FROM items"
# what each column must hold (None is allowed unless the column is NOT NULL)
_ITEM_KINDS: dict[str, type] = {
    "id": int,
    "rel": str,
    "output": str,
    "state_file": str,
    "mask": str,
    "status": str,
    "reason": str,
    "in_size": int,
    "in_mtime": int,
    "in_sha": str,
    "settings": str,
    "out_sha": str,
    "attempts": int,
    "run": int,
    "worker": str,
    "class_id": int,
    "notes": str,
    "started": float,
    "finished": float,
    "seconds": float,
}
_ITEM_REQUIRED = frozenset({"id", "rel", "output", "status", "attempts"})


def _item_problem(values: tuple[Any, ...]) -> str | None:
    """Why a row read from ``items`` cannot be an :class:`ItemRow`, or None."""
    for name, value in zip(_ITEM_COLUMNS, values, strict=True):
        kind = _ITEM_KINDS[name]
        if value is None:
            if name in _ITEM_REQUIRED:
                return f"an item has no {name}"
            continue
        ok = (
            (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if kind is float
            else type(value) is kind
        )
        if not ok:
            return f"an item's {name} is {type(value).__name__} {value!r:.40}"
    status, rel = values[_ITEM_COLUMNS.index("status")], values[_ITEM_COLUMNS.index("rel")]
    if status not in STATUSES:
        return f"an item's status is {status!r:.40}"
    if not rel:
        return "an item has an empty name"
    return None


@cache
def _expected_layout() -> dict[str, tuple[Any, ...]]:
    """The tables' layout (columns, unique keys) as :data:`_SCHEMA` creates it."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        return {table: _layout(db, table) for table in ("job", "runs", "items")}
    finally:
        db.close()


def _layout(db: sqlite3.Connection, table: str) -> tuple[Any, ...]:
    columns = sorted(
        (name, kind.upper(), notnull, default, pk)
        for _cid, name, kind, notnull, default, pk in db.execute(
            f"PRAGMA table_info({table})"
        ).fetchall()
    )
    unique = sorted(
        tuple(c[2] for c in db.execute(f"PRAGMA index_info({_quoted(index[1])})"))
        for index in db.execute(f"PRAGMA index_list({table})").fetchall()
        if index[2]
    )
    return tuple(columns), tuple(unique)


def _quoted(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _lock_folder(lock_file: Path) -> HeldLock:
    """The batch lock on an output folder (:mod:`dgp_engine.system.locks`; the OS drops it
    with the process), or one sentence: another run holds it, or the file cannot be used."""
    try:
        return take_lock(
            lock_file,
            f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}",
            keep_file=True,
        )
    except LockBusy as exc:
        raise JournalLocked(
            f"Another batch run is using {lock_file.parent.parent}"
            + (f" ({exc.holder})" if exc.holder else "")
            + ": wait for it to finish, stop it, or choose another output folder."
        ) from None
    except OSError as exc:
        raise OutputError(
            f"The batch lock file {lock_file} cannot be opened or locked "
            f"({exc.strerror or exc}): remove it and run the same command again, or choose "
            "another output folder (on a local disk)."
        ) from exc


class Journal:
    """The journal of the batch job in ``work_dir`` (``OUT_DIR/.dgp-batch``).

    A journal that cannot be trusted raises :class:`JournalDamaged`; with ``restart``
    it is kept aside instead (``set_aside`` names where) and a new one is started."""

    def __init__(self, work_dir: Path, *, restart: bool = False) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / JOURNAL_FILE
        self.set_aside: Path | None = None
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise OutputError(
                f"{self.work_dir} is where the batch journal goes, but it is a "
                "file: move it away or choose another output folder."
            ) from exc
        except OSError as exc:
            raise OutputError(f"Could not create {self.work_dir}: {exc.strerror or exc}.") from exc
        self.lock = _lock_folder(self.work_dir / "lock")
        try:
            try:
                self.db = self._open()
            except JournalDamaged:
                if not restart:
                    raise
                self.set_aside = self._set_aside()
                self.db = self._open()
        except BaseException:
            self.lock.release()
            raise
        self.run_id: int | None = None

    # --- opening, checking, errors -----------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            new = self._check(db)  # read only: a journal refused is left as it was
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if new:
                db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            db.close()
            raise self._error(exc) from exc
        except BaseException:
            db.close()
            raise
        return db

    def _check(self, db: sqlite3.Connection) -> bool:
        """Raise JournalDamaged unless every page, table and value is as this version
        writes them; True when the file holds no tables yet (a new journal)."""
        problems = [str(r[0]) for r in db.execute("PRAGMA integrity_check(3)").fetchall()]
        if problems != ["ok"]:
            raise self.damaged("; ".join(problems))
        tables = {
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        }
        if not tables:
            return True
        for table, layout in _expected_layout().items():
            if table not in tables:
                raise self.damaged(f"it has no {table} table")
            if _layout(db, table) != layout:
                raise self.damaged(f"its {table} table is not laid out as this version's")
        for key, value in db.execute("SELECT key, value FROM job").fetchall():
            _decode(self, key, value)
        for values in db.execute(_ITEM_SELECT).fetchall():
            problem = _item_problem(tuple(values))
            if problem:
                raise self.damaged(problem)
        return False

    def damaged(self, detail: str) -> JournalDamaged:
        if len(detail) > 90:
            detail = detail[:89] + "…"
        return JournalDamaged(
            f"The batch journal {self.path} is damaged or not this version's ({detail}): run "
            "the same command with --restart to start a new one (the damaged file is kept "
            f"aside; the pictures already in {self.work_dir.parent} are kept, and skipped "
            "unless you add --overwrite), or choose another output folder."
        )

    def _error(self, exc: sqlite3.Error) -> DGPError:
        """Our error for an SQLite one: what went wrong with which file, and what to do."""
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        if name.startswith("SQLITE_FULL"):
            return OutputError(
                f"The batch journal {self.path} could not be written: the disk "
                "is full. Free some space and run the same command again."
            )
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return OutputError(
                f"The batch journal {self.path} is in use by another program "
                f"({exc}): close it and run the same command again."
            )
        if name.startswith(
            ("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY", "SQLITE_AUTH", "SQLITE_IOERR")
        ):
            return OutputError(
                f"The batch journal {self.path} cannot be read or written ({exc}): it and "
                f"the files beside it must be files you may write; remove {self.work_dir} "
                f"(the pictures in {self.work_dir.parent} are kept) or choose another output "
                "folder."
            )
        return self.damaged(str(exc))

    def _set_aside(self) -> Path:
        """Rename the damaged journal (and its WAL files) out of the way; never over a file."""
        n = 1
        while True:
            aside = self.path.with_name(
                f"{JOURNAL_FILE}{DAMAGED_SUFFIX}" + (f"-{n}" if n > 1 else "")
            )
            if not any(os.path.lexists(f"{aside}{end}") for end in ("", "-wal", "-shm")):
                break
            n += 1
        try:
            for end in ("", "-wal", "-shm"):
                if os.path.lexists(f"{self.path}{end}"):
                    os.rename(f"{self.path}{end}", f"{aside}{end}")
        except OSError as exc:
            raise OutputError(
                f"The damaged batch journal {self.path} could not be kept aside "
                f"({exc.strerror or exc}): move {self.work_dir} away and run "
                "again."
            ) from exc
        return aside

    def _sql(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self.db.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _insert(self, query: str, params: tuple[Any, ...]) -> int:
        try:
            return int(self.db.execute(query, params).lastrowid or 0)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _row(self, values: Any) -> ItemRow:
        values = tuple(values)
        problem = _item_problem(values)
        if problem:
            raise self.damaged(problem)
        row = ItemRow(*values)
        row.rel, row.output = read_name(row.rel), read_name(row.output)
        if row.state_file is not None:
            row.state_file = read_name(row.state_file)
        for name in ("started", "finished", "seconds"):
            value = getattr(row, name)
            if value is not None:
                setattr(row, name, float(value))
        return row

    # --- job-level settings -------------------------------------------------------------
    def get(self, key: str) -> Any:
        rows = self._sql("SELECT value FROM job WHERE key=?", (key,))
        return _decode(self, key, rows[0][0]) if rows else None

    def put(self, key: str, value: object) -> None:
        self._sql(
            "INSERT OR REPLACE INTO job(key, value) VALUES (?, ?)",
            (key, json.dumps(value, sort_keys=True)),
        )

    # --- runs -----------------------------------------------------------------------------
    def start_run(self, backend: str, workers: int) -> int:
        self.run_id = self._insert(
            "INSERT INTO runs(started, pid, backend, workers) VALUES (?, ?, ?, ?)",
            (time.time(), os.getpid(), backend, workers),
        )
        return self.run_id

    def finish_run(self, outcome: str) -> None:
        if self.run_id is not None:
            self._sql(
                "UPDATE runs SET finished=?, outcome=? WHERE id=?",
                (time.time(), outcome, self.run_id),
            )

    # --- items ----------------------------------------------------------------------------
    def items(self, status: str | None = None) -> list[ItemRow]:
        q = _ITEM_SELECT + (" WHERE status=?" if status else "") + " ORDER BY id"
        return [self._row(r) for r in self._sql(q, (status,) if status else ())]

    def item(self, rel: str) -> ItemRow | None:
        rows = self._sql(_ITEM_SELECT + " WHERE rel=?", (stored_name(rel),))
        return self._row(rows[0]) if rows else None

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._sql("SELECT status, COUNT(*) FROM items GROUP BY status"):
            if status not in out:
                raise self.damaged(f"an item's status is {status!r:.40}")
            out[status] = n
        return out

    def add(self, rel: str, output: str, state_file: str | None, mask: str | None) -> None:
        self._sql(
            "INSERT INTO items(rel, output, state_file, mask, status) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(rel) DO UPDATE SET output=excluded.output, "
            "state_file=excluded.state_file, mask=excluded.mask",
            (
                stored_name(rel),
                stored_name(output),
                None if state_file is None else stored_name(state_file),
                None if mask is None else shown_name(mask),
                PENDING,
            ),
        )

    def set_status(self, rel: str, status: str, reason: str | None = None) -> None:
        self._sql(
            "UPDATE items SET status=?, reason=? WHERE rel=?",
            (status, _text(reason), stored_name(rel)),
        )

    def mark_running(
        self, rel: str, *, size: int, mtime: int, sha: str, settings: str, worker: str
    ) -> None:
        self._sql(
            "UPDATE items SET status=?, reason=NULL, in_size=?, in_mtime=?, in_sha=?, "
            "settings=?, attempts=attempts+1, run=?, worker=?, started=?, finished=NULL, "
            "seconds=NULL WHERE rel=?",
            (
                RUNNING,
                size,
                mtime,
                sha,
                settings,
                self.run_id,
                worker,
                time.time(),
                stored_name(rel),
            ),
        )

    def mark_writing(self, rel: str, out_sha: str) -> None:
        """Before the output is renamed into place: a run killed between the rename and
        :meth:`mark_done` is recognised as done by the next run (same digest on disk)."""
        self._sql("UPDATE items SET out_sha=? WHERE rel=?", (out_sha, stored_name(rel)))

    def mark_done(
        self, rel: str, *, seconds: float, class_id: int | None, notes: list[str]
    ) -> None:
        self._sql(
            "UPDATE items SET status=?, reason=NULL, finished=?, seconds=?, class_id=?, "
            "notes=? WHERE rel=?",
            (
                DONE,
                time.time(),
                seconds,
                class_id,
                _text("\n".join(notes)) or None,
                stored_name(rel),
            ),
        )

    def mark_failed(self, rel: str, reason: str, seconds: float | None = None) -> None:
        self._sql(
            "UPDATE items SET status=?, reason=?, finished=?, seconds=? WHERE rel=?",
            (FAILED, _text(reason), time.time(), seconds, stored_name(rel)),
        )

    def back_to_pending(self, rel: str, reason: str | None = None) -> None:
        self._sql(
            "UPDATE items SET status=?, reason=? WHERE rel=?",
            (PENDING, _text(reason), stored_name(rel)),
        )

    def reset_all(self) -> None:
        self._sql("UPDATE items SET status=?, reason=NULL, settings=NULL", (PENDING,))

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            self.lock.release()


def _decode(journal: Journal, key: Any, value: Any) -> Any:
    """A ``job`` value: JSON, of the kind its key needs (the settings: an object; the
    schema: a version this code reads)."""
    try:
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("not text")
        decoded = json.loads(value)
    except ValueError:
        raise journal.damaged(f"its {key!r:.40} entry is not JSON") from None
    if key == "settings" and not isinstance(decoded, dict):
        raise journal.damaged("its settings are not a table of settings")
    if key == "schema" and (type(decoded) is not int or not 1 <= decoded <= SCHEMA_VERSION):
        raise journal.damaged(
            f"its layout version is {decoded!r:.20}, this version reads {SCHEMA_VERSION}"
        )
    return decoded

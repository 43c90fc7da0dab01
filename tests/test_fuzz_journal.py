"""Hostile batch journals (issue 20): the SQLite journal in OUT/.dgp-batch with its bytes
flipped or cut, tables dropped or laid out otherwise, rows holding values of any type,
settings that are not JSON or not an object, and the files beside it replaced by folders
or garbage. ``dgp batch`` on such a folder either runs (the journal was still one it can
trust) or ends with one sentence naming the file and what to do; never a traceback. The
input pictures are never touched, the pictures already written stay, a refused journal
is left byte for byte, and where the sentence says ``--restart``, ``--restart`` works.

Pictures are restored in this process by the batch's own ItemRunner on the tiny model
(an in-process pool instead of worker processes), so an example costs a fraction of a
second; each test draws at most a few dozen, without deadlines."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from dgp_engine.batch import BatchJob
from dgp_engine.batch.runner import ItemRunner, worker_config
from dgp_engine.cli import main

from .task_helpers import photo_array, tiny_model_folder, tiny_preset_file

pytestmark = pytest.mark.timeout(600)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SIZE = (56, 40)
PICTURES = ("p0.png", "p1.png")
ITEM_COLUMNS = (
    "id",
    "rel",
    "output",
    "state_file",
    "mask",
    "status",
    "reason",
    "in_size",
    "in_mtime",
    "in_sha",
    "settings",
    "out_sha",
    "attempts",
    "run",
    "worker",
    "class_id",
    "notes",
    "started",
    "finished",
    "seconds",
)


class InlinePool:
    """The WorkerPool protocol in this process: one worker, the batch's ItemRunner."""

    kind = "inline"
    size = 1
    runners: dict[str, ItemRunner] = {}

    def __init__(self, job: BatchJob) -> None:
        config = worker_config(job.settings, device="cpu", threads=1)
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in self.runners:
            self.runners[key] = ItemRunner(config)
        self.runner = self.runners[key]
        self.events: list[tuple[Any, ...]] = [("ready", 0, self.runner.info())]
        self.busy: dict[int, str] = {}

    def idle(self) -> list[int]:
        return [] if self.busy else [0]

    def submit(self, wid: int, request: dict[str, Any]) -> None:
        self.busy[wid] = request["rel"]
        self.events.append(("result", wid, self.runner.process(request)))

    def replace(self, wid: int) -> bool:
        return False

    def poll(self, timeout: float) -> list[tuple[Any, ...]]:
        events, self.events = self.events, []
        for ev in events:
            if ev[0] == "result":
                self.busy.pop(ev[1], None)
        return events

    def abandon(self) -> None:
        pass

    def close(self, timeout: float = 10.0) -> None:
        pass


@pytest.fixture(autouse=True)
def _inline_pool(monkeypatch):
    monkeypatch.setattr(BatchJob, "_make_pool", lambda job, todo: InlinePool(job))


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """An album of two pictures and the output folder of a finished job on it."""
    root = tmp_path_factory.mktemp("journal")
    model = tiny_model_folder(root / "model")
    preset = tiny_preset_file(root / "tiny.toml")
    album = root / "album"
    album.mkdir()
    for i, name in enumerate(PICTURES):
        # black and white: a colorize batch skips photos already in colour
        Image.fromarray(photo_array(SIZE[1], SIZE[0], seed=i)).convert("L").save(album / name)
    args = ["--model", str(model), "--preset", str(preset), "-q", "--threads", "1"]
    done = root / "done"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BatchJob, "_make_pool", lambda job, todo: InlinePool(job))
        assert main(["batch", "colorize", str(album), "-o", str(done), *args]) == 0
    assert (done / ".dgp-batch" / "journal.sqlite").is_file()
    return {"root": root, "album": album, "done": done, "args": args, "inputs": _digests(album)}


def _digests(folder: Path, skip: str | None = None) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (skip is None or skip not in p.relative_to(folder).parts)
    }


def _fresh_copy(kit) -> Path:
    out = Path(tempfile.mkdtemp(dir=kit["root"])) / "out"
    shutil.copytree(kit["done"], out)
    return out


def _complete(path: Path) -> bool:
    with Image.open(path) as im:
        im.load()
        return im.size == SIZE


def _run_batch(kit, out: Path, capsys, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["batch", "colorize", str(kit["album"]), "-o", str(out), *kit["args"], *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check_outcome(kit, out: Path, capsys) -> str:
    """Run the batch on ``out`` and check what every outcome must keep; the outcome
    ("ran" or "refused") is returned."""
    work = out / ".dgp-batch"
    db = work / "journal.sqlite"
    journal_before = db.read_bytes() if db.is_file() and not db.is_symlink() else None
    outputs_before = _digests(out, skip=".dgp-batch")
    code, stdout, err = _run_batch(kit, out, capsys)
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dgp: error:")]
    assert len(errors) <= 1, err
    assert _digests(kit["album"]) == kit["inputs"], "an input picture was changed"
    for name in PICTURES:  # the pictures already written are kept (maybe written again)
        assert _complete(out / name)
    if not errors:
        assert code == 0 or (code == 1 and "failed (" in stdout), (code, stdout, err)
        return "ran"
    assert code == 1
    sentence = errors[0]
    assert str(out) in sentence, sentence  # says which folder
    assert _digests(out, skip=".dgp-batch") == outputs_before, "a refused run wrote"
    if journal_before is not None:
        assert db.read_bytes() == journal_before, "a refused journal was changed"
    if "--restart" in sentence:  # the advice works, and keeps the damaged journal
        code, _, err = _run_batch(kit, out, capsys, "--restart")
        assert code == 0, err
        assert "Traceback" not in err
        aside = work / "journal.sqlite.damaged"
        if journal_before is not None:
            assert aside.read_bytes() == journal_before
        for name in PICTURES:
            assert _complete(out / name)
    return "refused"


def _sql(out: Path, *statements: tuple[str, tuple[Any, ...]]) -> bool:
    """Change the journal as another program could; False when SQLite refuses."""
    db = sqlite3.connect(out / ".dgp-batch" / "journal.sqlite", isolation_level=None)
    try:
        for query, params in statements:
            db.execute(query, params)
        return True
    except (sqlite3.Error, OverflowError):
        return False
    finally:
        db.close()


# --- the journals the hostile test met (issue 20), one by one --------------------------------
def _lock_folder(work: Path) -> None:
    (work / "lock").unlink()
    (work / "lock").mkdir()


def _journal_folder(work: Path) -> None:
    (work / "journal.sqlite").unlink()
    (work / "journal.sqlite").mkdir()


def _query(*statements: str):
    def change(work: Path) -> None:
        assert _sql(work.parent, *[(s, ()) for s in statements])

    return change


CASES = {
    "settings not JSON": _query("UPDATE job SET value='{\"task\": ' WHERE key='settings'"),
    "settings a JSON list": _query("UPDATE job SET value='[1, 2]' WHERE key='settings'"),
    "settings a number": _query("UPDATE job SET value='7' WHERE key='settings'"),
    "schema from the future": _query("UPDATE job SET value='99' WHERE key='schema'"),
    "items without a column": _query("ALTER TABLE items DROP COLUMN notes"),
    "items with another column": _query("ALTER TABLE items ADD COLUMN colour TEXT"),
    "items without its table": _query("DROP TABLE items"),
    "items of another shape": _query("DROP TABLE items", "CREATE TABLE items (id INTEGER)"),
    "rel not unique": _query(
        "CREATE TABLE t AS SELECT * FROM items", "DROP TABLE items", "ALTER TABLE t RENAME TO items"
    ),
    "attempts as text": _query("UPDATE items SET attempts='many', status='running'"),
    "size as text": _query("UPDATE items SET in_size='big'"),
    "unknown status": _query("UPDATE items SET status='finished'"),
    "seconds as a blob": _query("UPDATE items SET seconds=x'00ff'"),
    "no items left": _query("DELETE FROM items"),  # valid: the outputs are not its own
    "not a database": lambda work: (work / "journal.sqlite").write_bytes(b"garbage" * 300),
    "cut in half": lambda work: (work / "journal.sqlite").write_bytes(
        (work / "journal.sqlite").read_bytes()[:6000]
    ),
    "lock is a folder": _lock_folder,
    "journal is a folder": _journal_folder,
    "work folder is a file": lambda work: (shutil.rmtree(work), work.write_text("x")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_journals_end_with_a_sentence(kit, capsys, case):
    out = _fresh_copy(kit)
    CASES[case](out / ".dgp-batch")
    outcome = _check_outcome(kit, out, capsys)
    if case == "no items left":
        assert outcome == "ran"
    else:
        assert outcome == "refused"


# --- fuzzing -------------------------------------------------------------------------------
@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` cut short, with bytes flipped / overwritten / zeroed, or garbage inserted
    (positions drawn over the whole file or in its 100-byte header)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["truncate", "flip", "set", "insert", "zero-run"]))
        end = len(data) - 1 if draw(st.booleans()) else min(99, len(data) - 1)
        pos = draw(st.integers(0, end))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[pos : pos + draw(st.integers(1, 64))] = b"\0" * 8
    return bytes(data)


ANY_VALUE = (
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=8)
    | st.sampled_from(["pending", "running", "done", "failed", "skipped", "p0.png"])
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@FUZZ
@given(data=st.data())
def test_journal_bytes(kit, capsys, data):
    out = _fresh_copy(kit)
    db = out / ".dgp-batch" / "journal.sqlite"
    db.write_bytes(data.draw(mutated(db.read_bytes())))
    _check_outcome(kit, out, capsys)


@FUZZ
@given(column=st.sampled_from(ITEM_COLUMNS), value=ANY_VALUE, row=st.sampled_from([1, 2]))
def test_item_values_of_any_type(kit, capsys, column, value, row):
    out = _fresh_copy(kit)
    assume(_sql(out, (f"UPDATE items SET {column}=? WHERE id=?", (value, row))))
    _check_outcome(kit, out, capsys)


@FUZZ
@given(
    key=st.sampled_from(["settings", "job", "schema", "other"]),
    value=JSON_VALUES.map(json.dumps)
    | st.text(max_size=20)
    | st.binary(max_size=8)
    | st.integers(-(2**63), 2**63 - 1)
    | st.none(),
)
def test_job_values_of_any_kind(kit, capsys, key, value):
    out = _fresh_copy(kit)
    assume(_sql(out, ("INSERT OR REPLACE INTO job(key, value) VALUES (?, ?)", (key, value))))
    _check_outcome(kit, out, capsys)


TABLE_CHANGES = [
    "DROP TABLE {table}",
    "ALTER TABLE {table} RENAME TO old_{table}",
    "ALTER TABLE {table} ADD COLUMN extra {kind}",
    "ALTER TABLE {table} RENAME COLUMN {column} TO other",
    "ALTER TABLE {table} DROP COLUMN {column}",
    "DELETE FROM {table}",
    "CREATE TABLE IF NOT EXISTS old_{table} AS SELECT * FROM {table}",
    "INSERT INTO {table} DEFAULT VALUES",
    "DROP TABLE {table}; CREATE TABLE {table} ({column} {kind})",
]


@FUZZ
@given(
    changes=st.lists(
        st.tuples(
            st.sampled_from(TABLE_CHANGES),
            st.sampled_from(["items", "job", "runs"]),
            st.sampled_from(ITEM_COLUMNS + ("key", "value")),
            st.sampled_from(["TEXT", "INTEGER", "REAL", "BLOB", ""]),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_tables_changed(kit, capsys, changes):
    out = _fresh_copy(kit)
    statements = []
    for template, table, column, kind in changes:
        for query in template.format(table=table, column=column, kind=kind).split("; "):
            statements.append((query, ()))
    assume(_sql(out, *statements))
    _check_outcome(kit, out, capsys)


SIDE_FILES = ["lock", "journal.sqlite-wal", "journal.sqlite-shm", "thumbs", "journal.sqlite"]


@FUZZ
@given(
    name=st.sampled_from(SIDE_FILES),
    what=st.sampled_from(["folder", "empty", "garbage", "missing"]),
    garbage=st.binary(min_size=1, max_size=200),
)
def test_files_beside_the_journal(kit, capsys, name, what, garbage):
    out = _fresh_copy(kit)
    path = out / ".dgp-batch" / name
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if what == "folder":
        path.mkdir()
    elif what == "empty":
        path.write_bytes(b"")
    elif what == "garbage":
        path.write_bytes(garbage)
    _check_outcome(kit, out, capsys)

"""`dgp batch` under a hostile user (issue 20): it removes only temp files it wrote itself,
one unwritable output name fails that picture (not the job), the memory budget is checked
per worker before decoding, and only regular files are read (no device, FIFO, socket)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from dgp_engine.cli import main
from dgp_engine.system import fileio

from .conftest import REPO
from .task_helpers import photo_array, tiny_model_folder, tiny_preset_file

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_safety_model")
    return tiny_model_folder(root / "model"), tiny_preset_file(root / "tiny.toml")


def dgp(*args) -> int:
    return main([str(a) for a in args])


def common(model_files, *extra):
    model, preset = model_files
    return ["--model", model, "--preset", preset, "-q", "--threads", "1", *extra]


def picture(path: Path, w: int = 56, h: int = 40, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # black and white: a colorize batch skips photos already in colour
    Image.fromarray(photo_array(h, w, seed=seed)).convert("L").save(path)
    return path


def journal_rows(out: Path) -> dict[str, sqlite3.Row]:
    db = sqlite3.connect(out / ".dgp-batch" / "journal.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {r["rel"]: r for r in db.execute("SELECT * FROM items")}
    finally:
        db.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- defect 1: only its own temp files --------------------------------------------------------
def test_batch_removes_only_temp_files_it_wrote_and_whose_writer_is_dead(
    tmp_path, model_files, capsys
):
    album = tmp_path / "album"
    for name in ("p0.png", "p1.png", "sub/q.png"):
        picture(album / name)
    out = tmp_path / "out"
    (out / ".dgp-batch").mkdir(parents=True)
    (out / "sub").mkdir()
    (out / "downloads").mkdir()
    dead = dead_pid()
    other_dgp = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        not_ours = [
            ".movie.mkv.part",
            "downloads/.iso.part",
            ".p0.png.part",  # other programs'
            "sub/.q.png.qwertyui.part",  # no owner mark: never ours to judge
            f".p1.png.{other_dgp.pid}-abcd1234.part",  # another dgp writing p1.png now
            f".other.png.{dead}-abcd1234.part",  # a dead dgp's, but not a name we write
            # ours by name, but written on another host: its pid cannot be checked here
            f".p0.png.{dead}-{'000000' if fileio.HOST_TAG != '000000' else '111111'}-abcd1234.part",
        ]
        ours_dead = [
            f".p0.png.{dead}-abcd1234.part",  # an earlier version's
            f"sub/.q.png.{dead}-{fileio.HOST_TAG}-zz99zz99.part",
            f".dgp-batch/.x.{dead}-{fileio.HOST_TAG}-a1b2c3d4.part",
        ]
        for rel in not_ours + ours_dead:
            (out / rel).write_bytes(b"half")
        old = time.time() - 3600
        os.utime(out / "sub/.q.png.qwertyui.part", (old, old))
        assert dgp("batch", "colorize", album, "-o", out, *common(model_files)) == 0
        assert [rel for rel in not_ours if not (out / rel).exists()] == []
        assert [rel for rel in ours_dead if (out / rel).exists()] == []
        assert {r["status"] for r in journal_rows(out).values()} == {"done"}
    finally:
        other_dgp.kill()
        other_dgp.wait()
    # an input folder inside the output folder is refused before anything is touched
    outer = tmp_path / "outer"
    picture(outer / "originals" / "a.png")
    (outer / ".keep.part").write_bytes(b"someone else's")
    (outer / "originals" / f".a.png.{dead}-abcd1234.part").write_bytes(b"x")
    before = sorted(p.relative_to(outer) for p in outer.rglob("*"))
    capsys.readouterr()
    assert dgp("batch", "colorize", outer / "originals", "-o", outer, *common(model_files)) == 1
    err = capsys.readouterr().err
    assert "inside the output folder" in err and "Traceback" not in err
    assert sorted(p.relative_to(outer) for p in outer.rglob("*")) == before


# --- defect 2: one unwritable name fails that picture, not the job ---------------------------
def test_an_unwritable_output_name_fails_that_picture_and_the_batch_goes_on(
    tmp_path, model_files, capsys
):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    long_ok = "L" * (name_max - 15) + ".png"  # legal; its old temp name was not
    state_too_long = "s" * (name_max - 4) + ".png"  # legal, but NAME.dgp is not
    album = tmp_path / "album"
    for name in (long_ok, state_too_long, "p0.png", "blocked/q.png", "z.png"):
        picture(album / name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "blocked").write_text("a file where the output sub-folder must go")
    args = ["batch", "colorize", album, "-o", out, "--save-state", *common(model_files)]
    assert dgp(*args) == 1  # some failed; the others were done
    rows = journal_rows(out)
    status = {rel: row["status"] for rel, row in rows.items()}
    assert status == {
        long_ok: "done",
        state_too_long: "failed",
        "p0.png": "done",
        "blocked/q.png": "failed",
        "z.png": "done",
    }
    assert (out / long_ok).is_file() and (out / f"{long_ok}.dgp").is_file()
    assert "too long" in rows[state_too_long]["reason"]
    assert (
        "blocked" in rows["blocked/q.png"]["reason"] and "file" in rows["blocked/q.png"]["reason"]
    )
    # refused before any work: never sent to a worker
    assert rows[state_too_long]["attempts"] == 0 and rows["blocked/q.png"]["attempts"] == 0
    assert (out / "blocked").is_file()
    # a resume does not compute them again
    capsys.readouterr()
    assert dgp(*args) == 1
    assert "0 picture(s) to restore, 3 already done, 2 failed" in capsys.readouterr().err
    assert journal_rows(out)[state_too_long]["attempts"] == 0
    # a single command: a long legal name is written; an illegal one is refused before the
    # model loads (the model does not exist: the name is what is reported)
    src = album / "p0.png"
    assert dgp("colorize", src, "-o", tmp_path / long_ok, *common(model_files)) == 0
    assert Image.open(tmp_path / long_ok).size == (56, 40)
    capsys.readouterr()
    too_long = "x" * (name_max + 1 - 4) + ".png"
    assert dgp("colorize", src, "-o", tmp_path / too_long, "--model", tmp_path / "nowhere") == 1
    err = capsys.readouterr().err
    assert "too long" in err and "nowhere" not in err and "Traceback" not in err
    assert (
        dgp("colorize", src, "-o", out / "blocked" / "x.png", "--model", tmp_path / "nowhere") == 1
    )
    err = capsys.readouterr().err
    assert "is a file" in err and "nowhere" not in err


# --- defect 3: the memory budget, per worker, before decoding --------------------------------
def test_a_picture_over_a_workers_memory_share_fails_before_decoding(
    tmp_path, model_files, monkeypatch
):
    # 32 MiB for the machine, 16 MiB for each of 2 workers; a run costs 80 B/px, so the
    # 560×480 picture (21.5 MB) fits the whole budget (a single command takes it) but not
    # a worker's share
    monkeypatch.setenv("DGP_MEMORY_BUDGET", "32M")
    album = tmp_path / "album"
    picture(album / "big.png", 560, 480)
    picture(album / "small.png")
    out = tmp_path / "out"
    assert dgp("batch", "colorize", album, "-o", out, "--workers", "2", *common(model_files)) == 1
    rows = journal_rows(out)
    assert rows["small.png"]["status"] == "done"
    assert rows["big.png"]["status"] == "failed" and rows["big.png"]["attempts"] == 0
    reason = rows["big.png"]["reason"]
    assert "560×480" in reason and "memory" in reason and "2 workers" in reason
    assert not (out / "big.png").exists()


# --- defect 4: regular files only -------------------------------------------------------------
def test_devices_and_fifos_are_never_read(tmp_path, model_files, capsys):
    model, preset = model_files
    album = tmp_path / "album"
    real = picture(tmp_path / "elsewhere" / "real.png")
    picture(album / "z.png")
    os.mkfifo(album / "a-fifo.png")
    (album / "b-device.png").symlink_to("/dev/null")
    (album / "c-link.png").symlink_to(real)
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "dgp_engine",
        "batch",
        "colorize",
        str(album),
        "-o",
        str(out),
        "--model",
        str(model),
        "--preset",
        str(preset),
        "-q",
        "--threads",
        "1",
    ]
    proc = subprocess.Popen(
        args,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the batch hung on the FIFO") from None
    assert proc.returncode == 0, err[-2000:]
    rows = journal_rows(out)
    assert rows["z.png"]["status"] == "done" and rows["c-link.png"]["status"] == "done"
    for rel, kind in (("a-fifo.png", "pipe"), ("b-device.png", "device")):
        assert rows[rel]["status"] == "skipped"
        assert "not a regular file" in rows[rel]["reason"] and kind in rows[rel]["reason"]
        assert rows[rel]["in_sha"] is None  # never read
    assert (album / "a-fifo.png").exists() and not (out / "a-fifo.png").exists()
    # the single commands' reader refuses them too, with the same sentence
    for rel in ("a-fifo.png", "b-device.png"):
        assert (
            dgp("colorize", album / rel, "-o", tmp_path / "x.png", "--model", tmp_path / "nowhere")
            == 1
        )
        assert "not a regular file" in capsys.readouterr().err


# --- hostile test pass after issue 20 ---------------------------------------------------------
def test_an_output_edited_by_hand_is_not_replaced_when_its_input_changes(
    tmp_path, model_files, capsys
):
    src, out = tmp_path / "in", tmp_path / "out"
    picture(src / "a.png")
    picture(src / "b.png", seed=1)
    assert dgp("batch", "colorize", src, "-o", out, *common(model_files)) == 0
    # the user retouches a result by hand; later the input is re-scanned (its bytes change)
    edited = Image.open(out / "a.png").convert("RGB")
    edited.putpixel((0, 0), (255, 0, 0))
    edited.save(out / "a.png")
    mine = (out / "a.png").read_bytes()
    untouched = (out / "b.png").read_bytes()
    picture(src / "a.png", seed=5)
    picture(src / "b.png", seed=6)
    capsys.readouterr()
    assert dgp("batch", "colorize", src, "-o", out, *common(model_files)) == 0
    assert (out / "a.png").read_bytes() == mine  # was silently replaced
    rows = journal_rows(out)
    assert rows["a.png"]["status"] == "skipped"
    assert "changed since this job wrote it" in rows["a.png"]["reason"]
    assert "--overwrite" in rows["a.png"]["reason"]
    # the output it wrote and nobody touched is the job's: redone for the new input
    assert rows["b.png"]["status"] == "done" and (out / "b.png").read_bytes() != untouched
    # asked to: replaced
    assert dgp("batch", "colorize", src, "-o", out, "--overwrite", *common(model_files)) == 0
    assert (out / "a.png").read_bytes() != mine
    assert journal_rows(out)["a.png"]["status"] == "done"

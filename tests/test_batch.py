"""`dgp batch`: whole folders on local worker processes, the journal (resume, settings
check, lock, SIGKILL), failing inputs recorded while the rest finishes, bad folders."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgp_engine.batch import BatchSettings, Journal, plan_batch
from dgp_engine.batch import job as batch_job
from dgp_engine.cli import main

from .conftest import REPO
from .task_helpers import photo_array, tiny_model_folder, tiny_preset_file

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_model")
    return tiny_model_folder(root / "model"), tiny_preset_file(root / "tiny.toml")


def dgp(*args) -> int:
    return main([str(a) for a in args])


def common(model_files, *extra):
    model, preset = model_files
    return ["--model", model, "--preset", preset, "-q", "--threads", "1", *extra]


def make_album(folder: Path, n: int = 3, size=(56, 40)) -> Path:
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        # black and white: a colorize batch skips photos already in colour
        Image.fromarray(photo_array(size[1], size[0], seed=i)).convert("L").save(
            folder / f"p{i}.png"
        )
    Image.fromarray(photo_array(30, 24, seed=9)).convert("L").save(folder / "sub" / "old.jpg")
    (folder / "notes.txt").write_text("not a picture")
    return folder


def snapshot(folder: Path) -> dict:
    return {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()
    }


def journal_rows(out: Path) -> dict[str, sqlite3.Row]:
    db = sqlite3.connect(out / ".dgp-batch" / "journal.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {r["rel"]: r for r in db.execute("SELECT * FROM items")}
    finally:
        db.close()


def test_colorize_folder_mirrors_names_resumes_and_reports(tmp_path, model_files, capsys):
    album = make_album(tmp_path / "album")
    (album / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    before = snapshot(album)
    out = tmp_path / "out"
    assert (
        dgp("batch", "colorize", album, "-o", out, "--save-state", *common(model_files)) == 1
    )  # one input failed
    text = capsys.readouterr()
    # outputs mirror the inputs (sub-folders kept), at the inputs' sizes
    assert Image.open(out / "p0.png").size == (56, 40)
    assert Image.open(out / "sub" / "old.jpg").size == (24, 30)
    assert (out / "p2.png.dgp").is_file() and (out / "sub" / "old.jpg.dgp").is_file()
    assert not (out / "notes.txt").exists() and not (out / "broken.png").exists()
    assert snapshot(album) == before  # inputs never touched
    rows = journal_rows(out)
    assert {r: rows[r]["status"] for r in rows} == {
        "p0.png": "done",
        "p1.png": "done",
        "p2.png": "done",
        "sub/old.jpg": "done",
        "broken.png": "failed",
    }
    assert (
        "damaged" in rows["broken.png"]["reason"] or "not an image" in rows["broken.png"]["reason"]
    )
    assert all(rows[r]["seconds"] > 0 and rows[r]["in_sha"] for r in rows if r != "broken.png")
    assert "broken.png" in text.out and "failed" in text.out and "done" in text.out
    assert "notes.txt" in text.err  # said what was left out
    sheet = (out / "contact-sheet.html").read_text()
    assert "broken.png" in sheet and "sub/old.jpg" in sheet and "-out.jpg" in sheet
    thumbs = list((out / ".dgp-batch" / "thumbs").glob("*-out.jpg"))
    assert len(thumbs) == 4
    # resume: nothing done again; the failure stays failed without --retry-failed
    outputs = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    assert dgp("batch", "colorize", album, "-o", out, "--save-state", *common(model_files)) == 1
    assert "0 picture(s) to restore, 4 already done, 1 failed" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == outputs
    # --retry-failed runs it again (still broken); a fixed input is then restored
    Image.fromarray(photo_array(40, 56, seed=5)).convert("L").save(album / "broken.png")
    assert (
        dgp(
            "batch",
            "colorize",
            album,
            "-o",
            out,
            "--save-state",
            "--retry-failed",
            *common(model_files),
        )
        == 0
    )
    assert journal_rows(out)["broken.png"]["status"] == "done"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png") if p in outputs} == outputs


def test_inpaint_masks_by_naming_rule_wrong_size_and_missing(tmp_path, model_files):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(photo_array(40, 56, seed=ord(name))).save(src / f"{name}.png")
    hole = np.zeros((40, 56), np.uint8)
    hole[15:25, 20:30] = 255
    Image.fromarray(hole).save(src / "a_mask.png")
    Image.fromarray(hole[10:30, 15:35]).save(src / "b_mask.png")  # wrong size
    out = tmp_path / "out"
    assert dgp("batch", "inpaint", src, "-o", out, *common(model_files)) == 1
    rows = journal_rows(out)
    assert set(rows) == {"a.png", "b.png", "c.png"}  # masks are not inputs
    assert rows["a.png"]["status"] == "done"
    assert rows["b.png"]["status"] == "failed"
    assert "b_mask.png" in rows["b.png"]["reason"] and "size" in rows["b.png"]["reason"]
    assert rows["c.png"]["status"] == "skipped" and "no mask" in rows["c.png"]["reason"]
    a_in, a_out = (np.asarray(Image.open(p)) for p in (src / "a.png", out / "a.png"))
    assert np.array_equal(a_in[:10], a_out[:10])  # only the hole is filled
    # one shared mask for every picture
    src2 = tmp_path / "in2"
    src2.mkdir()
    for name in ("a", "c"):
        (src2 / f"{name}.png").write_bytes((src / f"{name}.png").read_bytes())
    out2 = tmp_path / "out2"
    assert (
        dgp(
            "batch", "inpaint", src2, "-o", out2, "--mask", src / "a_mask.png", *common(model_files)
        )
        == 0
    )
    assert sorted(journal_rows(out2)) == ["a.png", "c.png"]


def test_changed_settings_are_refused_unless_restart(tmp_path, model_files, capsys):
    album = make_album(tmp_path / "album", n=1)
    out = tmp_path / "out"
    assert dgp("batch", "colorize", album, "-o", out, *common(model_files)) == 0
    first = journal_rows(out)
    capsys.readouterr()
    assert dgp("batch", "colorize", album, "-o", out, "--seed", "1", *common(model_files)) == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "seed: 0 → 1" in err and "--restart" in err
    assert (
        dgp("batch", "colorize", album, "-o", out, "--seed", "1", "--restart", *common(model_files))
        == 0
    )
    again = journal_rows(out)
    assert all(again[r]["attempts"] == 2 and again[r]["run"] > first[r]["run"] for r in again)


def test_sigkill_mid_job_then_resume_loses_nothing_and_repeats_nothing(tmp_path, model_files):
    model, _ = model_files
    src = tmp_path / "in"
    src.mkdir()
    n = 8
    for i in range(n):
        Image.fromarray(photo_array(40, 56, seed=i)).convert("L").save(src / f"{i:02d}.png")
    before = snapshot(src)
    slow = tiny_preset_file(tmp_path / "slow.toml", iterations=[25, 25])
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "dgp_engine",
        "batch",
        "colorize",
        str(src),
        "-o",
        str(out),
        "--model",
        str(model),
        "--preset",
        str(slow),
        "-q",
        "--threads",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            done = sum(r["status"] == "done" for r in journal_rows(out).values())
        except sqlite3.Error:  # not created yet
            continue
        if done >= 2:
            break
    assert proc.poll() is None, "the job ended before it could be killed: make items slower"
    assert 2 <= done < n
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    assert workers or not children.exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # orphaned workers notice that the driver is gone and exit by themselves
    deadline = time.monotonic() + 10
    while (
        any(Path(f"/proc/{w}").exists() and "Z" not in _proc_state(w) for w in workers)
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in _proc_state(w)]
    killed = journal_rows(out)
    finished_first = {r: killed[r]["finished"] for r in killed if killed[r]["status"] == "done"}
    mtimes = {r: (out / r).stat().st_mtime_ns for r in finished_first}
    # the next run takes the folder (the lock went with the process), restarts what was
    # running and leaves the done ones alone
    assert (
        dgp(
            "batch",
            "colorize",
            src,
            "-o",
            out,
            "--model",
            model,
            "--preset",
            slow,
            "-q",
            "--threads",
            "1",
        )
        == 0
    )
    rows = journal_rows(out)
    assert all(r["status"] == "done" for r in rows.values()) and len(rows) == n
    for rel, finished in finished_first.items():
        assert rows[rel]["finished"] == finished and rows[rel]["attempts"] == 1
        assert (out / rel).stat().st_mtime_ns == mtimes[rel]
    assert sum(r["attempts"] for r in rows.values()) <= n + 2  # only interrupted ones twice
    for i in range(n):
        assert Image.open(out / f"{i:02d}.png").size == (56, 40)
    assert not [p for p in out.rglob(".*.part")]
    assert snapshot(src) == before


def _start_job(src, out, model, preset):
    args = [
        sys.executable,
        "-m",
        "dgp_engine",
        "batch",
        "colorize",
        str(src),
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
    return subprocess.Popen(
        args,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_done(proc, out, count, timeout=120):
    """The journal once ``count`` pictures are done and another has just started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            rows = journal_rows(out)
        except sqlite3.Error:
            continue
        if sum(r["status"] == "done" for r in rows.values()) >= count and any(
            r["status"] == "running" and r["started"] > time.time() - 0.5 for r in rows.values()
        ):
            return rows
    raise AssertionError("the job ended or stalled before the signal could be sent")


def test_ctrl_c_finishes_current_pictures_twice_abandons_them(tmp_path, model_files):
    model, _ = model_files
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        Image.fromarray(photo_array(40, 56, seed=i)).convert("L").save(src / f"{i}.png")
    slow = tiny_preset_file(tmp_path / "slow.toml", iterations=[100, 100])
    out = tmp_path / "out"
    # one Ctrl-C: the picture being restored finishes, no new one starts
    proc = _start_job(src, out, model, slow)
    rows = _wait_for_done(proc, out, 1)
    running = next(r for r, row in rows.items() if row["status"] == "running")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Stopping" in err and "run the same command" in err
    rows = journal_rows(out)
    assert rows[running]["status"] == "done"
    assert "running" not in {r["status"] for r in rows.values()}
    left = [r for r, row in rows.items() if row["status"] == "pending"]
    assert left
    # resumed, then Ctrl-C twice: the current picture is abandoned, back to pending
    proc = _start_job(src, out, model, slow)
    rows = _wait_for_done(proc, out, len(rows) - len(left))
    running = next(r for r, row in rows.items() if row["status"] == "running")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Abandoning" in err
    rows = journal_rows(out)
    assert rows[running]["status"] == "pending" and "abandoned" in rows[running]["reason"]
    assert "running" not in {r["status"] for r in rows.values()}
    assert not (out / running).exists()
    assert (
        dgp(
            "batch",
            "colorize",
            src,
            "-o",
            out,
            "--model",
            model,
            "--preset",
            slow,
            "-q",
            "--threads",
            "1",
        )
        == 0
    )
    assert {r["status"] for r in journal_rows(out).values()} == {"done"}


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_second_run_on_the_same_output_folder_refuses(tmp_path, model_files, capsys):
    album = make_album(tmp_path / "album", n=1)
    out = tmp_path / "out"
    holder = Journal(out / ".dgp-batch")  # as a running batch holds it
    try:
        assert dgp("batch", "colorize", album, "-o", out, *common(model_files)) == 1
        err = capsys.readouterr().err
        assert "Another batch run is using" in err and f"pid {os.getpid()}" in err
    finally:
        holder.close()
    assert dgp("batch", "colorize", album, "-o", out, *common(model_files)) == 0


def test_full_disk_mid_job_stops_cleanly_and_resumes(tmp_path, model_files, monkeypatch, capsys):
    album = make_album(tmp_path / "album", n=3)
    out = tmp_path / "out"
    real = batch_job.write_atomic
    calls = []

    def full_on_the_third(path, write):
        calls.append(path)
        if len(calls) == 3:

            def no_space(f):
                f.write(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")

            return real(path, no_space)
        return real(path, write)

    monkeypatch.setattr(batch_job, "write_atomic", full_on_the_third)
    assert dgp("batch", "colorize", album, "-o", out, *common(model_files)) == 1
    assert "disk is full" in capsys.readouterr().err
    rows = journal_rows(out)
    assert [r["status"] for r in rows.values()].count("done") == 2
    assert not [p for p in out.rglob(".*.part")]
    assert not (out / calls[2].relative_to(out)).exists()  # no partial output
    monkeypatch.setattr(batch_job, "write_atomic", real)
    assert dgp("batch", "colorize", album, "-o", out, *common(model_files)) == 0
    assert all(r["status"] == "done" for r in journal_rows(out).values())


def test_bad_folders_say_what_is_wrong(tmp_path, model_files, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert dgp("batch", "colorize", empty, "-o", tmp_path / "o1", *common(model_files)) == 1
    assert "is empty" in capsys.readouterr().err
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("x")
    (docs / "b.pdf").write_bytes(b"%PDF")
    assert dgp("batch", "colorize", docs, "-o", tmp_path / "o2", *common(model_files)) == 1
    err = capsys.readouterr().err
    assert "holds no pictures" in err and "a.txt" in err
    album = make_album(tmp_path / "album", n=1)
    assert dgp("batch", "colorize", album, "-o", album / "out", *common(model_files)) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert not (album / "out").exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert dgp("batch", "colorize", album, "-o", a_file / "sub", *common(model_files)) == 1
    assert "Could not create the output folder" in capsys.readouterr().err
    from dgp_engine.batch import plan as batch_plan

    monkeypatch.setattr(batch_plan.os, "access", lambda *a, **k: False)  # read-only (as root)
    assert dgp("batch", "colorize", album, "-o", tmp_path / "ro", *common(model_files)) == 1
    assert "No permission to write" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_ray_flag_without_ray_says_how_to_install(tmp_path, model_files, monkeypatch, capsys):
    album = make_album(tmp_path / "album", n=1)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    assert (
        dgp("batch", "colorize", album, "-o", tmp_path / "out", "--ray", *common(model_files)) == 1
    )
    assert 'pip install "dgp-studio[cluster]"' in capsys.readouterr().err


def test_plan_names_outputs_and_masks(tmp_path):
    src = tmp_path / "in"
    (src / "x" / ".hidden").mkdir(parents=True)
    for rel in ("a.gif", "x/b.jpeg", "x/b_mask.png", "x/.hidden/c.png", ".d.png"):
        Image.fromarray(photo_array(8, 8)).save(src / rel)
    plan = plan_batch(BatchSettings("inpaint", src, tmp_path / "out", save_state=True))
    by_rel = {i.rel: i for i in plan.items}
    assert set(by_rel) == {"a.gif", "x/b.jpeg"}
    assert by_rel["a.gif"].output == tmp_path / "out" / "a.png"  # GIF is not written
    assert by_rel["x/b.jpeg"].output == tmp_path / "out" / "x" / "b.jpeg"
    assert by_rel["x/b.jpeg"].state == tmp_path / "out" / "x" / "b.jpeg.dgp"
    assert by_rel["x/b.jpeg"].mask == src / "x" / "b_mask.png"
    assert by_rel["a.gif"].mask is None and "no mask" in by_rel["a.gif"].skip_reason


def test_precision_goes_to_the_workers_and_a_bad_one_is_refused_early(
    tmp_path, model_files, capsys
):
    from dgp_engine import DeviceError, ReconstructionState
    from dgp_engine.batch.runner import ItemRunner, worker_config

    album = make_album(tmp_path / "album", n=1)
    out = tmp_path / "out"
    # an unknown name is refused before the output folder exists
    assert (
        dgp("batch", "colorize", album, "-o", out, *common(model_files), "--precision", "fp16") == 1
    )
    err = capsys.readouterr().err
    assert "dgp: error: Unknown precision 'fp16'" in err and not out.exists()
    model, preset = model_files
    settings = BatchSettings(
        "colorize", album, out, model=str(model), preset=str(preset), precision="BF16"
    )
    assert settings.precision == "bf16" and settings.to_dict()["precision"] == "bf16"
    # what a worker's device cannot compute in stops the worker before the model loads
    with pytest.raises(DeviceError, match="TF32 needs an NVIDIA GPU"):
        ItemRunner(
            worker_config(
                BatchSettings("colorize", album, out, precision="tf32"), device="cpu", threads=1
            )
        )
    # the worker restores in the chosen precision; the state written says which
    runner = ItemRunner(worker_config(settings, device="cpu", threads=1))
    assert runner.info()["precision"] == "bf16"
    resp = runner.process(
        {
            "rel": "p0.png",
            "data": (album / "p0.png").read_bytes(),
            "mask": None,
            "mask_name": None,
            "out_suffix": ".png",
            "want_state": True,
        }
    )
    assert resp["status"] == "done", resp.get("reason")
    assert ReconstructionState.from_bytes(resp["state"]).progress["precision"] == "bf16"


def test_colorize_skips_photos_already_in_colour_unless_recolor(tmp_path, model_files, capsys):
    src = tmp_path / "album"
    src.mkdir()
    colour = photo_array(40, 56, seed=1)
    Image.fromarray(colour).save(src / "colour.png")
    Image.fromarray(colour).convert("L").save(src / "grey.png")
    Image.fromarray(sepia(colour)).save(src / "sepia.jpg")
    out = tmp_path / "out"
    assert dgp("batch", "colorize", src, "-o", out, *common(model_files)) == 0
    rows = journal_rows(out)
    assert {r: rows[r]["status"] for r in rows} == {
        "colour.png": "skipped",
        "grey.png": "done",
        "sepia.jpg": "done",
    }
    reason = rows["colour.png"]["reason"]
    assert reason.startswith("already in colour") and "--recolor" in reason
    assert not (out / "colour.png").exists()  # its true colours are kept
    assert f"colour.png: {reason}" in capsys.readouterr().out
    sheet = (out / "contact-sheet.html").read_text()
    assert "colour.png" in sheet and "already in colour" in sheet
    # --recolor is a setting that decides outputs: with it the colour photo is colorized
    assert dgp("batch", "colorize", src, "-o", out, "--recolor", *common(model_files)) == 1
    assert "recolor: None → True" in capsys.readouterr().err
    assert (
        dgp(
            "batch",
            "colorize",
            src,
            "-o",
            out,
            "--recolor",
            "--restart",
            "--save-state",
            *common(model_files),
        )
        == 0
    )
    assert journal_rows(out)["colour.png"]["status"] == "done"
    assert (out / "colour.png").is_file()
    # the state records its photo (for dgp morph/jitter/transfer to compose onto)
    from dgp_engine.method.state import ReconstructionState

    placement = ReconstructionState.load(out / "colour.png.dgp").placement
    assert placement.photo_path == str(src / "colour.png") and placement.whole_photo
    assert (
        dgp("batch", "inpaint", src, "-o", tmp_path / "o2", "--recolor", *common(model_files)) == 1
    )
    assert "--recolor only applies to colorize" in capsys.readouterr().err


def sepia(rgb: np.ndarray) -> np.ndarray:
    """A sepia-toned black-and-white copy (the classic sepia matrix)."""
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return np.clip(rgb.astype(np.float32) @ m.T, 0, 255).round().astype(np.uint8)


def test_a_seed_out_of_range_is_refused_before_the_folder_is_touched(tmp_path):
    from dgp_engine import InputError

    with pytest.raises(InputError, match="seed .* is out of range"):
        BatchSettings("colorize", tmp_path / "in", tmp_path / "out", seed=10**30)
    assert not (tmp_path / "out").exists()


def test_names_that_are_not_utf8_are_restored_resumed_and_reported(tmp_path, model_files, capsys):
    # an old archive's Latin-1 names: sqlite3 could not store them, so the batch ended in a
    # UnicodeEncodeError before it started — for every picture of the folder
    src = tmp_path / "album"
    latin = os.fsdecode(b"d\xe9j\xe0")
    (src / latin).mkdir(parents=True)
    grey = Image.fromarray(photo_array(24, 32)).convert("L")
    grey.save(src / os.fsdecode(b"caf\xe9.png"))
    grey.save(src / latin / "x.png")
    grey.save(src / "plain.png")
    (src / os.fsdecode(b"br\xfbl\xe9.png")).write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    out = tmp_path / "out"
    assert dgp("batch", "colorize", src, "-o", out, "--save-state", *common(model_files)) == 1
    text = capsys.readouterr()
    assert (out / os.fsdecode(b"caf\xe9.png")).is_file()
    assert (out / os.fsdecode(b"caf\xe9.png.dgp")).is_file()
    assert (out / latin / "x.png").is_file() and (out / "plain.png").is_file()
    assert "br\ufffdl\ufffd.png" in text.out  # the failure, named readably
    job = Journal(out / ".dgp-batch")
    try:
        rows = {r.rel: r for r in job.items()}
    finally:
        job.close()
    assert rows[os.fsdecode(b"caf\xe9.png")].status == "done"
    assert rows[f"{latin}/x.png"].output == f"{latin}/x.png"
    assert rows[os.fsdecode(b"br\xfbl\xe9.png")].status == "failed"
    sheet = (out / "contact-sheet.html").read_bytes().decode("utf-8")
    assert "href='caf%E9.png'" in sheet and "caf\ufffd.png" in sheet
    # resumed: nothing runs again, the failure stays
    assert dgp("batch", "colorize", src, "-o", out, "--save-state", *common(model_files)) == 1
    assert "0 picture(s) to restore, 3 already done, 1 failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    [
        "plain.png",
        "sub/a b.png",
        "%41.png",
        "caf\udce9.png",
        "d\udce9/x\udcff.png",
        "\udce9%2F.png",
    ],
)
def test_journal_names_round_trip_and_never_meet(name):
    from dgp_engine.batch.journal import read_name, stored_name

    stored = stored_name(name)
    stored.encode("utf-8")  # storable
    assert read_name(stored) == name
    assert (stored == name) == (not stored.startswith("/"))


def test_no_more_workers_start_than_there_are_pictures_to_restore(
    tmp_path, model_files, monkeypatch
):
    # --workers 64 for 2 pictures started 64 processes, each loading torch and the prior
    from dgp_engine.batch import local

    started: list[int] = []

    class Counted(local.LocalPool):
        def __init__(self, configs):
            started.append(len(configs))
            super().__init__(configs)

    monkeypatch.setattr(local, "LocalPool", Counted)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(photo_array(24, 32, seed=i)).convert("L").save(src / f"p{i}.png")
    out = tmp_path / "out"
    assert dgp("batch", "colorize", src, "-o", out, "--workers", "6", *common(model_files)) == 0
    assert started == [2]
    assert {p.name for p in out.glob("*.png")} == {"p0.png", "p1.png"}

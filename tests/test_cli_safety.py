"""`dgp` under a hostile user (issue 13): outputs checked and claimed before any work, the
interrupt state machine (first signal: finish the step and save what is finished; second:
abandon, nothing partial), one writer per output, stale temp files of ours cleaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from dgp_engine import ReconstructionState
from dgp_engine.cli import join_negative_values, main
from dgp_engine.cli import tasks as cli_tasks
from dgp_engine.files import photos as engine_photos
from dgp_engine.priors import load as engine_prior
from dgp_engine.system import fileio

from .task_helpers import photo_array, tiny_model_folder, tiny_preset_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-safety")
    return tiny_model_folder(root / "model"), tiny_preset_file(root / "tiny.toml")


@pytest.fixture
def work(tmp_path, files):
    model, preset = files
    Image.fromarray(photo_array(40, 56)).save(tmp_path / "in.png")
    return tmp_path, ["--model", str(model), "--preset", str(preset), "-q"]


def dgp(*args) -> int:
    return main([str(a) for a in args])


def names(folder):
    return sorted(p.name for p in folder.iterdir())


# --- before any work ------------------------------------------------------------------------
def test_unwritable_output_is_refused_before_the_model_loads(work, capsys):
    d, _ = work
    # /proc takes no new files (even for root); the model does not exist either: the output
    # is what is reported, so the check ran first.
    code = dgp("colorize", d / "in.png", "-o", "/proc/x.png", "--model", d / "nowhere")
    err = capsys.readouterr().err
    assert code == 1
    assert "/proc" in err and "nowhere" not in err
    assert names(d) == ["in.png"]


def test_unwritable_state_path_is_refused_before_the_model_loads(work, capsys):
    d, _ = work
    code = dgp(
        "colorize",
        d / "in.png",
        "-o",
        d / "out.png",
        "--save-state",
        "/proc/s.dgp",
        "--model",
        d / "nowhere",
    )
    assert code == 1
    assert "/proc" in capsys.readouterr().err
    assert names(d) == ["in.png"]  # the output's claim was released, no lock file left


def test_a_folder_as_output_says_so(work, capsys):
    d, common = work
    (d / "results").mkdir()
    assert dgp("colorize", d / "in.png", "-o", d / "results", *common) == 1
    err = capsys.readouterr().err
    assert "is a folder" in err and "unknown image type" not in err


def test_a_pipe_as_output_is_refused(work, capsys):
    d, common = work
    os.mkfifo(d / "pipe.png")
    assert dgp("colorize", d / "in.png", "-o", d / "pipe.png", "--overwrite", *common) == 1
    assert "not a regular file" in capsys.readouterr().err
    assert names(d) == ["in.png", "pipe.png"]


def test_negative_region_is_parsed_and_refused_with_the_nearest_fit(work, capsys):
    d, common = work
    assert join_negative_values(["--region", "-10,-10,64", "-o", "x"]) == [
        "--region=-10,-10,64",
        "-o",
        "x",
    ]
    assert join_negative_values(["--seed", "-3"]) == ["--seed", "-3"]  # argparse handles it
    code = dgp("restore", d / "in.png", "-o", d / "out.png", "--region", "-10,-10,30", *common)
    err = capsys.readouterr().err
    assert code == 1
    assert "expected one argument" not in err
    assert "--region 0,0,30" in err
    assert names(d) == ["in.png"]


# --- one writer per output ----------------------------------------------------------------
def _holder(path):
    """A second process holding the claim on ``path`` until its stdin closes."""
    code = (
        "import sys; from dgp_engine.system.fileio import claim_output; "
        f"claim_output({str(path)!r}); print('held', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_the_same_output_refuses_at_once(work, capsys):
    d, common = work
    holder = _holder(d / "out.png")
    try:
        t0 = time.perf_counter()
        assert dgp("colorize", d / "in.png", "-o", d / "out.png", *common) == 1
        assert time.perf_counter() - t0 < 5
        err = capsys.readouterr().err
        assert "being written by another run" in err and f"process {holder.pid}" in err
        assert not (d / "out.png").exists()
    finally:
        holder.stdin.close()
        holder.wait(10)
    # the holder is gone (its lock released by the kernel): the output is free again
    assert dgp("colorize", d / "in.png", "-o", d / "out.png", *common) == 0
    assert names(d) == ["in.png", "out.png"]


def test_a_killed_holders_lock_does_not_block(work):
    d, common = work
    holder = _holder(d / "out.png")
    holder.kill()
    holder.wait(10)
    assert (d / ".out.png.dgp-lock").exists()  # SIGKILL: the file stays, the lock does not
    assert dgp("colorize", d / "in.png", "-o", d / "out.png", *common) == 0
    assert names(d) == ["in.png", "out.png"]


# --- stale temp files -----------------------------------------------------------------------
def test_stale_temp_files_of_ours_are_removed_and_nothing_else(work, monkeypatch):
    d, common = work
    monkeypatch.setattr(fileio, "_cleaned", set())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            f".out.png.{dead.pid}-abcd1234.part",
            f".r.dgp.{dead.pid}-zz99zz99.tmp",
            f".anim.gif.{dead.pid}-a1b2c3d4.partial.gif",
            f".new.png.{dead.pid}-{fileio.HOST_TAG}-abcd1234.part",
        ]
        # pid-less names carry no owner mark (any program's: issue 20), another host's pid
        # cannot be checked here
        kept = [
            f".other.png.{alive.pid}-abcd1234.part",
            ".notes.part",
            "x.png.part",
            ".new.png.qwertyui.part",
            ".old.png.abcdefgh.part",
            f".far.png.{dead.pid}-{'0' * 6 if fileio.HOST_TAG != '0' * 6 else '1' * 6}"
            "-abcd1234.part",
        ]
        for name in stale + kept:
            (d / name).write_bytes(b"half")
        (d / f".seq.{dead.pid}-0000aaaa.partial").mkdir()
        (d / f".seq.{dead.pid}-0000aaaa.partial" / "frame_0001.png").write_bytes(b"x")
        (d / ".gone.png.dgp-lock").write_bytes(b"12345")  # unheld: left by a killed run
        old = time.time() - 3600
        os.utime(d / ".old.png.abcdefgh.part", (old, old))  # old, pid-less: still kept
        assert dgp("colorize", d / "in.png", "-o", d / "out.png", *common) == 0
        assert names(d) == sorted(["in.png", "out.png", *kept])
    finally:
        alive.kill()
        alive.wait()


# --- the interrupt state machine ------------------------------------------------------------
def _signal_when(monkeypatch, phase, signum=signal.SIGINT, times=1):
    real = cli_tasks.ProgressBar.update

    def update(self, report):
        real(self, report)
        if report.phase == phase and report.state is None and not getattr(self, "_sent", 0):
            self._sent = 1
            for _ in range(times):
                signal.raise_signal(signum)

    monkeypatch.setattr(cli_tasks.ProgressBar, "update", update)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_z_selection_writes_nothing(work, capsys, monkeypatch, files, signum, code):
    d, common = work
    _signal_when(monkeypatch, "select", signum)
    assert (
        dgp("colorize", d / "in.png", "-o", d / "out.png", "--save-state", d / "s.dgp", *common)
        == code
    )
    err = capsys.readouterr().err
    assert "nothing was written" in err and "Traceback" not in err
    assert names(d) == ["in.png"]  # no "iteration 0" picture under the output name
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_signal_while_loading_writes_nothing(work, capsys, monkeypatch):
    d, common = work
    real = engine_prior.load_prior

    def load(*a, **k):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C in the first second
        return real(*a, **k)

    monkeypatch.setattr(engine_prior, "load_prior", load)
    assert dgp("colorize", d / "in.png", "-o", d / "out.png", *common) == 130
    assert "nothing was written" in capsys.readouterr().err
    assert names(d) == ["in.png"]


def test_a_signal_during_optimisation_saves_what_is_finished(work, capsys, monkeypatch, files):
    d, common = work
    slow = tiny_preset_file(d.parent / f"{d.name}-slow.toml", iterations=[50, 50])
    common = common[:2] + ["--preset", str(slow), "-q"]
    _signal_when(monkeypatch, "optimize", signal.SIGTERM)
    assert (
        dgp("colorize", d / "in.png", "-o", d / "out.png", "--save-state", d / "s.dgp", *common)
        == 143
    )
    state = ReconstructionState.load(d / "s.dgp")
    assert state.cancelled and 1 <= state.progress["step"] < 100
    assert Image.open(d / "out.png").size == (56, 40)
    assert names(d) == ["in.png", "out.png", "s.dgp"]


def _signal_in_write(monkeypatch, times):
    real = engine_photos.write_atomic

    def write_atomic(path, write):
        def slow_write(fh):
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
            write(fh)

        return real(path, slow_write)

    monkeypatch.setattr(engine_photos, "write_atomic", write_atomic)


def test_one_signal_while_writing_keeps_the_finished_result(work, capsys, monkeypatch):
    d, common = work
    _signal_in_write(monkeypatch, 1)
    assert (
        dgp("colorize", d / "in.png", "-o", d / "out.png", "--save-state", d / "s.dgp", *common)
        == 0
    )
    assert "done: wrote" in capsys.readouterr().out
    assert Image.open(d / "out.png").size == (56, 40)
    assert not ReconstructionState.load(d / "s.dgp").cancelled
    assert names(d) == ["in.png", "out.png", "s.dgp"]


def test_two_signals_while_writing_abandon_leaving_nothing(work, capsys, monkeypatch):
    d, common = work
    _signal_in_write(monkeypatch, 2)
    before = (d / "in.png").read_bytes()
    assert dgp("colorize", d / "in.png", "-o", d / "out.png", *common) == 130
    err = capsys.readouterr().err
    assert "abandoned" in err and "Traceback" not in err
    assert names(d) == ["in.png"]  # no output, no temp file, no lock file
    assert (d / "in.png").read_bytes() == before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_cli_imports_no_torch_before_its_handler(tmp_path):
    """Ctrl-C in the first second must not give a traceback: importing the entry point
    loads nothing slow, so the handler is in place before torch is imported."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys, dgp_engine.cli; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_engine_names_still_import_lazily():
    import dgp_engine

    assert dgp_engine.Preset.__name__ == "Preset"
    assert callable(dgp_engine.load_prior)
    with pytest.raises(AttributeError):
        dgp_engine.no_such_name  # noqa: B018
    assert np.isfinite(1.0)


# --- names that are not UTF-8 (hostile test pass after issue 20) ----------------------------
def test_a_path_that_is_not_utf8_is_printed_on_a_strict_stdout(work, monkeypatch):
    import io

    d, common = work
    out = os.fsdecode(os.fsencode(str(d)) + b"/caf\xe9.png")  # a Latin-1 name: surrogates
    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", strict)  # what a UTF-8 locale gives
    code = dgp("colorize", d / "in.png", "-o", out, *common)
    strict.flush()
    printed = strict.buffer.getvalue().decode("utf-8")
    assert code == 0  # was 1: UnicodeEncodeError after the result was written
    assert os.path.isfile(out) and "done: wrote" in printed and "caf\\udce9.png" in printed

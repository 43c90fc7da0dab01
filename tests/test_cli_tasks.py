"""The `dgp` task commands, in-process: outputs, exit codes, messages, Ctrl-C, bad input."""

from __future__ import annotations

import errno
import io
import os
import signal

import numpy as np
import pytest
from PIL import Image

from dgp_engine import ReconstructionState
from dgp_engine.cli import main
from dgp_engine.cli import tasks as cli_tasks

from .task_helpers import out_of_memory_after, photo_array, tiny_model_folder, tiny_preset_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model = tiny_model_folder(root / "model")
    preset = tiny_preset_file(root / "tiny.toml")
    return root, model, preset


@pytest.fixture
def work(tmp_path, files):
    root, model, preset = files
    Image.fromarray(photo_array(40, 56)).save(tmp_path / "in.png")
    Image.fromarray(photo_array(8, 8, seed=2)).save(tmp_path / "small.png")
    m = np.zeros((40, 56), np.uint8)
    m[15:25, 20:30] = 255
    Image.fromarray(m).save(tmp_path / "mask.png")
    return tmp_path, ["--model", str(model), "--preset", str(preset), "-q"]


def dgp(*args) -> int:
    return main([str(a) for a in args])


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    "command, extra, size",
    [
        ("colorize", [], (56, 40)),
        ("inpaint", ["--mask", "mask.png"], (56, 40)),
        ("inpaint", ["--box", "20,15,10,10", "--class", "goldfish"], (56, 40)),
        ("restore", ["--region", "10,5,30"], (56, 40)),
        ("defend", [], (56, 40)),
    ],
)
def test_commands_write_results(work, capsys, command, extra, size):
    d, common = work
    extra = [str(d / e) if e.endswith(".png") else e for e in extra]
    assert (
        dgp(
            command,
            d / "in.png",
            "-o",
            d / "out.png",
            *extra,
            *common,
            "--save-state",
            d / "out.dgp",
        )
        == 0
    )
    assert Image.open(d / "out.png").size == size
    state = ReconstructionState.load(d / "out.dgp")
    assert not state.cancelled
    out = capsys.readouterr().out
    assert "wrote" in out
    if "goldfish" in extra:
        assert state.class_id == 1 and "goldfish" in out


def test_superres_and_hybrid_on_a_small_photo(work):
    d, common = work
    assert dgp("superres", d / "small.png", "-o", d / "sr.png", *common) == 0
    assert Image.open(d / "sr.png").size == (32, 32)
    assert (
        dgp(
            "hybrid",
            d / "small.png",
            "-o",
            d / "hy.png",
            "--box",
            "2,2,3,3",
            "--factor",
            "2",
            *common,
        )
        == 0
    )
    assert Image.open(d / "hy.png").size == (32, 32)  # 8 px enlarged to 16, then ×2


def test_region_keeps_the_rest_pixel_for_pixel(work):
    d, common = work
    assert dgp("restore", d / "in.png", "-o", d / "out.png", "--region", "20,4,32", *common) == 0
    before = np.asarray(Image.open(d / "in.png"))
    after = np.asarray(Image.open(d / "out.png"))
    outside = np.ones(before.shape[:2], bool)
    outside[4:36, 20:52] = False
    assert np.array_equal(before[outside], after[outside])
    assert not np.array_equal(before[~outside], after[~outside])


def corrupt(d):
    (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    return ["inpaint", d / "bad.png", "--box", "1,1,3,3"]


def truncated(d):
    buf = io.BytesIO()
    Image.fromarray(photo_array(40, 40)).save(buf, "PNG")
    (d / "trunc.png").write_bytes(buf.getvalue()[:300])
    return ["colorize", d / "trunc.png"]


def empty_file(d):
    (d / "zero.png").write_bytes(b"")
    return ["colorize", d / "zero.png"]


def black_mask(d):
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(d / "black.png")
    return ["inpaint", d / "in.png", "--mask", d / "black.png"]


def small_mask(d):
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(d / "m10.png")
    return ["inpaint", d / "in.png", "--mask", d / "m10.png"]


@pytest.mark.parametrize(
    "make, words",
    [
        (corrupt, "damaged|not an image|truncated"),
        (truncated, "truncated|damaged"),
        (empty_file, "empty"),
        (black_mask, "all black"),
        (small_mask, "must have the picture's size"),
        (lambda d: ["restore", d / "in.png", "--region", "100,100,20"], "outside"),
        (lambda d: ["superres", d / "in.png"], "at most 16 px"),
        (lambda d: ["colorize", d / "in.png", "--class", "goldfsh"], "Did you mean 'goldfish'"),
        (lambda d: ["colorize", d / "in.png", "--class", "shark"], "tiger shark"),
        (lambda d: ["inpaint", d / "in.png"], "needs --mask"),
        (lambda d: ["restore", d / "in.png", "--region", "1,2"], "x,y,size"),
    ],
)
def test_bad_input_fails_cleanly(work, capsys, make, words):
    d, common = work
    args = make(d)
    before = snapshot(d)
    code = dgp(*args, "-o", d / "result.png", *common)
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("dgp: error:") == 1
    import re

    assert re.search(words, err), err
    assert snapshot(d) == before  # input untouched, no output or temp file


def test_refuses_to_overwrite_the_input(work, capsys):
    d, common = work
    before = snapshot(d)
    assert dgp("colorize", d / "in.png", "-o", d / "in.png", *common) == 1
    assert "input file" in capsys.readouterr().err
    assert snapshot(d) == before
    (d / "exists.png").write_bytes(b"old")
    assert dgp("colorize", d / "in.png", "-o", d / "exists.png", *common) == 1
    assert (d / "exists.png").read_bytes() == b"old"
    assert dgp("colorize", d / "in.png", "-o", d / "exists.png", "--overwrite", *common) == 0
    assert Image.open(d / "exists.png").size == (56, 40)


def test_disk_full_leaves_nothing(work, capsys, monkeypatch):
    d, common = work
    real_save = Image.Image.save

    def full(self, fp, *a, **k):
        if not isinstance(fp, (str, os.PathLike)):  # the atomic writer's temp file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", full)
    before = snapshot(d)
    assert dgp("colorize", d / "in.png", "-o", d / "out.png", *common) == 1
    assert "disk is full" in capsys.readouterr().err
    assert snapshot(d) == before


def test_ctrl_c_stops_cleanly_and_saves(work, capsys, files, monkeypatch):
    d, common = work
    _, model, _ = files
    slow = tiny_preset_file(d / "slow.toml", iterations=[200, 200])
    calls = {"n": 0}
    real_update = cli_tasks.ProgressBar.update

    def update(self, report):
        real_update(self, report)
        calls["n"] += 1
        if calls["n"] == 5:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C

    monkeypatch.setattr(cli_tasks.ProgressBar, "update", update)
    code = dgp(
        "restore",
        d / "in.png",
        "-o",
        d / "out.png",
        "--model",
        model,
        "--preset",
        slow,
        "--save-state",
        d / "partial.dgp",
    )
    assert code == cli_tasks.EXIT_INTERRUPTED
    state = ReconstructionState.load(d / "partial.dgp")
    assert state.cancelled and state.progress["step"] < 400
    assert Image.open(d / "out.png").size == (56, 40)
    assert "stopped early" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_missing_model_is_a_clear_error(work, capsys):
    d, _ = work
    assert dgp("colorize", d / "in.png", "-o", d / "o.png", "--model", d / "nowhere") == 1
    assert "dgp: error:" in capsys.readouterr().err
    assert not os.path.exists(d / "o.png")


def test_threads_default_to_every_core_and_follow_the_option(work):
    import torch

    from dgp_engine.system.runtime import available_cores

    d, common = work
    assert dgp("restore", d / "in.png", "-o", d / "a.png", *common) == 0
    assert torch.get_num_threads() == available_cores()
    assert dgp("restore", d / "in.png", "-o", d / "b.png", *common, "--threads", "1") == 0
    assert torch.get_num_threads() == 1


def test_precision_is_used_and_saved_with_the_state(work, capsys):
    d, common = work
    assert (
        dgp(
            "restore",
            d / "in.png",
            "-o",
            d / "a.png",
            *common,
            "--precision",
            "bf16",
            "--save-state",
            d / "a.dgp",
        )
        == 0
    )
    assert ReconstructionState.load(d / "a.dgp").progress["precision"] == "bf16"
    # auto (the default) is float32 on the CPU, and the state says so
    assert (
        dgp("restore", d / "in.png", "-o", d / "b.png", *common, "--save-state", d / "b.dgp") == 0
    )
    assert ReconstructionState.load(d / "b.dgp").progress["precision"] == "fp32"


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--precision", "tf32"], "TF32 needs an NVIDIA GPU; this run is on cpu"),
        (["--precision", "fp16"], "Unknown precision 'fp16': choose one of auto, fp32, tf32, bf16"),
        (["--precision", "bf16", "--exact"], "exact mode computes in float32 only"),
    ],
)
def test_a_precision_the_run_cannot_use_is_refused_before_the_model_loads(
    work, capsys, monkeypatch, extra, words
):
    d, common = work
    from dgp_engine.priors import load as prior_module

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(prior_module, "load_prior", no_load)
    before = snapshot(d)
    assert dgp("restore", d / "in.png", "-o", d / "out.png", *common, *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("dgp: error: ") and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(d) == before  # no output, no lock file


def test_out_of_device_memory_mid_run_says_what_to_do_and_writes_nothing(work, capsys, monkeypatch):
    d, common = work
    reports = out_of_memory_after(monkeypatch, steps=2)
    before = snapshot(d)
    assert (
        dgp("restore", d / "in.png", "-o", d / "out.png", *common, "--save-state", d / "out.dgp")
        == 1
    )
    err = capsys.readouterr().err
    assert "dgp: error: The CPU device ran out of memory at step 3 of 4" in err
    assert "precision 'bf16'" in err and "run on the CPU" in err
    assert "Nothing was written (the input is unchanged)." in err and "Traceback" not in err
    assert [r.step for r in reports if r.phase == "optimize"] == [1, 2]
    assert snapshot(d) == before  # no output, no state, no lock file


def test_a_mask_too_large_for_a_sharp_region_is_warned_once_before_the_run(work, capsys):
    d, common = work
    Image.fromarray(photo_array(120, 160)).save(d / "wide.png")
    # 50 px with a 32 px model: the least context needs 75 px > 64 px (2 × 32)
    assert dgp("inpaint", d / "wide.png", "-o", d / "out.png", "--box", "40,30,50,50", *common) == 0
    err = capsys.readouterr().err
    assert err.count("warning: The 75 px working region is enlarged 2.3×") == 1
    assert "larger model, 64 px or more" in err and "mask at most 42 px across" in err
    assert (
        dgp("inpaint", d / "wide.png", "-o", d / "out2.png", "--box", "40,30,20,20", *common) == 0
    )
    assert "warning" not in capsys.readouterr().err  # 20 px: a sharp 60 px square

"""Signals at every stage of a ``dgp`` run (issue 13), in a real subprocess: SIGINT,
SIGTERM and SIGKILL delivered at the start (imports), during z selection, the
optimisation, an animation's frames and while the result is written, for ``colorize``,
``inpaint``, ``morph`` and ``batch``. After each: the input is untouched; under the
output name there is a complete result or nothing; no traceback; and after the next run
in that folder no temp or lock file of ours is left.

``dgp batch --ray ADDRESS`` to a cluster that does not answer (issue 20) gives up after
``--ray-timeout`` with one sentence, and the first Ctrl-C stops it at once.

Points are reached through tests/signal_harness.py (markers on stderr, a short pause
at each), so each case costs one process start (~2 s)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgp_engine.cli import main

from .task_helpers import photo_array, tiny_model_folder, tiny_preset_file

REPO = Path(__file__).resolve().parents[1]
OURS = re.compile(
    r"^\..+\.(\d+-([0-9a-f]{6}-)?)?[a-z0-9_]{8}"
    r"(\.part|\.tmp|\.partial(\.\w+)?)$|^\..+\.dgp-lock$"
)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    model = tiny_model_folder(root / "model")
    preset = tiny_preset_file(root / "tiny.toml")
    slow = tiny_preset_file(root / "slow.toml", iterations=[30, 30])
    medium = tiny_preset_file(root / "medium.toml", iterations=[10, 10])
    Image.fromarray(photo_array(40, 56)).save(root / "in.png")
    mask = np.zeros((40, 56), np.uint8)
    mask[15:25, 20:30] = 255
    Image.fromarray(mask).save(root / "mask.png")
    common = ["--model", str(model), "--preset", str(preset), "-q", "--threads", "1"]
    for i in range(2):
        assert (
            main(
                [
                    "colorize",
                    str(root / "in.png"),
                    "-o",
                    str(root / f"k{i}.png"),
                    "--save-state",
                    str(root / f"k{i}.dgp"),
                    "--seed",
                    str(i),
                    *common,
                ]
            )
            == 0
        )
    return {
        "root": root,
        "model": model,
        "preset": preset,
        "slow": slow,
        "medium": medium,
        "common": common,
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.signal_harness", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _signal_at(
    proc: subprocess.Popen, point: str | None, signals: list[int], after_s: float = 0.0
) -> tuple[int, str]:
    """Wait for ``@@point`` on stderr (or ``after_s``), deliver ``signals``; (code, stderr)."""
    seen: list[str] = []
    if point is not None:
        for line in proc.stderr:
            seen.append(line)
            if line.strip() == f"@@{point}":
                break
        else:
            raise AssertionError(f"the run ended before {point}: {''.join(seen)[-2000:]}")
    else:
        time.sleep(after_s)
    for i, s in enumerate(signals):
        if i:
            time.sleep(0.15)
        proc.send_signal(s)
    rest = proc.stderr.read()
    proc.wait(60)
    return proc.returncode, "".join(seen) + rest


def _ours(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if OURS.match(p.name))


def _complete_picture(path: Path, size: tuple[int, int]) -> bool:
    with Image.open(path) as im:
        im.load()
        return im.size == size


# (command, point, signals, expected exit code, output expected: True / False / None=either)
TASK_CASES = [
    ("colorize", "parse", [signal.SIGINT], 130, False),
    ("colorize", "select", [signal.SIGTERM], 143, False),
    ("colorize", "optimize", [signal.SIGINT], 130, True),
    ("colorize", "optimize", [signal.SIGKILL], -9, False),
    ("colorize", "write", [signal.SIGINT], 0, True),
    ("colorize", "write", [signal.SIGINT, signal.SIGINT], 130, False),
    ("colorize", "write", [signal.SIGKILL], -9, False),
    ("inpaint", "select", [signal.SIGINT], 130, False),
    ("inpaint", "optimize", [signal.SIGTERM, signal.SIGTERM], 143, False),
    ("inpaint", "write", [signal.SIGTERM], 0, True),
]


@pytest.mark.parametrize(
    "command, point, signals, code, output",
    TASK_CASES,
    ids=[f"{c[0]}-{c[1]}-{'+'.join(signal.Signals(s).name for s in c[2])}" for c in TASK_CASES],
)
def test_restoration_commands(kit, tmp_path, command, point, signals, code, output):
    inp = tmp_path / "in.png"
    inp.write_bytes((kit["root"] / "in.png").read_bytes())
    before = _digest(inp)
    extra = ["--mask", str(kit["root"] / "mask.png")] if command == "inpaint" else []
    preset = kit["slow"] if point == "optimize" else kit["preset"]
    args = [
        command,
        str(inp),
        "-o",
        str(tmp_path / "out.png"),
        "--save-state",
        str(tmp_path / "out.dgp"),
        *extra,
        "--model",
        str(kit["model"]),
        "--preset",
        str(preset),
        "--threads",
        "1",
    ]
    got, err = _signal_at(_start(args, tmp_path), point, signals)
    assert got == code, err[-3000:]
    assert "Traceback" not in err
    assert _digest(inp) == before
    if len(signals) > 1 and not output:  # abandoned before anything was written
        assert "dgp: abandoned: nothing unfinished was saved" in err
    out = tmp_path / "out.png"
    if output:
        assert _complete_picture(out, (56, 40))
        assert (tmp_path / "out.dgp").is_file()
    else:
        assert not out.exists() and not (tmp_path / "out.dgp").exists()
    if signals[0] != signal.SIGKILL:
        assert _ours(tmp_path) == []  # nothing of ours left even before the next run
    # the next run in that folder removes what a killed one left
    assert main([command, str(inp), "-o", str(tmp_path / "next.png"), *extra, *kit["common"]]) == 0
    assert _ours(tmp_path) == []
    assert _digest(inp) == before


MORPH_CASES = [
    ("parse", [signal.SIGINT], 130, False),
    ("frames", [signal.SIGINT], 130, False),
    ("frames", [signal.SIGKILL], -9, False),
    ("write", [signal.SIGTERM], 0, True),
]


@pytest.mark.parametrize(
    "point, signals, code, output",
    MORPH_CASES,
    ids=[f"{c[0]}-{'+'.join(signal.Signals(s).name for s in c[1])}" for c in MORPH_CASES],
)
def test_morph(kit, tmp_path, point, signals, code, output):
    states = [kit["root"] / "k0.dgp", kit["root"] / "k1.dgp"]
    before = [_digest(s) for s in states]
    args = [
        "morph",
        *map(str, states),
        "-o",
        str(tmp_path / "m.gif"),
        "--frames",
        "12",
        "--model",
        str(kit["model"]),
        "--threads",
        "1",
        "-q",
    ]
    got, err = _signal_at(_start(args, tmp_path), point, signals)
    assert got == code, err[-3000:]
    assert "Traceback" not in err
    assert [_digest(s) for s in states] == before
    gif = tmp_path / "m.gif"
    if output:
        with Image.open(gif) as im:
            assert im.n_frames == 12
    else:
        assert not gif.exists()
    assert (
        main(
            [
                "morph",
                *map(str, states),
                "-o",
                str(tmp_path / "n.gif"),
                "--frames",
                "3",
                "--model",
                str(kit["model"]),
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert _ours(tmp_path) == []


BATCH_CASES = [
    ("parse", None, [signal.SIGINT], 130),
    (None, 1, [signal.SIGTERM], 143),
    (None, 1, [signal.SIGKILL], -9),
]


@pytest.mark.parametrize(
    "point, after_done, signals, code",
    BATCH_CASES,
    ids=["start-SIGINT", "running-SIGTERM", "running-SIGKILL"],
)
def test_batch(kit, tmp_path, point, after_done, signals, code):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        # black and white: a colorize batch skips photos already in colour
        Image.fromarray(photo_array(40, 56, seed=i)).convert("L").save(src / f"{i}.png")
    before = {p.name: _digest(p) for p in src.iterdir()}
    out = tmp_path / "out"
    args = [
        "batch",
        "colorize",
        str(src),
        "-o",
        str(out),
        "--model",
        str(kit["model"]),
        "--preset",
        str(kit["medium"]),
        "-q",
        "--threads",
        "1",
    ]
    proc = _start(args, tmp_path)
    if after_done is not None:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and proc.poll() is None
            and len(list(out.glob("*.png"))) < after_done
        ):
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before the signal"
    got, err = _signal_at(proc, point, signals)
    assert got == code or (code == 143 and got == 130), err[-3000:]  # batch: 130 for both
    assert "Traceback" not in err
    assert {p.name: _digest(p) for p in src.iterdir()} == before
    for picture in out.glob("*.png") if out.exists() else []:
        assert _complete_picture(picture, (56, 40))
    assert main(args) == 0  # resumes with the same settings
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png", "2.png"]
    assert all(_complete_picture(p, (56, 40)) for p in out.glob("*.png"))
    assert _ours(tmp_path) == []


# --- dgp batch --ray to an address that does not answer (issue 20) ----------------------------
def _ray_address(kind: str) -> tuple[str, list[socket.socket]]:
    """``127.0.0.1:PORT`` where nothing listens ("refused"); where a listener's backlog is
    full, so a connection waits as for a host that drops packets ("no answer"); or where a
    listener accepts and never speaks ("not Ray"). The sockets must stay open."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    held = [server]
    if kind == "refused":
        server.close()
        held = []
    elif kind == "no answer":
        server.listen(0)
        for _ in range(2):  # one fills the queue, the next waits for it: so will dgp's
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            held.append(filler)
    else:
        server.listen(8)
    return f"127.0.0.1:{port}", held


RAY_CASES = [
    ("refused", None),
    ("no answer", None),
    ("no answer", signal.SIGINT),
    ("not Ray", None),
    ("not Ray", signal.SIGINT),
]


@pytest.mark.parametrize(
    "kind, sig",
    RAY_CASES,
    ids=[f"{k.replace(' ', '-')}-{signal.Signals(s).name if s else 'wait'}" for k, s in RAY_CASES],
)
def test_batch_ray_address_that_does_not_answer(kit, tmp_path, kind, sig):
    from dgp_engine.batch.ray_backend import CONNECT_TIMEOUT_S
    from dgp_engine.cli import batch as batch_cli

    assert batch_cli.CONNECT_TIMEOUT_S == CONNECT_TIMEOUT_S  # what --help says
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        # black and white: a colorize batch skips photos already in colour
        Image.fromarray(photo_array(40, 56, seed=i)).convert("L").save(src / f"{i}.png")
    before = {p.name: _digest(p) for p in src.iterdir()}
    out = tmp_path / "out"
    address, held = _ray_address(kind)
    timeout = 3.0
    # with a signal, the default timeout (30 s): only the signal can end it promptly
    args = [
        "batch",
        "colorize",
        str(src),
        "-o",
        str(out),
        "--model",
        str(kit["model"]),
        "--preset",
        str(kit["medium"]),
        "-q",
        "--threads",
        "1",
        "--ray",
        address,
        *([] if sig else ["--ray-timeout", str(timeout)]),
    ]
    try:
        proc = _start(args, tmp_path)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 90
        while (
            not any("to restore" in line for line in lines)
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)  # the job is planned; the workers are asked for next
        t0 = time.monotonic()
        if sig is not None:
            time.sleep(1.0)
            proc.send_signal(sig)
            t0 = time.monotonic()
        try:
            proc.wait(timeout=(5 if sig else timeout + 10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            raise AssertionError(
                f"still connecting {time.monotonic() - t0:.0f} s later: " + "".join(lines)[-2000:]
            ) from None
        elapsed = time.monotonic() - t0
        reader.join(5)
    finally:
        for s in held:
            s.close()
    err = "".join(lines)
    assert "Traceback" not in err
    if sig is not None:
        assert proc.returncode == 130, err[-3000:]
        assert "Stopped while connecting to Ray" in err and "run the same command" in err
        assert elapsed < 5
    else:
        assert proc.returncode == 1, err[-3000:]
        errors = [line for line in err.splitlines() if line.startswith("dgp: error:")]
        assert len(errors) == 1, err[-3000:]
        assert address in errors[0]
        if kind == "refused":
            assert "refused" in errors[0] and elapsed < 5
        else:
            assert f"did not answer within {timeout:g} s" in errors[0]
            assert elapsed < timeout + 5
    assert {p.name: _digest(p) for p in src.iterdir()} == before
    assert not list(out.glob("*.png"))


# --- what an abandoned command says it left (issue 20) ------------------------------------------
def test_abandoned_while_writing_the_state_names_the_picture_it_kept(
    kit, tmp_path, capsys, monkeypatch
):
    """A second Ctrl-C while the state is written (the picture already renamed into place):
    the state is not written, the picture is complete and kept, and the message says so
    (it said "nothing unfinished was saved" as if nothing had been written)."""
    from dgp_engine.method.state import ReconstructionState

    def interrupted_save(self, path):
        os.kill(os.getpid(), signal.SIGINT)  # first: stop (the write goes on)
        os.kill(os.getpid(), signal.SIGINT)  # second: abandon
        raise AssertionError("the second Ctrl-C did not abandon the write")

    monkeypatch.setattr(ReconstructionState, "save", interrupted_save)
    out, state = tmp_path / "out.png", tmp_path / "out.dgp"
    code = main(
        [
            "colorize",
            str(kit["root"] / "in.png"),
            "-o",
            str(out),
            "--save-state",
            str(state),
            *kit["common"],
        ]
    )
    err = capsys.readouterr().err
    assert code == 130
    assert _complete_picture(out, (56, 40)) and not state.exists()
    abandoned = [line for line in err.splitlines() if line.startswith("dgp: abandoned:")]
    assert len(abandoned) == 1 and str(out) in abandoned[0] and "kept" in abandoned[0]
    assert "no partial file" in abandoned[0]
    assert _ours(tmp_path) == []

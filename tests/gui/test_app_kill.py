"""The editor killed or closed mid-run and mid-save loses nothing its autosave had, and the
recovery offer of the next start restores it (issue 13). The editor runs in its own
process (tests/gui/app_kill_harness.py), driven to the point and then killed with
SIGKILL (or SIGTERM, which a Qt app does not catch) or closed by itself."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dgp_engine.files import project as proj

from .test_project_files import fresh_window

REPO = Path(__file__).resolve().parents[2]


def _start(mode: str, picture: Path, work: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.gui.app_kill_harness", mode, str(picture), str(work)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, marker: str) -> None:
    for line in proc.stdout:
        if line.strip() == f"@@{marker}":
            return
    raise AssertionError(f"the app ended before {marker}: {proc.stderr.read()[-3000:]}")


def _autosave() -> Path:
    found = sorted(proj.autosave_dir().glob(f"*.autosave{proj.SUFFIX}"))
    assert len(found) == 1, found
    return found[0]


def _recover_and_check(qtbot, work: Path) -> None:
    other = fresh_window(qtbot)
    try:
        offered = []
        other.ask_recovery = lambda items, restore: (offered.append(items), restore(items[0]))
        other.offer_recovery()
        assert offered, "no recovery was offered"
        assert other.state.has_picture
        assert np.array_equal(other.state.mask, np.load(work / "autosaved.npy"))
        assert other.state.dirty  # restored work is unsaved
    finally:
        other.shutdown()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "mode, how",
    [
        ("run", signal.SIGKILL),
        ("run", signal.SIGTERM),
        ("save", signal.SIGKILL),
        ("close-run", None),
    ],
)
def test_killed_or_closed_mid_work_loses_nothing_autosaved(
    qtbot, picture_file, tmp_path, mode, how
):
    work = tmp_path / "work"
    work.mkdir()
    proc = _start(mode, picture_file, work)
    try:
        _wait_for(proc, "autosaved")
        autosave = _autosave()
        digest = hashlib.sha256(autosave.read_bytes()).hexdigest()
        _wait_for(proc, "saving" if mode == "save" else "running")
        if how is not None:
            proc.send_signal(how)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # killed: the autosave is exactly what it was; closed: the app may autosave again on
    # the way out (newer work), never less. Either way it loads.
    if how is not None:
        assert hashlib.sha256(autosave.read_bytes()).hexdigest() == digest
    assert proj.load_project(autosave).sources
    if mode == "save":
        target = work / "project.dgpproj"
        assert not target.exists()  # the half-written save never took the name
        left = [p.name for p in work.iterdir() if p.name.startswith(".project.dgpproj.")]
        assert left, "the killed save should have left its temp file"
    _recover_and_check(qtbot, work)
    if mode == "save":
        # saving again into that folder removes what the killed save left
        other = fresh_window(qtbot)
        try:
            other.ask_recovery = lambda items, restore: restore(items[0])
            other.offer_recovery()
            assert other.save_project_to(work / "project.dgpproj")
        finally:
            other.shutdown()
        assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []
        assert proj.load_project(work / "project.dgpproj").sources

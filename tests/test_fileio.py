"""Every writer goes through one atomic write: old content survives a failed write, no
temp file is left, and new files get the user's umask (not mkstemp's private 0600)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from dgp_engine.files.animation import export_animation, save_image
from dgp_engine.files.photos import Photo
from dgp_engine.files.photos import save_image as save_photo
from dgp_engine.files.project import Project, save_project
from dgp_engine.method.state import ReconstructionState
from dgp_engine.system import fileio


@pytest.fixture(params=[0o022, 0o027, 0o002])
def user_umask(request, monkeypatch):
    old = os.umask(request.param)
    monkeypatch.setattr(fileio, "_umask", None)  # read afresh, as a new process would
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _state() -> ReconstructionState:
    return ReconstructionState(
        z=torch.zeros(1, 4),
        embedding=torch.zeros(1, 3),
        class_id=0,
        weight_delta={},
        preset={},
        seed=0,
    )


def test_writers_follow_the_umask(tmp_path, user_umask):
    want = 0o666 & ~user_umask
    picture = np.zeros((8, 8, 3), np.uint8)
    written = [
        save_photo(Photo.from_array(picture), tmp_path / "photo.png"),
        save_image(picture, tmp_path / "frame.png"),
        _state().save(tmp_path / "r.dgp") or tmp_path / "r.dgp",
        save_project(Project(title="t"), tmp_path / "p.dgpproj"),
        fileio.atomic_write_text(tmp_path / "notes.txt", "hello"),
    ]
    export_animation([picture, picture], tmp_path / "anim.gif", fps=2)
    written.append(tmp_path / "anim.gif")
    for path in written:
        assert _mode(path) == want, path.name
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_failed_write_keeps_the_old_content_and_leaves_nothing(tmp_path):
    target = tmp_path / "f.txt"
    fileio.atomic_write_text(target, "old")

    def boom(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        fileio.atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_an_interrupt_inside_the_block_keeps_the_old_file(tmp_path):
    target = tmp_path / "g.bin"
    fileio.atomic_write(target, b"old")
    with pytest.raises(KeyboardInterrupt), fileio.atomic_path(target) as tmp:
        tmp.write_bytes(b"new but unfinished")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.bin"]


def test_read_small_file_refuses_devices_fifos_and_oversized_files(tmp_path):
    small = tmp_path / "config.json"
    small.write_text("{}")
    assert fileio.read_small_file(small) == b"{}"
    os.mkfifo(tmp_path / "fifo")
    for bad in ("/dev/zero", tmp_path / "fifo", tmp_path):
        with pytest.raises(fileio.NotRegularFile):  # never opened for a blocking read
            fileio.read_small_file(bad)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    with pytest.raises(fileio.FileTooLarge, match="more than"):
        fileio.read_small_file(big, limit=1024)


def test_a_replaced_file_keeps_its_permissions(tmp_path, user_umask):
    """A file replaced on request (--overwrite, Save over) keeps its own mode, read-only
    or group-writable alike; a new file gets the umask's."""
    for mode in (0o444, 0o664, 0o600):
        target = tmp_path / f"kept_{mode:o}.txt"
        fileio.atomic_write_text(target, "old")
        os.chmod(target, mode)
        fileio.atomic_write_text(target, "new")
        assert target.read_text() == "new"
        assert _mode(target) == mode
    fresh = fileio.atomic_write_text(tmp_path / "fresh.txt", "x")
    assert _mode(fresh) == 0o666 & ~user_umask


def test_a_replaced_setuid_file_loses_the_special_bits(tmp_path):
    target = tmp_path / "s.bin"
    fileio.atomic_write(target, b"old")
    os.chmod(target, 0o4755)
    fileio.atomic_write(target, b"new")
    assert _mode(target) == 0o755

"""Project files: exact round trip, atomic saves, damaged files, autosave and recovery."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dgp_engine.files.project import (
    FORMAT_VERSION,
    Autosaver,
    Project,
    ProjectDamagedError,
    ProjectError,
    autosave_path,
    find_recovery,
    load_project,
    read_manifest,
    recover_project,
    recovered_path,
    save_project,
    states_equal,
)
from dgp_engine.method.manipulate import MorphTimeline

from .helpers import tiny_prior
from .manipulation_helpers import quick_state


@pytest.fixture(scope="module")
def two_states():
    prior = tiny_prior()
    return quick_state(prior, 1, seed=0), quick_state(prior, 3, seed=1)


def make_project(states) -> Project:
    rng = np.random.default_rng(0)
    a, b = states
    return Project(
        sources={
            "photo": (rng.random((30, 41, 3)) * 255).astype(np.uint8),
            "scan16": (rng.random((12, 9)) * 65535).astype(np.uint16),
            "alpha": (rng.random((8, 8, 4)) * 255).astype(np.uint8),
        },
        masks={
            "hole": rng.random((30, 41)) > 0.7,
            "soft": (rng.random((30, 41)) * 255).astype(np.uint8),
        },
        images={
            "result": (rng.random((32, 32, 3)) * 255).astype(np.uint8),
            "float": rng.random((4, 5, 3)).astype(np.float32),
        },
        states={"day": a, "night": b},
        regions=[{"id": "r1", "x": 3, "y": 4, "size": 32, "source": "photo"}],
        history=[
            {"op": "paint", "mask": "hole", "tiles": [[0, 0], [1, 2]]},
            {"op": "restore", "state": "day", "image": "result"},
        ],
        timeline={"keyframes": ["day", "night"], **MorphTimeline(frames=30).to_dict()},
        settings={"task": "inpainting", "model": "tiny", "zoom": 1.5},
        title="Garden",
        created=1_700_000_000.25,
    )


def test_round_trip_is_exact(tmp_path, two_states):
    project = make_project(two_states)
    path = save_project(project, tmp_path / "garden.dgpproj")
    again = load_project(path)
    assert again == project
    assert again.masks["hole"].dtype == np.bool_ and again.sources["scan16"].dtype == np.uint16
    assert states_equal(again.states["night"], two_states[1])
    assert MorphTimeline.from_dict(again.timeline) == MorphTimeline(frames=30)
    # saving what was opened gives the same project again
    assert load_project(save_project(again, tmp_path / "copy.dgpproj")) == project
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    assert names[0] == "manifest.json"
    assert "states/day.safetensors" in names and "sources/photo.png" in names
    assert read_manifest(path)["version"] == FORMAT_VERSION


def test_equality_notices_changes(two_states):
    p = make_project(two_states)
    q = make_project(two_states)
    assert p == q
    q.sources["photo"][0, 0, 0] ^= 1
    assert p != q
    q = make_project(two_states)
    q.states["day"] = dataclasses.replace(q.states["day"], z=q.states["day"].z + 1e-6)
    assert p != q
    q = make_project(two_states)
    q.timeline["fps"] = 25
    assert p != q


def test_failed_save_keeps_the_previous_file(tmp_path, two_states):
    path = save_project(make_project(two_states), tmp_path / "p.dgpproj")
    before = path.read_bytes()
    broken = make_project(two_states)
    broken.settings["when"] = object()  # not JSON
    with pytest.raises(ProjectError, match="settings cannot be saved"):
        save_project(broken, path)
    broken = make_project(two_states)
    broken.masks["bad/name"] = np.zeros((2, 2), np.uint8)
    with pytest.raises(ProjectError, match="not valid"):
        save_project(broken, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.dgpproj"]
    if os.geteuid() == 0:  # root ignores permission bits: use a read-only file system
        read_only = Path("/sys")
    else:
        read_only = tmp_path / "ro"
        read_only.mkdir()
        read_only.chmod(0o555)
    with pytest.raises(ProjectError, match="Cannot write to .*another folder"):
        save_project(make_project(two_states), read_only / "p.dgpproj")


def test_truncated_file_recovers_what_it_can_and_keeps_the_file(tmp_path, two_states):
    project = make_project(two_states)
    path = save_project(project, tmp_path / "p.dgpproj")
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        night = zf.getinfo("states/night.safetensors")
    cut = night.header_offset + 100  # inside the last state
    damaged = tmp_path / "cut.dgpproj"
    damaged.write_bytes(data[:cut])
    with pytest.raises(ProjectDamagedError) as info:
        load_project(damaged)
    err = info.value
    assert "cut.dgpproj is damaged" in str(err) and "left as it is" in str(err)
    assert "cut (recovered).dgpproj" in str(err)
    assert err.lost == ["states/night.safetensors"]
    rec = err.recovered
    assert set(rec.states) == {"day"} and states_equal(rec.states["day"], two_states[0])
    assert rec.masks["hole"].dtype == np.bool_
    assert _same_arrays(rec.sources, project.sources) and rec.history == project.history
    assert damaged.read_bytes() == data[:cut]  # never modified
    # nothing but the manifest's start survives: a clear error, not a crash
    tiny = tmp_path / "tiny.dgpproj"
    tiny.write_bytes(data[:40])
    with pytest.raises(ProjectDamagedError) as info:
        load_project(tiny)
    assert info.value.lost == ["manifest.json"] and info.value.recovered.item_names() == []


def _same_arrays(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_corrupted_member_is_reported(tmp_path, two_states):
    path = save_project(make_project(two_states), tmp_path / "p.dgpproj")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("sources/photo.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 50] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ProjectDamagedError) as err:
        load_project(path)
    assert err.value.lost == ["sources/photo.png"]
    assert set(err.value.recovered.states) == {"day", "night"}
    assert recover_project(path)[1] == ["sources/photo.png"]


def test_not_a_project_and_newer_version(tmp_path):
    other = tmp_path / "x.dgpproj"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "something-else"}))
    with pytest.raises(ProjectError, match="not a DGP Studio project"):
        load_project(other)
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "dgp-project", "version": 99}))
    with pytest.raises(ProjectError, match="newer DGP Studio"):
        load_project(other)
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(tmp_path / "none.dgpproj")
    assert recovered_path(tmp_path / "a.dgpproj").name == "a (recovered).dgpproj"
    (tmp_path / "a (recovered).dgpproj").write_bytes(b"")
    assert recovered_path(tmp_path / "a.dgpproj").name == "a (recovered 2).dgpproj"


def test_autosave_and_crash_recovery(tmp_path, two_states):
    project = make_project(two_states)
    path = save_project(project, tmp_path / "garden.dgpproj")
    old = time.time() - 100
    os.utime(path, (old, old))  # the user saved a while ago
    now = [0.0]
    saver = Autosaver(path, interval_s=60, clock=lambda: now[0])
    assert saver.maybe_save(project, dirty=False) is None
    assert saver.maybe_save(project) == saver.path  # first change: saved at once
    now[0] = 30
    assert saver.maybe_save(project) is None  # not due yet
    now[0] = 61
    assert saver.maybe_save(project) == saver.path
    assert saver.path.parent != tmp_path and saver.path == autosave_path(path)
    found = find_recovery(path)
    assert len(found) == 1 and found[0].original == path.resolve()
    assert "garden.dgpproj" in found[0].describe()
    assert load_project(found[0].autosave) == project
    # the user saves again: the autosave is older than the file, nothing to recover
    save_project(project, path)
    assert find_recovery(path) == []
    saver.discard()
    assert not saver.path.exists()

    untitled = Autosaver(None, session="s1", interval_s=0)
    untitled.save(project)
    found = find_recovery()
    assert [c.original for c in found] == [None]
    assert "an unsaved project" in found[0].describe()
    untitled.retarget(tmp_path / "named.dgpproj")
    assert find_recovery() == []


def test_loading_never_writes_beside_the_project(tmp_path, two_states, monkeypatch):
    """A valid project in a read-only folder loads whole (states included): loading
    makes no file anywhere (here: every way of making one fails)."""
    import builtins
    import tempfile

    path = save_project(make_project(two_states), tmp_path / "garden.dgpproj")
    real_open = builtins.open

    def no_write(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            raise OSError(30, "Read-only file system")
        return real_open(file, mode, *args, **kwargs)

    def no_temp(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(builtins, "open", no_write)
    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_temp)
    again = load_project(path)
    assert set(again.states) == {"day", "night"}
    assert states_equal(again.states["night"], two_states[1])


def test_a_damaged_state_member_is_named_not_used(tmp_path, two_states):
    import math

    a, b = two_states
    bad = dataclasses.replace(b, z=torch.full_like(b.z, math.nan))
    project = make_project((a, bad))
    path = save_project(project, tmp_path / "nan.dgpproj")
    with pytest.raises(ProjectError, match="night"):
        load_project(path)


def test_a_project_path_that_is_a_fifo_or_device_is_not_called_missing(tmp_path):
    from dgp_engine.errors import ProjectError
    from dgp_engine.files.project import load_project

    os.mkfifo(tmp_path / "fifo.dgpproj")
    for bad in (tmp_path / "fifo.dgpproj", "/dev/zero", tmp_path):
        with pytest.raises(ProjectError, match="is not a file"):
            load_project(bad)
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(tmp_path / "missing.dgpproj")

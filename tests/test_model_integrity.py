"""Installed weights are checked against their install record's SHA-256 at every load
(issue 13): altered files are refused with what to do, unchanged ones are hashed once
(cached by size, mtime, ctime and inode)."""

from __future__ import annotations

import json
import os

import pytest

from dgp_engine.errors import CheckpointError
from dgp_engine.priors import checkpoint, hub
from dgp_engine.priors.load import load_prior

from .task_helpers import tiny_model_folder


@pytest.fixture
def installed(tmp_path):
    src = tiny_model_folder(tmp_path / "src")
    model = hub.import_files(
        "tinycheck", src / "G_ema.safetensors", src / "D.safetensors", config=src / "config.json"
    )
    return model.folder


def test_an_unchanged_model_is_hashed_once_then_trusted_by_its_stat(installed, monkeypatch):
    hashed = []
    real = checkpoint._sha256
    monkeypatch.setattr(checkpoint, "_sha256", lambda f: hashed.append(f.name) or real(f))
    load_prior("tinycheck")
    assert sorted(hashed) == ["D.safetensors", "G_ema.safetensors"]
    cache = json.loads((installed / checkpoint.VERIFIED_FILE).read_text())
    assert set(cache) == {"D.safetensors", "G_ema.safetensors"}
    hashed.clear()
    load_prior("tinycheck")
    assert hashed == []


@pytest.mark.parametrize("how", ["flip", "same-size-old-mtime", "truncate", "missing"])
def test_altered_weights_are_refused_with_what_to_do(installed, how):
    load_prior("tinycheck")  # verified and cached
    file = installed / "G_ema.safetensors"
    st = file.stat()
    data = bytearray(file.read_bytes())
    if how == "missing":
        file.unlink()
    elif how == "truncate":
        file.write_bytes(bytes(data[:-10]))
    else:
        data[-5] ^= 0x01  # one bit in the last tensor: the file still parses
        file.write_bytes(bytes(data))
        if how == "same-size-old-mtime":
            os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))  # ctime still moves
    with pytest.raises(CheckpointError) as info:
        load_prior("tinycheck")
    msg = str(info.value)
    assert "G_ema.safetensors" in msg and "dgp models verify tinycheck" in msg
    assert "pull tinycheck --force" in msg or "import" in msg


def test_a_damaged_cache_only_costs_a_rehash(installed):
    load_prior("tinycheck")
    (installed / checkpoint.VERIFIED_FILE).write_text("{not json")
    load_prior("tinycheck")
    assert json.loads((installed / checkpoint.VERIFIED_FILE).read_text())


def test_a_folder_without_a_record_is_not_checked(tmp_path):
    folder = tiny_model_folder(tmp_path / "mine")
    assert checkpoint.verify_installed_files(folder) == []
    load_prior(folder)
    assert not (folder / checkpoint.VERIFIED_FILE).exists()


def test_verify_still_passes_with_the_cache_file(installed):
    load_prior("tinycheck")
    assert all(r.ok for r in hub.verify(["tinycheck"]))

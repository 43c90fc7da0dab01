"""Small files, huge memory; wrong types; 16 bits (issue 13): pictures and project members
are measured against a memory budget before they are inflated, manifests with wrong field
types get a message, and 16-bit pictures stay 16-bit where the format allows."""

from __future__ import annotations

import io
import json
import logging
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from dgp_engine.cli import main
from dgp_engine.errors import InputError, ProjectDamagedError, ProjectError
from dgp_engine.files.photos import read_image, save_image
from dgp_engine.files.project import (
    Project,
    load_project,
    read_manifest,
    recover_project,
    save_project,
)
from dgp_engine.system import memory

from .task_helpers import tiny_model_folder, tiny_preset_file


# --- the budget -----------------------------------------------------------------------------
def test_budget_follows_the_machine_and_the_override(monkeypatch):
    monkeypatch.delenv("DGP_MEMORY_BUDGET", raising=False)
    available, total = memory.ram()
    assert 0 < memory.budget() <= max(256 << 20, total // 4)
    monkeypatch.setenv("DGP_MEMORY_BUDGET", "1.5G")
    assert memory.budget() == int(1.5 * (1 << 30))
    assert memory.pixel_limit(128) == memory.budget() // 128
    monkeypatch.setenv("DGP_MEMORY_BUDGET", "lots")
    with pytest.raises(InputError, match="DGP_MEMORY_BUDGET"):
        memory.budget()


def test_a_small_file_with_huge_dimensions_is_refused_before_decoding(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DGP_MEMORY_BUDGET", "1G")
    Image.new("L", (4000, 4000)).save(tmp_path / "big.png")  # 16 Mpx in a few KB
    assert (tmp_path / "big.png").stat().st_size < 100_000
    assert read_image(tmp_path / "big.png").size == (4000, 4000)  # decoding alone fits
    model = tiny_model_folder(tmp_path / "model")
    preset = tiny_preset_file(tmp_path / "p.toml")
    t0 = time.perf_counter()
    code = main(
        [
            "colorize",
            str(tmp_path / "big.png"),
            "-o",
            str(tmp_path / "o.png"),
            "--model",
            str(model),
            "--preset",
            str(preset),
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and time.perf_counter() - t0 < 10
    assert "4000×4000" in err and "memory" in err and "Downscale" in err
    assert not (tmp_path / "o.png").exists()


def test_the_pixel_limit_still_applies(tmp_path):
    Image.new("L", (12000, 11000)).save(tmp_path / "huge.png")
    with pytest.raises(InputError, match="too large|Mpx"):
        read_image(tmp_path / "huge.png")


# --- project members ------------------------------------------------------------------------
def _project_with_member(path, name, data, meta_size=None, method=zipfile.ZIP_DEFLATED):
    save_project(Project(title="t", images={"a": np.zeros((4, 4, 3), np.uint8)}), path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    manifest["members"][name] = {
        "kind": "images",
        "id": "bomb",
        "dtype": "|u1",
        "shape": [1],
        "size": meta_size or len(data),
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest), zipfile.ZIP_DEFLATED)
        for n, d in members.items():
            zf.writestr(n, d, zipfile.ZIP_STORED)
        zf.writestr(name, data, method)
    return path


def test_a_zip_bomb_member_is_not_inflated(tmp_path):
    bomb = bytes(200 << 20)  # 200 MiB of zeros: ~200 KB deflated
    path = _project_with_member(tmp_path / "p.dgpproj", "images/bomb.npy", bomb)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ProjectDamagedError) as info:
        load_project(path)
    assert info.value.lost == ["images/bomb.npy"]
    assert set(info.value.recovered.images) == {"a"}  # the rest is kept
    project, lost = recover_project(path)  # the header scan inflates no further either
    assert "images/bomb.npy" in lost and set(project.images) == {"a"}


def test_members_beyond_the_memory_budget_are_refused(tmp_path, monkeypatch):
    path = _project_with_member(
        tmp_path / "p.dgpproj",
        "images/big.npy",
        np.random.default_rng(0).bytes(3 << 20),
        method=zipfile.ZIP_STORED,
    )
    monkeypatch.setenv("DGP_MEMORY_BUDGET", "2M")
    with pytest.raises(ProjectError, match="memory"):
        load_project(path)


def test_a_member_larger_than_its_manifest_says_is_lost(tmp_path):
    path = _project_with_member(tmp_path / "p.dgpproj", "images/x.npy", bytes(1000), meta_size=10)
    with pytest.raises(ProjectDamagedError) as info:
        load_project(path)
    assert "images/x.npy" in info.value.lost


@pytest.mark.parametrize(
    "field, value",
    [
        ("version", "abc"),
        ("created", "yesterday"),
        ("title", 5),
        ("regions", "r"),
        ("history", {}),
        ("timeline", []),
        ("settings", 3),
        ("members", []),
        ("members", {"images/a.png": "x"}),
        ("members", {"images/a.png": {"kind": 1, "id": "a"}}),
        ("version", True),
        ("saved", None),
    ],
)
def test_manifest_with_wrong_field_types_is_a_message(tmp_path, field, value):
    path = tmp_path / "p.dgpproj"
    save_project(Project(title="t", images={"a": np.zeros((4, 4, 3), np.uint8)}), path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    manifest[field] = value
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for n, d in members.items():
            zf.writestr(n, d)
    before = path.read_bytes()
    with pytest.raises(ProjectError, match="damaged|not a DGP"):
        load_project(path)
    assert read_manifest(path) is None
    assert path.read_bytes() == before


def test_a_deeply_nested_manifest_is_a_message(tmp_path):
    path = tmp_path / "p.dgpproj"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ProjectError):
        load_project(path)


# --- 16 bits ---------------------------------------------------------------------------------
def _png_ihdr(path):
    data = path.read_bytes()
    return data[24], data[25]  # bit depth, colour type


def _png16_pixels(path):
    """Decode our own 16-bit PNG (filter type 0 rows) to check every sample."""
    data = path.read_bytes()
    pos, idat = 8, b""
    w = h = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
            channels = {2: 3, 6: 4}[body[9]]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, -1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].copy().view(">u2").reshape(h, w, channels)


@pytest.fixture
def gray16(tmp_path):
    a = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    return tmp_path, a


def test_16bit_gray_stays_16bit(gray16):
    d, a = gray16
    photo = read_image(d / "g16.png")
    assert photo.bit_depth == 16
    for ext in (".png", ".tif"):
        save_image(photo, d / f"out{ext}")
        with Image.open(d / f"out{ext}") as im:
            assert im.mode.startswith("I;16")
            assert np.array_equal(np.asarray(im), a)


def test_16bit_colour_results_are_written_with_16_bits(gray16, caplog):
    d, a = gray16
    photo = read_image(d / "g16.png")
    colour = photo.with_pixels(
        np.dstack([photo.rgb[..., 0], photo.rgb[..., 0] * 0.5, photo.rgb[..., 0] * 0.25])
    )
    save_image(colour, d / "c.png")
    assert _png_ihdr(d / "c.png") == (16, 2)
    assert np.array_equal(_png16_pixels(d / "c.png")[..., 0], a)
    save_image(colour, d / "c.tif")
    t = tifffile.imread(d / "c.tif")
    assert t.dtype == np.uint16 and np.array_equal(t[..., 0], a)
    again = read_image(d / "c.tif")  # a 16-bit colour TIFF is read at full precision
    assert again.bit_depth == 16 and np.abs(again.rgb - colour.rgb).max() < 1 / 65535
    with caplog.at_level(logging.WARNING, logger="dgp_engine.files.photos"):
        save_image(colour, d / "c.jpg")
    assert "8 bits per channel" in caplog.text and ".png or .tif" in caplog.text


def test_colorize_keeps_16_bits_end_to_end(gray16):
    d, _ = gray16
    model = tiny_model_folder(d / "model")
    preset = tiny_preset_file(d / "p.toml")
    assert (
        main(
            [
                "colorize",
                str(d / "g16.png"),
                "-o",
                str(d / "c.png"),
                "--model",
                str(model),
                "--preset",
                str(preset),
                "-q",
            ]
        )
        == 0
    )
    assert _png_ihdr(d / "c.png") == (16, 2)
    assert io.BytesIO((d / "c.png").read_bytes()).read(8) == b"\x89PNG\r\n\x1a\n"

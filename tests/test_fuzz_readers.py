"""Hostile files for every reader (issue 13): pictures, masks, state files, project files,
model files — cut short, bytes flipped, garbage inserted, fields of the wrong type, huge
dimensions. The only outcomes allowed are a result or our own error (a DGPError with a
message); no reader writes anything (the sample's folder and the working folder keep
exactly their files).

Bounded: every test draws at most a few dozen examples, without deadlines, so the whole
file runs in well under half a minute."""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dgp_engine.errors import DGPError
from dgp_engine.files.photos import decode_image, read_image, read_mask
from dgp_engine.files.project import Project, load_project, recover_project, save_project
from dgp_engine.method.state import ReconstructionState
from dgp_engine.priors.checkpoint import read_folder, read_state_dict

from .task_helpers import photo_array, tiny_model_folder

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OUTCOMES: dict[str, dict[str, int]] = {}  # reader -> {"ok": n, "ErrorType": n}; see bench


@pytest.fixture(scope="module", autouse=True)
def _outcome_summary():
    """After this file's tests: the outcomes per reader, as JSON, where DGP_FUZZ_SUMMARY
    says (bench/robustness_measure.py tables them)."""
    yield
    summary = Path(os.environ.get("DGP_FUZZ_SUMMARY", ""))
    if summary.name and OUTCOMES:
        summary.write_text(json.dumps(OUTCOMES, indent=1, sort_keys=True))


def _record(reader: str, outcome: str) -> None:
    OUTCOMES.setdefault(reader, {}).setdefault(outcome, 0)
    OUTCOMES[reader][outcome] += 1


# --- mutations ---------------------------------------------------------------------------------
@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` cut short, with bytes flipped / overwritten, or garbage inserted."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "set", "insert", "zero-run"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[pos : pos + draw(st.integers(1, 64))] = b"\0" * 8
    return bytes(data)


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())


def _run(reader: str, folder: Path, call) -> None:
    """Call a reader: any result, or a DGPError with a message; nothing written."""
    before, cwd_before = _listing(folder), sorted(os.listdir("."))
    try:
        call()
        _record(reader, "ok")
    except DGPError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        _record(reader, type(exc).__name__)
    assert _listing(folder) == before, "a reader wrote beside the file it read"
    assert sorted(os.listdir(".")) == cwd_before


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _sample_file(box: Path, name: str, data: bytes) -> tuple[Path, Path]:
    folder = Path(tempfile.mkdtemp(dir=box))
    file = folder / name
    file.write_bytes(data)
    return folder, file


# --- pictures and masks ----------------------------------------------------------------------
def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    arr = photo_array(24, 32)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


PICTURES = {
    f"{fmt}-{mode}": _encoded(fmt, mode)
    for fmt, mode in [
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "L"),
        ("PNG", "P"),
        ("JPEG", "RGB"),
        ("TIFF", "RGB"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("GIF", "P"),
        ("TIFF", "CMYK"),
    ]
}


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims any size (CRC fixed up), with a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(PICTURES)))
def test_pictures(box, data, kind):
    blob = data.draw(mutated(PICTURES[kind]))
    folder, file = _sample_file(box, f"x.{kind.split('-')[0].lower()}", blob)
    _run("read_image", folder, lambda: read_image(file))


@FUZZ
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1))
def test_pictures_with_huge_dimensions(box, width, height):
    folder, file = _sample_file(box, "huge.png", _png_with_size(width, height))
    _run("read_image (huge)", folder, lambda: read_image(file))
    _run("decode_image (huge)", folder, lambda: decode_image(file.read_bytes()))


@FUZZ
@given(
    data=st.data(),
    kind=st.sampled_from(["PNG-L", "PNG-RGBA", "PNG-RGB", "BMP-RGB"]),
    size=st.sampled_from([None, (32, 24), (24, 32)]),
)
def test_masks(box, data, kind, size):
    blob = data.draw(mutated(PICTURES[kind]))
    folder, file = _sample_file(box, "m.png", blob)
    _run("read_mask", folder, lambda: read_mask(file, size))


# --- state files ------------------------------------------------------------------------------
def _state() -> ReconstructionState:
    g = torch.Generator().manual_seed(0)
    return ReconstructionState(
        z=torch.randn(1, 8, generator=g),
        embedding=torch.randn(1, 4, generator=g),
        class_id=1,
        weight_delta={"blocks.0.w": torch.randn(3, 3, generator=g)},
        preset={"name": "tiny"},
        seed=3,
        model={"name": "m"},
    )


STATE = _state().to_bytes()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@FUZZ
@given(data=st.data())
def test_state_bytes(box, data):
    blob = data.draw(mutated(STATE))
    folder, file = _sample_file(box, "s.dgp", blob)
    _run("ReconstructionState.load", folder, lambda: ReconstructionState.load(file))
    _run("ReconstructionState.from_bytes", folder, lambda: ReconstructionState.from_bytes(blob))


@FUZZ
@given(
    field=st.sampled_from(
        [
            "class_id",
            "seed",
            "created",
            "version",
            "preset",
            "task",
            "model",
            "progress",
            "losses",
            "use_in",
            "format",
        ]
    ),
    value=JSON_VALUES,
)
def test_state_fields_of_any_type(box, field, value):
    from safetensors.torch import save

    state = _state()
    meta = state.metadata()
    meta[field] = value
    blob = save(state.tensors(), metadata={"dgp_state": json.dumps(meta)})
    folder, file = _sample_file(box, "s.dgp", blob)
    _run("state fields", folder, lambda: ReconstructionState.load(file))


def test_flipped_tensor_bytes_are_caught_by_the_checksum(tmp_path):
    blob = bytearray(STATE)
    blob[-3] ^= 0x10  # inside the last tensor: the file still parses, the values differ
    (tmp_path / "s.dgp").write_bytes(bytes(blob))
    with pytest.raises(DGPError, match="checksum"):
        ReconstructionState.load(tmp_path / "s.dgp")


# --- project files ----------------------------------------------------------------------------
def _project_bytes(tmp: Path) -> bytes:
    project = Project(
        title="fuzz",
        sources={"s": photo_array(12, 16)},
        masks={"m": np.eye(12, 16, dtype=bool)},
        images={"f": np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6)},
        states={"a": _state()},
        regions=[{"x": 1}],
        settings={"k": 1},
    )
    return save_project(project, tmp / "p.dgpproj").read_bytes()


@pytest.fixture(scope="module")
def project_blob(tmp_path_factory):
    return _project_bytes(tmp_path_factory.mktemp("project"))


@FUZZ
@given(data=st.data())
def test_projects(box, project_blob, data):
    blob = data.draw(mutated(project_blob))
    folder, file = _sample_file(box, "p.dgpproj", blob)
    _run("load_project", folder, lambda: load_project(file))
    _run("recover_project", folder, lambda: recover_project(file))


@FUZZ
@given(
    field=st.sampled_from(
        [
            "version",
            "title",
            "created",
            "saved",
            "regions",
            "history",
            "timeline",
            "settings",
            "members",
            "format",
        ]
    ),
    value=JSON_VALUES,
)
def test_project_manifest_fields_of_any_type(box, project_blob, field, value):
    src = zipfile.ZipFile(io.BytesIO(project_blob))
    manifest = json.loads(src.read("manifest.json"))
    manifest[field] = value
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name in src.namelist():
            if name != "manifest.json":
                zf.writestr(name, src.read(name))
    folder, file = _sample_file(box, "p.dgpproj", out.getvalue())
    _run("project manifest", folder, lambda: load_project(file))


# --- model files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_blobs(tmp_path_factory):
    folder = tiny_model_folder(tmp_path_factory.mktemp("model") / "m")
    sd = {k: torch.zeros(2, 3) for k in ("a", "b")}
    buf = io.BytesIO()
    torch.save(sd, buf)
    return {
        "G_ema.safetensors": (folder / "G_ema.safetensors").read_bytes(),
        "config.json": (folder / "config.json").read_bytes(),
        "D.safetensors": (folder / "D.safetensors").read_bytes(),
        "pth": buf.getvalue(),
    }


@FUZZ
@given(data=st.data(), which=st.sampled_from(["G_ema.safetensors", "config.json", "pth"]))
def test_model_files(box, model_blobs, data, which):
    folder = Path(tempfile.mkdtemp(dir=box))
    for name in ("G_ema.safetensors", "D.safetensors", "config.json"):
        (folder / name).write_bytes(model_blobs[name])
    if which == "pth":
        blob = data.draw(mutated(model_blobs["pth"]))
        (folder / "G.pth").write_bytes(blob)
        _run("read_state_dict (.pth)", folder, lambda: read_state_dict(folder / "G.pth"))
        return
    (folder / which).write_bytes(data.draw(mutated(model_blobs[which])))
    _run(f"read_folder ({which})", folder, lambda: read_folder(folder))

"""Hostile reconstruction states into ``dgp jitter``, ``dgp transfer`` and ``dgp morph``
(issue 20, defect 7): fields of any type (``model.config`` a string, a version of
Infinity…), latents and embeddings of any shape or type, weight deltas of any name, shape
or type — each file carrying a valid checksum, so it gets past the reader's first check.
The only outcomes allowed: the picture is written (exit 0), or one sentence on stderr
(exit 1) and nothing written; never a traceback.  See tests/test_fuzz_readers.py for the
file-level fuzzing of the reader itself.

Bounded like that file: a few dozen examples per test, without deadlines."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from dgp_engine import load_prior
from dgp_engine.cli import main
from dgp_engine.errors import StateError
from dgp_engine.method.state import ReconstructionState
from dgp_engine.priors.checkpoint import tensors_digest

from .helpers import tiny_prior
from .manipulation_helpers import quick_state, save_model_folder

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = [
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
    "model.name",
    "model.config",
    "model.checksum",
    "model.config.dim_z",
    "progress.cancelled",
]
DTYPES = [
    torch.float32,
    torch.float16,
    torch.float64,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-states")
    folder = save_model_folder(tiny_prior(), root / "tiny")
    prior = load_prior(folder)
    good, other = quick_state(prior, 1, seed=0), quick_state(prior, 3, seed=1)
    other_file = other.save(root / "B.dgp")
    return root, folder, good, other_file


def _write(root: Path, meta: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """A state file of exactly these parts, with a checksum that matches them."""
    folder = Path(tempfile.mkdtemp(prefix="s-", dir=root))
    file = folder / "s.dgp"
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    file.write_bytes(
        save(
            tensors, metadata={"dgp_state": json.dumps(meta), "dgp_sha256": tensors_digest(tensors)}
        )
    )
    return file


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def _commands(file: Path, other: Path, out: Path, folder: Path) -> dict[str, list[str]]:
    # --raw: the states here record no photo to compose onto
    tail = ["--model", str(folder), "--threads", "1", "-q", "--raw"]
    return {
        "jitter": ["jitter", str(file), "-n", "2", "-o", str(out / "j.png"), *tail],
        "transfer": ["transfer", str(file), "--class", "2", "-o", str(out / "t.png"), *tail],
        "morph": ["morph", str(file), str(other), "--frames", "3", "-o", str(out / "m.gif"), *tail],
        "morph (both hostile)": [
            "morph",
            str(file),
            str(file),
            "--frames",
            "2",
            "-o",
            str(out / "m2.gif"),
            *tail,
        ],
    }


def _check_commands(capsys, setup, file: Path) -> None:
    """Every command on ``file``: a picture, or one sentence and nothing written."""
    root, folder, _, other = setup
    out = Path(tempfile.mkdtemp(dir=root))
    inputs = {p: _listing(p) for p in (file.parent, root, folder)}
    for name, argv in _commands(file, other, out, folder).items():
        code = main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        written = _listing(out)
        if code == 0:
            assert len(written) == 1, (name, err)
            (out / written[0]).unlink()
        else:
            assert code == 1, (name, err)
            errors = [ln for ln in err.splitlines() if ln.startswith("dgp: error: ")]
            assert len(errors) == 1 and len(errors[0]) > len("dgp: error: ") + 10, (name, err)
            assert errors[0].rstrip().endswith("."), (name, err)
            assert written == [], (name, err)
        assert {p: _listing(p) for p in inputs} == inputs, name


def _set(meta: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    node = meta
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[leaf] = value


@pytest.mark.parametrize("field", FIELDS)
@settings(FUZZ, max_examples=6)
@given(value=JSON_VALUES)
def test_state_fields_of_any_type(capsys, setup, field, value):
    good = setup[2]
    meta = good.metadata()
    meta = json.loads(json.dumps(meta))  # a deep copy
    _set(meta, field, value)
    _check_commands(capsys, setup, _write(setup[0], meta, good.tensors()))


@st.composite
def hostile_tensor(draw) -> torch.Tensor:
    shape = draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 8, 16, 32]), min_size=0, max_size=3))
    dtype = draw(st.sampled_from(DTYPES))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 1000)))
    values = torch.randn(shape, generator=gen) * draw(st.sampled_from([1.0, 1e3, 1e30]))
    return values.to(dtype) if dtype != torch.bool else values > 0


@FUZZ
@given(data=st.data(), which=st.sampled_from(["z", "embedding", "delta", "new delta", "drop"]))
def test_state_tensors_of_any_shape_and_type(capsys, setup, data, which):
    good = setup[2]
    tensors = good.tensors()
    if which in ("z", "embedding"):
        tensors[which] = data.draw(hostile_tensor())
    elif which == "delta":
        key = data.draw(st.sampled_from(sorted(k for k in tensors if k.startswith("delta."))))
        tensors[key] = data.draw(hostile_tensor())
    elif which == "new delta":
        sd_keys = sorted(tiny_prior().G.state_dict())
        name = data.draw(st.sampled_from(sd_keys) | st.text(max_size=6))
        tensors[f"delta.{name}"] = data.draw(hostile_tensor())
    else:
        tensors.pop(data.draw(st.sampled_from(sorted(tensors))))
    _check_commands(capsys, setup, _write(setup[0], good.metadata(), tensors))


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"name": "tiny", "config": "BigGAN 32 px"}},
        {"z": torch.zeros(3, 16)},
        {"z": torch.zeros(1, 16, dtype=torch.int64)},
        {"embedding": torch.zeros(2, 8)},
        {"version": float("inf")},
    ],
)
def test_known_hostile_states_are_one_sentence(capsys, setup, change):
    """The cases that gave tracebacks, kept as named examples."""
    good = setup[2]
    meta, tensors = good.metadata(), good.tensors()
    for key, value in change.items():
        if isinstance(value, torch.Tensor):
            tensors[key] = value
        else:
            meta[key] = value
    file = _write(setup[0], meta, tensors)
    with pytest.raises(StateError):
        ReconstructionState.load(file)
    _check_commands(capsys, setup, file)


# --- hostile placements (hostile test pass after issue 20) ------------------------------------
@pytest.fixture(scope="module")
def placed(tmp_path_factory, setup):
    """An inpainting state that records where its result sits in its photo (a hole)."""
    import numpy as np
    from PIL import Image

    from .task_helpers import photo_array, tiny_preset_file

    root = tmp_path_factory.mktemp("placed")
    photo = root / "photo.png"
    Image.fromarray(photo_array(40, 40)).save(photo)
    hole = np.zeros((40, 40), np.uint8)
    hole[10:20, 12:24] = 255
    Image.fromarray(hole).save(root / "mask.png")
    state = root / "placed.dgp"
    assert (
        main(
            [
                "inpaint",
                str(photo),
                "--mask",
                str(root / "mask.png"),
                "-o",
                str(root / "out.png"),
                "--save-state",
                str(state),
                "--model",
                str(setup[1]),
                "--preset",
                str(tiny_preset_file(root / "tiny.toml")),
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    return ReconstructionState.load(state)


@pytest.mark.parametrize(
    "change,says",
    [
        # view = [x, y, w, h, resolution, ox, oy, cw, ch] of the photo and the model's square
        (lambda v: {"view": v[:2] + [-v[2], -v[3]] + v[4:]}, "its hole holds"),  # a traceback
        (lambda v: {"view": v[:4] + [0, 0, 0, 0, 0]}, "not one a run makes"),  # a traceback
        (lambda v: {"view": v[:5] + [30] + v[6:]}, "not one a run makes"),
        (lambda v: {"feather": -3}, "not one a run makes"),
        # the hole's few bytes were unpacked to the view's claimed size first (2 GB for 30000²)
        (
            lambda v: {"photo_size": [3000, 3000], "view": [0, 0, 3000, 3000] + v[4:]},
            "its hole holds",
        ),
        # composed through a 6000² resize of every frame: 3 GB and 23 s for a 64 px model
        (lambda v: {"view": v[:4] + [600, 0, 0, 600, 600]}, "this model renders 32×32"),
        # "which is not there any more", of a path that is there (a folder, a FIFO, /dev/zero)
        (lambda v: {"photo_path": "/dev/zero"}, "which is not a picture file"),
    ],
)
def test_hostile_placements_are_one_sentence(capsys, setup, placed, change, says):
    meta = json.loads(json.dumps(placed.metadata()))
    meta["placement"].update(change(list(meta["placement"]["view"])))
    file = _write(setup[0], meta, placed.tensors())
    root, folder, _, _ = setup
    out = Path(tempfile.mkdtemp(dir=root))
    code = main(
        [
            "jitter",
            str(file),
            "-n",
            "2",
            "-o",
            str(out / "j.png"),
            "--model",
            str(folder),
            "--threads",
            "1",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    start = {"renders": f"{file.name} places", "picture file": f"{file.name} was restored"}
    assert says in err, err
    assert err.startswith(
        "dgp: error: " + next((v for k, v in start.items() if k in says), f"{file} is damaged")
    ), err
    assert os.listdir(out) == []


@pytest.mark.timeout(60)
def test_a_state_path_that_is_a_fifo_or_folder_is_refused_without_blocking(capsys, setup, tmp_path):
    # a FIFO named as the state blocked `dgp jitter` for good (safetensors opened it)
    root, folder, _, other = setup
    os.mkfifo(tmp_path / "fifo.dgp")
    for bad, kind in ((tmp_path / "fifo.dgp", "named pipe"), (tmp_path, "folder")):
        code = main(
            [
                "jitter",
                str(bad),
                "-n",
                "2",
                "-o",
                str(tmp_path / "j.png"),
                "--model",
                str(folder),
                "--raw",
                "-q",
                "--threads",
                "1",
            ]
        )
        err = capsys.readouterr().err
        assert code == 1 and f"is not a regular file (a {kind}" in err, err
    assert not (tmp_path / "j.png").exists()

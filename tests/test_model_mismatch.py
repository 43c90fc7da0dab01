"""A state renders only with the weights it was restored with (issue 20, defect 6): another
model of the same shapes would render without an error and a different picture, so it is
refused with a sentence unless the user allows it (``--model-mismatch ok``), and then
warned; a state without a model checksum (older files) renders with a one-line warning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from dgp_engine import load_prior
from dgp_engine.cli import main
from dgp_engine.errors import ModelMismatchError
from dgp_engine.method.manipulate import Morph, Renderer

from .helpers import tiny_prior
from .manipulation_helpers import quick_state, save_model_folder


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two model folders with the same shapes and other weights, and states of the first."""
    root = tmp_path_factory.mktemp("mismatch")
    folder_a = save_model_folder(tiny_prior(seed=0), root / "tiny-a")
    folder_b = save_model_folder(tiny_prior(seed=1), root / "tiny-b")
    prior_a, prior_b = load_prior(folder_a), load_prior(folder_b)
    assert prior_a.checksum != prior_b.checksum
    a, a2 = quick_state(prior_a, 1, seed=0), quick_state(prior_a, 3, seed=1)
    a.save(root / "A.dgp")
    a2.save(root / "A2.dgp")
    old = dataclasses.replace(a, model={k: v for k, v in a.model.items() if k != "checksum"})
    old.save(root / "old.dgp")
    return root, folder_a, folder_b, prior_a, prior_b, a, a2


def run(capsys, *argv) -> tuple[int, str]:
    code = main([*map(str, argv), "--threads", "1", "--raw"])
    return code, capsys.readouterr().err


COMMANDS = {
    "jitter": lambda root, out: ["jitter", root / "A.dgp", "-n", 2, "-o", out / "j.png"],
    "transfer": lambda root, out: ["transfer", root / "A.dgp", "--class", 2, "-o", out / "t.png"],
    "morph": lambda root, out: [
        "morph",
        root / "A.dgp",
        root / "A2.dgp",
        "--frames",
        3,
        "-o",
        out / "m.gif",
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_state_is_refused_with_another_model_of_the_same_shapes(
    two_models, capsys, tmp_path, command
):
    root, folder_a, folder_b, *_ = two_models
    argv = COMMANDS[command](root, tmp_path)
    code, err = run(capsys, *argv, "--model", folder_b)
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dgp: error: A")
    assert "restored with the model 'tiny-a', not with the loaded 'tiny-b'" in err
    assert "--model tiny-a" in err and "--model-mismatch ok" in err
    assert list(tmp_path.iterdir()) == []  # nothing written
    # Asked for: it renders, with a warning per state.
    code, err = run(capsys, *argv, "--model", folder_b, "--model-mismatch", "ok")
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("dgp: warning: ")]
    assert len(warnings) == (2 if command == "morph" else 1)
    assert "rendered with 'tiny-b' anyway" in warnings[0]
    assert len(list(tmp_path.iterdir())) == 1
    # With its own model: no warning at all.
    for f in tmp_path.iterdir():
        f.unlink()
    code, err = run(capsys, *argv, "--model", folder_a)
    assert code == 0 and "warning" not in err, err


def test_the_wrong_model_really_renders_another_picture(two_models):
    *_, prior_a, prior_b, a, _a2 = two_models
    with pytest.raises(ModelMismatchError, match="tiny-a"):
        Renderer(prior_b, a)
    other = Renderer(prior_b, a, allow_other_model=True)
    assert len(other.warnings) == 1 and "tiny-b" in other.warnings[0]
    own = Renderer(prior_a, a)
    assert own.warnings == []
    diff = (own.render() - other.render()).abs().mean()
    assert float(diff) > 0.02  # the check is not about nothing
    with pytest.raises(ModelMismatchError, match="Keyframe A"):
        Morph(prior_b, [a, _a2])
    assert len(Morph(prior_b, [a, _a2], allow_other_model=True).warnings) == 2


def test_a_state_without_a_checksum_renders_with_a_one_line_warning(two_models, capsys, tmp_path):
    root, folder_a, *_ = two_models
    out = tmp_path / "j.png"
    code, err = run(
        capsys, "jitter", root / "old.dgp", "-n", 1, "-q", "-o", out, "--model", folder_a
    )
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "dgp: warning: old.dgp records no model checksum"
    )
    assert np.asarray(Image.open(out)).shape == (32, 32, 3)

"""``dgp jitter``, ``dgp transfer``, ``dgp morph`` end to end on a tiny model folder."""

from __future__ import annotations

import dataclasses

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from dgp_engine import BigGANConfig, build_prior, load_prior
from dgp_engine.cli import main
from dgp_engine.method.manipulate import Renderer
from dgp_engine.method.pictures import signed_to_uint8

from .helpers import TINY, tiny_prior
from .manipulation_helpers import quick_state, save_model_folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    folder = save_model_folder(tiny_prior(), root / "tiny")
    prior = load_prior(folder)
    a, b = quick_state(prior, 1, seed=0), quick_state(prior, 3, seed=1)
    a.save(root / "A.dgp")
    b.save(root / "B.dgp")
    other = dataclasses.replace(b, model={**b.model, "name": "biggan-128"})
    other.save(root / "other.dgp")
    cfg = BigGANConfig.from_dict({**TINY.to_dict(), "shared_dim": 16})
    bigger = quick_state(build_prior(cfg, seed=0, name="biggan-128"), 1)
    bigger.save(root / "bigger.dgp")
    return root, folder, prior, a


def run(capsys, *argv) -> tuple[int, str]:
    code = main([*map(str, argv), "--threads", "1"])  # the CLI sets torch's thread count
    return code, capsys.readouterr().err


def test_jitter_grid(setup, capsys, tmp_path):
    root, folder, prior, a = setup
    out = tmp_path / "grid.png"
    code, err = run(capsys, "jitter", root / "A.dgp", "-n", 4, "--sigma", 0.5, "--seed", 2,
                    "-o", out, "--model", folder)
    assert code == 0, err
    picture = np.asarray(Image.open(out))
    assert picture.shape == (2 * 32 + 2, 2 * 32 + 2, 3)
    expected = signed_to_uint8(Renderer(prior, a).jitter(4, 0.5, seed=2).run_to_end())
    assert np.abs(picture[34:66, 34:66].astype(int) - expected[3]).max() <= 1
    code, err = run(capsys, "jitter", root / "A.dgp", "-n", 2, "--sigma", "0,0,0.5,0.5",
                    "--scale", 2, "--cols", 2, "-q", "-o", out, "--model", folder)
    assert code == 0, err
    assert Image.open(out).size == (2 * 64 + 2, 64)


def test_jitter_walk_animation(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    out = tmp_path / "walk.webp"
    code, err = run(capsys, "jitter", root / "A.dgp", "-n", 3, "--walk", 9, "--fps", 9, "-o",
                    out, "--model", folder)
    assert code == 0, err
    with Image.open(out) as im:
        assert im.n_frames == 9 and im.size == (32, 32)


def test_jitter_bad_sigma(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    code, err = run(capsys, "jitter", root / "A.dgp", "--sigma", "0.1,0.2", "-o",
                    tmp_path / "g.png", "--model", folder)
    assert code == 1 and "one σ per latent chunk (4: input, block 1" in err
    assert not (tmp_path / "g.png").exists()


def test_transfer(setup, capsys, tmp_path):
    root, folder, prior, a = setup
    out = tmp_path / "t.png"
    code, err = run(capsys, "transfer", root / "A.dgp", "--class", "class 4", "-o", out,
                    "--model", folder)
    assert code == 0, err
    expected = signed_to_uint8(Renderer(prior, a).transfer([4]).run_to_end()[0])
    assert np.abs(np.asarray(Image.open(out)).astype(int) - expected).max() <= 1
    code, err = run(capsys, "transfer", root / "A.dgp", "--class", "clas 4", "-o", out,
                    "--model", folder)
    assert code == 1 and "Did you mean 'class 4'" in err


def test_morph_mp4_pingpong(setup, capsys, tmp_path):
    root, folder, prior, a = setup
    out = tmp_path / "anim.mp4"
    code, err = run(capsys, "morph", root / "A.dgp", root / "B.dgp", "--frames", 6, "--fps", 12,
                    "--easing", "ease-in-out", "--pingpong", "--scale", 1.5, "-o", out,
                    "--model", folder)
    assert code == 0, err
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert sum(1 for _ in reader) == 6 + 4 and meta["fps"] == 12
    assert tuple(meta["size"]) == (48, 48)


def test_morph_gif_with_holds(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    out = tmp_path / "anim.gif"
    code, err = run(capsys, "morph", root / "A.dgp", root / "B.dgp", root / "A.dgp",
                    "--frames", 5, "--fps", 10, "--hold", 2, "--easing", "linear", "-o", out,
                    "--model", folder)
    assert code == 0, err
    with Image.open(out) as im:
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
    assert total == 900  # 5 + 2 + 2 frames at 10 fps (held frames merged, time kept)


def test_morph_refuses_different_models(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    out = tmp_path / "x.gif"
    code, err = run(capsys, "morph", root / "A.dgp", root / "other.dgp", "-o", out,
                    "--model", folder)
    assert code == 1
    assert "Cannot morph A.dgp and other.dgp" in err and "same base model" in err
    assert not out.exists()


def test_state_of_a_missing_model_says_how_to_get_it(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    code, err = run(capsys, "transfer", root / "bigger.dgp", "--class", "1", "-o",
                    tmp_path / "x.png", "--model", folder)
    assert code == 1
    assert "restored with the model 'biggan-128'" in err and "--model biggan-128" in err
    assert "dgp models pull biggan-128" in err and "dgp models import biggan-128" in err
    code, err = run(capsys, "jitter", root / "bigger.dgp", "-o", tmp_path / "x.png",
                    "--model", tmp_path / "no-such-model")
    assert code == 1 and "dgp models pull biggan-128" in err


def test_morph_bad_output_and_missing_state(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    code, err = run(capsys, "morph", root / "A.dgp", root / "B.dgp", "-o", tmp_path / "x.avi",
                    "--model", folder)
    assert code == 1 and "Cannot tell the animation format" in err
    code, err = run(capsys, "morph", root / "A.dgp", tmp_path / "nope.dgp", "-o",
                    tmp_path / "x.gif", "--model", folder)
    assert code == 1 and "does not exist" in err

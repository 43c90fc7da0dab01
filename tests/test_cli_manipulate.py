"""``dgp jitter``, ``dgp transfer``, ``dgp morph`` end to end on a tiny model folder."""

from __future__ import annotations

import dataclasses
import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from dgp_engine import BigGANConfig, build_prior, load_prior
from dgp_engine.cli import main
from dgp_engine.method.manipulate import Morph, Renderer
from dgp_engine.method.pictures import signed_to_uint8

from .helpers import TINY, tiny_prior
from .manipulation_helpers import quick_state, save_model_folder
from .task_helpers import photo_array


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
    """(exit code, stderr); the tests above compose nothing (--raw: these states come from
    model-size targets, not photos), those below compose into photos."""
    code = main([*map(str, argv), "--threads", "1"])  # the CLI sets torch's thread count
    return code, capsys.readouterr().err


def test_jitter_grid(setup, capsys, tmp_path):
    root, folder, prior, a = setup
    out = tmp_path / "grid.png"
    code, err = run(
        capsys,
        "jitter",
        root / "A.dgp",
        "-n",
        4,
        "--sigma",
        0.5,
        "--seed",
        2,
        "-o",
        out,
        "--model",
        folder,
        "--raw",
    )
    assert code == 0, err
    picture = np.asarray(Image.open(out))
    assert picture.shape == (2 * 32 + 2, 2 * 32 + 2, 3)
    expected = signed_to_uint8(Renderer(prior, a).jitter(4, 0.5, seed=2).run_to_end())
    assert np.abs(picture[34:66, 34:66].astype(int) - expected[3]).max() <= 1
    code, err = run(
        capsys,
        "jitter",
        root / "A.dgp",
        "-n",
        2,
        "--sigma",
        "0,0,0.5,0.5",
        "--scale",
        2,
        "--cols",
        2,
        "-q",
        "-o",
        out,
        "--model",
        folder,
        "--raw",
        "--overwrite",
    )
    assert code == 0, err
    assert Image.open(out).size == (2 * 64 + 2, 64)


def test_jitter_walk_animation(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    out = tmp_path / "walk.webp"
    code, err = run(
        capsys,
        "jitter",
        root / "A.dgp",
        "-n",
        3,
        "--walk",
        9,
        "--fps",
        9,
        "-o",
        out,
        "--model",
        folder,
        "--raw",
    )
    assert code == 0, err
    with Image.open(out) as im:
        assert im.n_frames == 9 and im.size == (32, 32)


def test_jitter_bad_sigma(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    code, err = run(
        capsys,
        "jitter",
        root / "A.dgp",
        "--sigma",
        "0.1,0.2",
        "-o",
        tmp_path / "g.png",
        "--model",
        folder,
        "--raw",
    )
    assert code == 1 and "one σ per latent chunk (4: input, block 1" in err
    assert not (tmp_path / "g.png").exists()


def test_transfer(setup, capsys, tmp_path):
    root, folder, prior, a = setup
    out = tmp_path / "t.png"
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "class 4",
        "-o",
        out,
        "--model",
        folder,
        "--raw",
    )
    assert code == 0, err
    expected = signed_to_uint8(Renderer(prior, a).transfer([4]).run_to_end()[0])
    assert np.abs(np.asarray(Image.open(out)).astype(int) - expected).max() <= 1
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "clas 4",
        "-o",
        out,
        "--model",
        folder,
        "--raw",
        "--overwrite",
    )
    assert code == 1 and "Did you mean 'class 4'" in err


def test_morph_mp4_pingpong(setup, capsys, tmp_path):
    root, folder, prior, a = setup
    out = tmp_path / "anim.mp4"
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "B.dgp",
        "--frames",
        6,
        "--fps",
        12,
        "--easing",
        "ease-in-out",
        "--pingpong",
        "--scale",
        1.5,
        "-o",
        out,
        "--model",
        folder,
        "--raw",
    )
    assert code == 0, err
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert sum(1 for _ in reader) == 6 + 4 and meta["fps"] == 12
    assert tuple(meta["size"]) == (48, 48)


def test_morph_gif_with_holds(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    out = tmp_path / "anim.gif"
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "B.dgp",
        root / "A.dgp",
        "--frames",
        5,
        "--fps",
        10,
        "--hold",
        2,
        "--easing",
        "linear",
        "-o",
        out,
        "--model",
        folder,
        "--raw",
    )
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
    code, err = run(
        capsys, "morph", root / "A.dgp", root / "other.dgp", "-o", out, "--model", folder, "--raw"
    )
    assert code == 1
    assert "Cannot morph A.dgp and other.dgp" in err and "same base model" in err
    assert not out.exists()


def test_state_of_a_missing_model_says_how_to_get_it(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    code, err = run(
        capsys,
        "transfer",
        root / "bigger.dgp",
        "--class",
        "1",
        "-o",
        tmp_path / "x.png",
        "--model",
        folder,
        "--raw",
    )
    assert code == 1
    assert "restored with the model 'biggan-128'" in err and "--model biggan-128" in err
    assert "dgp models pull biggan-128" in err and "dgp models import biggan-128" in err
    code, err = run(
        capsys,
        "jitter",
        root / "bigger.dgp",
        "-o",
        tmp_path / "x.png",
        "--model",
        tmp_path / "no-such-model",
    )
    assert code == 1 and "dgp models pull biggan-128" in err


def test_morph_bad_output_and_missing_state(setup, capsys, tmp_path):
    root, folder, _, _ = setup
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "B.dgp",
        "-o",
        tmp_path / "x.avi",
        "--model",
        folder,
        "--raw",
    )
    assert code == 1 and "Cannot tell the animation format" in err
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        tmp_path / "nope.dgp",
        "-o",
        tmp_path / "x.gif",
        "--model",
        folder,
        "--raw",
    )
    assert code == 1 and "does not exist" in err


# --------------------------------------------------------------------------- on the photo


@pytest.fixture(scope="module")
def photo_states(tmp_path_factory, setup):
    """Two inpaintings (other seed, class) of one hole of a 500×375 photo, restored by the
    CLI with --save-state, and one of another photo."""
    from .task_helpers import tiny_preset_file

    _, folder, _, _ = setup
    root = tmp_path_factory.mktemp("photo_states")
    preset = tiny_preset_file(root / "tiny.toml")
    Image.fromarray(photo_array(375, 500, seed=4)).save(root / "photo.png")
    Image.fromarray(photo_array(375, 501, seed=5)).save(root / "odd.png")
    common = [
        "--box",
        "200,150,40,40",
        "--model",
        folder,
        "--preset",
        preset,
        "-q",
        "--threads",
        "1",
    ]
    for name, photo, seed, cls in (
        ("A", "photo", 0, 1),
        ("B", "photo", 1, 3),
        ("C", "odd", 0, 1),
        ("D", "odd", 1, 2),
    ):
        assert (
            main(
                [
                    "inpaint",
                    str(root / f"{photo}.png"),
                    "-o",
                    str(root / f"{name}.png"),
                    "--save-state",
                    str(root / f"{name}.dgp"),
                    "--seed",
                    str(seed),
                    "--class",
                    str(cls),
                    *map(str, common),
                ]
            )
            == 0
        )
    return root, folder


def composed(folder, *states):
    """The photo composer of the first state (checked independently of the CLI)."""
    from dgp_engine.files.photos import read_image
    from dgp_engine.method.state import ReconstructionState
    from dgp_engine.tasks.postprocess import PhotoComposer

    loaded = [ReconstructionState.load(s) for s in states]
    photo = read_image(loaded[0].placement.photo_path)
    return PhotoComposer(photo, loaded[0].placement), loaded, load_prior(folder)


def test_morph_gif_is_the_photo_with_each_frame_composed(photo_states, capsys, tmp_path):
    root, folder = photo_states
    out = tmp_path / "m.gif"
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "B.dgp",
        "--frames",
        4,
        "--fps",
        8,
        "-o",
        out,
        "--model",
        folder,
    )
    assert code == 0, err
    assert "4 frames of 500×375" in err and "inpaint of region" in err
    composer, states, prior = composed(folder, root / "A.dgp", root / "B.dgp")
    first = composer(Morph(prior, states).at(0.0)[0])
    assert np.array_equal(first, np.asarray(Image.open(root / "A.png")))  # = the result
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.size == (500, 375)
        got = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(got - first).mean() < 3
    # --raw: the generator's squares, as before
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "B.dgp",
        "--frames",
        4,
        "--raw",
        "-o",
        tmp_path / "raw.gif",
        "--model",
        folder,
    )
    assert code == 0, err
    with Image.open(tmp_path / "raw.gif") as im:
        assert im.n_frames == 4 and im.size == (32, 32)


def test_morph_mp4_of_an_odd_photo_says_how_it_was_made_even(photo_states, capsys, tmp_path):
    root, folder = photo_states
    code, err = run(
        capsys,
        "morph",
        root / "C.dgp",
        root / "D.dgp",
        "--frames",
        3,
        "-o",
        tmp_path / "m.mp4",
        "--model",
        folder,
    )
    assert code == 0, err
    assert (
        "note: MP4 video (H.264) needs an even width and height: the 501×375 frames "
        "(odd width and height) are padded to 502×376"
    ) in err
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "m.mp4"))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(376, 502, 3) for f in reader]
    assert tuple(meta["size"]) == (502, 376) and len(frames) == 3
    expected = np.asarray(Image.open(root / "C.png")).astype(int)
    assert np.abs(frames[0][:375, :501].astype(int) - expected).mean() < 3
    code, err = run(
        capsys,
        "morph",
        root / "C.dgp",
        root / "D.dgp",
        "--frames",
        3,
        "--even",
        "crop",
        "-o",
        tmp_path / "c.mp4",
        "--model",
        folder,
    )
    assert code == 0 and "cropped to 500×374 (the last column and last row left out)" in err
    assert tuple(next(imageio_ffmpeg.read_frames(str(tmp_path / "c.mp4")))["size"]) == (500, 374)


def test_jitter_grid_and_transfer_are_composed_into_the_photo(photo_states, capsys, tmp_path):
    root, folder = photo_states
    code, err = run(
        capsys,
        "jitter",
        root / "A.dgp",
        "-n",
        2,
        "--cols",
        2,
        "--seed",
        3,
        "-o",
        tmp_path / "g.png",
        "--model",
        folder,
    )
    assert code == 0, err
    grid_picture = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid_picture.shape == (375, 2 * 500 + 2, 3)
    composer, (state,), prior = composed(folder, root / "A.dgp")
    variations = Renderer(prior, state).jitter(2, 0.5, seed=3).run_to_end()
    assert np.array_equal(grid_picture[:, 502:], composer(variations[1]))
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "4",
        "-o",
        tmp_path / "t.png",
        "--model",
        folder,
    )
    assert code == 0, err
    expected = composer(Renderer(prior, state).transfer([4]).run_to_end()[0])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "t.png")), expected)
    code, err = run(
        capsys,
        "jitter",
        root / "A.dgp",
        "-n",
        2,
        "--walk",
        3,
        "-o",
        tmp_path / "walk",
        "--model",
        folder,
        "--max-side",
        250,
    )
    assert code == 0, err
    files = sorted((tmp_path / "walk").iterdir())
    assert len(files) == 3
    assert Image.open(files[0]).size == (250, 188)  # asked: scaled down, aspect kept


def test_onto_another_photo_or_project_and_what_is_refused(photo_states, capsys, tmp_path):
    root, folder = photo_states
    other = photo_array(375, 500, seed=8)
    Image.fromarray(other).save(tmp_path / "retouched.png")
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "2",
        "--onto",
        tmp_path / "retouched.png",
        "-o",
        tmp_path / "t.png",
        "--model",
        folder,
    )
    assert code == 0, err
    assert "not the photo A.dgp was restored from" in err
    composer, (state,), prior = composed(folder, root / "A.dgp")
    from dgp_engine.files.photos import Photo
    from dgp_engine.tasks.postprocess import PhotoComposer

    onto = PhotoComposer(Photo.from_array(other), state.placement)
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "t.png")),
        onto(Renderer(prior, state).transfer([2]).run_to_end()[0]),
    )
    # a project's picture
    from dgp_engine.files.project import Project, save_project

    save_project(Project(sources={"picture": other}), tmp_path / "p.dgpproj")
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "2",
        "--onto",
        tmp_path / "p.dgpproj",
        "-o",
        tmp_path / "p.png",
        "--model",
        folder,
    )
    assert code == 0, err
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "p.png")), np.asarray(Image.open(tmp_path / "t.png"))
    )
    # a photo of another size, --onto with --raw, keyframes of different photos
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "2",
        "--onto",
        root / "odd.png",
        "-o",
        tmp_path / "x.png",
        "--model",
        folder,
    )
    assert code == 1 and "restored on a 500×375 photo; the photo given is 501×375" in err
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "2",
        "--onto",
        root / "odd.png",
        "--raw",
        "-o",
        tmp_path / "x.png",
        "--model",
        folder,
    )
    assert code == 1 and "not both" in err
    code, err = run(
        capsys, "morph", root / "A.dgp", root / "C.dgp", "-o", tmp_path / "x.gif", "--model", folder
    )
    assert code == 1
    assert (
        "Cannot compose this morph onto a photo: A.dgp and C.dgp — they were restored "
        "from different photos (photo.png, 500×375 and odd.png, 501×375)"
    ) in err
    assert "Pass --raw to write the generator's 32×32 squares instead." in err
    assert not (tmp_path / "x.gif").exists() and not (tmp_path / "x.png").exists()
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "C.dgp",
        "--raw",
        "--frames",
        3,
        "-o",
        tmp_path / "x.gif",
        "--model",
        folder,
    )
    assert code == 0, err
    # a state saved before placements were recorded
    code, err = run(
        capsys, "jitter", setup_state(root), "-o", tmp_path / "y.png", "--model", folder
    )
    assert code == 1 and "does not record where its result sits in a photo" in err
    assert "--raw" in err


def setup_state(root):
    """A.dgp as an older DGP Studio wrote it: no placement."""
    from dgp_engine.method.state import ReconstructionState

    state = ReconstructionState.load(root / "A.dgp")
    state.placement = None
    return state.save(root / "old.dgp")


def test_a_moved_photo_and_frames_over_the_limit_say_what_to_do(photo_states, capsys, tmp_path):
    root, folder = photo_states
    from dgp_engine.method.state import ReconstructionState

    state = ReconstructionState.load(root / "A.dgp")
    state.placement = state.placement.with_photo(
        tmp_path / "moved.png", state.placement.photo_digest
    )
    state.save(tmp_path / "moved.dgp")
    code, err = run(
        capsys,
        "transfer",
        tmp_path / "moved.dgp",
        "--class",
        "2",
        "-o",
        tmp_path / "x.png",
        "--model",
        folder,
    )
    assert code == 1 and "moved.png, which is not there any more" in err and "--raw" in err
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "B.dgp",
        "--scale",
        8,
        "-o",
        tmp_path / "big.gif",
        "--model",
        folder,
    )
    assert code == 1
    assert (
        "The frames would be 4000×3000 px, more than the 3840 px on the long side" in err
        and "--max-side 3840" in err
        and "--raw" in err
    )
    assert not (tmp_path / "big.gif").exists()


def test_the_photo_composed_onto_is_never_the_output(photo_states, capsys, tmp_path):
    root, folder = photo_states
    target = tmp_path / "mine.png"
    Image.fromarray(photo_array(375, 500, seed=4)).save(target)
    before = target.read_bytes()
    code, err = run(
        capsys,
        "transfer",
        root / "A.dgp",
        "--class",
        "2",
        "--onto",
        target,
        "-o",
        target,
        "--model",
        folder,
    )
    assert code == 1 and "is the photo to compose onto" in err
    assert target.read_bytes() == before


# --- sizes and counts refused before memory is spent (hostile test pass after issue 20) ---
@pytest.mark.parametrize(
    "argv,says",
    [
        # each of these was killed by the kernel (24 GB) or ended in a traceback
        (
            ["morph", "A.dgp", "B.dgp", "-o", "m.gif", "--size", "99999x99999"],
            "Frames of 99999×99999 px cannot be exported",
        ),
        (
            ["morph", "A.dgp", "B.dgp", "-o", "m.mp4", "--size", "99999x99999"],
            "Frames of 100000×100000 px cannot be exported",
        ),
        (
            ["morph", "A.dgp", "B.dgp", "-o", "m.gif", "--frames", "1000000000"],
            "1,000,000,000 morph frames are more than",
        ),
        (
            ["morph", "A.dgp", "B.dgp", "-o", "m.gif", "--frames", "3", "--hold", "1000000000"],
            "morph frames are more than",
        ),
        (
            ["morph", "A.dgp", "B.dgp", "-o", "m.gif", "--frames", "3", "--loop", "-1"],
            "repeat count must be 0 (forever) to 65535",
        ),
        (
            ["morph", "A.dgp", "B.dgp", "-o", "m.gif", "--frames", "3", "--scale", "nan"],
            "scale must be a number above 0",
        ),
        (
            ["morph", "A.dgp", "B.dgp", "-o", "m.gif", "--frames", "3", "--scale", "-1"],
            "scale must be a number above 0",
        ),  # wrote 1×1 frames
        (
            ["jitter", "A.dgp", "-o", "j.gif", "--walk", "1000000000"],
            "1,000,000,000 walk frames are more than",
        ),
        (
            ["jitter", "A.dgp", "-o", "j.png", "-n", "1000", "--scale", "60"],
            "The grid would be",
        ),  # after rendering and resizing 1000 tiles of 1920² px
        (["jitter", "A.dgp", "-o", "j.png", "-n", "1000000"], "The grid would be"),
    ],
)
def test_sizes_and_counts_beyond_memory_are_refused_before_rendering(
    setup, capsys, tmp_path, monkeypatch, argv, says
):
    from dgp_engine.method import manipulate as engine_manipulate

    root, folder, _, _ = setup
    rendered = []
    real_job = engine_manipulate.Renderer.job

    def counted(self, *args, **kwargs):
        job = real_job(self, *args, **kwargs)
        rendered.append(len(job))
        return job

    monkeypatch.setattr(engine_manipulate.Renderer, "job", counted)
    argv = [
        root / a
        if a.endswith(".dgp")
        else tmp_path / a
        if "." in a and a[0] != "-" and not a[0].isdigit() and a != "nan"
        else a
        for a in argv
    ]
    code, err = run(capsys, *argv, "--model", folder, "--raw", "-q")
    assert code == 1 and says in err and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []
    if argv[0] == "jitter":
        assert rendered == []  # refused before a variation was rendered


def test_an_existing_output_is_replaced_only_when_asked(setup, capsys, tmp_path):
    # jitter/transfer/morph replaced an existing picture or animation without a word, and a
    # PNG sequence into a folder of one's own frame_*.png files (a video's) replaced some and
    # deleted the rest
    root, folder, _, _ = setup
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"mine")
    frames = tmp_path / "my-video-frames"
    frames.mkdir()
    for i in range(6):
        (frames / f"frame_{i:05d}.png").write_bytes(b"mine")
    for argv in (
        ["jitter", root / "A.dgp", "-n", 2, "-o", grid],
        ["morph", root / "A.dgp", root / "B.dgp", "--frames", 2, "-o", frames],
    ):
        code, err = run(capsys, *argv, "--model", folder, "--raw", "-q")
        assert code == 1 and "--overwrite" in err, err
    assert grid.read_bytes() == b"mine"
    assert sorted(p.read_bytes() for p in frames.iterdir()) == [b"mine"] * 6
    # asked: replaced (the sequence exactly: its extra frames go)
    for argv in (
        ["jitter", root / "A.dgp", "-n", 2, "-o", grid],
        ["morph", root / "A.dgp", root / "B.dgp", "--frames", 2, "-o", frames],
    ):
        code, err = run(capsys, *argv, "--model", folder, "--raw", "-q", "--overwrite")
        assert code == 0, err
    assert grid.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in frames.iterdir()) == ["frame_00000.png", "frame_00001.png"]
    # a new or empty folder needs nothing
    (tmp_path / "empty").mkdir()
    code, err = run(
        capsys,
        "morph",
        root / "A.dgp",
        root / "B.dgp",
        "--frames",
        2,
        "-o",
        tmp_path / "empty",
        "--model",
        folder,
        "--raw",
        "-q",
    )
    assert code == 0, err

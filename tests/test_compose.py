"""What leaves the app is a deliverable: a result's state records where it sits in its
photo, and any later output (jitter, category, morph frame) is composed into the photo
exactly as the result was; exported animations read back at the photo's size."""

from __future__ import annotations

import dataclasses

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine.errors import CompositionError, InputError, StateError
from dgp_engine.files.animation import AnimationExport, export_animation
from dgp_engine.files.photos import Photo
from dgp_engine.files.photos import unit_to_uint8 as to_uint8
from dgp_engine.method.manipulate import Morph, Renderer
from dgp_engine.method.placement import Placement, common_placement, pixels_digest
from dgp_engine.method.state import ReconstructionState
from dgp_engine.tasks.postprocess import PhotoComposer, compose_into, photo_for
from dgp_engine.tasks.restore import compose_output, restore_image

from .helpers import tiny_prior
from .manipulation_helpers import quick_state
from .task_helpers import photo_array, tiny_preset


@pytest.fixture(scope="module")
def prior():
    return tiny_prior()


def hole_mask(w: int, h: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[150:190, 200:250] = True
    return hole


def restore(prior, photo, task="inpaint", seed=0, class_id=1, **kw):
    job = restore_image(
        prior, photo, task, preset=tiny_preset(), seed=seed, class_id=class_id, **kw
    )
    return job, job.run_to_end()


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(photo_array(375, 501, seed=3)).save(path)
    return path


@pytest.fixture(scope="module")
def two_results(prior, photo_file):
    """Two inpaintings of the same hole of a 501×375 photo (other seed and class)."""
    from dgp_engine.files.photos import read_image

    photo = read_image(photo_file)
    hole = hole_mask(501, 375)
    a = restore(prior, photo, mask=hole, seed=0, class_id=1)
    b = restore(prior, photo, mask=hole, seed=1, class_id=3)
    return photo, a, b


def test_a_result_records_where_it_sits_and_reproduces_itself(prior, two_results, tmp_path):
    photo, (job, result), _ = two_results
    p = result.state.placement
    assert p is not None and p.task == "inpaint" and p.photo_size == (501, 375)
    assert p.view == job.plan.view and p.feather == job.plan.feather
    assert p.photo_path == str(photo.path.absolute())
    assert p.photo_digest == pixels_digest(photo.rgb)
    assert np.array_equal(p.hole, job.plan.view.crop(job.plan.hole))
    # saved and read back: the same placement, and it composes the run's own result
    result.state.save(tmp_path / "a.dgp")
    back = ReconstructionState.load(tmp_path / "a.dgp")
    assert back.placement.to_json() == p.to_json()
    assert np.array_equal(back.placement.hole, p.hole)
    own = Renderer(prior, back).render()
    frame = PhotoComposer(photo, back.placement)(own[0])
    assert frame.shape == (375, 501, 3)
    assert np.array_equal(frame, to_uint8(result.photo.rgb))
    # outside the working region the frame is the photo, pixel for pixel
    ys, xs = p.view.y, p.view.x
    outside = np.ones((375, 501), bool)
    outside[ys : ys + p.view.h, xs : xs + p.view.w] = False
    assert np.array_equal(frame[outside], to_uint8(photo.rgb)[outside])


def test_the_exporter_composes_as_the_app_preview_does(prior, two_results):
    """The app composes candidates with engine_session.composer (uint8 outputs through
    tasks.compose_output); the engine's PhotoComposer gives the same pixels."""
    from dgp_studio.engine_session import composer

    photo, (job, result), _ = two_results
    output = to_uint8(
        (
            Renderer(prior, result.state)
            .jitter(1, 0.7, seed=5)
            .run_to_end()[0]
            .permute(1, 2, 0)
            .numpy()
            + 1
        )
        / 2
    )
    app = composer(job.photo, job.plan)(output)
    engine = PhotoComposer(job.photo, result.state.placement)(output)
    assert np.array_equal(app, engine)
    assert np.array_equal(
        engine, to_uint8(compose_output(job.photo, job.plan, output / np.float32(255)).rgb)
    )


def test_colour_transfer_and_blend_placements_compose_like_the_run(prior):
    grey = Photo.from_array(
        np.repeat(photo_array(50, 70, seed=1).mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    )
    for task, kw in (("colorize", {}), ("restore", {"region": (20, 5, 40)})):
        job, res = restore(prior, grey, task, **kw)
        p = res.state.placement
        assert p.hole is None and p.whole_photo == (task == "colorize")
        out = Renderer(prior, res.state).render()[0]
        assert np.array_equal(PhotoComposer(grey, p)(out), to_uint8(res.photo.rgb))
        assert np.array_equal(
            to_uint8(compose_into(grey, p, res.model_output).rgb), to_uint8(res.photo.rgb)
        )


def test_superresolution_frames_are_the_new_picture(prior):
    small = Photo.from_array(photo_array(8, 8, seed=2))
    _, res = restore(prior, small, "superres")
    composer = PhotoComposer(small, res.state.placement)
    assert composer.size == (32, 32)
    frame = composer(Renderer(prior, res.state).render()[0])
    assert np.array_equal(frame, to_uint8(res.photo.rgb))


def test_morph_exports_at_the_photo_size_and_reads_back(prior, two_results, tmp_path):
    photo, (_, a), (_, b) = two_results
    placement = common_placement([a.state.placement, b.state.placement], ["A", "B"])
    composer = PhotoComposer(photo, placement)
    morph = Morph(prior, [a.state, b.state])
    first = composer(morph.at(0.0)[0])
    assert np.array_equal(first, to_uint8(a.photo.rgb))  # t = 0: A as it was restored
    hole = hole_mask(501, 375)
    assert not np.array_equal(first[hole], to_uint8(photo.rgb)[hole])
    # APNG is lossless: every frame is exactly the composed one
    times = [0.0, 0.5, 1.0]
    out = export_animation(composer.frames(morph.render(times)), tmp_path / "m.png", fps=6)
    with Image.open(out) as im:
        assert im.n_frames == 3 and im.size == (501, 375)
        for i, t in enumerate(times):
            im.seek(i)
            assert np.array_equal(np.asarray(im.convert("RGB")), composer(morph.at(t)[0]))
    # GIF: the photo's size and frame count; palette quantisation stays close
    out = export_animation(composer.frames(morph.render(times)), tmp_path / "m.gif", fps=6)
    with Image.open(out) as im:
        assert im.n_frames == 3 and im.size == (501, 375)
        got = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(got - first).mean() < 3
    # MP4 of an odd 501×375 photo: padded to 502×376 (said), the photo in the first frame
    export = AnimationExport(composer.frames(morph.render(times)), tmp_path / "m.mp4", fps=6)
    export.run()
    assert "padded to 502×376" in export.even_note
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "m.mp4"))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(376, 502, 3) for f in reader]
    assert tuple(meta["size"]) == (502, 376) and len(frames) == 3
    video = frames[0][:375, :501].astype(int)
    assert np.abs(video - first).mean() < 3
    assert (
        np.abs(video[hole] - first[hole]).mean()
        < np.abs(video[hole] - to_uint8(photo.rgb)[hole].astype(int)).mean()
    )  # the fill, not the hole
    # cropped instead: 500×374
    export = AnimationExport(
        composer.frames(morph.render(times)), tmp_path / "c.mp4", fps=6, even="crop"
    )
    export.run()
    assert tuple(next(imageio_ffmpeg.read_frames(str(tmp_path / "c.mp4")))["size"]) == (500, 374)


def test_composed_frames_keep_the_jobs_length_and_cancellation(prior, two_results, tmp_path):
    photo, (_, a), _ = two_results
    composer = PhotoComposer(photo, a.state.placement)
    job = Renderer(prior, a.state).jitter(4, 0.5)
    stream = composer.frames(job)
    assert len(stream) == 4
    for i, _frame in enumerate(stream):
        if i == 1:
            job.cancel()
    assert stream.cancelled


def test_keyframes_of_different_photos_or_places_are_refused(prior, two_results, photo_file):
    photo, (_, a), _ = two_results
    pa = a.state.placement
    other_photo = dataclasses.replace(
        pa, photo_size=(640, 480), photo_path="/x/other.png", photo_digest="0" * 64
    )
    with pytest.raises(
        CompositionError,
        match=r"A and B — they were restored from different "
        r"photos \(photo.png, 501×375 and other.png, "
        r"640×480\)",
    ):
        common_placement([pa, other_photo], ["A", "B"])
    moved = pa.moved(10, 0, pa.photo_size)
    with pytest.raises(CompositionError, match="different places of the photo"):
        common_placement([pa, moved], ["A", "B"])
    colour = dataclasses.replace(pa, task="restore", hole=None)
    with pytest.raises(CompositionError, match="different tasks"):
        common_placement([pa, colour], ["A", "B"])
    with pytest.raises(CompositionError, match="does not record where its result sits"):
        common_placement([pa, None], ["A", "old.dgp"])


def test_the_photo_is_found_checked_or_given(two_results, tmp_path):
    photo, (_, a), _ = two_results
    p = a.state.placement
    assert photo_for(p).size == (501, 375)  # read from its path
    moved = dataclasses.replace(p, photo_path=str(tmp_path / "gone.png"))
    with pytest.raises(CompositionError, match="not there any more"):
        photo_for(moved)
    changed = tmp_path / "changed.png"
    Image.fromarray(photo_array(375, 501, seed=9)).save(changed)
    with pytest.raises(CompositionError, match="has changed since"):
        photo_for(dataclasses.replace(p, photo_path=str(changed)))
    assert photo_for(p, Photo.from_array(photo_array(375, 501, seed=9))).size == (501, 375)
    with pytest.raises(
        CompositionError, match="restored on a 501×375 photo; the photo given is 100×80"
    ):
        photo_for(p, Photo.from_array(photo_array(80, 100)))
    with pytest.raises(InputError, match="501×375"):
        PhotoComposer(Photo.from_array(photo_array(80, 100)), p)


def test_old_states_load_without_a_placement_and_placements_survive_morph_and_adopt(
    prior, two_results, tmp_path
):
    state = quick_state(prior)  # reconstruct() on a model-size target
    assert state.placement is None
    state.save(tmp_path / "old.dgp")
    assert "placement" not in ReconstructionState.load(tmp_path / "old.dgp").metadata()
    _, (_, a), (_, b) = two_results
    assert Morph(prior, [a.state, b.state]).state_at(0.3).placement is a.state.placement
    assert Renderer(prior, a.state).state_with(class_id=2).placement is a.state.placement


def test_a_damaged_placement_is_refused(two_results):
    _, (_, a), _ = two_results
    data = a.state.placement.to_json()
    with pytest.raises(StateError, match="where its result sits in the photo cannot be read"):
        Placement.from_json({**data, "view": [1, 2]}, a.state.placement.hole_bits())
    with pytest.raises(StateError, match="its hole is missing"):
        Placement.from_json(data, None)
    with pytest.raises(StateError, match="outside its"):
        Placement.from_json({**data, "photo_size": [20, 20]}, a.state.placement.hole_bits())
    bits = torch.from_numpy(a.state.placement.hole_bits())
    assert bits.dtype == torch.uint8 and a.state.tensors()["placement.hole"].dtype == torch.uint8

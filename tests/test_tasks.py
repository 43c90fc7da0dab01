"""Task pipeline on photos of any size: planning, post-processing, untouched pixels."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color

from dgp_engine import Compose, Downsample, Grayscale, Identity, Mask
from dgp_engine.errors import InputError
from dgp_engine.files.photos import Photo
from dgp_engine.tasks.postprocess import composite_hole, transfer_color
from dgp_engine.tasks.restore import (
    canonical_task,
    default_preset,
    plan_task,
    preview_array,
    restore_image,
    sr_factor,
)

from .helpers import tiny_prior
from .task_helpers import photo_array, tiny_preset


@pytest.fixture(scope="module")
def prior():
    return tiny_prior()


def photo(h, w, seed=0, alpha=False) -> Photo:
    arr = photo_array(h, w, seed)
    if alpha:
        arr = np.dstack([arr, np.linspace(0, 255, h * w).reshape(h, w).astype(np.uint8)])
    return Photo.from_array(arr)


def run(prior, ph, task, **kw):
    job = restore_image(prior, ph, task, preset=kw.pop("preset", tiny_preset()), **kw)
    reports = list(job)
    assert reports[-1].state is not None and job.result is not None
    return job, job.result


def outside(shape, region) -> np.ndarray:
    m = np.ones(shape[:2], bool)
    m[region.slices] = False
    return m


def test_task_names_and_presets():
    assert canonical_task("restore") == "reconstruct"
    assert canonical_task("Colorization") == "colorize"
    with pytest.raises(InputError, match="Unknown task"):
        canonical_task("sharpen")
    assert default_preset("inpaint", "bundled").name == "bundled_inpainting"
    assert default_preset("inpaint", "someone_else").name == "inpainting"
    assert default_preset("restore", None).name == "manipulation"
    assert default_preset("superres", "bundled").select_num <= 100


def test_colorize_keeps_full_resolution_lightness(prior):
    ph = photo(45, 70)
    gray = ph.with_pixels(np.repeat(ph.rgb.mean(-1, keepdims=True), 3, -1))
    job, res = run(prior, gray, "colorize", class_id=1)
    assert isinstance(job.plan.degradation, Compose)  # gray + margin mask (non-square)
    assert res.photo.size == (70, 45)
    l_in = color.rgb2lab(gray.rgb)[..., 0]
    l_out = color.rgb2lab(res.photo.rgb)[..., 0]
    assert np.abs(l_in - l_out).mean() < 1.0
    assert res.state.task["name"] == "compose"


@pytest.mark.parametrize("h, w", [(90, 30), (30, 90)], ids=["1:3", "3:1"])
def test_colorize_covers_a_long_photo_with_colour_everywhere(prior, h, w):
    """The whole 1:3 / 3:1 photo is fitted into the model's square (edge-padded margin
    out of the loss) and every pixel takes a, b from the model's content box."""
    ph = photo(h, w, seed=2)
    gray = ph.with_pixels(np.repeat(ph.rgb.mean(-1, keepdims=True), 3, -1))
    job, res = run(prior, gray, "colorize", class_id=1)
    view = job.plan.view
    assert (view.x, view.y, view.w, view.h) == (0, 0, w, h) and view.padded
    assert max(view.cw, view.ch) == prior.resolution
    assert job.plan.known is not None and not job.plan.known.all()  # margin left out
    chroma = np.linalg.norm(color.rgb2lab(res.photo.rgb)[..., 1:], axis=-1)
    assert (chroma > 0.5).mean() > 0.99  # no grey strip
    expected = transfer_color(gray.rgb, view.content(res.model_output))
    np.testing.assert_allclose(res.photo.rgb, expected, atol=1e-6)


def test_a_region_enlarged_more_than_twice_is_noted(prior):
    ph = photo(100, 100)
    hole = np.zeros((100, 100), bool)
    hole[40:60, 40:60] = True
    big = plan_task(ph, "inpaint", prior.resolution, mask=hole, region=(0, 0, 80))
    assert any("soft" in n and "larger model" in n for n in big.notes)  # 80 px > 2 × 32
    ok = plan_task(ph, "inpaint", prior.resolution, mask=hole, region=(20, 20, 60))
    assert not any("soft" in n for n in ok.notes)
    colour = plan_task(ph, "colorize", prior.resolution, region=(0, 0, 80))
    assert not any("soft" in n for n in colour.notes)  # L stays the photo's own


def test_transfer_color_and_composite_units():
    rng = np.random.default_rng(0)
    orig = rng.random((20, 30, 3)).astype(np.float32) * 0.5 + 0.25
    model = np.zeros((8, 8, 3), np.float32)
    model[..., 0] = 0.8  # reddish chroma everywhere
    model[..., 1:] = 0.3
    out = transfer_color(orig, model)
    assert out.shape == orig.shape
    lab = color.rgb2lab(out)
    assert lab[..., 1].mean() > 20  # a (red-green) from the model
    hole = np.zeros((20, 30), bool)
    hole[8:12, 10:15] = True
    comp = composite_hole(orig, np.zeros_like(orig), hole, feather=2)
    assert comp[hole].max() == 0.0
    far = np.ones_like(hole)
    far[5:15, 7:18] = False
    assert np.array_equal(comp[far], orig[far])


def test_inpaint_region_leaves_the_rest_untouched(prior):
    ph = photo(90, 120, alpha=True)
    hole = np.zeros((90, 120), bool)
    hole[40:50, 60:72] = True
    job, res = run(prior, ph, "inpaint", mask=hole, class_id=2)
    region = job.plan.view.region
    assert region is not None and region.size >= 32
    out = res.photo
    assert out.size == ph.size
    assert np.array_equal(
        out.rgb[outside(ph.rgb.shape, region)], ph.rgb[outside(ph.rgb.shape, region)]
    )
    assert np.array_equal(out.alpha, ph.alpha)  # transparency kept as it was
    assert not np.allclose(out.rgb[hole], ph.rgb[hole])
    from scipy.ndimage import binary_dilation

    near = binary_dilation(hole, np.ones((3, 3), bool), iterations=job.plan.feather + 1)
    assert np.array_equal(out.rgb[~near], ph.rgb[~near])  # known pixels from the input


def test_inpaint_hole_too_wide_uses_whole_photo(prior):
    ph = photo(30, 90)
    hole = np.zeros((30, 90), bool)
    hole[10:20, 5:80] = True
    job, res = run(prior, ph, "inpaint", mask=hole)
    assert job.plan.view.padded and job.notes
    assert res.photo.size == (90, 30)
    keep = 10 - job.plan.feather - 1  # rows above the hole and its seam
    assert keep > 0 and np.array_equal(res.photo.rgb[:keep], ph.rgb[:keep])


def test_user_region_restores_only_there(prior):
    ph = photo(60, 80, seed=3)
    job, res = run(prior, ph, "restore", region="50,30,40", class_id=0)
    region = job.plan.view.region
    assert (region.x, region.y, region.size) == (40, 20, 40)  # moved inside the photo
    assert isinstance(job.plan.degradation, Identity)
    mask = outside(ph.rgb.shape, region)
    assert np.array_equal(res.photo.rgb[mask], ph.rgb[mask])
    assert not np.array_equal(res.photo.rgb[~mask], ph.rgb[~mask])


def test_superres_of_a_real_small_photo(prior):
    assert sr_factor(8, 32) == 4 and sr_factor(16, 32) == 2 and sr_factor(4, 32) == 8
    job, res = run(prior, photo(8, 8), "superres", class_id=0)
    assert job.plan.factor == 4 and res.photo.size == (32, 32)
    assert isinstance(job.plan.degradation, Downsample)
    job, res = run(prior, photo(6, 8, alpha=True), "superres", class_id=0)
    assert res.photo.size == (32, 24) and res.photo.alpha.shape == (24, 32)
    with pytest.raises(InputError, match="at most 16 px"):
        restore_image(prior, photo(20, 20), "superres", preset=tiny_preset())
    with pytest.raises(InputError, match="takes at most 8 px"):
        restore_image(prior, photo(12, 12), "superres", factor=4, preset=tiny_preset())
    job, res = run(prior, photo(50, 50), "superres", region="10,10,16")  # a region instead
    assert res.photo.size == (32, 32)


def test_hybrid_composes_sr_gray_mask(prior):
    hole = np.zeros((16, 16), bool)
    hole[5:9, 5:9] = True
    job, res = run(prior, photo(16, 16), "hybrid", mask=hole, class_id=3)
    parts = job.plan.degradation.parts
    assert [type(p) for p in parts] == [Downsample, Grayscale, Mask]
    assert parts[0].factor == 2 and res.photo.size == (32, 32)


def test_defend_stops_early(prior):
    preset = tiny_preset(iterations=[5, 5], stop_mse=10.0)
    job, res = run(prior, photo(32, 32), "defend", preset=preset, class_id=0)
    assert res.state.progress["step"] < 10  # the engine ends each stage at stop_mse


def test_cancel_gives_a_partial_result(prior):
    job = restore_image(
        prior, photo(32, 32), "restore", class_id=0, preset=tiny_preset(iterations=[50, 50])
    )
    for report in job:
        if report.phase == "optimize" and report.step == 3 and not report.done:
            job.cancel()
            preview = preview_array(report, max_side=16)
            assert preview.shape == (16, 16, 3) and preview.dtype == np.uint8
    res = job.result
    assert res.cancelled and res.state.progress["step"] == 3
    assert res.photo.size == (32, 32)


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"task": "inpaint"}, "needs a mask"),
        ({"task": "inpaint", "mask": np.zeros((10, 10), bool)}, "10×10 px but the picture"),
        ({"task": "inpaint", "mask": np.zeros((40, 50), bool)}, "all black"),
        ({"task": "restore", "region": "60,0,20"}, "outside"),
        ({"task": "superres", "factor": 3}, "2, 4 or 8"),
    ],
)
def test_bad_requests(prior, kw, words):
    with pytest.raises(InputError, match=words):
        plan_task(photo(40, 50), kw.pop("task"), prior.resolution, **kw)


def test_inpaint_region_without_the_mask_is_refused(prior):
    hole = np.zeros((40, 50), bool)
    hole[2:4, 2:4] = True
    with pytest.raises(InputError, match="holds none of the mask"):
        plan_task(photo(40, 50), "inpaint", prior.resolution, mask=hole, region="20,10,25")


def test_colour_transfer_in_bands_equals_the_whole_photo_at_once():
    """transfer_color converts in bands of rows (memory); the result is the per-pixel
    Lab recombination of the whole photo, computed here directly with scikit-image."""
    import warnings

    from skimage import color

    from dgp_engine.tasks import postprocess

    rng = np.random.default_rng(3)
    rows = postprocess.COLOR_BAND_ROWS * 2 + 17  # two full bands and a short one
    photo = rng.random((rows, 40, 3), dtype=np.float32)
    colored = rng.random((rows, 40, 3), dtype=np.float32)
    lab = color.rgb2lab(photo).astype(np.float32)
    lab[..., 1:] = color.rgb2lab(colored).astype(np.float32)[..., 1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = np.clip(color.lab2rgb(lab), 0, 1)
    got = postprocess.transfer_color(photo, colored)
    assert got.shape == photo.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)

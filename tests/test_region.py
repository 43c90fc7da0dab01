"""Working regions: parsing, validation, default placement, views, feathered blending."""

from __future__ import annotations

import numpy as np
import pytest

from dgp_engine.errors import InputError
from dgp_engine.method.region import (
    MIN_CONTEXT,
    Region,
    View,
    blend_into,
    clamp_region,
    context_side,
    default_region,
    hole_weight,
    largest_hole,
    parse_region,
    region_weight,
    resize,
    resize_mask,
)
from dgp_engine.method.taskspec import RegionAdvisory, region_advisory, working_region


def test_parse_region():
    assert parse_region("10,20,64") == Region(10, 20, 64)
    assert parse_region(" 1 2 30 ") == Region(1, 2, 30)
    assert parse_region((3, 4, 50)) == Region(3, 4, 50)
    for bad in ("10,20", "a,b,c", "1,2,3,4"):
        with pytest.raises(InputError, match="x,y,size"):
            parse_region(bad)


def test_clamp_region():
    assert clamp_region(Region(10, 5, 40), 100, 60) == Region(10, 5, 40)
    assert clamp_region(Region(80, -5, 40), 100, 60) == Region(60, 0, 40)  # moved inside
    with pytest.raises(InputError, match="outside the 100×60 photo"):
        clamp_region(Region(100, 0, 20), 100, 60)
    with pytest.raises(InputError, match="outside"):
        clamp_region(Region(-30, 0, 20), 100, 60)
    with pytest.raises(InputError, match="shorter side"):
        clamp_region(Region(0, 0, 61), 100, 60)
    with pytest.raises(InputError, match="too small"):
        clamp_region(Region(0, 0, 2), 100, 60)


def test_default_region_holds_the_hole_with_context():
    hole = np.zeros((300, 400), bool)
    hole[100:140, 250:270] = True
    r = default_region(hole, model_res=64)
    assert r.size == 120  # three times the hole's longer side
    x0, y0, x1, y1 = r.box
    assert x0 <= 250 and x1 >= 270 and y0 <= 100 and y1 >= 140
    assert 0 <= x0 and x1 <= 400 and 0 <= y0 and y1 <= 300
    small = np.zeros((300, 400), bool)
    small[5, 395] = True  # a tiny hole in a corner: model-sized square, kept inside
    r = default_region(small, model_res=64)
    assert r.size == 64 and r.box[2] == 400 and r.y == 0
    wide = np.zeros((50, 400), bool)
    wide[20:30, 10:390] = True  # wider than any square that fits
    assert default_region(wide, model_res=64) is None


def test_region_weight_feathers_only_inner_edges():
    w = region_weight(Region(0, 10, 40), 100, 50, feather=5)
    assert w[20, 20] == 1.0
    assert w[20, 0] == 1.0  # left edge lies on the photo border: no seam
    assert w[20, -1] == 0.0 and w[0, 20] == 0.0  # inner edges: exactly the photo
    assert w[-1, 20] == 1.0  # bottom edge lies on the photo border too
    assert np.all(np.diff(w[20, 30:]) <= 0)


def test_blend_leaves_outside_untouched():
    rng = np.random.default_rng(0)
    base = rng.random((50, 70, 3)).astype(np.float32)
    region = Region(20, 5, 30)
    patch = np.zeros((30, 30, 3), np.float32)
    out = blend_into(base, patch, region, region_weight(region, 70, 50, 4))
    inside = np.zeros((50, 70), bool)
    inside[region.slices] = True
    assert np.array_equal(out[~inside], base[~inside])
    assert out[20, 35].max() == 0.0
    assert np.array_equal(out[5, 20:50], base[5, 20:50])  # weight 0 on the seam's edge


def test_views():
    v = View.fit(100, 50, 64)
    assert (v.cw, v.ch, v.ox, v.oy) == (64, 32, 0, 16) and v.padded
    known = v.known_mask()
    assert known.sum() == 64 * 32
    img = np.random.default_rng(1).random((50, 100, 3)).astype(np.float32)
    m = v.to_model(img)
    assert m.shape == (64, 64, 3)
    assert np.array_equal(m[0], m[16])  # margin repeats the edge
    assert v.from_model(m).shape == (50, 100, 3)
    sr = View.fit(7, 5, 32, grid=4)
    assert sr.cw % 4 == 0 and sr.ch % 4 == 0 and sr.ox % 4 == 0 and sr.oy % 4 == 0
    r = View.of_region(Region(3, 4, 20), 32)
    assert not r.padded and r.region == Region(3, 4, 20)
    assert r.crop(img).shape == (20, 20, 3)


def test_resize_and_masks():
    img = np.random.default_rng(2).random((40, 30, 3)).astype(np.float32)
    assert resize(img, 10, 12).shape == (10, 12, 3)
    up = resize(img, 80, 60)
    assert up.min() >= img.min() and up.max() <= img.max()
    hole = np.zeros((40, 40), bool)
    hole[10, 10] = True
    assert resize_mask(hole, 10, 10).sum() >= 1  # a one-pixel hole survives down-scaling
    w = hole_weight(hole, 3)
    assert w[10, 10] == 1.0 and 0 < w[10, 12] < 1 and w[10, 15] == 0.0


def test_automatic_region_keeps_the_enlargement_at_most_two_times():
    """The 64 px bundled model: a hole of 77 px used to get a 231 px square (a third of
    it), one of 106 px a 318 px square; both came back enlarged 3.6× / 5×."""
    photo = np.zeros((600, 800), bool)
    badge = photo.copy()
    badge[200:277, 300:377] = True  # 77 px: fits 128 px with context
    r = working_region("inpaint", (800, 600), 64, hole=badge)
    assert r.size == 128  # the sharp limit, not 3 × 77 = 231
    x0, y0, x1, y1 = r.box
    assert x0 <= 300 and x1 >= 377 and y0 <= 200 and y1 >= 277
    assert min(300 - x0, x1 - 377, 200 - y0, y1 - 277) >= 77 // 4  # context kept
    assert region_advisory("inpaint", r.size, 64) is None
    small = photo.copy()
    small[300:330, 400:430] = True  # 30 px: full context, 90 ≤ 128
    assert working_region("inpaint", (800, 600), 64, hole=small).size == 90
    big = photo.copy()
    big[100:206, 100:206] = True  # 106 px: too large for 128 px
    r = working_region("inpaint", (800, 600), 64, hole=big)
    assert r.size == context_side(106, MIN_CONTEXT) == 159  # least context, not 318
    assert working_region("inpaint", (800, 600), 256, hole=big).size == 318  # 1.2×: full


def test_advisory_names_both_remedies():
    a = region_advisory("inpaint", 159, 64, hole_side=106)
    assert isinstance(a, RegionAdvisory) and a.factor == pytest.approx(159 / 64)
    assert a.sharp_side == 128 and a.largest_hole == largest_hole(128, MIN_CONTEXT) == 85
    assert a.model_resolution_needed == 128  # 80 px would do; priors come in powers of two
    assert region_advisory("inpaint", 129, 64).model_resolution_needed == 128  # not 65
    larger, smaller = a.remedies
    assert "larger model, 128 px or more" in larger and "64 px" in larger
    assert "mask at most 85 px across" in smaller and "106 px" in smaller
    assert larger in a.message and smaller in a.message and "2.5×" in a.message
    assert a.to_dict()["kind"] == "soft-enlargement"
    # a region given by hand, without a mask too big for it: shrink the region
    assert "shrink the region to at most 128 px" in region_advisory("restore", 200, 64).message
    assert region_advisory("inpaint", 128, 64) is None
    assert region_advisory("colorize", 1000, 64) is None  # L stays the photo's own
    assert region_advisory("superres", 1000, 64) is None  # a new picture


def test_plan_carries_the_advisory_once():
    from dgp_engine.files.photos import Photo
    from dgp_engine.tasks.restore import plan_task

    photo = Photo.from_array(np.full((300, 400, 3), 128, np.uint8))
    hole = np.zeros((300, 400), bool)
    hole[100:150, 100:150] = True  # 50 px with a 32 px model
    plan = plan_task(photo, "inpaint", 32, mask=hole)
    assert plan.view.w == context_side(50, MIN_CONTEXT) == 75
    (a,) = plan.advisories
    assert a.hole_side == 50 and a.side == 75
    assert plan.notes.count(a.message) == 1
    hole[:] = False
    hole[100:120, 100:120] = True  # 20 px: a sharp 60 px square
    plan = plan_task(photo, "inpaint", 32, mask=hole)
    assert plan.view.w == 60 and plan.advisories == [] and plan.notes == []

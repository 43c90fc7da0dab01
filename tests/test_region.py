"""Working regions: parsing, validation, default placement, views, feathered blending."""

from __future__ import annotations

import numpy as np
import pytest

from dgp_engine.errors import InputError
from dgp_engine.method.region import (
    Region,
    View,
    blend_into,
    clamp_region,
    default_region,
    hole_weight,
    parse_region,
    region_weight,
    resize,
    resize_mask,
)


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

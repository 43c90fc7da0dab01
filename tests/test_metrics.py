"""PSNR / SSIM / MSE on [0, 1] images, whole image or a hole."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dgp_engine.errors import InputError
from dgp_engine.tasks.metrics import mse, psnr, score, ssim


def pair(seed=0, shape=(24, 24, 3), noise=0.05):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    return a, np.clip(a + rng.normal(0, noise, shape), 0, 1)


def test_identical_images():
    a, _ = pair()
    m = score(a, a)
    assert m["mse"] == 0 and math.isinf(m["psnr"]) and m["ssim"] == pytest.approx(1.0)


def test_matches_scikit_image_with_data_range_one():
    a, b = pair()
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0))
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, data_range=1.0, channel_axis=-1))
    assert mse(a, b) == pytest.approx(np.mean((a - b) ** 2))
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / mse(a, b)))


def test_hole_only():
    a, _ = pair()
    b = a.copy()
    hole = np.zeros((24, 24), bool)
    hole[8:16, 8:16] = True
    b[hole] = 0.0
    b[0, 0] = 1 - b[0, 0]  # an error outside the hole does not count
    m = score(a, b, hole)
    assert m["mse"] == pytest.approx(np.mean(a[hole] ** 2))
    assert m["ssim"] == pytest.approx(
        structural_similarity(a[8:16, 8:16], b[8:16, 8:16], data_range=1.0, channel_axis=-1)
    )


def test_bad_inputs():
    a, b = pair()
    with pytest.raises(InputError, match="differ in size"):
        score(a, b[:10])
    with pytest.raises(InputError, match="no pixels"):
        score(a, b, np.zeros((24, 24), bool))
    small = np.zeros((24, 24), bool)
    small[3, 3] = True
    with pytest.raises(InputError, match="too small for SSIM"):
        ssim(a, b, small)
    tiny_a, tiny_b = pair(shape=(5, 5, 3))
    assert -1 <= ssim(tiny_a, tiny_b) <= 1  # window shrinks to fit

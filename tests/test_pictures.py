"""The one conversion from model tensors to uint8 pictures."""

from __future__ import annotations

import numpy as np
import torch

from dgp_engine.files.animation import frame_array
from dgp_engine.method import manipulate
from dgp_engine.method.pictures import signed_to_uint8


def test_values_shapes_and_clamping():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0]).view(1, 1, 5).expand(3, 1, 5)
    out = signed_to_uint8(x)
    assert out.dtype == np.uint8 and out.shape == (1, 5, 3)
    assert out[0, :, 0].tolist() == [0, 0, 128, 255, 255]
    batch = torch.zeros(4, 3, 6, 8)
    assert signed_to_uint8(batch).shape == (4, 6, 8, 3)


def test_downscale_keeps_the_aspect_and_averages():
    x = torch.zeros(3, 40, 20)  # left half mid-grey (0 → 128)
    x[:, :, 10:] = 1.0  # right half white
    small = signed_to_uint8(x, max_side=10)
    assert small.shape == (10, 5, 3)
    assert signed_to_uint8(x, max_side=64).shape == (40, 20, 3)  # never upscaled
    assert signed_to_uint8(torch.zeros(2, 3, 40, 20), max_side=10).shape == (2, 10, 5, 3)
    assert (small[:, :2, 0] == 128).all() and (small[:, 3:, 0] == 255).all()


def test_everyone_uses_it():
    assert manipulate.signed_to_uint8 is signed_to_uint8
    x = torch.rand(3, 8, 8) * 2 - 1
    assert np.array_equal(frame_array(x), signed_to_uint8(x))

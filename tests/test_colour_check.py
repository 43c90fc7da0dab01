"""Telling photos already in colour from black-and-white ones (grey or toned), so a
colorization batch does not replace true colours."""

from __future__ import annotations

import numpy as np
from skimage import color

from dgp_engine.tasks.postprocess import CHROMA_COLOUR, OFF_TONE_COLOUR, colour_check

from .task_helpers import photo_array


def grey(rgb: np.ndarray) -> np.ndarray:
    g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(g.round().astype(np.uint8)[..., None], 3, axis=-1)


def toned(
    rgb: np.ndarray, shadow: tuple[float, float], highlight: tuple[float, float]
) -> np.ndarray:
    """A toned print: the grey photo's lightness, an (a, b) tone drifting from the
    shadows' hue to the highlights' (split toning), strongest in the mid-tones."""
    g = grey(rgb)[..., 0].astype(np.float32) / 255
    lab = np.zeros(g.shape + (3,), np.float32)
    lab[..., 0] = g * 100
    drift = (1 - g)[..., None] * np.array(shadow) + g[..., None] * np.array(highlight)
    lab[..., 1:] = drift * (0.3 + np.sin(np.pi * g))[..., None]
    return (np.clip(color.lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)


def sepia(rgb: np.ndarray) -> np.ndarray:
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return np.clip(rgb.astype(np.float32) @ m.T, 0, 255).round().astype(np.uint8)


def scene(seed: int = 0) -> np.ndarray:
    """A photo-like picture of several hues: the gradients plus a red and a green patch."""
    a = photo_array(300, 400, seed)
    a[40:120, 50:150] = (200, 40, 30)
    a[180:260, 250:350] = (40, 150, 60)
    return a


def test_a_colour_photo_is_colour_and_says_why():
    check = colour_check(scene())
    assert check.colour and check.off_tone > OFF_TONE_COLOUR
    assert check.reason.startswith("already in colour: colours of several hues")
    assert colour_check(scene().astype(np.float32) / 255).colour  # float input too


def test_grey_and_toned_black_and_white_photos_are_not_colour():
    for seed in range(3):
        photo = scene(seed)
        g = colour_check(grey(photo))
        assert not g.colour and g.chroma < 1 and "grey" in g.reason
        for print_ in (
            sepia(photo),
            toned(photo, (12, 18), (-3, 20)),  # sepia / split
            toned(photo, (15, -5), (5, 15)),  # selenium-like
            toned(photo, (-5, -30), (-8, -15)),
        ):  # cyanotype
            check = colour_check(print_)
            assert check.chroma > 10  # clearly tinted …
            assert not check.colour, check  # … but one tone: black and white
            assert "toned" in check.reason
    assert not colour_check(grey(scene())[..., 0]).colour  # a single channel


def test_strong_or_non_toning_single_hues_are_colour():
    # a muted green field: one hue as weak as a toning's, but no toning is green
    ramp = np.linspace(60, 200, 64)[:, None, None] * np.ones((64, 64, 3))
    field = (ramp + np.array([-14, 14, -10])).astype(np.uint8)
    check = colour_check(field)
    assert check.colour and check.chroma < CHROMA_COLOUR and check.off_tone < OFF_TONE_COLOUR
    assert "no toning makes" in check.reason
    # a saturated orange: a toning hue, but far stronger than any toned print
    orange = np.zeros((64, 64, 3), np.uint8)
    orange[..., 0] = np.linspace(120, 255, 64, dtype=np.uint8)[None, :]
    orange[..., 1] = orange[..., 0] // 2
    check = colour_check(orange)
    assert check.colour and check.chroma > CHROMA_COLOUR and "strong colour" in check.reason


def test_a_small_coloured_mark_on_a_grey_photo_stays_black_and_white():
    photo = grey(scene())
    photo[10:30, 10:40] = (220, 20, 20)  # a red stamp on 0.5 % of the picture
    assert not colour_check(photo).colour

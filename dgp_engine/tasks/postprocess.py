"""Post-processing of restored images (docs/method.md#post-processing).

* colorization: the result keeps the original's lightness L at its full
  resolution and takes only the chroma a, b (CIELab) from the model, upsampled;
* inpainting: known pixels come from the input, the hole from the model, with a
  feathered seam.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage import color

from ..method.region import hole_weight, resize

#: Rows converted at a time: scikit-image's Lab conversions make several float64 copies of
#: what they are given, so a whole large photo at once costs ~100 bytes a pixel.
COLOR_BAND_ROWS = 256


def transfer_color(original: np.ndarray, colored: np.ndarray) -> np.ndarray:
    """RGB (H×W×3, [0, 1]) with L from ``original`` and a, b from ``colored``
    (any size; its chroma is resized to H×W).  Converted in bands of rows (the
    conversions are per pixel), so memory stays near the output's own size."""
    # float32 throughout: half the memory and time of float64 on large photos.
    original = np.asarray(original, dtype=np.float32)
    h, w = original.shape[:2]
    ab = _lab(np.asarray(colored, dtype=np.float32))[..., 1:]
    if ab.shape[:2] != (h, w):
        ab = resize(ab, h, w)
    out = np.empty((h, w, 3), dtype=np.float32)
    for y in range(0, h, COLOR_BAND_ROWS):
        rows = slice(y, min(h, y + COLOR_BAND_ROWS))
        lab = _lab(original[rows])
        lab[..., 1:] = ab[rows]
        with warnings.catch_warnings():  # out-of-gamut a,b are clipped, as intended
            warnings.simplefilter("ignore", UserWarning)
            rgb: np.ndarray = color.lab2rgb(lab)  # scikit-image is untyped
        out[rows] = np.clip(rgb, 0.0, 1.0)
    return out


def _lab(rgb: np.ndarray) -> np.ndarray:
    lab: np.ndarray = color.rgb2lab(np.clip(rgb, 0.0, 1.0)).astype(np.float32)
    return lab


def composite_hole(original: np.ndarray, restored: np.ndarray, hole: np.ndarray,
                   feather: int = 2) -> np.ndarray:
    """Known pixels from ``original``, the hole from ``restored`` (same size), blended
    over ``feather`` px outside the hole.  Pixels farther from the hole are copied."""
    w = hole_weight(np.asarray(hole, dtype=bool), feather)[..., None]
    original = np.asarray(original, dtype=np.float32)
    out = original * (1.0 - w) + np.asarray(restored, dtype=np.float32) * w
    return np.where(w > 0, out, original).astype(np.float32)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """The luma the colorization degradation uses (docs/method.md#degradations), as 3 equal
    channels."""
    from ..method.degradations import GRAY_WEIGHTS

    a = np.asarray(rgb, dtype=np.float32)
    g = a[..., 0] * GRAY_WEIGHTS[0] + a[..., 1] * GRAY_WEIGHTS[1] + a[..., 2] * GRAY_WEIGHTS[2]
    return np.repeat(g[..., None], 3, axis=-1)

"""Post-processing of restored images (DGP.md §7).

* colorization: the result keeps the original's lightness L at its full
  resolution and takes only the chroma a, b (CIELab) from the model, upsampled;
* inpainting: known pixels come from the input, the hole from the model, with a
  feathered seam.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage import color

from .region import hole_weight, resize


def transfer_color(original: np.ndarray, colored: np.ndarray) -> np.ndarray:
    """RGB (H×W×3, [0, 1]) with L from ``original`` and a, b from ``colored``
    (any size; its chroma is resized to H×W)."""
    # float32 throughout: half the memory and time of float64 on large photos.
    original = np.clip(np.asarray(original, dtype=np.float32), 0.0, 1.0)
    h, w = original.shape[:2]
    lightness = color.rgb2lab(original)[..., :1]
    ab = color.rgb2lab(np.clip(np.asarray(colored, dtype=np.float32), 0.0, 1.0))[..., 1:]
    if ab.shape[:2] != (h, w):
        ab = resize(ab, h, w)
    lab = np.concatenate([lightness, ab.astype(np.float32)], axis=-1)
    with warnings.catch_warnings():  # out-of-gamut a,b are clipped, as intended
        warnings.simplefilter("ignore", UserWarning)
        out: np.ndarray = color.lab2rgb(lab)  # scikit-image is untyped
    rgb: np.ndarray = np.clip(out, 0.0, 1.0).astype(np.float32)
    return rgb


def composite_hole(original: np.ndarray, restored: np.ndarray, hole: np.ndarray,
                   feather: int = 2) -> np.ndarray:
    """Known pixels from ``original``, the hole from ``restored`` (same size), blended
    over ``feather`` px outside the hole.  Pixels farther from the hole are copied."""
    w = hole_weight(np.asarray(hole, dtype=bool), feather)[..., None]
    original = np.asarray(original, dtype=np.float32)
    out = original * (1.0 - w) + np.asarray(restored, dtype=np.float32) * w
    return np.where(w > 0, out, original).astype(np.float32)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """The luma the colorization degradation uses (DGP.md §6), as 3 equal channels."""
    from .degradations import GRAY_WEIGHTS

    a = np.asarray(rgb, dtype=np.float32)
    g = a[..., 0] * GRAY_WEIGHTS[0] + a[..., 1] * GRAY_WEIGHTS[1] + a[..., 2] * GRAY_WEIGHTS[2]
    return np.repeat(g[..., None], 3, axis=-1)

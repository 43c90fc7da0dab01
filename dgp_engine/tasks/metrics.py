"""Image quality metrics of the paper's protocol (docs/method.md#evaluation), on [0, 1] images.

PSNR, SSIM and MSE use scikit-image with ``data_range=1``.  For inpainting the
paper scores the hole only: MSE/PSNR over the hole's pixels, SSIM over the
hole's bounding box (a square for the paper's centre hole).
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from ..errors import InputError


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"Images to compare differ in size: {a.shape} vs {b.shape}.")
    if a.ndim not in (2, 3) or a.size == 0:
        raise InputError(f"Expected H×W or H×W×C images, got {a.shape}.")
    return np.clip(a, 0.0, 1.0), np.clip(b, 0.0, 1.0)


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    a, b = _pair(a, b)
    d = (a - b) ** 2
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            raise InputError("The mask selects no pixels to score.")
        d = d[m]
    return float(d.mean())


def psnr_from_mse(err: float) -> float:
    """PSNR in dB for data range 1 (inf for identical images)."""
    return float("inf") if err <= 0 else 10.0 * math.log10(1.0 / err)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    return psnr_from_mse(mse(a, b, mask))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM (Gaussian-free 7×7 window, as scikit-image's default); with a mask, over
    the mask's bounding box.  Windows shrink for images smaller than 7 px."""
    a, b = _pair(a, b)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            raise InputError("The mask selects no pixels to score.")
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        b = b[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    side = min(a.shape[0], a.shape[1])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        raise InputError(f"An area of {a.shape[1]}×{a.shape[0]} px is too small for SSIM.")
    kw = {"channel_axis": -1} if a.ndim == 3 else {}
    return float(structural_similarity(a, b, data_range=1.0, win_size=win, **kw))


def score(
    reference: np.ndarray, result: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """{"psnr", "ssim", "mse"} of ``result`` against ``reference`` (optionally on a hole)."""
    err = mse(reference, result, mask)
    return {"psnr": psnr_from_mse(err), "ssim": ssim(reference, result, mask), "mse": err}

"""Mask painting in image pixels: brush/eraser stamps, rectangles and lassos.

Pure NumPy/Pillow so they are testable without a window; the canvas turns
mouse events into these calls.  The mask is H×W uint8, 255 = area to fill."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from .undo import Bounds, TileRecorder

MIN_BRUSH, MAX_BRUSH = 1, 1000


@lru_cache(maxsize=16)
def brush_stamp(size: int, hardness: float) -> np.ndarray:
    """A round stamp of diameter ``size``: 255 inside ``hardness`` of the radius, a
    linear fall-off to 0 at the edge."""
    size = max(1, int(size))
    r = size / 2.0
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    d = np.hypot(xx - r, yy - r) / r
    h = min(max(float(hardness), 0.0), 1.0)
    if h >= 1.0:
        a = (d <= 1.0).astype(np.float32)
    else:
        a = np.clip((1.0 - d) / (1.0 - h), 0.0, 1.0)
    out: np.ndarray = (a * 255).round().astype(np.uint8)
    return out


def stamp(
    mask: np.ndarray,
    rec: TileRecorder | None,
    cx: float,
    cy: float,
    size: int,
    hardness: float,
    erase: bool,
) -> Bounds | None:
    """Apply one stamp centred at (cx, cy); returns the changed bounds (clipped to the
    mask — strokes may start or run outside the picture)."""
    s = brush_stamp(int(size), round(float(hardness), 3))
    n = s.shape[0]
    x0, y0 = int(math.floor(cx - n / 2)), int(math.floor(cy - n / 2))
    h, w = mask.shape
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x0 + n), min(h, y0 + n)
    if cx0 >= cx1 or cy0 >= cy1:
        return None
    if rec is not None:
        rec.touch(cx0, cy0, cx1, cy1)
    sub = mask[cy0:cy1, cx0:cx1]
    part = s[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    if erase:
        np.minimum(sub, 255 - part, out=sub)
    else:
        np.maximum(sub, part, out=sub)
    return cx0, cy0, cx1, cy1


def segment(
    mask: np.ndarray,
    rec: TileRecorder | None,
    p0: tuple[float, float],
    p1: tuple[float, float],
    size: int,
    hardness: float,
    erase: bool,
) -> Bounds | None:
    """Stamps from p0 to p1 spaced a quarter of the brush apart; returns the bounds."""
    dist = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    steps = max(1, int(math.ceil(dist / max(1.0, size / 4))))
    bounds: Bounds | None = None
    for i in range(1, steps + 1) if dist > 0 else [0]:
        t = i / steps
        b = stamp(
            mask,
            rec,
            p0[0] + (p1[0] - p0[0]) * t,
            p0[1] + (p1[1] - p0[1]) * t,
            size,
            hardness,
            erase,
        )
        bounds = union(bounds, b)
    return bounds


def polygon(
    mask: np.ndarray,
    rec: TileRecorder | None,
    points: list[tuple[float, float]],
    erase: bool = False,
) -> Bounds | None:
    """Fill (or erase) a polygon — the rectangle and lasso tools."""
    if len(points) < 3:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    h, w = mask.shape
    x0, y0 = max(0, int(math.floor(min(xs)))), max(0, int(math.floor(min(ys))))
    x1, y1 = min(w, int(math.ceil(max(xs))) + 1), min(h, int(math.ceil(max(ys))) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    img = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(img).polygon([(x - x0, y - y0) for x, y in points], fill=255)
    shape = np.asarray(img)
    if rec is not None:
        rec.touch(x0, y0, x1, y1)
    sub = mask[y0:y1, x0:x1]
    if erase:
        sub[shape > 0] = 0
    else:
        np.maximum(sub, shape, out=sub)
    return x0, y0, x1, y1


def rectangle(
    mask: np.ndarray,
    rec: TileRecorder | None,
    p0: tuple[float, float],
    p1: tuple[float, float],
    erase: bool = False,
) -> Bounds | None:
    (ax, ay), (bx, by) = p0, p1
    x0, x1 = sorted((ax, bx))
    y0, y1 = sorted((ay, by))
    return polygon(mask, rec, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], erase)


def union(a: Bounds | None, b: Bounds | None) -> Bounds | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])

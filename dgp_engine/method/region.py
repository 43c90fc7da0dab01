"""Working regions: how a photo of any size meets a model that sees an R×R square.

Two ways in (a :class:`View` covers both):

* a square **region** of the photo (default around the mask's bounding box with
  context, or given by the user as x, y, size) is cut and resized to R×R;
* the **whole** photo is fitted into the square (longest side = R, centred) and
  the margin is filled by repeating the edge; a loss mask keeps the model from
  being judged on that margin.

On the way back the content is resized to where it came from and blended in
with a feathered seam; pixels outside the region are never written, so the rest
of the photo stays identical, pixel for pixel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

MIN_REGION = 8  # px; smaller squares carry too little to restore
#: The least margin kept around a hole, in units of its side, when the context is shrunk
#: to keep a square sharp: a quarter of the hole's side on every side (the hole is then
#: two thirds of the square's side, against a third with the full context).
MIN_CONTEXT = 0.25


@dataclass(frozen=True)
class Region:
    """A square of the photo: top-left corner (x, y) and side ``size`` in pixels."""

    x: int
    y: int
    size: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), right/bottom exclusive."""
        return self.x, self.y, self.x + self.size, self.y + self.size

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.size), slice(self.x, self.x + self.size)

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.size}"


#: What ``parse_region`` accepts: a Region, ``"x,y,size"``, or (x, y, size).
RegionLike: TypeAlias = "Region | str | tuple[float | str, ...] | list[float | str]"


def parse_region(text: RegionLike) -> Region:
    """``"x,y,size"`` (or a tuple / Region) → Region."""
    if isinstance(text, Region):
        return text
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    try:
        if len(parts) != 3:
            raise ValueError
        x, y, size = (int(float(p)) for p in parts)
    except (TypeError, ValueError):
        raise InputError(
            f"A region is written x,y,size (three whole numbers, e.g. 120,80,256); got {text!r}."
        ) from None
    return Region(x, y, size)


def clamp_region(region: Region, width: int, height: int) -> Region:
    """Validate a region against a width×height photo.

    A region that overlaps the photo but pokes past an edge is moved inside; one
    that does not overlap it, is too small, or is larger than the photo's shorter
    side is refused with a message saying what fits."""
    x, y, s = region.x, region.y, region.size
    limit = min(width, height)
    if s < MIN_REGION:
        raise InputError(f"The region side {s} px is too small; use at least {MIN_REGION} px.")
    if x >= width or y >= height or x + s <= 0 or y + s <= 0:
        raise InputError(
            f"The region {region} (x,y,size) lies outside the {width}×{height} "
            f"photo. Pick x in 0..{max(0, width - 1)} and y in "
            f"0..{max(0, height - 1)}."
        )
    if s > limit:
        raise InputError(
            f"The region side {s} px is larger than the photo's shorter side "
            f"({limit} px of {width}×{height}); use a size of at most {limit}."
        )
    return Region(min(max(x, 0), width - s), min(max(y, 0), height - s), s)


def mask_bbox(hole: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the True pixels, right/bottom exclusive."""
    rows = np.flatnonzero(hole.any(axis=1))
    cols = np.flatnonzero(hole.any(axis=0))
    if rows.size == 0:
        raise InputError("The mask marks nothing to fill.")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def default_region(
    hole: np.ndarray,
    model_res: int,
    context: float = 1.0,
    max_side: int | None = None,
    *,
    sharp_side: int | None = None,
    min_context: float = MIN_CONTEXT,
) -> Region | None:
    """A square around the hole's bounding box with ``context`` × its side of margin on
    every side (1.0 → the hole is a third of the square, as in the paper), at least
    the model's resolution, at most the photo's shorter side (and ``max_side``).  With
    ``sharp_side`` the context shrinks (down to ``min_context``) so the square stays at
    most that side where the hole allows.  None when the hole is wider than any square
    that fits."""
    h, w = hole.shape
    return region_around(
        mask_bbox(hole),
        w,
        h,
        model_res,
        context,
        max_side,
        sharp_side=sharp_side,
        min_context=min_context,
    )


def region_around(
    box: tuple[int, int, int, int],
    width: int,
    height: int,
    model_res: int,
    context: float = 1.0,
    max_side: int | None = None,
    *,
    sharp_side: int | None = None,
    min_context: float = MIN_CONTEXT,
) -> Region | None:
    """:func:`default_region` for a hole's bounding box (left, top, right, bottom) in a
    width×height photo."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    limit = min(width, height) if max_side is None else min(width, height, max_side)
    if side > limit:
        return None
    want = max(math.ceil(side * (1 + 2 * context)), model_res, MIN_REGION)
    if sharp_side is not None and want > sharp_side:
        # Less context rather than a square enlarged into a soft fill: the smallest square
        # with ``min_context`` around the hole, or the sharp limit when that is larger.
        want = max(sharp_side, context_side(side, min_context), MIN_REGION)
    size = min(want, limit)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x = int(round(cx - size / 2))
    y = int(round(cy - size / 2))
    x = min(max(x, 0), width - size)
    y = min(max(y, 0), height - size)
    # The bounding box must lie inside (rounding can shift by one pixel).
    x = min(max(x, x1 - size), x0)
    y = min(max(y, y1 - size), y0)
    return Region(x, y, size)


def context_side(hole_side: int, context: float) -> int:
    """The side of a square holding a hole of ``hole_side`` px with ``context`` × that
    side of margin on every side."""
    return int(math.ceil(hole_side * (1 + 2 * context)))


def largest_hole(square_side: int, context: float) -> int:
    """The largest hole side that a square of ``square_side`` px holds with ``context``
    × its side of margin on every side (the inverse of :func:`context_side`)."""
    return int(math.floor(square_side / (1 + 2 * context)))


# --- resizing ---------------------------------------------------------------------------
def resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an H×W or H×W×C float image: antialiased bilinear down, bicubic up."""
    a = np.asarray(arr, dtype=np.float32)
    if a.shape[:2] == (height, width):
        same: np.ndarray = a.copy()  # numpy types ndarray.copy() as Any
        return same
    squeeze = a.ndim == 2
    t = torch.from_numpy(np.ascontiguousarray(a if not squeeze else a[..., None]))
    t = t.permute(2, 0, 1).unsqueeze(0)
    down = height <= a.shape[0] and width <= a.shape[1]
    mode = "bilinear" if down else "bicubic"
    out = F.interpolate(t, size=(height, width), mode=mode, align_corners=False, antialias=down)
    lo, hi = float(a.min()), float(a.max())
    result = out.clamp(lo, hi)[0].permute(1, 2, 0).numpy()
    return result[..., 0] if squeeze else result


def resize_mask(hole: np.ndarray, height: int, width: int) -> np.ndarray:
    """A hole mask at another size: a pixel is a hole if any real hole falls in it."""
    cover = resize(hole.astype(np.float32), height, width)
    return cover > 0.02


# --- feathering ----------------------------------------------------------------------------
def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    s: np.ndarray = t * t * (3.0 - 2.0 * t)
    return s


def region_weight(region: Region, width: int, height: int, feather: int) -> np.ndarray:
    """size×size blend weights: 1 inside, easing to 0 at every region edge that lies
    inside the photo (edges on the photo border need no seam)."""
    s = region.size
    f = max(0, min(int(feather), s // 2))
    w = np.ones((s, s), dtype=np.float32)
    if f == 0:
        return w
    ramp = smoothstep(np.arange(s, dtype=np.float32) / f)  # 0 on the edge → 1 at f px
    x0, y0, x1, y1 = region.box
    col = np.ones(s, dtype=np.float32)
    row = np.ones(s, dtype=np.float32)
    if x0 > 0:
        col = np.minimum(col, ramp)
    if x1 < width:
        col = np.minimum(col, ramp[::-1])
    if y0 > 0:
        row = np.minimum(row, ramp)
    if y1 < height:
        row = np.minimum(row, ramp[::-1])
    return w * row[:, None] * col[None, :]


def hole_weight(hole: np.ndarray, feather: int) -> np.ndarray:
    """1 on the hole, easing to 0 within ``feather`` px outside it (the seam)."""
    if feather <= 0:
        return hole.astype(np.float32)
    from scipy.ndimage import distance_transform_edt

    dist = distance_transform_edt(~hole)
    return smoothstep(1.0 - dist / float(feather + 1)).astype(np.float32)


def default_feather(size: int) -> int:
    """Seam width for a square of ``size`` px: about 1/16 of it, at least 2 px."""
    return max(2, int(round(size / 16)))


def blend_into(
    base: np.ndarray, patch: np.ndarray, region: Region, weight: np.ndarray
) -> np.ndarray:
    """A copy of ``base`` with ``patch`` blended into ``region`` by ``weight`` (size×size).
    Pixels outside the region are copied unchanged."""
    out = np.array(base, dtype=np.float32, copy=True)
    ys, xs = region.slices
    old = out[ys, xs]
    w = weight[..., None] if old.ndim == 3 else weight
    out[ys, xs] = old * (1.0 - w) + np.asarray(patch, dtype=np.float32) * w
    # Where the weight is 0 keep the exact old value (no float round-off at all).
    out[ys, xs] = np.where(w > 0, out[ys, xs], old)
    return out


# --- the model's view of a photo --------------------------------------------------------
@dataclass(frozen=True)
class View:
    """Maps a rectangle of the photo (x, y, w, h) onto a rectangle (ox, oy, cw, ch)
    of the model's R×R square; the rest of the square is edge-padded margin."""

    x: int
    y: int
    w: int
    h: int
    resolution: int
    ox: int
    oy: int
    cw: int
    ch: int

    @classmethod
    def of_region(cls, region: Region, resolution: int) -> View:
        return cls(
            region.x, region.y, region.size, region.size, resolution, 0, 0, resolution, resolution
        )

    @classmethod
    def fit(
        cls, width: int, height: int, resolution: int, *, grid: int = 1, x: int = 0, y: int = 0
    ) -> View:
        """The whole width×height rectangle scaled so its longest side fills R, centred.
        ``grid`` keeps the content box on multiples of it (the SR low-res grid)."""
        cells = resolution // grid
        long = max(width, height)
        cw = max(1, int(round(width * cells / long))) * grid
        ch = max(1, int(round(height * cells / long))) * grid
        ox = ((resolution - cw) // 2) // grid * grid
        oy = ((resolution - ch) // 2) // grid * grid
        return cls(x, y, width, height, resolution, ox, oy, cw, ch)

    @property
    def region(self) -> Region | None:
        """The photo square this view covers, if it is a square region."""
        return Region(self.x, self.y, self.w) if self.w == self.h else None

    @property
    def padded(self) -> bool:
        return (self.cw, self.ch) != (self.resolution, self.resolution)

    def known_mask(self) -> np.ndarray:
        """R×R bool: True on the content, False on the margin."""
        m = np.zeros((self.resolution, self.resolution), dtype=bool)
        m[self.oy : self.oy + self.ch, self.ox : self.ox + self.cw] = True
        return m

    def crop(self, arr: np.ndarray) -> np.ndarray:
        return np.asarray(arr)[self.y : self.y + self.h, self.x : self.x + self.w]

    def to_model(self, arr: np.ndarray, *, already_cropped: bool = False) -> np.ndarray:
        """Photo pixels (H×W[×C]) → R×R[×C] in the model's square, margin edge-padded."""
        src = arr if already_cropped else self.crop(arr)
        content = resize(src, self.ch, self.cw)
        return self.pad(content)

    def pad(self, content: np.ndarray) -> np.ndarray:
        r = self.resolution
        pads = [(self.oy, r - self.oy - self.ch), (self.ox, r - self.ox - self.cw)]
        if content.ndim == 3:
            pads.append((0, 0))
        return np.pad(content, pads, mode="edge")

    def content(self, model_arr: np.ndarray) -> np.ndarray:
        """The content box of a model-space array."""
        return np.asarray(model_arr)[self.oy : self.oy + self.ch, self.ox : self.ox + self.cw]

    def from_model(
        self, model_arr: np.ndarray, height: int | None = None, width: int | None = None
    ) -> np.ndarray:
        """Model-space result → the photo rectangle's size (or height×width)."""
        return resize(self.content(model_arr), height or self.h, width or self.w)

"""Aligned faces: the working region of a face prior (docs/method.md#aligned-faces).

A prior trained on FFHQ-style faces (FFHQ, MetFaces) expects every face cropped the
same way: eyes level and at the same height, the face centred and filling a fixed
share of the square.  The crop is built from three points — the centres of the left
eye, of the right eye (as they appear in the photo) and of the mouth — as the FFHQ
dataset's description lays it out:

* the crop's x axis is the mean of the eye-to-eye direction and the eye-to-mouth
  direction turned a quarter turn (so a tilted head comes out upright);
* its half side is the larger of twice the eye distance and 1.8 × the distance from
  the eyes' midpoint to the mouth;
* its centre is the eyes' midpoint moved a tenth of the way to the mouth.

:class:`FaceAlignment` is that square: it warps the photo into the model's R×R
square (antialiased when it shrinks, bicubic, mirrored past the photo's edges, with a
mask of the pixels the photo really covers) and warps a result back into the photo
with a feathered seam.  It is plain data, saved with a result's placement.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .region import resize, smoothstep

#: Below this eye distance (photo px) three points do not locate a face.
MIN_EYE_DISTANCE = 4.0
#: The eyes and the mouth must make a triangle: the mouth at least this far off the eye
#: line, in units of the eye distance (typical faces: 0.8–1.3).
MIN_MOUTH_OFFSET = 0.3
#: …and at most this far (a mouth 3 eye distances below the eyes is not one face).
MAX_MOUTH_OFFSET = 3.0
#: A crop enlarged more than this many times into the model's square comes back soft.
SOFT_FACE_ENLARGEMENT = 4.0


Point = tuple[float, float]


@dataclass(frozen=True)
class FacePoints:
    """The centres of the left eye, the right eye (left and right as seen in the photo)
    and the mouth, in photo pixels (x to the right, y down)."""

    left_eye: Point
    right_eye: Point
    mouth: Point

    def as_list(self) -> list[list[float]]:
        return [list(self.left_eye), list(self.right_eye), list(self.mouth)]

    def __str__(self) -> str:
        return " ".join(f"{x:g},{y:g}" for x, y in (self.left_eye, self.right_eye, self.mouth))


def parse_face_points(text: str | FacePoints | Any) -> FacePoints:
    """``"x,y x,y x,y"`` (left eye, right eye, mouth) or a sequence of three (x, y) pairs
    → :class:`FacePoints`."""
    if isinstance(text, FacePoints):
        return text
    try:
        if isinstance(text, str):
            numbers = [float(p) for p in re.split(r"[,\s;]+", text.strip()) if p]
        else:
            numbers = [float(v) for pair in text for v in pair]
        if len(numbers) != 6 or not all(math.isfinite(v) for v in numbers):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(
            "Face points are written as three x,y pairs — left eye, right eye, mouth — e.g. "
            f'"120,150 180,150 150,215"; got {text!r}.'
        ) from None
    return FacePoints((numbers[0], numbers[1]), (numbers[2], numbers[3]), (numbers[4], numbers[5]))


def check_face_points(points: FacePoints, size: tuple[int, int]) -> tuple[FacePoints, list[str]]:
    """``points`` checked against a ``size`` = (width, height) photo: (the points, with the
    eyes swapped when they were given the other way round, and notes saying so).
    Points outside the photo, eyes on top of each other and a mouth on the eye line (or
    far from it) are refused with a sentence."""
    w, h = size
    for label, (x, y) in (
        ("left eye", points.left_eye),
        ("right eye", points.right_eye),
        ("mouth", points.mouth),
    ):
        if not (0 <= x <= w and 0 <= y <= h):
            raise InputError(
                f"The {label} point {x:g},{y:g} lies outside the {w}×{h} photo: give "
                f"points with x in 0..{w} and y in 0..{h}."
            )
    lx, ly = points.left_eye
    rx, ry = points.right_eye
    mx, my = points.mouth
    ex, ey = rx - lx, ry - ly
    eye_distance = math.hypot(ex, ey)
    if eye_distance < MIN_EYE_DISTANCE:
        raise InputError(
            f"The eyes are {eye_distance:.1f} px apart: give the centres of the two eyes "
            f"(at least {MIN_EYE_DISTANCE:g} px apart), then the mouth."
        )
    cx, cy = (lx + rx) / 2, (ly + ry) / 2
    # how far the mouth lies off the eye line, in eye distances (signed: > 0 below the
    # eyes when the left eye is on the left)
    offset = (ex * (my - cy) - ey * (mx - cx)) / (eye_distance * eye_distance)
    if abs(offset) < MIN_MOUTH_OFFSET:
        raise InputError(
            "The mouth point lies on the line through the eyes: give the left eye, the "
            "right eye and the centre of the mouth, below the eyes."
        )
    if abs(offset) > MAX_MOUTH_OFFSET:
        raise InputError(
            f"The mouth point is {abs(offset):.1f} eye distances from the eyes (a face's is "
            "about 1): give the left eye, the right eye and the centre of the mouth of one "
            "face."
        )
    notes: list[str] = []
    if offset < 0:
        # given right eye first (or the face is mirrored): the mouth tells which is which
        points = FacePoints(points.right_eye, points.left_eye, points.mouth)
        notes.append(
            "The eye points were given right eye first; they were swapped (left eye, "
            "right eye as seen in the photo, then the mouth)."
        )
    return points, notes


@dataclass(frozen=True)
class FaceAlignment:
    """An oriented square of the photo that maps onto the model's ``resolution``² square:
    centre (cx, cy) and the half-side vector (ax, ay) along the square's x axis, in photo
    pixels (continuous coordinates: pixel i covers [i, i + 1)).  The square's y axis is
    (−ay, ax): a quarter turn clockwise on screen."""

    cx: float
    cy: float
    ax: float
    ay: float
    resolution: int

    @classmethod
    def from_points(cls, points: FacePoints, resolution: int) -> FaceAlignment:
        """The FFHQ-style crop of the face whose eyes and mouth are ``points`` (already
        checked: :func:`check_face_points`)."""
        l_eye = np.asarray(points.left_eye, dtype=np.float64)
        r_eye = np.asarray(points.right_eye, dtype=np.float64)
        mouth = np.asarray(points.mouth, dtype=np.float64)
        eye_mid = (l_eye + r_eye) / 2
        eye_to_eye = r_eye - l_eye
        eye_to_mouth = mouth - eye_mid
        # the eye-to-mouth vector turned a quarter turn back points along the eye line
        turned = np.array([eye_to_mouth[1], -eye_to_mouth[0]])
        axis = eye_to_eye + turned
        axis /= np.hypot(*axis)
        half = max(2.0 * float(np.hypot(*eye_to_eye)), 1.8 * float(np.hypot(*eye_to_mouth)))
        centre = eye_mid + 0.1 * eye_to_mouth
        return cls(
            float(centre[0]),
            float(centre[1]),
            float(axis[0] * half),
            float(axis[1] * half),
            int(resolution),
        )

    # --- geometry ----------------------------------------------------------------------
    @property
    def side(self) -> float:
        """The square's side in photo pixels."""
        return 2.0 * math.hypot(self.ax, self.ay)

    @property
    def scale(self) -> float:
        """Photo pixels per model pixel (< 1: the face is enlarged into the model)."""
        return self.side / self.resolution

    @property
    def angle(self) -> float:
        """The square's rotation in degrees (0: eyes level)."""
        return math.degrees(math.atan2(self.ay, self.ax))

    def corners(self) -> np.ndarray:
        """4×2 photo coordinates of the square's corners: top-left, top-right,
        bottom-right, bottom-left (as the model sees them)."""
        c = np.array([self.cx, self.cy])
        x = np.array([self.ax, self.ay])
        y = np.array([-self.ay, self.ax])
        return np.stack([c - x - y, c + x - y, c + x + y, c - x + y])

    def to_photo(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model coordinates (continuous, 0..R) → photo coordinates."""
        r = self.resolution
        s = 2.0 * np.asarray(u, dtype=np.float64) / r - 1.0
        t = 2.0 * np.asarray(v, dtype=np.float64) / r - 1.0
        return self.cx + s * self.ax - t * self.ay, self.cy + s * self.ay + t * self.ax

    def to_model(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Photo coordinates → model coordinates (continuous, 0..R inside the square)."""
        dx = np.asarray(x, dtype=np.float64) - self.cx
        dy = np.asarray(y, dtype=np.float64) - self.cy
        n2 = self.ax * self.ax + self.ay * self.ay
        s = (dx * self.ax + dy * self.ay) / n2
        t = (-dx * self.ay + dy * self.ax) / n2
        r = self.resolution
        return (s + 1.0) * r / 2.0, (t + 1.0) * r / 2.0

    def box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the photo pixels the square touches, inside a
        ``size`` = (width, height) photo (right/bottom exclusive)."""
        w, h = size
        c = self.corners()
        x0 = max(0, int(math.floor(c[:, 0].min())))
        y0 = max(0, int(math.floor(c[:, 1].min())))
        x1 = min(w, int(math.ceil(c[:, 0].max())))
        y1 = min(h, int(math.ceil(c[:, 1].max())))
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"The aligned face lies outside the {w}×{h} photo.")
        return x0, y0, x1, y1

    def covered_share(self, size: tuple[int, int]) -> float:
        """The share of the model's square whose pixels come from the photo."""
        return float(self.inside_mask(size).mean())

    def inside_mask(self, size: tuple[int, int]) -> np.ndarray:
        """R×R bool: model pixels whose centre falls inside the ``size`` photo."""
        w, h = size
        x, y = self._model_grid()
        return (x >= 0) & (x <= w) & (y >= 0) & (y <= h)

    def _model_grid(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.resolution
        centres = np.arange(r, dtype=np.float64) + 0.5
        u, v = np.meshgrid(centres, centres)
        return self.to_photo(u, v)

    def scaled(self, factor: float) -> FaceAlignment:
        """The same square in the photo enlarged ``factor`` times."""
        f = float(factor)
        return FaceAlignment(self.cx * f, self.cy * f, self.ax * f, self.ay * f, self.resolution)

    def with_resolution(self, resolution: int) -> FaceAlignment:
        return FaceAlignment(self.cx, self.cy, self.ax, self.ay, int(resolution))

    # --- warping -----------------------------------------------------------------------
    def to_model_square(self, arr: np.ndarray) -> np.ndarray:
        """Photo pixels (H×W or H×W×C float) → the R×R[×C] aligned square: antialiased
        when the face shrinks, bicubic, the photo mirrored past its edges."""
        a = np.asarray(arr, dtype=np.float32)
        h, w = a.shape[:2]
        x, y = self._model_grid()
        # shrink the photo first when the face is much larger than the model: bicubic
        # sampling alone would alias
        shrink = self.scale
        if shrink > 1.5:
            sh, sw = max(1, int(round(h / shrink))), max(1, int(round(w / shrink)))
            a = resize(a, sh, sw)
            x, y = x * sw / w, y * sh / h
            h, w = sh, sw
        out = _sample(a, x, y, padding="reflection")
        lo, hi = float(np.asarray(arr).min()), float(np.asarray(arr).max())
        clipped: np.ndarray = np.clip(out, lo, hi)
        return clipped

    def hole_to_model(self, hole: np.ndarray) -> np.ndarray:
        """A photo-size hole (bool) → R×R bool: a model pixel is a hole if any hole falls
        in it; nothing outside the photo is a hole."""
        cover = self.to_model_square(np.asarray(hole, dtype=np.float32))
        inside = self.inside_mask((hole.shape[1], hole.shape[0]))
        mask: np.ndarray = (cover > 0.02) & inside
        return mask

    def from_model_square(
        self, model_arr: np.ndarray, box: tuple[int, int, int, int]
    ) -> np.ndarray:
        """The model's R×R[×C] result at the photo pixels of ``box`` (left, top, right,
        bottom): antialiased when the face shrinks back, bicubic, the square's edge
        repeated outside it (the seam weight, :meth:`seam_weight`, is 0 there)."""
        a = np.asarray(model_arr, dtype=np.float32)
        x0, y0, x1, y1 = box
        xs = np.arange(x0, x1, dtype=np.float64) + 0.5
        ys = np.arange(y0, y1, dtype=np.float64) + 0.5
        px, py = np.meshgrid(xs, ys)
        u, v = self.to_model(px, py)
        r = self.resolution
        if self.scale < 1 / 1.5:  # the model's square is much finer than the photo
            small = max(1, int(round(r * self.scale)))
            a = resize(a, small, small)
            u, v = u * small / r, v * small / r
        out = _sample(a, u, v, padding="border")
        clipped: np.ndarray = np.clip(out, float(a.min()), float(a.max()))
        return clipped

    def seam_weight(self, box: tuple[int, int, int, int], feather: float) -> np.ndarray:
        """Blend weights at the pixels of ``box``: 1 inside the square, easing to 0 over
        ``feather`` photo px towards its edges, 0 outside."""
        x0, y0, x1, y1 = box
        xs = np.arange(x0, x1, dtype=np.float64) + 0.5
        ys = np.arange(y0, y1, dtype=np.float64) + 0.5
        px, py = np.meshgrid(xs, ys)
        u, v = self.to_model(px, py)
        r = self.resolution
        inside = np.minimum(np.minimum(u, r - u), np.minimum(v, r - v)) * self.scale
        weight: np.ndarray = (
            (inside > 0).astype(np.float32)
            if feather <= 0
            else smoothstep(inside / float(feather)).astype(np.float32)
        )
        return weight

    # --- saving ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "centre": [self.cx, self.cy],
            "axis": [self.ax, self.ay],
            "resolution": self.resolution,
        }

    @classmethod
    def from_json(cls, data: Any) -> FaceAlignment:
        """Read back :meth:`to_json`; ValueError/KeyError/TypeError on a bad record."""
        cx, cy = (float(v) for v in data["centre"])
        ax, ay = (float(v) for v in data["axis"])
        res = int(data["resolution"])
        if not all(math.isfinite(v) for v in (cx, cy, ax, ay)) or math.hypot(ax, ay) < 1e-3:
            raise ValueError("its aligned face is not a square")
        if res < 1:
            raise ValueError("its aligned face has no resolution")
        return cls(cx, cy, ax, ay, res)


def _sample(arr: np.ndarray, x: np.ndarray, y: np.ndarray, *, padding: str) -> np.ndarray:
    """``arr`` (H×W[×C]) sampled bicubically at continuous coordinates (x, y) (pixel i
    covers [i, i + 1))."""
    squeeze = arr.ndim == 2
    a = arr[..., None] if squeeze else arr
    h, w = a.shape[:2]
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).unsqueeze(0)
    gx = 2.0 * np.asarray(x) / w - 1.0
    gy = 2.0 * np.asarray(y) / h - 1.0
    grid = torch.from_numpy(np.stack([gx, gy], axis=-1).astype(np.float32)).unsqueeze(0)
    out = F.grid_sample(t, grid, mode="bicubic", padding_mode=padding, align_corners=False)
    res: np.ndarray = out[0].permute(1, 2, 0).numpy()
    return res[..., 0] if squeeze else res


def enlargement_note(face: FaceAlignment) -> str | None:
    """What to say when the face is enlarged more than :data:`SOFT_FACE_ENLARGEMENT` ×
    into the model's square (a tiny face: the model sees a blurry one)."""
    if face.scale * SOFT_FACE_ENLARGEMENT >= 1:
        return None
    return (
        f"The face is small ({face.side:.0f} px across): it is enlarged "
        f"{1 / face.scale:.1f}× into the model's {face.resolution} px square, so the "
        "model sees a blurry face and the restoration will be soft; super-resolve it "
        "(superres) or use a photo where the face is larger."
    )


__all__ = [
    "FaceAlignment",
    "FacePoints",
    "check_face_points",
    "enlargement_note",
    "parse_face_points",
]

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
square (antialiased when it shrinks, bicubic, the edge pixels repeated past the photo's
edges, with a mask of the pixels the photo really covers) and warps a result back into
the photo with a feathered seam.  It is plain data, saved with a result's placement.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

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
#: A face more than this many times larger (or smaller) than the model is blurred before
#: it is sampled (or the model's result shrunk before it is put back): antialiasing.
ANTIALIAS_ABOVE = 1.5
#: Keys' cubic kernel parameter (PyTorch's and OpenCV's bicubic).
CUBIC_A = -0.75
#: Pixels beyond a sample that the bicubic taps read (2), plus one.
BICUBIC_REACH = 3
#: The blur's kernel reaches this many standard deviations.
BLUR_TRUNCATE = 3.0


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
    (−ay, ax): a quarter turn clockwise on screen.

    The arrays it warps may be a part of the photo: (ox, oy) is where their pixel (0, 0)
    lies in the photo (the app sends the face's part of a large picture).  Every
    coordinate is worked out in the photo's frame and moved by that whole-pixel origin
    last, which is exact, so a part gives the very same pixels as the whole photo."""

    cx: float
    cy: float
    ax: float
    ay: float
    resolution: int
    ox: int = 0
    oy: int = 0

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

    def box(self, size: tuple[int, int], margin: int = 0) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the pixels the square touches (``margin`` px
        more on every side), inside an array of ``size`` = (width, height) at this
        alignment's origin (right/bottom exclusive)."""
        w, h = size
        c = self.corners()
        x0 = max(0, int(math.floor(c[:, 0].min())) - self.ox - margin)
        y0 = max(0, int(math.floor(c[:, 1].min())) - self.oy - margin)
        x1 = min(w, int(math.ceil(c[:, 0].max())) - self.ox + margin)
        y1 = min(h, int(math.ceil(c[:, 1].max())) - self.oy + margin)
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"The aligned face lies outside the {w}×{h} photo.")
        return x0, y0, x1, y1

    @property
    def blur_sigma(self) -> float:
        """The Gaussian blur (photo px) applied before sampling a face much larger than
        the model (antialiasing), 0 when none."""
        return 0.5 * self.scale if self.scale > ANTIALIAS_ABOVE else 0.0

    @property
    def margin(self) -> int:
        """Pixels around the square that its sampling reads: the bicubic taps, and the
        blur's reach."""
        sigma = self.blur_sigma
        return BICUBIC_REACH + (int(BLUR_TRUNCATE * sigma + 0.5) if sigma else 0)

    def source_box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The pixels of a ``size`` array that warping the face into the model reads
        (:meth:`box` with :attr:`margin`): all a caller must send of a larger photo."""
        return self.box(size, self.margin)

    def inside_mask(self, size: tuple[int, int]) -> np.ndarray:
        """R×R bool: model pixels whose centre falls inside the ``size`` array (at this
        alignment's origin)."""
        w, h = size
        x, y = self._model_grid()
        x, y = x - self.ox, y - self.oy
        mask: np.ndarray = (x >= 0) & (x <= w) & (y >= 0) & (y <= h)
        return mask

    def _model_grid(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.resolution
        centres = np.arange(r, dtype=np.float64) + 0.5
        u, v = np.meshgrid(centres, centres)
        return self.to_photo(u, v)

    def scaled(self, factor: int) -> FaceAlignment:
        """The same square in the photo enlarged ``factor`` times."""
        f = int(factor)
        return FaceAlignment(
            self.cx * f,
            self.cy * f,
            self.ax * f,
            self.ay * f,
            self.resolution,
            self.ox * f,
            self.oy * f,
        )

    def with_resolution(self, resolution: int) -> FaceAlignment:
        return dataclasses.replace(self, resolution=int(resolution))

    def with_origin(self, ox: int, oy: int) -> FaceAlignment:
        """The same face, for arrays whose pixel (0, 0) is the photo's (ox, oy)."""
        return dataclasses.replace(self, ox=int(ox), oy=int(oy))

    # --- warping -----------------------------------------------------------------------
    def to_model_square(self, arr: np.ndarray) -> np.ndarray:
        """Photo pixels (H×W or H×W×C float, at this alignment's origin) → the R×R[×C]
        aligned square: bicubic, the photo's edge pixels repeated past its edges; a face
        much larger than the model is blurred first (antialiasing), only where it is
        read."""
        a = np.asarray(arr, dtype=np.float32)
        h, w = a.shape[:2]
        x0, y0, x1, y1 = self.source_box((w, h))
        src = a[y0:y1, x0:x1]
        # bicubic overshoot is clipped to the range of the pixels read (the same pixels
        # whether the whole photo or its part is given)
        lo, hi = float(src.min()), float(src.max())
        sigma = self.blur_sigma
        if sigma:
            from scipy.ndimage import gaussian_filter

            sigmas = (sigma, sigma) + (0.0,) * (src.ndim - 2)
            src = gaussian_filter(src, sigmas, mode="nearest", truncate=BLUR_TRUNCATE)
        x, y = self._model_grid()
        # photo frame → the array's (origin) → the part read (all whole-pixel moves: exact)
        out = _bicubic(src, x - self.ox - x0, y - self.oy - y0)
        clipped: np.ndarray = np.clip(out, lo, hi)
        return clipped

    def hole_to_model(self, hole: np.ndarray) -> np.ndarray:
        """A hole (bool, the array's size) → R×R bool: a model pixel is a hole if any hole
        falls in it; nothing outside the array is a hole."""
        cover = self.to_model_square(np.asarray(hole, dtype=np.float32))
        inside = self.inside_mask((hole.shape[1], hole.shape[0]))
        mask: np.ndarray = (cover > 0.02) & inside
        return mask

    def _box_grid(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Model coordinates of the centres of ``box``'s pixels (array frame)."""
        x0, y0, x1, y1 = box
        xs = np.arange(x0 + self.ox, x1 + self.ox, dtype=np.float64) + 0.5
        ys = np.arange(y0 + self.oy, y1 + self.oy, dtype=np.float64) + 0.5
        px, py = np.meshgrid(xs, ys)
        return self.to_model(px, py)

    def from_model_square(
        self, model_arr: np.ndarray, box: tuple[int, int, int, int]
    ) -> np.ndarray:
        """The model's R×R[×C] result at the pixels of ``box`` (left, top, right, bottom,
        array frame): antialiased when the face shrinks back, bicubic, the square's edge
        repeated outside it (the seam weight, :meth:`seam_weight`, is 0 there)."""
        a = np.asarray(model_arr, dtype=np.float32)
        u, v = self._box_grid(box)
        r = self.resolution
        if self.scale < 1 / ANTIALIAS_ABOVE:  # the model's square is much finer
            small = max(1, int(round(r * self.scale)))
            a = resize(a, small, small)
            u, v = u * small / r, v * small / r
        out = _bicubic(a, u, v)
        clipped: np.ndarray = np.clip(out, float(a.min()), float(a.max()))
        return clipped

    def seam_weight(self, box: tuple[int, int, int, int], feather: float) -> np.ndarray:
        """Blend weights at the pixels of ``box``: 1 inside the square, easing to 0 over
        ``feather`` photo px towards its edges, 0 outside."""
        u, v = self._box_grid(box)
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
            **({"origin": [self.ox, self.oy]} if (self.ox, self.oy) != (0, 0) else {}),
        }

    @classmethod
    def from_json(cls, data: Any) -> FaceAlignment:
        """Read back :meth:`to_json`; ValueError/KeyError/TypeError on a bad record."""
        cx, cy = (float(v) for v in data["centre"])
        ax, ay = (float(v) for v in data["axis"])
        res = int(data["resolution"])
        ox, oy = (int(v) for v in data.get("origin", (0, 0)))
        if not all(math.isfinite(v) for v in (cx, cy, ax, ay)) or math.hypot(ax, ay) < 1e-3:
            raise ValueError("its aligned face is not a square")
        if res < 1:
            raise ValueError("its aligned face has no resolution")
        return cls(cx, cy, ax, ay, res, ox, oy)


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """The four taps' weights of Keys' cubic (a = −0.75, as PyTorch and OpenCV) for
    fractional positions ``t`` in [0, 1): taps at −1, 0, 1, 2."""
    a = CUBIC_A

    def near(d: np.ndarray) -> np.ndarray:  # |d| ≤ 1
        out: np.ndarray = ((a + 2) * d - (a + 3)) * d * d + 1
        return out

    def far(d: np.ndarray) -> np.ndarray:  # 1 < |d| < 2
        out: np.ndarray = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return out

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _bicubic(arr: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``arr`` (H×W[×C]) sampled bicubically at continuous coordinates (x, y) (pixel i
    covers [i, i + 1)), the edge pixels repeated outside.  Each sample reads only its
    4×4 neighbours, by whole-pixel index: the same pixels of a part of a picture give the
    same value (torch's grid_sample normalises by the size, which rounds differently)."""
    a = np.asarray(arr, dtype=np.float32)
    squeeze = a.ndim == 2
    if squeeze:
        a = a[..., None]
    h, w = a.shape[:2]
    px = np.asarray(x, dtype=np.float64) - 0.5
    py = np.asarray(y, dtype=np.float64) - 0.5
    ix, iy = np.floor(px), np.floor(py)
    wx, wy = _cubic_weights(px - ix), _cubic_weights(py - iy)
    cols = [np.clip(ix + k - 1, 0, w - 1).astype(np.intp) for k in range(4)]
    out = np.zeros(px.shape + (a.shape[2],), dtype=np.float64)
    for j in range(4):
        row_index = np.clip(iy + j - 1, 0, h - 1).astype(np.intp)
        row = np.zeros_like(out)
        for k in range(4):
            row += wx[k][..., None] * a[row_index, cols[k]]
        out += wy[j][..., None] * row
    res = out.astype(np.float32)
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

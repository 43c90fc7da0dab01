"""Finding the eyes and mouth of the main face in a photo, when a detector is installed.

The detector is optional (the ``face`` extra: ``pip install "dgp-studio[face]"``):
OpenCV's Haar cascades, which ship inside the ``opencv-python-headless`` 4.x wheel and
run offline on the CPU (≈0.15 s for a 512 px photo on this project's 2-core machine).
Without it (or when it finds no face) a front end asks for the three points instead:
``--face-points`` in the CLI, the three-point tool in the app.

Measured (docs/method.md#aligned-faces): OpenCV 5 no longer ships the cascades, and
MediaPipe 1.2 ships neither its legacy face solutions nor any model file, so neither
works offline out of the box; OpenCV 4's cascades do.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .face_align import FacePoints

log = logging.getLogger(__name__)

#: Mouth below the eyes' midpoint, in eye distances, for an average face (the cascades
#: find eyes, not mouths; measured 0.97 on scikit-image's astronaut portrait).
MOUTH_BELOW_EYES = 1.0
#: The photo is searched at most this many px on its longer side (faster; faces that
#: matter for a prior are larger than a few dozen px).
DETECT_SIDE = 1024


def _cv2() -> Any | None:
    try:
        import cv2
    except ImportError:
        return None
    data = getattr(cv2, "data", None)
    if not hasattr(cv2, "CascadeClassifier") or data is None:
        return None  # OpenCV 5 dropped the cascades
    return cv2


def detector_name() -> str | None:
    """The installed face detector, in words, or None when there is none."""
    cv2 = _cv2()
    return None if cv2 is None else f"OpenCV {cv2.__version__} Haar cascades"


def detect_face_points(rgb: np.ndarray) -> FacePoints | None:
    """The eyes and mouth of the largest face in ``rgb`` (H×W×3, float [0, 1] or uint8),
    or None when no detector is installed or no face with two eyes is found."""
    cv2 = _cv2()
    if cv2 is None:
        return None
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    gray = np.ascontiguousarray(
        (a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114).astype(np.uint8)
        if a.ndim == 3
        else a
    )
    h, w = gray.shape
    scale = min(1.0, DETECT_SIDE / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(
            gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    folder = cv2.data.haarcascades
    faces_found = cv2.CascadeClassifier(folder + "haarcascade_frontalface_default.xml")
    eyes_found = cv2.CascadeClassifier(folder + "haarcascade_eye.xml")
    least = max(24, min(gray.shape) // 20)
    faces = faces_found.detectMultiScale(gray, 1.1, 5, minSize=(least, least))
    for fx, fy, fw, fh in sorted(faces, key=lambda f: -int(f[2]) * int(f[3])):
        top = gray[fy : fy + int(fh * 0.6), fx : fx + fw]
        eyes = eyes_found.detectMultiScale(top, 1.1, 5, minSize=(max(6, fw // 10),) * 2)
        centres = sorted(
            ((fx + ex + ew / 2, fy + ey + eh / 2, ew * eh) for ex, ey, ew, eh in eyes),
            key=lambda e: -e[2],
        )
        pair = _eye_pair(centres, fw)
        if pair is None:
            continue
        (lx, ly), (rx, ry) = pair
        mx, my = (lx + rx) / 2, (ly + ry) / 2
        dx, dy = rx - lx, ry - ly
        # the mouth: below the eyes' midpoint, square to the eye line
        mouth = (mx - dy * MOUTH_BELOW_EYES, my + dx * MOUTH_BELOW_EYES)
        found = FacePoints((lx, ly), (rx, ry), mouth)
        (a0, a1), (b0, b1), (c0, c1) = found.as_list()
        return FacePoints(
            (a0 / scale, a1 / scale), (b0 / scale, b1 / scale), (c0 / scale, c1 / scale)
        )
    log.info("no face with two eyes found (%d face boxes)", len(faces))
    return None


def _eye_pair(
    centres: list[tuple[float, float, float]], face_width: int
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The two largest eye boxes that lie side by side (left, right), or None."""
    for i, a in enumerate(centres):
        for b in centres[i + 1 :]:
            if abs(a[0] - b[0]) > face_width / 5 and abs(a[1] - b[1]) < face_width / 4:
                left, right = sorted((a, b))
                return (left[0], left[1]), (right[0], right[1])
    return None


__all__ = ["detect_face_points", "detector_name"]

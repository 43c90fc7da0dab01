"""Guidance for a new user: the working region explained the first time it shows, the
default task for the opened picture, and what the region note under the task says."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from dgp_engine.method.region import mask_bbox
from dgp_engine.method.taskspec import (
    RegionAdvisory,
    covers_whole_photo,
    region_advisory,
    task_spec,
)

#: Samples per side when checking a large picture for colour before the full check.
_SAMPLE = 256


def is_grayscale(pixels: np.ndarray, tolerance: int = 2) -> bool:
    """True when every pixel's R, G and B agree within ``tolerance`` levels (a black-and-
    white photo saved as RGB, JPEG noise allowed).  A sparse sample answers most colour
    pictures at once; the whole picture is checked only when the sample is grey."""
    if pixels.ndim == 2 or pixels.shape[-1] == 1:
        return True
    h, w = pixels.shape[:2]
    step = max(1, min(h, w) // _SAMPLE)
    for view in (pixels[::step, ::step], pixels):
        rgb = view[..., :3].astype(np.int16)
        spread = rgb.max(axis=-1) - rgb.min(axis=-1)
        if int(spread.max()) > tolerance:
            return False
    return True


def run_advisory(
    task: str, region: tuple[int, int, int] | None, resolution: int, mask: np.ndarray | None = None
) -> RegionAdvisory | None:
    """What the engine's plan will advise (``TaskPlan.advisories``) for a run of ``task`` on
    ``region`` = (x, y, side) of the picture whose ``mask`` (H×W, > 127 = fill) it holds:
    the square enlarged more than twice from the model's ``resolution``, and the remedies
    (a larger model; a smaller region, or a smaller mask when the mask is what makes the
    region large).  The same rule and numbers as ``plan_task``; None when all is well."""
    if region is None:
        return None  # a whole-photo task keeps the photo's own detail
    x, y, side = (int(v) for v in region)
    hole_side = None
    if mask is not None and mask.size and task_spec(task).uses_mask:
        inside = mask[y : y + side, x : x + side] > 127
        if inside.any():
            x0, y0, x1, y1 = mask_bbox(inside)
            hole_side = max(x1 - x0, y1 - y0)
    return region_advisory(task, side, resolution, hole_side=hole_side)


def in_app_words(text: str) -> str:
    """An engine sentence as the app says it: the command it names is the Models dialog."""
    return text.replace("`dgp models list` shows them", "Models… lists them")


def region_note(
    task: str, region: tuple[int, int, int] | None, resolution: int, mask: np.ndarray | None = None
) -> str:
    """What the task panel says under the task, before any run: where the task works,
    or — when the region will be enlarged so much that the fill comes back soft — that,
    once, with the two remedies (:func:`run_advisory`).  Rich text."""
    if covers_whole_photo(task):
        return (
            f"{task_spec(task).label} covers the whole picture at any shape: colour "
            "comes from the model, lightness stays the photo's own."
        )
    if region is None:
        return ""
    side = region[2]
    advisory = run_advisory(task, region, resolution, mask)
    if advisory is not None:
        larger, smaller = (in_app_words(r) for r in advisory.remedies)
        return (
            f"⚠ The {side} px working region is enlarged {advisory.factor:.1f}× from the "
            f"model's {resolution} px, so the fill will be soft. Before running, either:"
            f"<br>• {smaller[0].upper()}{smaller[1:]}<br>• or {larger}."
        )
    return f"Working region {side}×{side} px (the model sees it at {resolution} px)."


REGION_EXPLANATION = (
    "The dashed square is the working region: the model sees only what lies inside it, "
    "at its own resolution, and the result is blended back with a soft seam. Press F to "
    "move or scale it; Ctrl+R puts it around the mask again."
)


class RegionHint(QFrame):
    """A slim bar above the canvas that explains the working region the first time it
    shows; "Got it" dismisses it for good (saved in the settings)."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("region-hint")
        self.setAccessibleName("Working region explained")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#region-hint { background: #2f3b46; color: #e8e8e8; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        self.text = QLabel(REGION_EXPLANATION)
        self.text.setWordWrap(True)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.ok = QPushButton("Got it")
        self.ok.setAccessibleName("Dismiss the working region explanation")
        lay.addWidget(self.text, 1)
        lay.addWidget(self.ok)
        self.ok.clicked.connect(self._dismiss)
        self.setVisible(False)

    def _dismiss(self) -> None:
        self.setVisible(False)
        self.dismissed.emit()

"""Small widgets of the Manipulate panel: an image view and the variations grid."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QToolButton, QWidget

from ..qimage import to_pixmap


class ImageView(QLabel):
    """Shows one uint8 H×W×3 image scaled to fit, pixels kept sharp when enlarged."""

    def __init__(self, parent: QWidget | None = None, minimum: int = 128):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image: np.ndarray | None = None
        self._pixmap: QPixmap | None = None

    def set_image(self, image: np.ndarray | None) -> None:
        self.image = image
        self._pixmap = None if image is None else to_pixmap(image)
        self._rescale()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 — Qt override
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            self.clear()
            return
        side = max(1, min(self.width(), self.height()))
        mode = (
            Qt.TransformationMode.FastTransformation
            if side >= self._pixmap.width()
            else Qt.TransformationMode.SmoothTransformation
        )
        self.setPixmap(self._pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode))


class VariationGrid(QWidget):
    """A grid of rendered variations; clicking one emits ``chosen(index)``.  Thumbnails
    zoom with :meth:`set_thumb`; a cell may show the variation as it sits in the photo
    (``shown``) while :attr:`images` keeps the model's own output."""

    chosen = Signal(int)
    hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None, columns: int = 4, thumb: int = 64):
        super().__init__(parent)
        self.columns = columns
        self.thumb = thumb
        self.buttons: list[QToolButton] = []
        self.images: dict[int, np.ndarray] = {}
        self.shown: dict[int, np.ndarray] = {}
        self.marked: int | None = None
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

    def reset(self, count: int) -> None:
        """``count`` empty cells (placeholders until their frames arrive)."""
        self.images.clear()
        self.shown.clear()
        self.marked = None
        while len(self.buttons) > count:
            b = self.buttons.pop()
            self._layout.removeWidget(b)
            b.deleteLater()
        while len(self.buttons) < count:
            i = len(self.buttons)
            b = QToolButton(self)
            b.setCheckable(True)
            b.setIconSize(QSize(self.thumb, self.thumb))
            b.setFixedSize(self.thumb + 8, self.thumb + 8)
            b.setAccessibleName(f"Variation {i + 1}")
            b.clicked.connect(lambda _=False, i=i: self._clicked(i))
            self._layout.addWidget(b, i // self.columns, i % self.columns)
            self.buttons.append(b)
        for i, b in enumerate(self.buttons):
            b.setIcon(QIcon())
            b.setChecked(False)
            b.setEnabled(False)
            b.setToolTip(f"Variation {i + 1}: rendering…")

    def set_image(
        self, index: int, image: np.ndarray, tooltip: str = "", shown: np.ndarray | None = None
    ) -> None:
        if not 0 <= index < len(self.buttons):
            return
        self.images[index] = image
        if shown is not None:
            self.shown[index] = shown
        b = self.buttons[index]
        self._paint_icon(index)
        b.setEnabled(True)
        b.setToolTip(tooltip or f"Variation {index + 1}: click to use it")

    def _paint_icon(self, index: int) -> None:
        image = self.shown.get(index, self.images.get(index))
        if image is None:
            return
        # icons never enlarge a small pixmap: scale it to the cell (pixels kept sharp
        # when enlarged, smooth when reduced)
        big = max(image.shape[:2]) <= self.thumb
        pix = to_pixmap(image).scaled(
            self.thumb,
            self.thumb,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation
            if big
            else Qt.TransformationMode.SmoothTransformation,
        )
        self.buttons[index].setIcon(QIcon(pix))

    def set_thumb(self, size: int) -> None:
        """Zoom the thumbnails to ``size`` px."""
        self.thumb = int(size)
        for i, b in enumerate(self.buttons):
            b.setIconSize(QSize(self.thumb, self.thumb))
            b.setFixedSize(self.thumb + 8, self.thumb + 8)
            self._paint_icon(i)

    def mark(self, index: int | None) -> None:
        """Show which variation is picked."""
        self.marked = index
        for i, b in enumerate(self.buttons):
            b.setChecked(i == index)

    def _clicked(self, index: int) -> None:
        if index in self.images:
            self.chosen.emit(index)

"""Small widgets of the Manipulate panel: an image view and the variations grid."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
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

    def resizeEvent(self, event) -> None:  # noqa: N802 — Qt override
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            self.clear()
            return
        side = max(1, min(self.width(), self.height()))
        mode = (Qt.TransformationMode.FastTransformation
                if side >= self._pixmap.width() else Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(self._pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode))


class VariationGrid(QWidget):
    """A grid of rendered variations; clicking one emits ``chosen(index)``."""

    chosen = Signal(int)
    hovered = Signal(int)

    def __init__(self, parent: QWidget | None = None, columns: int = 4, thumb: int = 64):
        super().__init__(parent)
        self.columns = columns
        self.thumb = thumb
        self.buttons: list[QToolButton] = []
        self.images: dict[int, np.ndarray] = {}
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

    def reset(self, count: int) -> None:
        """``count`` empty cells (placeholders until their frames arrive)."""
        self.images.clear()
        while len(self.buttons) > count:
            b = self.buttons.pop()
            self._layout.removeWidget(b)
            b.deleteLater()
        while len(self.buttons) < count:
            i = len(self.buttons)
            b = QToolButton(self)
            b.setIconSize(QSize(self.thumb, self.thumb))
            b.setFixedSize(self.thumb + 8, self.thumb + 8)
            b.setAccessibleName(f"Variation {i + 1}")
            b.clicked.connect(lambda _=False, i=i: self._clicked(i))
            self._layout.addWidget(b, i // self.columns, i % self.columns)
            self.buttons.append(b)
        for i, b in enumerate(self.buttons):
            b.setIcon(QIcon())
            b.setEnabled(False)
            b.setToolTip(f"Variation {i + 1}: rendering…")

    def set_image(self, index: int, image: np.ndarray, tooltip: str = "") -> None:
        if not 0 <= index < len(self.buttons):
            return
        self.images[index] = image
        b = self.buttons[index]
        # icons never enlarge a small pixmap: scale it to the cell (pixels kept sharp)
        pix = to_pixmap(image).scaled(self.thumb, self.thumb,
                                      Qt.AspectRatioMode.KeepAspectRatio,
                                      Qt.TransformationMode.FastTransformation)
        b.setIcon(QIcon(pix))
        b.setEnabled(True)
        b.setToolTip(tooltip or f"Variation {index + 1}: click to use it")

    def _clicked(self, index: int) -> None:
        if index in self.images:
            self.chosen.emit(index)

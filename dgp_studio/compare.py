"""Before/after compare: a split slider over the two images, or hold to see before."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSlider, QVBoxLayout, QWidget

from .qimage import to_qimage


class SplitView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.split = 0.5
        self.holding = False
        self.setMinimumSize(120, 120)
        self.setAccessibleName("Before and after")
        self.setToolTip("Hold the mouse button to see the picture before")

    def set_images(self, before: np.ndarray | None, after: np.ndarray | None) -> None:
        self.before = None if before is None else to_qimage(before)
        self.after = None if after is None else to_qimage(after)
        self.update()

    def mousePressEvent(self, _e: QMouseEvent) -> None:
        self.holding = True
        self.update()

    def mouseReleaseEvent(self, _e: QMouseEvent) -> None:
        self.holding = False
        self.update()

    def paintEvent(self, _e: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(32, 32, 32))
        if self.before is None or self.after is None:
            return
        side = min(self.width(), self.height())
        target = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.holding:
            p.drawImage(target, self.before)
            return
        p.drawImage(target, self.after)
        cut = target.width() * self.split
        src_w = self.before.width() * self.split
        p.drawImage(
            QRectF(target.x(), target.y(), cut, target.height()),
            self.before,
            QRectF(0, 0, src_w, self.before.height()),
        )
        p.setPen(QPen(QColor(255, 255, 255), 1))
        p.drawLine(
            int(target.x() + cut), int(target.top()), int(target.x() + cut), int(target.bottom())
        )


class CompareWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.view = SplitView()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName("Compare split")
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        self.slider.valueChanged.connect(self._moved)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)

    def _moved(self, v: int) -> None:
        self.view.split = v / 100
        self.view.update()

    def set_images(self, before: np.ndarray | None, after: np.ndarray | None) -> None:
        self.view.set_images(before, after)

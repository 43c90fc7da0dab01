"""A tiny loss curve (log scale) drawn with QPainter."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QSize
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget


class Sparkline(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: list[float] = []
        self.setAccessibleName("Loss curve")
        self.setMinimumHeight(36)

    def sizeHint(self) -> QSize:
        return QSize(200, 40)

    def set_values(self, values: list[float]) -> None:
        self.values = [v for v in values if v > 0 and math.isfinite(v)]
        self.setToolTip(f"loss {self.values[-1]:.4g}" if self.values else "")
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 30))
        if len(self.values) < 2:
            return
        logs = [math.log10(v) for v in self.values]
        lo, hi = min(logs), max(logs)
        span = max(hi - lo, 1e-9)
        w, h = self.width() - 4, self.height() - 4
        path = QPainterPath()
        for i, v in enumerate(logs):
            pt = QPointF(2 + w * i / (len(logs) - 1), 2 + h * (1 - (v - lo) / span))
            path.lineTo(pt) if i else path.moveTo(pt)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(90, 200, 255), 1.5))
        p.drawPath(path)

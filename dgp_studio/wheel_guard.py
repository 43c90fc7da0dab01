"""The mouse wheel scrolls panels; it never changes a spin box, slider or combo box it
merely passes over.  Such a control takes the wheel only once the user has clicked or
tabbed into it (Qt.StrongFocus: the wheel itself never gives it focus); otherwise the
wheel goes on to the scroll area around it."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QComboBox, QWidget

GUARDED = (QAbstractSpinBox, QAbstractSlider, QComboBox)


class WheelGuard(QObject):
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 — Qt override
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            event.ignore()  # not taken here: Qt offers it to the parents (scroll areas)
            return True
        return False

    def guard(self, root: QWidget) -> int:
        """Guard every spin box, slider and combo box under ``root``; returns how many."""
        found = [w for kind in GUARDED for w in root.findChildren(kind)]
        for w in found:
            if w.focusPolicy() != Qt.FocusPolicy.NoFocus:
                w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            w.removeEventFilter(self)  # once, when guarded again
            w.installEventFilter(self)
        return len(found)

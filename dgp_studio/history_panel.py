"""Results of runs, newest last, with a before/after compare and Apply.  Selecting a
result that is not applied shows it as the layer over the picture."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QPushButton, QVBoxLayout, QWidget

from .compare import CompareWidget
from .model.state import AppState, HistoryEntry


class HistoryPanel(QWidget):
    apply_requested = Signal(object)  # HistoryEntry
    show_requested = Signal(object)  # HistoryEntry to show as the result layer
    selected = Signal(object)  # the HistoryEntry selected (None: none)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        lay = QHBoxLayout(self)  # list beside the compare view (the dock is wide)
        self.list = QListWidget()
        self.list.setAccessibleName("Result history")
        self.compare = CompareWidget()
        self.apply_button = QPushButton("&Apply to picture")
        self.apply_button.setAccessibleName("Apply result to picture")
        left = QVBoxLayout()
        left.addWidget(self.list)
        left.addWidget(self.apply_button)
        lay.addLayout(left, 1)
        lay.addWidget(self.compare, 1)
        state.history_changed.connect(self.refresh)
        self.list.currentRowChanged.connect(self._selected)
        self.apply_button.clicked.connect(self._apply)
        self.refresh()

    def refresh(self) -> None:
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        for i, e in enumerate(self.state.history):
            flags = [f for f, on in (("cancelled", e.cancelled), ("applied", e.applied)) if on]
            self.list.addItem(f"{i + 1}. {e.title}" + (f" ({', '.join(flags)})" if flags else ""))
        self.list.blockSignals(False)
        n = len(self.state.history)
        if n:
            layer = self.state.layer
            if layer is not None and layer in self.state.history:
                row = self.state.history.index(layer)  # the list follows the layer
            elif not (0 <= row < n and row != n - 2):
                row = n - 1
            self.list.setCurrentRow(row)
            self._selected(self.list.currentRow())
        else:
            self.compare.set_images(None, None)
            self.apply_button.setEnabled(False)
            self.selected.emit(None)

    def current(self) -> HistoryEntry | None:
        row = self.list.currentRow()
        return self.state.history[row] if 0 <= row < len(self.state.history) else None

    def _selected(self, _row: int) -> None:
        e = self.current()
        self.compare.set_images(None if e is None else e.before, None if e is None else e.after)
        self.apply_button.setEnabled(e is not None and not e.applied)
        if e is not None and not e.applied and e is not self.state.layer:
            self.show_requested.emit(e)
        self.selected.emit(e)

    def _apply(self) -> None:
        e = self.current()
        if e is not None:
            self.apply_requested.emit(e)

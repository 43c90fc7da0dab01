"""Every keyboard shortcut in one table; the help sheet is generated from it."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

# action id → (keys, description)
SHORTCUTS: dict[str, tuple[str, str]] = {
    "open": ("Ctrl+O", "Open a picture"),
    "save": ("Ctrl+S", "Save the picture (asks before replacing a file)"),
    "save_as": ("Ctrl+Shift+S", "Save / export as…"),
    "open_project": ("Ctrl+Alt+O", "Open a project (picture, mask, region, results)"),
    "save_project": ("Ctrl+Alt+S", "Save the project (picture, mask, region, results)"),
    "paste": ("Ctrl+V", "Paste a picture from the clipboard"),
    "undo": ("Ctrl+Z", "Undo"),
    "redo": ("Ctrl+Shift+Z", "Redo"),
    "brush": ("B", "Brush: paint the area to restore"),
    "eraser": ("E", "Eraser"),
    "rect": ("M", "Rectangle selection (Alt: subtract)"),
    "lasso": ("L", "Lasso selection (Alt: subtract)"),
    "frame": ("F", "Move / scale the working region"),
    "face": ("P", "Face points: click the left eye, the right eye, the mouth (drag to move)"),
    "clear_face": ("Shift+P", "Clear the face points"),
    "smaller": ("[", "Smaller brush"),
    "bigger": ("]", "Bigger brush"),
    "softer": ("Shift+[", "Softer brush"),
    "harder": ("Shift+]", "Harder brush"),
    "fill_mask": ("Ctrl+Shift+F", "Fill the mask"),
    "clear_mask": ("Ctrl+Shift+D", "Clear the mask"),
    "invert_mask": ("Ctrl+Shift+I", "Invert the mask"),
    "toggle_mask": ("H", "Show / hide the mask overlay"),
    "reset_region": ("Ctrl+R", "Working region around the mask"),
    "zoom_in": ("Ctrl++", "Zoom in"),
    "zoom_out": ("Ctrl+-", "Zoom out"),
    "fit": ("Ctrl+0", "Fit to window"),
    "actual": ("Ctrl+1", "Actual size (100 %)"),
    "run": ("Ctrl+Return", "Run the task (also Ctrl+Enter)"),
    "apply_result": ("Ctrl+Shift+Return", "Apply the result layer to the picture"),
    "show_original": ("O", "Show the original under the result layer"),
    "split_view": ("Shift+O", "Split before | after on the canvas (drag the line)"),
    "pause": ("Ctrl+P", "Pause / resume the run"),
    "cancel": ("Esc", "Cancel the run (asks first when it has run a few seconds)"),
    "preferences": ("Ctrl+,", "Settings"),
    "help": ("F1", "This list"),
    "quit": ("Ctrl+Q", "Quit"),
}
# Not actions: handled by the canvas itself.
CANVAS_KEYS = [("Space + drag / middle drag", "Pan"), ("Mouse wheel", "Zoom at the pointer")]


def key(action_id: str) -> QKeySequence:
    return QKeySequence(SHORTCUTS[action_id][0])


class HelpSheet(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setAccessibleName("Keyboard shortcuts")
        rows = [(k, d) for k, d in SHORTCUTS.values()] + CANVAS_KEYS
        table = QTableWidget(len(rows), 2, self)
        table.setAccessibleName("Shortcut list")
        table.setHorizontalHeaderLabels(["Keys", "Does"])
        for i, (k, d) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(k))
            table.setItem(i, 1, QTableWidgetItem(d))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(table)
        lay.addWidget(buttons)
        self.resize(520, 600)

"""The questions the app asks with message boxes and the recovery list (the document
controller's :class:`~.document.Prompts`, and the window's own confirmations).  The
window holds them as attributes, so tests replace them with answers."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from .recovery import RecoveryDialog, RecoveryItem


class MessageBoxPrompts:
    def __init__(self, parent: QWidget):
        self.parent = parent

    def confirm(self, title: str, text: str) -> bool:
        """Yes / no, blocking."""
        return QMessageBox.question(self.parent, title, text) == QMessageBox.StandardButton.Yes

    def inform(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, text)

    def ask_save(self, title: str, text: str) -> str:
        """Save / Discard / Cancel about unsaved work: "save", "discard" or "cancel"."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            title,
            text,
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            self.parent,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setInformativeText(
            "Discarded work stays in the autosave until your next save, "
            "so it can still be recovered."
        )
        answer = box.exec()
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(QMessageBox.StandardButton(answer), "cancel")

    def ask_recovery(
        self, items: list[RecoveryItem], restore: Callable[[RecoveryItem], None]
    ) -> None:
        """The autosaves left by a crash, each with its picture; ``restore`` runs with the
        one chosen (not blocking)."""
        RecoveryDialog(items, restore, self.parent).open()

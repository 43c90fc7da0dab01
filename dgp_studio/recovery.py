"""Crash recovery as the user sees it: each autosave left behind, with the picture it
holds (its name and a thumbnail), in a list to restore one from.

Reading an autosave for the list touches only its manifest and its picture member, not
its results or states."""

from __future__ import annotations

import io
import logging
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dgp_engine.files.project import RecoveryCandidate, read_manifest

from .project_io import PICTURE
from .qimage import to_pixmap

log = logging.getLogger(__name__)

THUMB = 96  # thumbnail side (px)


@dataclass
class RecoveryItem:
    candidate: RecoveryCandidate
    picture_name: str  # the photo's file name ("a pasted picture" without one)
    project_name: str | None  # the project file it belongs to (None: never saved)
    thumbnail: np.ndarray | None  # the picture, at most THUMB px a side (None: unreadable)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.candidate.saved))
        project = f" (project {self.project_name})" if self.project_name else ""
        return f"{self.picture_name}{project} — unsaved changes from {when}"


def _thumbnail(path: Path, manifest: dict[str, Any]) -> np.ndarray | None:
    members = manifest.get("members") or {}
    name = next(
        (
            n
            for n, m in members.items()
            if isinstance(m, dict) and m.get("kind") == "sources" and m.get("id") == PICTURE
        ),
        None,
    )
    if name is None or not name.endswith(".png"):
        return None
    try:
        with zipfile.ZipFile(path) as zf, Image.open(io.BytesIO(zf.read(name))) as im:
            im.thumbnail((THUMB, THUMB))
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 — a thumbnail is never worth an error
        log.info("no thumbnail for %s: %s", path.name, exc)
        return None


def recovery_item(candidate: RecoveryCandidate) -> RecoveryItem:
    """What an autosave holds, for the list: its picture's name and a thumbnail."""
    manifest = read_manifest(candidate.autosave) or {}
    raw_settings = manifest.get("settings")
    settings = raw_settings if isinstance(raw_settings, dict) else {}
    source = settings.get("source_path") if isinstance(settings.get("source_path"), str) else None
    name = Path(source).name if source else "a pasted picture"
    project = candidate.original.name if candidate.original is not None else None
    return RecoveryItem(candidate, name, project, _thumbnail(candidate.autosave, manifest))


class RecoveryDialog(QDialog):
    """Every autosave that can be restored, newest first, with its picture; Restore
    opens the selected one (not modal: the editor stays usable)."""

    def __init__(
        self,
        items: list[RecoveryItem],
        restore: Callable[[RecoveryItem], None],
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.items, self._restore = items, restore
        self.setWindowTitle("Restore unsaved work?")
        self.setAccessibleName("Restore unsaved work")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        intro = QLabel(
            "DGP Studio closed with unsaved work. Restore a picture now? The "
            "others stay here until you save a picture."
        )
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setAccessibleName("Unsaved work")
        self.list.setIconSize(QSize(THUMB, THUMB))
        for item in items:
            row = QListWidgetItem(item.describe())
            if item.thumbnail is not None:
                row.setIcon(QIcon(to_pixmap(item.thumbnail)))
            self.list.addItem(row)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda _item: self.restore_selected())
        self.restore_button = QPushButton("&Restore")
        self.restore_button.setAccessibleName("Restore the selected picture")
        self.restore_button.setDefault(True)
        self.later_button = QPushButton("Not now")
        self.later_button.setAccessibleName("Not now")
        self.restore_button.clicked.connect(self.restore_selected)
        self.later_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.restore_button)
        buttons.addWidget(self.later_button)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.list, 1)
        lay.addLayout(buttons)
        self.resize(520, min(520, 140 + (THUMB + 8) * len(items)))

    def restore_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.items):
            self.accept()
            self._restore(self.items[row])

"""The animation export dialog: format, file, size/upscale, progress and cancel.

It only gathers settings and shows progress; the panel sends the export to the
render worker and feeds the reports back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dgp_engine.files.animation import FORMAT_TITLES, FORMATS

SUFFIXES = {"gif": ".gif", "apng": ".png", "webp": ".webp", "mp4": ".mp4", "webm": ".webm",
            "png-sequence": ""}


@dataclass(frozen=True)
class ExportSettings:
    path: str
    format: str
    source: str                   # "morph" or "walk"
    scale: float = 1.0
    size: tuple[int, int] | None = None


class ExportDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, folder: str | Path = ""):
        super().__init__(parent)
        self.setWindowTitle("Export animation")
        self.setMinimumWidth(460)
        self.source = QComboBox()
        self.source.addItem("Morph timeline", "morph")
        self.source.addItem("Jitter walk (loop)", "walk")
        self.format = QComboBox()
        for f in FORMATS:
            self.format.addItem(FORMAT_TITLES[f], f)
        self.path = QLineEdit(str(Path(folder or Path.home()) / "animation.gif"))
        self.path.setAccessibleName("Export file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.25, 16)
        self.scale.setSingleStep(0.5)
        self.scale.setValue(1.0)
        self.scale.setSuffix("×")
        self.width_box = QSpinBox()
        self.height_box = QSpinBox()
        for b in (self.width_box, self.height_box):
            b.setRange(0, 8192)
            b.setSpecialValueText("auto")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.export_button = QPushButton("Export")
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")
        self.cancel_button.setEnabled(False)
        self.close_button.clicked.connect(self.reject)
        self.format.currentIndexChanged.connect(self._format_changed)

        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        size = QHBoxLayout()
        size.addWidget(self.width_box)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_box)
        form = QFormLayout()
        form.addRow("Frames from", self.source)
        form.addRow("Format", self.format)
        form.addRow("File", row)
        form.addRow("Upscale", self.scale)
        form.addRow("Or size (px)", size)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.export_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.running = False

    def settings(self) -> ExportSettings:
        w, h = self.width_box.value(), self.height_box.value()
        size = (w, h) if w and h else None
        return ExportSettings(path=self.path.text().strip(), format=self.format.currentData(),
                              source=self.source.currentData(), scale=self.scale.value(),
                              size=size)

    def set_format(self, fmt: str) -> None:
        self.format.setCurrentIndex(self.format.findData(fmt))

    def _format_changed(self, _index: int) -> None:
        text = self.path.text().strip()
        if not text:
            return
        p = Path(text)
        suffix = SUFFIXES[self.format.currentData()]
        stem = p.with_suffix("") if p.suffix else p
        self.path.setText(str(stem) + suffix)

    def _browse(self) -> None:
        fmt = self.format.currentData()
        if fmt == "png-sequence":
            folder = QFileDialog.getExistingDirectory(self, "Export PNG frames to")
            if folder:
                self.path.setText(folder)
            return
        name, _ = QFileDialog.getSaveFileName(self, "Export animation", self.path.text(),
                                              f"{FORMAT_TITLES[fmt]} (*{SUFFIXES[fmt]})")
        if name:
            self.path.setText(name)

    def suggest_beside(self, photo: str | Path | None) -> None:
        """Default the file beside the opened photo, named after it
        (``church.jpg`` → ``church-animation.gif``), keeping the chosen format's suffix."""
        if photo is None:
            return
        photo = Path(photo)
        fmt = self.format.currentData()
        name = (f"{photo.stem}-frames" if fmt == "png-sequence"
                else f"{photo.stem}-animation{SUFFIXES.get(fmt, '.gif')}")
        self.path.setText(str(photo.parent / name))

    # --- driven by the panel ------------------------------------------------------------
    def started(self, total: int) -> None:
        self.running = True
        self.export_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.message.setText("Rendering and writing frames…")

    def report(self, done: int, total: int | None, elapsed: float) -> None:
        if total:
            self.progress.setRange(0, total)
            left = elapsed / max(1, done) * (total - done)
            self.message.setText(f"Frame {done} of {total} · about {left:.0f} s left")
        self.progress.setValue(done)

    def finished_ok(self, path: str) -> None:
        self._stopped()
        self.progress.setValue(self.progress.maximum())
        self.message.setText(f"Saved {path}")

    def failed(self, message: str, cancelled: bool) -> None:
        self._stopped()
        self.progress.setValue(0)
        self.message.setText("Cancelled: nothing was written." if cancelled else message)

    def _stopped(self) -> None:
        self.running = False
        self.export_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

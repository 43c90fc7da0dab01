"""The export dialog: what to export (the morph, a jitter walk, a category sweep, the
jitter variations as a grid picture), into the photo or as the generator's raw squares,
the format, file and size, then progress and cancel.

It gathers settings and says what will be written — how many frames, their size, where
they are composed (or why only the raw squares can be), what an MP4's even sides change,
and when the frames are larger than an export takes without being asked — using the
engine's own size rules (:func:`~dgp_engine.files.animation.export_size`,
:func:`~dgp_engine.files.animation.even_size`).  The panel gives it the
:class:`~.export_plan.ExportPlan` of the chosen source, sends the export to the render
worker and feeds the reports back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QStandardItemModel
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

from dgp_engine.errors import DGPError, ExportTooLarge
from dgp_engine.files.animation import (
    FORMAT_TITLES,
    FORMATS,
    MAX_EXPORT_SIDE,
    VIDEO_FORMATS,
    even_size,
    export_size,
)

from .export_plan import ExportPlan

SUFFIXES = {
    "gif": ".gif",
    "apng": ".png",
    "webp": ".webp",
    "mp4": ".mp4",
    "webm": ".webm",
    "png-sequence": "",
    "picture": ".png",
}
#: What the export's frames come from (the panel renders them).
SOURCES = {
    "morph": "Morph timeline",
    "walk": "Jitter walk (loop)",
    "sweep": "Category sweep (to the chosen class)",
    "grid": "Jitter variations (grid picture)",
}
#: A still picture (the grid) rather than an animation.
STILL = frozenset({"grid"})


@dataclass(frozen=True)
class ExportSettings:
    path: str
    format: str  # an animation format, or "picture" for the grid
    source: str  # a key of SOURCES
    scale: float = 1.0
    size: tuple[int, int] | None = None
    composed: bool = False  # into the photo (else the generator's raw squares)
    max_side: int | None = None  # scale frames down to this long side (chosen)
    even: str = "pad"  # MP4/WebM with odd sides: "pad" or "crop"


class ExportDialog(QDialog):
    source_changed = Signal(str)  # the panel answers with set_plan for that source

    def __init__(self, parent: QWidget | None = None, folder: str | Path = ""):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(480)
        self.plan: ExportPlan | None = None
        self.count = 0  # frames (or tiles) of the chosen source
        self.fps = 24.0
        self.problem: str | None = None  # why Export cannot start with these settings
        self._raw_chosen = False  # the user picked the raw squares themselves
        self.source = QComboBox()
        for key, title in SOURCES.items():
            self.source.addItem(title, key)
        self.source.setAccessibleName("Export frames from")
        self.frames = QComboBox()
        self.frames.setAccessibleName("Export frames as")
        self.frames.addItem("In the photo", "photo")
        self.frames.addItem("Raw generator square", "raw")
        self.format = QComboBox()
        for f in FORMATS:
            self.format.addItem(FORMAT_TITLES[f], f)
        self.path = QLineEdit(str(Path(folder or Path.home()) / "animation.gif"))
        self.path.setAccessibleName("Export file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.05, 16)
        self.scale.setSingleStep(0.5)
        self.scale.setValue(1.0)
        self.scale.setSuffix("×")
        self.width_box = QSpinBox()
        self.height_box = QSpinBox()
        for b in (self.width_box, self.height_box):
            b.setRange(0, 16384)
            b.setSpecialValueText("auto")
        self.max_side = QSpinBox()
        self.max_side.setAccessibleName("Largest side")
        self.max_side.setRange(0, 16384)
        self.max_side.setSpecialValueText("as is")
        self.max_side.setSuffix(" px")
        self.max_side.setToolTip(
            "Scale the frames down so their long side is at most this "
            "(aspect kept); 'as is' keeps them at their size"
        )
        self.even = QComboBox()
        self.even.setAccessibleName("Odd sizes")
        self.even.addItem("Pad by one edge pixel", "pad")
        self.even.addItem("Crop one pixel", "crop")
        self.summary = QLabel()
        self.summary.setAccessibleName("What will be exported")
        self.summary.setWordWrap(True)
        self.even_note = QLabel()
        self.even_note.setAccessibleName("Even size note")
        self.even_note.setWordWrap(True)
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
        self.source.currentIndexChanged.connect(self._source_changed)
        self.frames.activated.connect(lambda i: setattr(self, "_raw_chosen", i == 1))
        for w in (self.frames, self.even):
            w.currentIndexChanged.connect(self.update_summary)
        for box in (self.width_box, self.height_box, self.max_side):
            box.valueChanged.connect(self.update_summary)
        self.scale.valueChanged.connect(self.update_summary)

        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        size = QHBoxLayout()
        size.addWidget(self.width_box)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_box)
        form = QFormLayout()
        form.addRow("Frames from", self.source)
        form.addRow("Frames", self.frames)
        form.addRow("Format", self.format)
        form.addRow("File", row)
        form.addRow("Scale", self.scale)
        form.addRow("Or size (px)", size)
        form.addRow("Largest side", self.max_side)
        form.addRow("Odd sizes", self.even)
        self._form = form
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.export_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.even_note)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.running = False
        self._show_even(False)
        self.update_summary()

    # --- settings -----------------------------------------------------------------------
    @property
    def source_key(self) -> str:
        return str(self.source.currentData())

    @property
    def format_key(self) -> str:
        return "picture" if self.source_key in STILL else str(self.format.currentData())

    @property
    def composed(self) -> bool:
        return (
            self.frames.currentData() == "photo" and self.plan is not None and self.plan.composable
        )

    def chosen_size(self) -> tuple[int, int] | None:
        w, h = self.width_box.value(), self.height_box.value()
        return (w, h) if w and h else None

    def settings(self) -> ExportSettings:
        return ExportSettings(
            path=self.path.text().strip(),
            format=self.format_key,
            source=self.source_key,
            scale=self.scale.value(),
            size=self.chosen_size(),
            composed=self.composed,
            max_side=self.max_side.value() or None,
            even=str(self.even.currentData()),
        )

    def set_format(self, fmt: str) -> None:
        self.format.setCurrentIndex(self.format.findData(fmt))

    def set_source(self, source: str) -> None:
        self.source.setCurrentIndex(self.source.findData(source))

    def set_plan(self, plan: ExportPlan, count: int, fps: float) -> None:
        """What the chosen source's frames are (``count`` of them, at ``fps``) and where
        they can be composed (the panel's answer to :attr:`source_changed`)."""
        self.plan, self.count, self.fps = plan, int(count), float(fps)
        items = self.frames.model()
        assert isinstance(items, QStandardItemModel)  # a QComboBox's own model
        photo = items.item(0)
        photo.setEnabled(plan.composable)
        size = plan.photo_size
        self.frames.setItemText(
            0, f"In the photo ({size[0]}×{size[1]})" if size else "In the photo"
        )
        self.frames.setItemText(1, f"Raw generator square ({plan.resolution}×{plan.resolution})")
        photo.setToolTip(plan.why_raw or "")
        if not plan.composable:
            self.frames.setCurrentIndex(1)
        elif not self._raw_chosen:
            self.frames.setCurrentIndex(0)  # the photo, unless the user chose raw
        self.update_summary()

    # --- what will be written -----------------------------------------------------------
    def target_size(self) -> tuple[int, int]:
        """The frames' size as written (before MP4's even sides); ExportTooLarge over the
        limit when no size was chosen."""
        plan = self.plan
        frame = plan.frame_size(self.composed) if plan is not None else (0, 0)
        return export_size(
            frame,
            size=self.chosen_size(),
            scale=self.scale.value(),
            max_side=self.max_side.value() or None,
        )

    def update_summary(self, *_: object) -> None:
        plan = self.plan
        self.problem = None
        if plan is None:
            self.summary.setText("")
            self._show_even(False)
            return
        try:
            target = self.target_size()
        except ExportTooLarge as exc:
            w, h = exc.size
            self.problem = (
                f"The frames would be {w}×{h} px, more than the {exc.limit} px on "
                "the long side that an export takes without being asked (what "
                "video players decode, and what GIF writers hold in memory): "
                f"choose a largest side ({MAX_EXPORT_SIDE} px or less) or a size "
                "above, or the raw generator square."
            )
            self.summary.setText(f"<span style='color:#e8a33d'>⚠ {self.problem}</span>")
            self._show_even(False)
            return
        except DGPError as exc:
            self.problem = str(exc)
            self.summary.setText(self.problem)
            return
        still = self.source_key in STILL
        note = None
        written = target
        if not still:
            written, note = even_size(target, self.format_key, str(self.even.currentData()))
        self._show_even(
            note is not None
            or (self.format_key in VIDEO_FORMATS and bool(target[0] % 2 or target[1] % 2))
        )
        self.even_note.setText(note or "")
        if still:
            what = f"A grid picture of {self.count} variations, each {written[0]}×{written[1]} px"
        else:
            what = (
                f"{self.count} frames of {written[0]}×{written[1]} px "
                f"({self.count / max(self.fps, 1e-9):.1f} s at {self.fps:g} fps)"
            )
        if self.composed:
            where = plan.describe()
            if plan.note:
                where += f". {plan.note}"
        elif plan.why_raw:
            where = (
                f"the generator's own {plan.resolution}×{plan.resolution} squares only: "
                f"{plan.why_raw}"
            )
        else:
            where = f"the generator's own {plan.resolution}×{plan.resolution} squares"
        self.summary.setText(f"{what}, {where}")

    def _show_even(self, on: bool) -> None:
        self.even.setVisible(on)
        label = self._form.labelForField(self.even)
        if label is not None:
            label.setVisible(on)
        self.even_note.setVisible(on)

    # --- format and file ----------------------------------------------------------------
    def _source_changed(self, _index: int) -> None:
        still = self.source_key in STILL
        self.format.setEnabled(not still)
        self._retitle()
        self.source_changed.emit(self.source_key)
        self.update_summary()

    def _format_changed(self, _index: int) -> None:
        self._retitle()
        self.update_summary()

    def _retitle(self) -> None:
        text = self.path.text().strip()
        if not text:
            return
        p = Path(text)
        suffix = SUFFIXES[self.format_key]
        stem = p.with_suffix("") if p.suffix else p
        self.path.setText(str(stem) + suffix)

    def _browse(self) -> None:
        fmt = self.format_key
        if fmt == "png-sequence":
            folder = QFileDialog.getExistingDirectory(self, "Export PNG frames to")
            if folder:
                self.path.setText(folder)
            return
        title = "PNG picture" if fmt == "picture" else FORMAT_TITLES[fmt]
        name, _ = QFileDialog.getSaveFileName(
            self, "Export", self.path.text(), f"{title} (*{SUFFIXES[fmt]})"
        )
        if name:
            self.path.setText(name)

    def suggest_beside(self, photo: str | Path | None) -> None:
        """Default the file beside the opened photo, named after it
        (``church.jpg`` → ``church-animation.gif``), keeping the chosen format's suffix."""
        if photo is None:
            return
        photo = Path(photo)
        fmt = self.format_key
        name = (
            f"{photo.stem}-frames"
            if fmt == "png-sequence"
            else f"{photo.stem}-animation{SUFFIXES.get(fmt, '.gif')}"
        )
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

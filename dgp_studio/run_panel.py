"""Live run view: preview frame, stage/iteration, progress with time left, loss
sparkline, and the Run / Pause / Resume / Cancel buttons."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from .qimage import to_pixmap
from .sparkline import Sparkline
from .worker import Progress


def format_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = int(round(s))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def selection_eta(p: Progress) -> float | None:
    """Seconds left to choose the starting point (z selection), from the pace of the
    candidates scored so far: the engine reports each one, the optimisation's own time
    left only comes once it runs."""
    if p.phase != "select" or p.iteration < 1 or p.elapsed <= 0:
        return None
    return p.elapsed / p.iteration * max(0, p.stage_iterations - p.iteration)


class RunPanel(QWidget):
    run_clicked = Signal()
    pause_clicked = Signal()
    resume_clicked = Signal()
    cancel_clicked = Signal()

    PREVIEW = 150

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.preview = QLabel("No run yet")
        self.preview.setAccessibleName("Live preview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedSize(self.PREVIEW, self.PREVIEW)
        self.preview.setStyleSheet("background: #202020; color: #aaa")
        lay.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        self.status = QLabel("Ready")
        self.status.setAccessibleName("Run status")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Run progress")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        lay.addWidget(self.bar)
        self.eta = QLabel("Time left: –")
        self.eta.setAccessibleName("Time left")
        lay.addWidget(self.eta)
        self.sparkline = Sparkline()
        lay.addWidget(self.sparkline)
        row = QHBoxLayout()
        self.run_button = QPushButton("&Run")
        self.run_button.setAccessibleName("Run")
        self.pause_button = QPushButton("&Pause")
        self.pause_button.setAccessibleName("Pause or resume")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel run")
        for b in (self.run_button, self.pause_button, self.cancel_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.paused = False
        self.frames_shown = 0
        self.first_frame_at: float | None = None
        self.run_started_at: float | None = None
        self.run_button.clicked.connect(self.run_clicked)
        self.pause_button.clicked.connect(self._toggle_pause)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.set_running(False)

    def _toggle_pause(self) -> None:
        self.paused = not self.paused
        self.pause_button.setText("Res&ume" if self.paused else "&Pause")
        (self.pause_clicked if self.paused else self.resume_clicked).emit()
        if self.paused:
            self.status.setText(self.status.text() + " — paused")

    def set_running(self, running: bool) -> None:
        self.running = running
        self.run_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        if running:
            self.paused = False
            self.pause_button.setText("&Pause")
            self.frames_shown = 0
            self.first_frame_at = None
            self.run_started_at = time.perf_counter()
            self.sparkline.set_values([])
            self.bar.setRange(0, 0)  # busy until the first report
            self.status.setText("Loading the model…")
            self.eta.setText("Time left: –")

    def clear(self) -> None:
        """Another picture: the last run's preview and words belong to the old one."""
        self.preview.clear()
        self.preview.setText("No run yet")
        self.status.setText("Ready")
        self.sparkline.set_values([])
        self.bar.setRange(0, 1)
        self.bar.setValue(0)

    def show_frame(self, rgb: np.ndarray) -> None:
        self.preview.setPixmap(
            to_pixmap(rgb).scaled(
                self.PREVIEW,
                self.PREVIEW,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        self.frames_shown += 1
        if self.first_frame_at is None:
            self.first_frame_at = time.perf_counter()

    def show_progress(self, p: Progress) -> None:
        if p.phase == "select":
            self.status.setText(
                f"Choosing a starting point: sample {p.iteration}/{p.stage_iterations}"
            )
            self.bar.setRange(0, p.stage_iterations)
            self.bar.setValue(p.iteration)
            left = selection_eta(p)
            if left is not None:
                self.eta.setText(
                    f"Time left: {format_seconds(left)} to choose the starting "
                    "point, then the optimisation"
                )
        else:
            loss = p.losses.get("total")
            self.status.setText(
                f"Stage {p.stage + 1}/{p.num_stages}, iteration "
                f"{p.iteration}/{p.stage_iterations}"
                + (f" — loss {loss:.4g}" if loss is not None else "")
            )
            self.bar.setRange(0, max(1, p.total))
            self.bar.setValue(p.step)
            self.eta.setText(f"Time left: {format_seconds(p.eta)}")
            self.sparkline.set_values(p.loss_history)
        if self.paused:
            self.status.setText(self.status.text() + " — paused")

    def finish(self, message: str) -> None:
        self.set_running(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.status.setText(message)
        self.eta.setText("Time left: –")

"""A run as the user sees it: Run / Pause / Cancel (the run panel's buttons and the
window's actions), the run panel's progress and live preview, the live frame over the
canvas at the working region, and the words at the end.

Contract.  In: the run controller (which owns the request and the run's lifecycle),
the run panel, the canvas, the app state, the window's actions (``run``, ``pause``,
``cancel``), ``show_error`` (where a sentence goes) and ``confirm`` (a yes / no
question, asked before Esc throws away a run that has gone on a while).  Out:
:attr:`result_ready` for a run that made a result, :attr:`ended` after every run."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction

from dgp_engine import DGPError

from .canvas import Canvas
from .engine_session import NEW_PICTURE, RegionRequest, RegionResult
from .model.state import AppState, HistoryEntry
from .run_controller import RunController
from .run_panel import RunPanel, format_seconds
from .worker import Progress

#: Esc cancels a run at once until it has run this long; after that it asks first.
ASK_AFTER_S = 5.0


class RunView(QObject):
    starting = Signal()  # a run was accepted and starts now
    result_ready = Signal(RegionResult, object)  # the result and its history entry
    ended = Signal()

    def __init__(
        self,
        runs: RunController,
        panel: RunPanel,
        canvas: Canvas,
        state: AppState,
        actions: dict[str, QAction],
        show_error: Callable[[str], None],
        confirm: Callable[[str, str], bool],
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.runs, self.panel, self.canvas, self.state = runs, panel, canvas, state
        self.actions, self.show_error, self.confirm = actions, show_error, confirm
        runs.run_started.connect(self._on_started)
        runs.progress.connect(self._on_progress)
        runs.frame.connect(self._on_frame)
        runs.finished.connect(self._on_finished)
        runs.failed.connect(self._on_failed)
        panel.run_clicked.connect(self.run_task)
        panel.pause_clicked.connect(runs.pause)
        panel.resume_clicked.connect(runs.resume)
        panel.cancel_clicked.connect(self.cancel_run)
        state.running_changed.connect(self._running_changed)
        self._running_changed(False)

    def build_request(self) -> RegionRequest:
        return self.runs.build_request()

    def run_task(self) -> bool:
        """Run the task on the working region; False (and a sentence) when it cannot."""
        if self.state.running:
            return False
        try:
            request = self.build_request()
        except DGPError as exc:
            self.show_error(str(exc))
            return False
        self.starting.emit()
        self.panel.set_running(True)
        self.runs.start(request)
        return True

    def cancel_run(self) -> None:
        if self.runs.cancel():
            self.panel.status.setText("Cancelling…")

    def cancel_from_key(self) -> None:
        """Esc: cancel the run, but ask first once it has run a few seconds (an Esc meant
        for a menu or a popup must not throw a long run away)."""
        if not self.runs.running:
            return
        started = self.panel.run_started_at
        ran = time.perf_counter() - started if started is not None else 0.0
        if ran > ASK_AFTER_S and not self.confirm(
            "Cancel the run?",
            f"The run has been going for {format_seconds(ran)}. "
            "Cancel it? Its last frame stays as a result layer you may apply.",
        ):
            return
        self.cancel_run()

    def _running_changed(self, running: bool) -> None:
        self.actions["run"].setEnabled(not running)
        self.actions["pause"].setEnabled(running)
        self.actions["cancel"].setEnabled(running)

    def _on_started(self) -> None:
        self.panel.status.setText("Running…")

    def _on_progress(self, p: Progress) -> None:
        self.panel.show_progress(p)

    def _on_frame(self, rgb: np.ndarray) -> None:
        self.panel.show_frame(rgb)
        req = self.runs.request
        if req is not None and req.region is not None and req.task not in NEW_PICTURE:
            rx, ry, side = req.region  # where the run works, even if the frame moved since
            self.canvas.show_preview(rgb, (req.bounds[0] + rx, req.bounds[1] + ry, side))

    def _on_finished(self, result: RegionResult, entry: HistoryEntry | None) -> None:
        self.canvas.hide_preview()
        if entry is None:
            self.panel.finish("Finished")
        else:
            self.result_ready.emit(result, entry)
            step = result.state.progress.get("step", 0)
            self.panel.finish(
                "Cancelled — the last frame is a result layer you may still apply"
                if result.cancelled
                else f"Done in {step} iterations: the result is a layer "
                "over the picture — Apply (Ctrl+Shift+Enter) bakes it in, O shows the "
                "original"
            )
        self.ended.emit()

    def _on_failed(self, message: str) -> None:
        self.canvas.hide_preview()
        if self.panel.running:
            self.panel.finish("Stopped")
        self.show_error(message)
        self.ended.emit()

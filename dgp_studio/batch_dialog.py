"""File → Batch…: restore a whole folder with the engine's batch job (``dgp batch``).

The dialog only collects settings and shows events; the job (planning, journal,
worker processes) is :class:`dgp_engine.batch.BatchJob`, iterated by a generator
worker on the dialog's worker lane and shown as a :class:`~.jobs.Job` (``job_started``:
the status bar shows it like any run).  Cancel abandons the current pictures (they go
back to pending); Start on the same output folder resumes, exactly as the command line
does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dgp_engine import DGPError
from dgp_engine.batch import (
    CONTACT_SHEET,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    WORK_DIR,
    BatchEvent,
    BatchJob,
    BatchSettings,
)
from dgp_engine.method.taskspec import menu_tasks

from .catalog import unusable_reason
from .jobs import Job
from .thread_worker import GeneratorWorker, WorkerLane, describe_error

log = logging.getLogger(__name__)

THUMB = 48
ENDED = (DONE, FAILED, SKIPPED)
RECOLOUR = "Recolour photos that are already in colour"


def in_dialog_words(reason: str | None) -> str | None:
    """A journal's reason as this dialog says it: the command-line option it names is the
    check box here."""
    if reason is None:
        return None
    return reason.replace(
        "--recolor colorizes it anyway", f"tick “{RECOLOUR}” to colorize it anyway"
    )


@dataclass
class Planned:
    """The job's pictures as found (rel, status, reason), before the first one runs."""

    rows: list[tuple[str, str, str | None]]


class BatchRun:
    """One batch job for the dialog: :meth:`events` is the generator the worker runs
    (in the lane's thread); :meth:`abandon` may be called from the GUI thread."""

    def __init__(self, settings: BatchSettings, workers: int, retry_failed: bool) -> None:
        self.settings = settings
        self.workers = workers
        self.retry_failed = retry_failed
        self.job: BatchJob | None = None
        self._abandoned = threading.Event()
        self._lock = threading.Lock()

    def abandon(self) -> None:
        """Abandon the current pictures (answered within one iteration by the workers)."""
        with self._lock:
            self._abandoned.set()
            if self.job is not None:
                self.job.abandon()

    def events(self, cancel: threading.Event) -> Generator[object, None, str]:
        """Plan, then run the job to its own end; ``cancel`` (the worker's quit, from any
        thread) abandons it, so the journal is always left consistent."""
        job = BatchJob(self.settings, workers=self.workers, retry_failed=self.retry_failed)
        with self._lock:
            self.job = job
            if self._abandoned.is_set() or cancel.is_set():
                job.abandon()
        yield Planned([(r.rel, r.status, r.reason) for r in job.journal.items()])
        for ev in job:
            if cancel.is_set() and not self._abandoned.is_set():
                self.abandon()
            yield ev
        return job.outcome


class BatchDialog(QDialog):
    """Folders, task, model, preset, class, workers; a list of files with thumbnails."""

    job_started = Signal(object)  # the batch as a jobs.Job, for the status bar

    def __init__(self, parent: QWidget | None = None, *, threads: int | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch restoration")
        self.resize(720, 620)
        self.threads = threads
        self.lane: WorkerLane | None = None  # one per job: no thread while idle
        self.worker: GeneratorWorker | None = None
        self.run: BatchRun | None = None
        self.rows: dict[str, QListWidgetItem] = {}
        self.statuses: dict[str, str] = {}
        self.reasons: dict[str, str] = {}  # why each skipped picture was skipped
        self.seconds: list[float] = []
        self.workers_used = 1
        self.outcome: str | None = None
        self.error: str | None = None

        form = QFormLayout()
        self.input_dir = QLineEdit()
        self.output_dir = QLineEdit()
        form.addRow("Pictures folder", self._with_browse(self.input_dir, self._pick_input))
        form.addRow("Results folder", self._with_browse(self.output_dir, self._pick_output))
        self.task = QComboBox()
        for spec in menu_tasks():
            self.task.addItem(spec.label, spec.name)
        self.task.setCurrentIndex(self.task.findData("colorize"))
        form.addRow("Task", self.task)
        # colorize: a photo already in colour keeps its true colours unless asked
        self.recolor = QCheckBox(RECOLOUR)
        self.recolor.setToolTip(
            "Colorize replaces a photo's colours with the model's. Photos "
            "that are already in colour are skipped (the list says why) "
            "unless this is ticked."
        )
        form.addRow("", self.recolor)
        self.task.currentIndexChanged.connect(self._task_changed)
        self.masks = QLineEdit()
        self.masks.setPlaceholderText("NAME_mask.png beside each picture (or a file / folder)")
        form.addRow("Masks", self.masks)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(self._model_names())
        form.addRow("Model", self._with_browse(self.model, self._pick_model))
        self.preset = QComboBox()
        self.preset.setEditable(True)
        self.preset.addItem("")
        self.preset.addItems(self._preset_names())
        self.preset.setToolTip("empty: the model's own preset for the task")
        form.addRow("Preset", self.preset)
        self.class_spec = QLineEdit("auto")
        form.addRow("Class", self.class_spec)
        self.iterations = QDoubleSpinBox()
        self.iterations.setRange(0.01, 10.0)
        self.iterations.setSingleStep(0.1)
        self.iterations.setValue(1.0)
        self.iterations.setToolTip("scale every stage's iteration count")
        form.addRow("Iterations ×", self.iterations)
        self.workers = QSpinBox()
        self.workers.setRange(1, 64)
        form.addRow("Workers", self.workers)
        self.save_state = QCheckBox("Also save each reconstruction (.dgp)")
        self.retry_failed = QCheckBox("Run failed pictures again")
        form.addRow("", self.save_state)
        form.addRow("", self.retry_failed)

        self.progress = QProgressBar()
        self.status = QLabel(
            "Choose the folders, then Start. Start on a folder used before resumes it."
        )
        self.status.setWordWrap(True)
        self.list = QListWidget()
        self.list.setIconSize(QPixmap(THUMB * 2 + 4, THUMB).size())
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.sheet_button = QPushButton("Open contact sheet")
        self.close_button = QPushButton("Close")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.sheet_button.clicked.connect(self.open_contact_sheet)
        self.close_button.clicked.connect(self.close)
        self.output_dir.textChanged.connect(self._update_buttons)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.sheet_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._update_buttons()
        self._task_changed()
        app = QCoreApplication.instance()
        if app is not None:  # quitting the app abandons a running job cleanly
            app.aboutToQuit.connect(self.stop_and_wait)

    # --- form helpers -----------------------------------------------------------------------
    def _with_browse(self, field: QWidget, slot: Callable[[], None]) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(field, 1)
        b = QPushButton("Browse…")
        b.clicked.connect(slot)
        row.addWidget(b)
        return box

    @staticmethod
    def _model_names() -> list[str]:
        try:
            from dgp_engine.priors import registry

            # StyleGAN2 priors are listed in Models but DGP does not run on them yet
            names = [
                m.name
                for m in registry.list_models()
                if m.usable and unusable_reason(m.family) is None
            ]
        except Exception as exc:  # noqa: BLE001 — the list is a convenience
            log.warning("models not listed: %s", exc)
            names = []
        return names or ["bundled"]

    @staticmethod
    def _preset_names() -> list[str]:
        try:
            from dgp_engine.method.presets import preset_names

            return preset_names()
        except Exception:  # noqa: BLE001
            return []

    def _pick_input(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of pictures", self.input_dir.text())
        if d:
            self.input_dir.setText(d)
            if not self.output_dir.text():
                self.output_dir.setText(str(Path(d).with_name(Path(d).name + "-restored")))

    def _pick_output(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder for the results", self.output_dir.text())
        if d:
            self.output_dir.setText(d)

    def _pick_model(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Model folder (config.json + G/D weights)")
        if d:
            self.model.setCurrentText(d)

    # --- state --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def contact_sheet(self) -> Path | None:
        text = self.output_dir.text().strip()
        return Path(text).expanduser() / CONTACT_SHEET if text else None

    def _update_buttons(self) -> None:
        running = self.running
        for w in (
            self.input_dir,
            self.output_dir,
            self.task,
            self.masks,
            self.model,
            self.preset,
            self.class_spec,
            self.iterations,
            self.workers,
            self.save_state,
            self.retry_failed,
            self.recolor,
        ):
            w.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        sheet = self.contact_sheet()
        self.sheet_button.setEnabled(not running and sheet is not None and sheet.is_file())
        out = self.output_dir.text().strip()
        used = bool(out) and (Path(out).expanduser() / WORK_DIR / "journal.sqlite").is_file()
        self.start_button.setText("Resume" if used else "Start")

    def settings(self) -> BatchSettings:
        masks = self.masks.text().strip()
        mask = masks_dir = None
        if masks:
            p = Path(masks).expanduser()
            mask, masks_dir = (None, p) if p.is_dir() else (p, None)
        scale = self.iterations.value()
        # one core is left to the window, the rest shared by the worker processes
        from dgp_engine.system.runtime import default_threads

        threads = self.threads or max(1, default_threads() // self.workers.value())
        return BatchSettings(
            task=self.task.currentData(),
            input_dir=Path(self.input_dir.text().strip()),
            output_dir=Path(self.output_dir.text().strip()),
            model=self.model.currentText().strip() or "bundled",
            preset=self.preset.currentText().strip() or None,
            iterations_scale=None if abs(scale - 1.0) < 1e-9 else scale,
            class_spec=self.class_spec.text().strip() or "auto",
            mask=mask,
            masks_dir=masks_dir,
            save_state=self.save_state.isChecked(),
            threads=threads,
            **self.task_options(),
        )

    def task_options(self) -> dict[str, Any]:
        """Further BatchSettings fields for the chosen task: colorize recolours photos
        already in colour only when asked (else the engine skips them with the reason)."""
        if self.task.currentData() == "colorize" and self.recolor.isChecked():
            return {"recolor": True}
        return {}

    def _task_changed(self, _index: int = 0) -> None:
        self.recolor.setVisible(self.task.currentData() == "colorize")

    # --- running --------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        if self.running:
            return
        if not self.input_dir.text().strip() or not self.output_dir.text().strip():
            self.status.setText("Choose a folder of pictures and a folder for the results.")
            return
        try:
            settings = self.settings()
        except DGPError as exc:
            self.status.setText(str(exc))
            return
        self.list.clear()
        self.rows.clear()
        self.statuses.clear()
        self.reasons.clear()
        self.seconds.clear()
        self.outcome = self.error = None
        self.workers_used = self.workers.value()
        self.status.setText("Looking at the folder…")
        self.run = BatchRun(settings, self.workers_used, self.retry_failed.isChecked())
        # cooperative: a cancel abandons through the job (pictures back to pending) and
        # the generator runs on to the job's own end
        self.worker = GeneratorWorker(self.run.events, describe=self._describe, cooperative=True)
        self.worker.yielded.connect(self._yielded)
        self.worker.errored.connect(self._failed)
        self.worker.returned.connect(self._done)
        self.worker.finished.connect(self._finished)
        job = Job.for_worker(self.worker, f"Batch {settings.task}", parent=self)
        self._update_buttons()
        self.job_started.emit(job)
        self.lane = WorkerLane("dgp-batch", self)
        self.lane.start(self.worker)

    @Slot()
    def cancel(self) -> None:
        if self.run is not None:
            self.run.abandon()  # at once, not only at the job's next event
            self.status.setText("Cancelling: the current pictures stop and go back to pending…")

    @staticmethod
    def _describe(exc: BaseException) -> str:
        return describe_error(exc, "the batch")

    @Slot(object)
    def _yielded(self, value: Planned | BatchEvent) -> None:
        if isinstance(value, Planned):
            self._planned(value.rows)
        else:
            self._event(value)

    def _planned(self, rows: list[tuple[str, str, str | None]]) -> None:
        for rel, status, reason in rows:
            item = QListWidgetItem()
            self.rows[rel] = item
            self.list.addItem(item)
            self._set_row(rel, status, reason)
        self.progress.setRange(0, max(1, len(rows)))
        self._show_progress()

    def _event(self, ev: BatchEvent) -> None:
        if ev.kind == "item" and ev.rel in self.rows:
            detail = ev.reason
            if ev.status == DONE and ev.seconds is not None:
                self.seconds.append(ev.seconds)
                detail = f"{ev.seconds:.1f} s"
            assert ev.status is not None  # an item event always carries its status
            self._set_row(ev.rel, ev.status, detail)
            if ev.thumb_in is not None and ev.thumb_out is not None:
                self.rows[ev.rel].setIcon(_pair_icon(ev.thumb_in, ev.thumb_out))
            self._show_progress()
        elif ev.kind == "progress" and ev.rel in self.rows:
            left = f", {ev.eta:.0f} s left" if ev.eta is not None else ""
            self.rows[ev.rel].setText(f"{ev.rel} — running (iteration {ev.step}/{ev.total}{left})")
        elif ev.kind == "workers":
            self.status.setText(ev.message)

    def _set_row(self, rel: str, status: str, detail: str | None) -> None:
        self.statuses[rel] = status
        detail = in_dialog_words(detail)
        if status == SKIPPED:
            self.reasons[rel] = detail or "skipped"
        else:
            self.reasons.pop(rel, None)
        self.rows[rel].setText(f"{rel} — {status}" + (f" ({detail})" if detail else ""))
        if status == FAILED:
            self.rows[rel].setForeground(Qt.GlobalColor.darkRed)

    def _show_progress(self) -> None:
        n = len(self.statuses)
        ended = sum(s in ENDED for s in self.statuses.values())
        self.progress.setValue(ended)
        counts = {
            s: sum(v == s for v in self.statuses.values())
            for s in (DONE, FAILED, SKIPPED, RUNNING, PENDING)
        }
        text = (
            f"{counts[DONE]}/{n} done, {counts[FAILED]} failed, {counts[SKIPPED]} skipped, "
            f"{counts[RUNNING]} running"
        )
        left = counts[PENDING] + counts[RUNNING]
        if self.seconds and left:
            eta = left * (sum(self.seconds) / len(self.seconds)) / max(1, self.workers_used)
            text += (
                f" — about {eta / 60:.1f} min left" if eta >= 90 else f" — about {eta:.0f} s left"
            )
        if self.reasons:  # why, said in the summary too (a long list scrolls them away)
            shown = [f"{rel}: {why}" for rel, why in list(self.reasons.items())[:3]]
            more = len(self.reasons) - len(shown)
            text += "\nSkipped — " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        self.status.setText(text)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.error = message
        self.status.setText(f"Stopped: {message}")

    @Slot(object)
    def _done(self, outcome: str) -> None:
        self.outcome = outcome
        self._show_progress()
        if outcome in ("abandoned", "stopped"):
            self.status.setText(self.status.text() + " — cancelled; Resume goes on.")
        elif outcome == "nothing to do":
            self.status.setText(self.status.text() + " — nothing left to do.")

    @Slot()
    def _finished(self) -> None:
        if self.lane is not None:
            self.lane.stop()  # its one worker has ended: the thread ends at once
            self.lane.deleteLater()
        self.lane = self.worker = self.run = None
        self._update_buttons()

    @Slot()
    def open_contact_sheet(self) -> None:
        sheet = self.contact_sheet()
        if sheet is not None and sheet.is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(sheet.resolve())))

    @Slot()
    def stop_and_wait(self, timeout_ms: int = 30000) -> None:
        """Abandon a running job and wait for it (closing the dialog or the app)."""
        if self.run is not None:
            self.run.abandon()
        if self.lane is not None:
            self.lane.stop(timeout_ms)
        if self.worker is not None:
            self._finished()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 — Qt's name
        if self.running:
            self.stop_and_wait()
        super().closeEvent(event)


def _pair_icon(before: Path, after: Path) -> QIcon:
    """Before and after thumbnails side by side."""
    from PySide6.QtGui import QPainter

    pix = QPixmap(THUMB * 2 + 4, THUMB)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    for i, path in enumerate((before, after)):
        p = QPixmap(str(path))
        if not p.isNull():
            p = p.scaled(
                THUMB,
                THUMB,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            painter.drawPixmap(i * (THUMB + 4), 0, p)
    painter.end()
    return QIcon(pix)

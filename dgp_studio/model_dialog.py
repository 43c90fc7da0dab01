"""Models dialog: every prior the registry knows — what it is for, its size and licence —
with Download (progress, Stop, resume) and import of checkpoint files the user has.

Transfers run through the engine's async API as I/O jobs (:class:`~.jobs.AsyncJob`):
on the qasync event loop, never on the GUI thread; without a running loop (qasync
missing) on a private asyncio loop in a helper thread.  Each transfer is a
:class:`~.jobs.Job` like a run (``job_started``), so the status bar shows it too.
This app has no downloader of its own."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dgp_engine.priors import hub_async

from .catalog import unusable_reason
from .jobs import AsyncJob, Job, JobProgress, JobState

if TYPE_CHECKING:
    from dgp_engine.priors.progress import TransferProgress
    from dgp_engine.priors.registry import ModelStatus

log = logging.getLogger(__name__)

#: What a larger prior changes, said once above the list.
LARGER_PRIOR = (
    "A prior is the GAN that DGP fine-tunes on your photo. The bundled one is a small demo "
    "that runs offline. A larger prior, trained on real photos at 128 or 256 px, fills "
    "holes with believable texture, paints natural colours and knows many more classes; "
    "it is a one-time download, and each run takes longer."
)
COLUMNS = ["Model", "State", "Resolution", "Classes", "Download", "Installed", "Licence"]
_CANCELLED = object()  # outcome of a stopped transfer (an exception is a failure)


def kept_download_bytes(name: str) -> int:
    """Bytes an interrupted download of ``name`` left in the download cache, which a new
    Download does not fetch again (0: nothing kept, it starts over).  Counted over the
    source repository's cached blobs, finished or partial (huggingface_hub's layout)."""
    from dgp_engine import DGPError
    from dgp_engine.priors import registry

    try:
        src = registry.get_entry(name).source
    except DGPError:
        return 0
    if src is None or not src.configured:
        return 0
    blobs = registry.downloads_dir() / ("models--" + src.repo_id.replace("/", "--")) / "blobs"
    try:
        return sum(f.stat().st_size for f in blobs.iterdir() if f.is_file())
    except OSError:  # no such folder: nothing was downloaded
        return 0


def in_dialog_words(message: str) -> str:
    """The engine's sentence as this dialog says it: the command lines it suggests (for
    the CLI) become this dialog's buttons."""
    message = re.sub(
        r"import files you have with `dgp models import[^`]*`",
        "press Import files… to install G and D files you already have",
        message,
    )
    message = re.sub(r"`dgp models import[^`]*`", "Import files…", message)
    message = re.sub(r"`dgp models pull [^`]*`", "Download", message)
    return message.replace("connect and pull again", "connect and press Download again")


def classes_words(n: int | None) -> str:
    """A model's class count for the list: "?" when unknown, none for an unconditional one."""
    if n is None:
        return "?"
    return "none (unconditional)" if n == 0 else str(n)


def _mb(n: float | None) -> str:
    """A byte count for people: MB below a gigabyte, GB above."""
    if n is None:
        return "?"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


class ModelDialog(QDialog):
    models_changed = Signal()
    #: the user asked to work with this (installed) model now
    use_model = Signal(str)
    #: a transfer started (a jobs.Job: the status bar shows it)
    job_started = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setAccessibleName("Models")
        self.job: AsyncJob | None = None  # the current (or last) transfer
        self._job_name = ""
        # the job's cancel event, set by Stop as well as cancelling the task: the
        # engine's worker thread sees it even if the event loop ends first (app quitting)
        self._cancel = threading.Event()
        self._rows: dict[str, ModelStatus] = {}
        self._classes: dict[str, int | None] = {}
        # stopped or failed with bytes kept in the download cache: Download resumes them
        self._interrupted: set[str] = set()
        self._plan_total: int | None = None
        self._file_totals: dict[int, int] = {}
        lay = QVBoxLayout(self)
        self.intro = QLabel(LARGER_PRIOR)
        self.intro.setWordWrap(True)
        self.intro.setAccessibleName("What a larger prior changes")
        lay.addWidget(self.intro)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("Model list")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table, 1)
        self.details = QLabel("Select a model to see what it is for.")
        self.details.setWordWrap(True)
        self.details.setAccessibleName("Model details")
        lay.addWidget(self.details)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Transfer status")
        lay.addWidget(self.status)
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Transfer progress")
        self.bar.setVisible(False)
        lay.addWidget(self.bar)
        row = QHBoxLayout()
        self.download_button = QPushButton("&Download")
        self.use_button = QPushButton("&Use this model")
        self.import_button = QPushButton("&Import files…")
        self.cancel_button = QPushButton("&Stop")
        self.close_button = QPushButton("Close")
        for b in (
            self.download_button,
            self.use_button,
            self.import_button,
            self.cancel_button,
            self.close_button,
        ):
            b.setAccessibleName(b.text().replace("&", ""))
            row.addWidget(b)
        lay.addLayout(row)
        self.cancel_button.setEnabled(False)
        self.download_button.clicked.connect(self.download_selected)
        self.use_button.clicked.connect(self._use_selected)
        self.import_button.clicked.connect(self.import_files)
        self.cancel_button.clicked.connect(self.stop)
        self.close_button.clicked.connect(self.close)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.resize(820, 440)
        self.refresh()

    # --- the list -------------------------------------------------------------
    def refresh(self) -> None:
        selected = self._selected_name()
        try:
            from dgp_engine.priors import registry

            rows = registry.list_models()
            known = registry.entries()
        except Exception as exc:  # noqa: BLE001 — shown, not raised
            self.status.setText(f"The model registry is unavailable: {exc}")
            rows, known = [], {}
        self._rows = {st.name: st for st in rows}
        # the generator's classes, whichever family (a StyleGAN2's conditioning size)
        self._classes = {name: e.n_classes for name, e in known.items()}
        self._installed_bytes = {name: e.installed_bytes for name, e in known.items()}
        self.table.setRowCount(len(rows))
        for i, st in enumerate(rows):
            n_classes = self._classes.get(st.name)
            cells = (
                st.name,
                self._state_words(st),
                f"{st.resolution} px" if st.resolution else "?",
                classes_words(n_classes),
                _mb(st.download_bytes) if st.download_bytes and st.downloadable else "—",
                _mb(st.size_bytes) if st.usable else "—",
                st.licence or "—",
            )
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 0:
                    later = unusable_reason(st.family)
                    face = f"\nface prior ({st.face})" if st.face else ""
                    item.setToolTip(st.title + face + (f"\n{later}" if later else ""))
                elif j == len(cells) - 1 and st.licence:
                    item.setToolTip(st.licence)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        if selected is not None:
            self.select(selected)
        self._selection_changed()

    def _state_words(self, st: ModelStatus) -> str:
        if st.state == "not installed" and st.name in self._interrupted:
            return "stopped (resumable)"
        if st.state == "not installed" and not st.downloadable:
            return "import files"
        return st.state

    def names(self) -> list[str]:
        return [self._name_at(r) for r in range(self.table.rowCount())]

    def _name_at(self, row: int) -> str:
        item = self.table.item(row, 0)  # every row has its name cell
        assert item is not None
        return item.text()

    def select(self, name: str) -> bool:
        for r in range(self.table.rowCount()):
            if self._name_at(r) == name:
                self.table.selectRow(r)
                self.table.setCurrentCell(r, 0)
                return True
        return False

    def _selected_name(self) -> str | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return item.text() if item else None

    def describe(self, name: str) -> str:
        """What the model is for, its size and licence: the text under the list."""
        st = self._rows.get(name)
        if st is None:
            return ""
        parts = [f"<b>{st.title}</b>"]
        if st.about:
            parts.append(st.about)
        facts = []
        if st.resolution:
            facts.append(f"{st.resolution} px")
        if st.family == "stylegan2":
            facts.append("StyleGAN2")
        if st.face:
            facts.append(f"face prior ({st.face}: restores the face the Face points tool marks)")
        n_classes = self._classes.get(name)
        if n_classes is not None:
            facts.append("unconditional (no classes)" if n_classes == 0 else f"{n_classes} classes")
        if st.usable:
            facts.append(f"{_mb(st.size_bytes)} on disk")
        elif st.download_bytes:
            installed = self._installed_bytes.get(name)
            facts.append(
                f"{_mb(st.download_bytes)} to download"
                + (f", about {_mb(installed)} once installed" if installed else "")
            )
        if st.licence:
            facts.append(f"licence: {st.licence}")
        if facts:
            parts.append("; ".join(facts) + ".")
        if st.state == "not installed" and not st.downloadable:
            parts.append("No public download: import its G and D files with Import files….")
        later = unusable_reason(st.family)
        if later:
            parts.append(later)
        return "<br>".join(parts)

    def _selection_changed(self) -> None:
        name = self._selected_name()
        st = self._rows.get(name) if name else None
        self.details.setText(
            self.describe(name) if name and st else "Select a model to see what it is for."
        )
        busy = self._busy
        can_pull = bool(st and st.downloadable and not st.usable)
        if st is not None and name in self._interrupted and can_pull:
            self.download_button.setText("&Resume download")
        elif st is not None and can_pull and st.download_bytes:
            self.download_button.setText(f"&Download ({_mb(st.download_bytes)})")
        else:
            self.download_button.setText("&Download")
        # with nothing selected, pressing it says what to do
        self.download_button.setEnabled((st is None or can_pull) and not busy)
        later = unusable_reason(st.family) if st is not None else None
        self.use_button.setEnabled(bool(st and st.usable) and later is None)
        self.use_button.setToolTip(later or "")

    # --- transfers ------------------------------------------------------------
    @property
    def _busy(self) -> bool:
        return self.job is not None and not self.job.state.ended

    def is_busy(self) -> bool:
        return self._busy

    def _new_job(self, what: str, name: str | None) -> AsyncJob:
        self._plan_total, self._file_totals = None, {}
        job = self.job = AsyncJob(what, parent=self)
        self._job_name = name or ""
        self._cancel = job.cancel_event
        job.ended.connect(self._job_ended)
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)
        self.status.setText(f"{what}…")
        self._set_busy(True)
        self.job_started.emit(job)
        return job

    def _start(
        self,
        coro_factory: Callable[[Callable[[Any], None]], Awaitable[Any]],
        what: str,
        name: str | None = None,
    ) -> None:
        if self._busy:
            self.status.setText("A transfer is running: wait for it or press Stop.")
            return
        job = self._new_job(what, name)
        # the engine's reports reach _progress in the GUI thread (looked up now: tests
        # may replace it)
        job.start_coroutine(coro_factory, on_report=self._progress)

    async def _run(self, coro: Awaitable[Any], what: str, name: str | None = None) -> None:
        """Await a transfer on the running loop as this dialog's job."""
        await self._new_job(what, name).run(coro)

    @Slot(object)
    def _job_ended(self, job: Job) -> None:
        if job is not self.job:
            return
        outcome = {JobState.FINISHED: None, JobState.CANCELLED: _CANCELLED}.get(
            job.state, job.exception or job.error
        )
        self._finish(job.title, self._job_name, outcome)

    def _finish(self, what: str, name: str, outcome: object) -> None:
        if outcome is None:
            self._interrupted.discard(name)
            self.status.setText(
                f"{what}: done."
                + (
                    f" {name} is ready: press Use this model, or pick it in the Model list."
                    if name
                    else ""
                )
            )
            self.models_changed.emit()
        elif outcome is _CANCELLED:
            kept = self._note_kept(name)
            self.status.setText(
                f"{what}: stopped; nothing was installed."
                + (
                    f" {_mb(kept)} were kept: press Resume download to continue where it stopped."
                    if kept
                    else ""
                )
            )
        else:
            kept = self._note_kept(name)
            if _is_engine_error(outcome):  # anything else was logged in full by the job
                log.warning("%s failed: %s", what, outcome)
            self.status.setText(
                f"{what} failed: {in_dialog_words(str(outcome))}"
                + (f" ({_mb(kept)} kept for Resume download.)" if kept else "")
            )
        self._set_busy(False)
        if "Import files" in self.status.text():
            self.import_button.setFocus()  # the way on that the sentence points at
        self.bar.setVisible(False)
        self.refresh()
        if outcome is None and name:
            self.select(name)

    def _note_kept(self, name: str) -> int:
        """After a stopped or failed transfer: ``name`` is resumable only when its
        download left bytes behind.  Returns how many."""
        kept = kept_download_bytes(name) if name else 0
        if kept:
            self._interrupted.add(name)
        else:
            self._interrupted.discard(name)
        return kept

    def _progress(self, p: TransferProgress) -> None:
        """One engine report (hub.TransferProgress) in words and on the bar."""
        if p.stage == "list":
            self.bar.setRange(0, 0)
            self.status.setText(f"Looking up {p.model}'s files on the Hub ({p.file})…")
            self._job_progress(None, p)
            return
        if p.stage == "plan":
            self._plan_total = p.total
            self.bar.setRange(0, 0)
            size = f"{_mb(p.total)} to download" if p.total else "size not known yet"
            files = " + ".join(f.rsplit("/", 1)[-1] for f in p.file.split(" + "))
            self.status.setText(f"{p.model}: {size} ({files}).")
            self._job_progress(None, p)
            return
        if p.stage == "download" and p.total:
            self._file_totals[p.index] = p.total
        overall = None
        if p.stage == "download" and self._plan_total:
            before = sum(t for i, t in self._file_totals.items() if i < p.index)
            overall = min(1.0, (before + p.done) / self._plan_total)
        elif p.total:
            overall = min(1.0, p.done / p.total)
        if overall is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * overall))
        total = f" of {_mb(p.total)}" if p.total else ""
        file = f"file {p.index + 1} of {p.count}" if p.count > 1 else p.file
        doing = {
            "download": "downloading",
            "hash": "checking (SHA-256)",
            "read": "converting",
            "write": "converting",
            "verify": "verifying",
        }.get(p.stage, p.stage)
        self.status.setText(f"{p.model}: {doing} {file}, {_mb(p.done)}{total}")
        self._job_progress(overall, p)

    def _job_progress(self, fraction: float | None, p: TransferProgress) -> None:
        if self.job is not None and not self.job.state.ended:
            self.job.set_progress(JobProgress(fraction, self.status.text(), p))

    def _set_busy(self, busy: bool) -> None:
        self.import_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self._selection_changed()
        if busy:
            self.download_button.setEnabled(False)

    def download(self, name: str) -> None:
        """Download ``name`` (resuming what an earlier, stopped try kept)."""
        self.select(name)
        st = self._rows.get(name)
        if st is not None and st.usable:
            self.status.setText(f"{name} is already installed.")
            return
        if st is not None and not st.downloadable:
            self.status.setText(
                f"{name} has no public download: import its G and D files with Import files…."
            )
            return
        ops = hub_async
        word = "Resume download of" if name in self._interrupted else "Download"
        self._start(
            lambda report: ops.pull_async(name, progress=report, cancel=self._cancel),
            f"{word} {name}",
            name,
        )

    def download_selected(self) -> None:
        name = self._selected_name()
        if not name:
            self.status.setText("Select a model to download.")
            return
        self.download(name)

    def _use_selected(self) -> None:
        name = self._selected_name()
        if name and name in self._rows and self._rows[name].usable:
            self.use_model.emit(name)

    def import_files(self) -> None:
        """Install files the user has: a generator and its discriminator (BigGAN-PyTorch
        or StudioGAN), or one NVIDIA StyleGAN2 network pickle holding both (read without
        running its code)."""
        g, _ = QFileDialog.getOpenFileName(
            self,
            "Generator weights (G_ema.pth) or a StyleGAN2 network pickle",
            "",
            "Weights or network pickle (*.pth *.safetensors *.pkl)",
        )
        if not g:
            return
        pickle = g.lower().endswith(".pkl")
        d = ""
        if not pickle:
            d, _ = QFileDialog.getOpenFileName(
                self, "Discriminator weights (D.pth)", "", "Weights (*.pth *.safetensors)"
            )
            if not d:
                return
        name, ok = QInputDialog.getText(
            self,
            "Model name",
            "Name (a registered model such as biggan-128, or a new name):",
            text=self._selected_name() or "",
        )
        if not ok or not name:
            return
        if not self._may_replace(name):
            return
        ops = hub_async
        if pickle:
            alignment = self._face_alignment_of(g)
            self._start(
                lambda report: ops.import_pickle_async(
                    name, g, progress=report, cancel=self._cancel, alignment=alignment
                ),
                f"Import {name}",
                name,
            )
            return
        self._start(
            lambda report: ops.import_files_async(name, g, d, progress=report, cancel=self._cancel),
            f"Import {name}",
            name,
        )

    def _face_alignment_of(self, pickle: str) -> str | None:
        """For a pickle whose name says faces (ffhq.pkl, metfaces.pkl…): asks whether it
        is a face prior ("ffhq" or "none"); None for other names (the engine's default:
        not a face prior; `dgp models import NAME --pkl F --align ffhq` marks one)."""
        from dgp_engine.priors.family import alignment_from_name

        if not alignment_from_name(Path(pickle).name):
            return None
        answer = QMessageBox.question(
            self,
            "Face prior?",
            f"{Path(pickle).name} looks like a model of faces aligned the FFHQ way. Restore "
            "photos with it on the face (found by the detector or marked with the Face "
            "points tool)?",
        )
        return "ffhq" if answer == QMessageBox.StandardButton.Yes else "none"

    def _may_replace(self, name: str) -> bool:
        """True unless ``name`` is installed and the user declines to replace it."""
        st = self._rows.get(name)
        if st is None or st.state != "installed":
            return True
        answer = QMessageBox.question(
            self,
            "Replace the model?",
            f"A model named {name} is already installed. Replace it with these files?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def stop(self) -> None:
        """Stop the running transfer; the engine tidies up, then the outcome is shown."""
        if not self._busy:
            return
        assert self.job is not None
        self.job.cancel()
        self.cancel_button.setEnabled(False)
        self.status.setText("Stopping…")

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._busy:
            if (
                QMessageBox.question(
                    self, "Stop the transfer?", "A model transfer is running. Stop it?"
                )
                != QMessageBox.StandardButton.Yes
            ):
                event.ignore()
                return
            self.stop()
        super().closeEvent(event)


def _is_engine_error(exc: object) -> bool:
    from dgp_engine import DGPError

    return isinstance(exc, DGPError)

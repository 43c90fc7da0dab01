"""Models dialog: the registry's models with their state, download (byte progress)
and import of checkpoint files the user has.  The transfers run through the
engine's async API on the qasync event loop — never on the GUI thread, and this
app has no downloader of its own."""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import Signal
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
)

log = logging.getLogger(__name__)


def _mb(n) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


class ModelDialog(QDialog):
    models_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setAccessibleName("Models")
        self._task: asyncio.Task | None = None
        lay = QVBoxLayout(self)
        self.table = QTableWidget(0, 4)
        self.table.setAccessibleName("Model list")
        self.table.setHorizontalHeaderLabels(["Model", "State", "Resolution", "Size"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        lay.addWidget(self.table)
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
        self.import_button = QPushButton("&Import files…")
        self.cancel_button = QPushButton("&Stop")
        self.close_button = QPushButton("Close")
        for b in (self.download_button, self.import_button, self.cancel_button,
                  self.close_button):
            b.setAccessibleName(b.text().replace("&", ""))
            row.addWidget(b)
        lay.addLayout(row)
        self.cancel_button.setEnabled(False)
        self.download_button.clicked.connect(self.download_selected)
        self.import_button.clicked.connect(self.import_files)
        self.cancel_button.clicked.connect(self.stop)
        self.close_button.clicked.connect(self.close)
        self.resize(560, 360)
        self.refresh()

    def refresh(self) -> None:
        try:
            from dgp_engine import registry

            rows = registry.list_models()
        except Exception as exc:  # noqa: BLE001 — shown, not raised
            self.status.setText(f"The model registry is unavailable: {exc}")
            rows = []
        self.table.setRowCount(len(rows))
        for i, st in enumerate(rows):
            for j, text in enumerate((st.name, st.state, str(st.resolution or "?"),
                                      _mb(st.size_bytes))):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def _selected_name(self) -> str | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return item.text() if item else None

    # --- transfers ------------------------------------------------------------
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None

    def _start(self, coro_factory, what: str) -> None:
        loop = self._loop()
        if loop is None or not loop.is_running():
            self.status.setText("Downloads need the app's event loop (start DGP Studio with "
                                "`dgp-studio`); use `dgp models pull` in a terminal instead.")
            return
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)
        self.status.setText(f"{what}…")
        self._set_busy(True)
        self._task = loop.create_task(self._run(coro_factory(), what))

    async def _run(self, coro, what: str) -> None:
        try:
            await coro
            self.status.setText(f"{what}: done.")
            self.models_changed.emit()
        except asyncio.CancelledError:
            self.status.setText(f"{what}: stopped; nothing was installed.")
        except Exception as exc:  # noqa: BLE001 — the engine's errors say what to do
            log.warning("%s failed: %s", what, exc)
            self.status.setText(f"{what} failed: {exc}")
        finally:
            self._task = None
            self._set_busy(False)
            self.bar.setVisible(False)
            self.refresh()

    def _progress(self, p) -> None:
        if p.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * p.done / p.total))
        else:
            self.bar.setRange(0, 0)
        total = f" of {_mb(p.total)}" if p.total else ""
        self.status.setText(f"{p.model}: {p.stage} {p.file} ({p.index + 1}/{p.count}) "
                            f"{_mb(p.done)}{total}")

    def _set_busy(self, busy: bool) -> None:
        self.download_button.setEnabled(not busy)
        self.import_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def download_selected(self) -> None:
        name = self._selected_name()
        if not name:
            self.status.setText("Select a model to download.")
            return
        from dgp_engine import hub

        self._start(lambda: hub.pull_async(name, progress=self._progress), f"Download {name}")

    def import_files(self) -> None:
        g, _ = QFileDialog.getOpenFileName(self, "Generator weights (G_ema.pth)", "",
                                           "Weights (*.pth *.safetensors)")
        if not g:
            return
        d, _ = QFileDialog.getOpenFileName(self, "Discriminator weights (D.pth)", "",
                                           "Weights (*.pth *.safetensors)")
        if not d:
            return
        name, ok = QInputDialog.getText(self, "Model name",
                                        "Name (a registered model such as biggan128, or a new "
                                        "name):", text=self._selected_name() or "")
        if not ok or not name:
            return
        from dgp_engine import hub

        self._start(lambda: hub.import_files_async(name, g, d, progress=self._progress),
                    f"Import {name}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def closeEvent(self, event) -> None:
        if self._task is not None:
            if QMessageBox.question(self, "Stop the transfer?",
                                    "A model transfer is running. Stop it?") \
                    != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self._task.cancel()
        super().closeEvent(event)

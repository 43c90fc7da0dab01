"""Preferences: device, engine threads, compute precision, cache folder and hub
repositories."""

from __future__ import annotations

import os

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dgp_engine.method.compute import PRECISIONS

from .engine_session import available_devices
from .settings import Settings, default_engine_threads


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        form = QFormLayout()
        self.device = QComboBox()
        self.device.setAccessibleName("Default device")
        self.device.addItems(available_devices())
        if settings.device not in available_devices():
            self.device.addItem(settings.device)
        self.device.setCurrentText(settings.device)
        form.addRow("Default &device", self.device)
        self.threads = QSpinBox()
        self.threads.setAccessibleName("Engine threads")
        self.threads.setRange(1, max(64, os.cpu_count() or 1))
        self.threads.setValue(settings.engine_threads)
        self.threads.setToolTip(
            f"Default {default_engine_threads()}: one core is left for the interface"
        )
        form.addRow("Engine &threads", self.threads)
        self.precision = QComboBox()
        self.precision.setAccessibleName("Compute precision")
        self.precision.addItems(list(PRECISIONS))
        self.precision.setCurrentText(settings.precision)
        self.precision.setToolTip(
            "auto: TF32 on NVIDIA GPUs; on a CPU with AMX or AVX512-BF16, bfloat16 if "
            "it measured faster here; float32 elsewhere. fp32: float32 everywhere. "
            "tf32: NVIDIA GPUs only. bf16: faster on CPUs with AMX and recent GPUs, "
            "smaller activations on a GPU (try it after the GPU ran out of memory); "
            "slow on CPUs without native bfloat16; not on Apple MPS. A device that "
            "cannot use the choice runs with auto."
        )
        form.addRow("Compute &precision", self.precision)
        # what "auto" chose on the default device, and why (never measured here)
        self.auto_precision = QLabel("")
        self.auto_precision.setAccessibleName("Automatic precision")
        self.auto_precision.setWordWrap(True)
        form.addRow("", self.auto_precision)
        self.device.currentTextChanged.connect(self._show_auto_precision)
        self._show_auto_precision(self.device.currentText())
        self.cache = QLineEdit(settings.cache_dir)
        self.cache.setAccessibleName("Cache folder")
        self.cache.setPlaceholderText(str(settings.resolved_cache_dir()))
        self.cache.setToolTip(
            "Where downloaded and imported models and autosaves live. "
            "Models already installed elsewhere are not moved: import "
            "them again, or move the folder's models/ yourself."
        )
        browse = QPushButton("…")
        browse.setAccessibleName("Choose cache folder")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.cache, 1)
        row.addWidget(browse)
        label = QLabel("&Cache folder")  # a row of widgets: the label needs its buddy
        label.setBuddy(self.cache)
        form.addRow(label, row)
        self.repos = QPlainTextEdit("\n".join(f"{k} = {v}" for k, v in settings.hub_repos.items()))
        self.repos.setAccessibleName("Hub repositories")
        self.repos.setToolTip("One line per model: name = owner/repository")
        form.addRow("&Hub repositories", self.repos)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.note)
        lay.addWidget(buttons)

    def _show_auto_precision(self, device: str) -> None:
        from dgp_engine.errors import DGPError
        from dgp_engine.method.compute import describe_auto_precision
        from dgp_engine.system.device import select_device

        try:
            dev = select_device(device)
        except DGPError:
            dev = select_device("cpu")
        self.auto_precision.setText(describe_auto_precision(dev))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Cache folder", self.cache.text())
        if folder:
            self.cache.setText(folder)

    def parse_repos(self) -> dict[str, str]:
        out = {}
        for n, line in enumerate(self.repos.toPlainText().splitlines(), 1):
            if not line.strip() or line.strip().startswith("#"):
                continue
            name, sep, repo = line.partition("=")
            if not sep or not name.strip() or "/" not in repo:
                raise ValueError(f"Line {n} should read 'name = owner/repository'.")
            out[name.strip()] = repo.strip()
        return out

    def accept(self) -> None:
        try:
            repos = self.parse_repos()
        except ValueError as exc:
            self.note.setText(str(exc))
            return
        s = self.settings
        s.device = self.device.currentText()
        s.engine_threads = self.threads.value()
        s.precision = self.precision.currentText()
        s.cache_dir = self.cache.text().strip()
        s.hub_repos = repos
        super().accept()

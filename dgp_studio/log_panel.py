"""Logging: one logger per package, a rotating file in the user log dir, and an
in-app panel.  Records from any thread reach the panel through a queued signal."""

from __future__ import annotations

import logging
import logging.handlers

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from dgp_engine.system import paths

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogBridge(QObject):
    """Lives in the GUI thread; its handler's emit() may run in any thread and the
    queued signal carries the text over."""

    record = Signal(str, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.handler = _BridgeHandler(self)


class _BridgeHandler(logging.Handler):
    def __init__(self, bridge: LogBridge):
        super().__init__(logging.INFO)
        self.bridge = bridge
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )

    def emit(self, rec: logging.LogRecord) -> None:
        try:
            self.bridge.record.emit(self.format(rec), rec.levelno)
        except RuntimeError:  # the bridge is gone (app shutting down)
            pass


class LogPanel(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(2000)
        self.setAccessibleName("Log")
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

    def append_record(self, text: str, level: int) -> None:
        self.appendPlainText(text)


_file_handler: logging.Handler | None = None


def setup_file_logging() -> None:
    """Rotating log file for the engine and the app (once per process)."""
    global _file_handler
    if _file_handler is not None:
        return
    folder = paths.log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _file_handler = logging.handlers.RotatingFileHandler(
        folder / "dgp-studio.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    _file_handler.setFormatter(logging.Formatter(FORMAT))
    for name in ("dgp_engine", "dgp_studio"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.INFO)
        lg.addHandler(_file_handler)


def attach(bridge: LogBridge) -> None:
    for name in ("dgp_engine", "dgp_studio"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.INFO)
        lg.addHandler(bridge.handler)


def detach(bridge: LogBridge) -> None:
    for name in ("dgp_engine", "dgp_studio"):
        logging.getLogger(name).removeHandler(bridge.handler)

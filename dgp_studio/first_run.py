"""The first-run hint: a slim, dismissible bar above the canvas, shown once per session
when a photo is opened while only the bundled demo prior is installed. It says what
the bundled prior is for and offers the ImageNet download (through the Models dialog)."""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

log = logging.getLogger(__name__)

#: The prior the hint offers.
REAL_PRIOR = "imagenet-128"


def only_bundled_installed() -> bool:
    """True when the bundled prior is the only usable model and the real one is
    downloadable (no hint otherwise, nor when the registry cannot be read)."""
    try:
        from dgp_engine.priors import registry

        rows = {st.name: st for st in registry.list_models()}
    except Exception as exc:  # noqa: BLE001 — a hint is never worth an error
        log.info("no first-run hint: %s", exc)
        return False
    real = rows.get(REAL_PRIOR)
    bundled = [st for st in rows.values() if st.usable and st.kind == "bundled"]
    others = [st for st in rows.values() if st.usable and st.kind != "bundled"]
    return bool(bundled) and real is not None and real.downloadable and not others


def hint_text() -> str:
    """What the bundled prior is for, from the registry's own words."""
    about = ""
    try:
        from dgp_engine.priors import registry

        about = next((st.about for st in registry.list_models() if st.kind == "bundled"), "")
    except Exception:  # noqa: BLE001
        pass
    about = about or "a small demo that shows how DGP works, offline and fast."
    return f"Bundled prior only: {about[0].lower()}{about[1:]}"


def download_label() -> str:
    try:
        from dgp_engine.priors import registry

        size = next(
            (st.download_bytes for st in registry.list_models() if st.name == REAL_PRIOR), None
        )
    except Exception:  # noqa: BLE001
        size = None
    return f"Download ImageNet prior ({size / 1e9:.2f} GB)" if size else "Download ImageNet prior"


class FirstRunHint(QFrame):
    download_requested = Signal(str)  # the model to download
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("First-run hint")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 2, 2, 2)
        self.label = QLabel()
        self.label.setAccessibleName("First-run hint text")
        self.label.setWordWrap(True)  # never cut: a narrow window gets a second line
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.label, 1)
        self.download_button = QPushButton("Download ImageNet prior")
        self.download_button.setAccessibleName("Download ImageNet prior")
        lay.addWidget(self.download_button)
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAccessibleName("Dismiss hint")
        self.close_button.setAutoRaise(True)
        lay.addWidget(self.close_button)
        self.download_button.clicked.connect(self._download)
        self.close_button.clicked.connect(self.dismiss)
        self.setVisible(False)

    def offer(self) -> None:
        """Fill in the registry's words and show the bar."""
        text = hint_text()
        self.label.setText(text)
        self.label.setToolTip(text)
        self.download_button.setText(download_label())
        self.setVisible(True)

    def _download(self) -> None:
        self.setVisible(False)
        self.download_requested.emit(REAL_PRIOR)

    def dismiss(self) -> None:
        self.setVisible(False)
        self.dismissed.emit()

"""Help → Guide (what each task does, what the working region is, what a bigger model
changes, what Manipulate does) and Help → About (version, licences of the installed
models).  The words come from where the facts live: the engine's task table, the
region explanation, the Models dialog's intro and the model registry."""

from __future__ import annotations

import html
import logging

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from dgp_engine.method.taskspec import MASK_OPTIONAL, MASK_REQUIRED, menu_tasks

from .guidance import REGION_EXPLANATION

log = logging.getLogger(__name__)

MASK_WORDS = {
    MASK_REQUIRED: " Paint the area first (B, or select it with M / L).",
    MASK_OPTIONAL: " A painted area is filled too.",
}


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dgp-studio")
    except PackageNotFoundError:
        return "a development copy"


def guide_html() -> str:
    from .model_dialog import LARGER_PRIOR  # imported when asked: it loads the Hub client

    tasks = "".join(
        f"<li><b>{html.escape(s.label)}</b>: "
        f"{html.escape(s.summary[0].upper() + s.summary[1:])}.{MASK_WORDS.get(s.mask, '')}</li>"
        for s in menu_tasks()
    )
    return (
        "<h3>What each task does</h3>"
        "<p>Open a photo, choose a task and press Run (Ctrl+Enter). DGP fine-tunes a "
        "generative prior on your photo and shows it as it goes; the result is a layer over "
        "the photo until you apply it (Ctrl+Shift+Enter), and Ctrl+Z undoes that.</p>"
        f"<ul>{tasks}</ul>"
        "<h3>The working region</h3>"
        f"<p>{html.escape(REGION_EXPLANATION)} Colorize is the exception: it covers the "
        "whole photo at any shape. A region much larger than the model's resolution comes "
        "back soft; the note under the task warns you.</p>"
        "<h3>What a bigger model changes</h3>"
        f"<p>{html.escape(LARGER_PRIOR)} Models → Download or import… lists them with their "
        "size and licence.</p>"
        "<h3>Manipulate</h3>"
        "<p>After a run, the Manipulate tab beside Task plays with the result selected in "
        "History: Jitter shows variations of it, Category moves it towards another class, "
        "and Morph blends between keyframes (Add current result adds the selected result) "
        "and exports the animation. Apply to picture composes a candidate into the photo.</p>"
    )


def about_html() -> str:
    rows = []
    try:
        from dgp_engine.priors import registry

        for st in registry.list_models():
            if not st.usable:
                continue
            licence = st.licence or (
                "licence not recorded: it comes from files you imported, see where you got them"
            )
            rows.append(
                f"<li><b>{html.escape(st.name)}</b> — {html.escape(st.title)}<br>"
                f"Licence: {html.escape(licence)}</li>"
            )
    except Exception as exc:  # noqa: BLE001 — shown, not raised
        rows.append(f"<li>The model registry is unavailable: {html.escape(str(exc))}</li>")
    import PySide6
    import torch

    return (
        f"<h3>DGP Studio {html.escape(app_version())}</h3>"
        "<p>Restores and manipulates photos with a Deep Generative Prior (a BigGAN G+D "
        "fine-tuned per image). Licence: MIT.</p>"
        f"<p>PyTorch {html.escape(torch.__version__)}, PySide6 "
        f"{html.escape(PySide6.__version__)}.</p>"
        "<h4>Installed models and their licences</h4>"
        f"<ul>{''.join(rows) or '<li>none</li>'}</ul>"
    )


class TextDialog(QDialog):
    """A page of rich text with a Close button (not modal)."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.text = QTextBrowser()
        self.text.setAccessibleName(title)
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(buttons)
        self.resize(560, 600)


def show_guide(parent: QWidget) -> TextDialog:
    dialog = TextDialog("DGP Studio guide", guide_html(), parent)
    dialog.open()
    return dialog


def show_about(parent: QWidget) -> TextDialog:
    dialog = TextDialog("About DGP Studio", about_html(), parent)
    dialog.open()
    return dialog

"""StyleGAN2 priors in the app (issues 22 and 23): the Models dialog shows their class
count (not "?") and licence, and offers them like any prior now that DGP runs on them;
the task panel and the batch dialog offer an installed one. A prior of a family this
version cannot run (installed by a newer one) is listed greyed out with the reason."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from dgp_engine.cli import main
from dgp_engine.priors import registry

from ..conftest import REFERENCE

PKL = REFERENCE / "stylegan2_small" / "nvidia_cond" / "network-snapshot-000100.pkl"


@pytest.fixture
def installed_stylegan2(capsys):
    """NVIDIA's small conditional StyleGAN2 pickle (3 classes) imported as "sg2", in the
    test's own cache folder."""
    assert main(["models", "import", "sg2", "--pkl", str(PKL)]) == 0, capsys.readouterr()
    status = {s.name: s for s in registry.list_models()}["sg2"]
    assert status.usable and status.family == "stylegan2"
    return status


def row_of(dialog, name):
    rows = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    r = rows.index(name)
    return {
        dialog.table.horizontalHeaderItem(c).text(): dialog.table.item(r, c)
        for c in range(dialog.table.columnCount())
    }


def test_models_dialog_shows_stylegan2_classes_and_licence_and_offers_it(
    qtbot, installed_stylegan2
):
    from dgp_studio.model_dialog import ModelDialog

    dlg = ModelDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    imported = row_of(dlg, "sg2")
    assert imported["Classes"].text() == "3"
    assert imported["Licence"].text() == installed_stylegan2.licence
    assert imported["Licence"].text().startswith("NVIDIA Source Code License-NC")
    # the registry's StyleGAN2 entries (not installed): a conditional and an unconditional
    afhq = row_of(dlg, "stylegan2-afhq-256")
    assert afhq["Classes"].text() == "3"
    assert afhq["Licence"].text() == "research use (trained with NVIDIA-licensed code)"
    assert row_of(dlg, "stylegan2-afhq-512")["Classes"].text() == "none (unconditional)"
    assert "?" not in [row_of(dlg, n)["Classes"].text() for n in dlg.names()]

    assert dlg.select("sg2")
    assert dlg.use_button.isEnabled()
    details = dlg.details.text()
    assert "StyleGAN2" in details and "3 classes" in details


def test_task_panel_and_batch_offer_stylegan2(qtbot, installed_stylegan2):
    from dgp_studio.batch_dialog import BatchDialog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    w = MainWindow(Settings(engine_threads=1))
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    qtbot.addWidget(w)
    try:
        combo = w.task_panel.model
        names = [combo.itemText(i) for i in range(combo.count())]
        assert "sg2" in names and "bundled" in names
        assert combo.model().item(names.index("sg2")).isEnabled()
        errors = []
        w.models.error.connect(errors.append)
        w.models.use("sg2")
        assert combo.currentText() == "sg2" and errors == []

        batch = BatchDialog(threads=1)
        qtbot.addWidget(batch)
        offered = [batch.model.itemText(i) for i in range(batch.model.count())]
        assert "bundled" in offered and "sg2" in offered
    finally:
        w.shutdown()


def test_a_family_this_version_cannot_run_is_greyed_out_with_the_reason(qtbot):
    from dgp_studio.catalog import unusable_reason
    from dgp_studio.task_panel import TaskPanel

    assert unusable_reason("stylegan2") is None and unusable_reason("studiogan") is None
    assert unusable_reason("") is None  # installs older than recorded families: BigGAN
    why = unusable_reason("stylegan3")
    assert why is not None and "stylegan3" in why and "update DGP Studio" in why
    panel = TaskPanel(["bundled"])
    qtbot.addWidget(panel)
    panel.set_models(["bundled", "future"], {"future": why})
    combo = panel.model
    assert not combo.model().item(combo.findText("future")).isEnabled()
    assert combo.itemData(combo.findText("future"), Qt.ItemDataRole.ToolTipRole) == why
    assert combo.currentText() == "bundled"


def _answer_import(monkeypatch, files, name, replace=None):
    """The Import button's questions answered: ``files`` in turn for the file dialogs,
    ``name`` for the model name; ``replace`` for "Replace the model?" (None: never asked)."""
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    offered, asked = list(files), []
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (offered.pop(0), ""))
    )
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (name, True)))

    def question(parent, title, text, *a, **k):
        asked.append(title)
        assert replace is not None, f"unexpected question: {title}"
        return QMessageBox.StandardButton.Yes if replace else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return offered, asked


def test_models_dialog_imports_an_nvidia_pickle_with_one_file(qtbot, monkeypatch):
    from dgp_studio.model_dialog import ModelDialog

    dlg = ModelDialog()
    qtbot.addWidget(dlg)
    offered, asked = _answer_import(monkeypatch, [str(PKL)], "portraits")
    qtbot.mouseClick(dlg.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.is_busy(), timeout=60000)
    assert offered == [] and asked == []  # one file asked for, no D dialog, no question
    status = {s.name: s for s in registry.list_models()}["portraits"]
    assert status.usable and status.family == "stylegan2"
    assert status.licence.startswith("NVIDIA Source Code License-NC")
    assert row_of(dlg, "portraits")["State"].text() == "installed"


def test_models_dialog_asks_before_replacing_an_installed_model(
    qtbot, monkeypatch, installed_stylegan2
):
    from dgp_studio.model_dialog import ModelDialog

    folder = installed_stylegan2.folder
    before = (folder / "model.json").read_bytes()
    dlg = ModelDialog()
    qtbot.addWidget(dlg)
    _, asked = _answer_import(monkeypatch, [str(PKL)], "sg2", replace=False)
    dlg.import_button.click()
    assert asked == ["Replace the model?"] and not dlg.is_busy()
    assert (folder / "model.json").read_bytes() == before  # declined: untouched

    _, asked = _answer_import(monkeypatch, [str(PKL)], "sg2", replace=True)
    dlg.import_button.click()
    qtbot.waitUntil(lambda: not dlg.is_busy(), timeout=60000)
    assert asked == ["Replace the model?"]
    assert "done" in dlg.status.text(), dlg.status.text()  # imported again
    assert registry.installed("sg2") is not None

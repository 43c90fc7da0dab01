"""StyleGAN2 priors in the app (issue 22 with issue 23's priors): the Models dialog shows
their class count (not "?") and licence, and says DGP on them comes later; the task
panel lists an installed one greyed out with that reason (the engine refuses it with
PriorFamilyError today), never chooses it, and the batch dialog does not offer it."""

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
    return {dialog.table.horizontalHeaderItem(c).text(): dialog.table.item(r, c)
            for c in range(dialog.table.columnCount())}


def test_models_dialog_shows_stylegan2_classes_licence_and_what_comes_later(
        qtbot, installed_stylegan2):
    from dgp_studio.catalog import STYLEGAN2_LATER
    from dgp_studio.model_dialog import ModelDialog

    dlg = ModelDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    imported = row_of(dlg, "sg2")
    assert imported["Classes"].text() == "3"
    assert imported["Licence"].text() == installed_stylegan2.licence
    assert imported["Licence"].text().startswith("NVIDIA Source Code License-NC")
    assert STYLEGAN2_LATER in imported["Model"].toolTip()
    # the registry's StyleGAN2 entries (not installed): a conditional and an unconditional
    afhq = row_of(dlg, "stylegan2-afhq-256")
    assert afhq["Classes"].text() == "3"
    assert afhq["Licence"].text() == "research use (trained with NVIDIA-licensed code)"
    assert row_of(dlg, "stylegan2-afhq-512")["Classes"].text() == "none (unconditional)"
    assert "?" not in [row_of(dlg, n)["Classes"].text() for n in dlg.names()]

    # installed, but not usable for tasks yet: Use is off and says why, so do the details
    assert dlg.select("sg2")
    assert not dlg.use_button.isEnabled() and dlg.use_button.toolTip() == STYLEGAN2_LATER
    details = dlg.details.text()
    assert "StyleGAN2" in details and "3 classes" in details and STYLEGAN2_LATER in details
    assert dlg.select("bundled")
    assert dlg.use_button.isEnabled() and "comes later" not in dlg.details.text()


def test_task_panel_greys_out_stylegan2_and_batch_leaves_it_out(qtbot, installed_stylegan2):
    from dgp_studio.batch_dialog import BatchDialog
    from dgp_studio.catalog import STYLEGAN2_LATER
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    w = MainWindow(Settings(engine_threads=1))
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    qtbot.addWidget(w)
    try:
        combo = w.task_panel.model
        names = [combo.itemText(i) for i in range(combo.count())]
        assert "sg2" in names and "bundled" in names  # listed, so it is not a mystery
        i = names.index("sg2")
        assert not combo.model().item(i).isEnabled()
        assert combo.itemData(i, Qt.ItemDataRole.ToolTipRole) == STYLEGAN2_LATER
        assert combo.model().item(names.index("bundled")).isEnabled()
        assert combo.currentText() == "bundled"
        # Models → Use on it is refused with the reason, the model stays
        errors = []
        w.models.error.connect(errors.append)
        w.models.use("sg2")
        assert combo.currentText() == "bundled" and errors == [f"sg2: {STYLEGAN2_LATER}"]
        # listed again after a refresh (an install or removal), still greyed out
        w.models.refresh()
        assert not combo.model().item(combo.findText("sg2")).isEnabled()

        batch = BatchDialog(threads=1)
        qtbot.addWidget(batch)
        offered = [batch.model.itemText(i) for i in range(batch.model.count())]
        assert "bundled" in offered and "sg2" not in offered
    finally:
        w.shutdown()

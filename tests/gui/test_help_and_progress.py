"""Small honesty fixes (issue 22): a time left while the run chooses its starting point,
and Help → Guide and About (version, the installed models' licences)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialog

from dgp_engine.priors import registry


def select_report(i: int, n: int, elapsed: float):
    from dgp_studio.worker import Progress

    return Progress("select", 0, 2, i, n, 0, 100, {"select_loss": 1.0}, elapsed, None)


def test_time_left_while_choosing_a_starting_point(qtbot):
    from dgp_studio.run_panel import RunPanel

    panel = RunPanel()
    qtbot.addWidget(panel)
    panel.set_running(True)
    panel.show_progress(select_report(1, 8, 1.6))  # the first sample took 1.6 s
    assert "Choosing a starting point: sample 1/8" in panel.status.text()
    assert panel.eta.text().startswith("Time left: 0:11 ")  # 7 more at 1.6 s each
    assert "starting point" in panel.eta.text()
    panel.show_progress(select_report(6, 8, 6.0))
    assert panel.eta.text().startswith("Time left: 0:02 ")


def test_time_left_shows_during_a_real_selection(qtbot, window, picture_file):
    from .conftest import tiny_preset
    from .test_editor import open_and_paint

    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("picky", tiny_preset((2,), select_num=150))
    window.task_panel.iterations.setValue(2)
    seen = []
    window.runs.progress.connect(lambda p: seen.append((p.phase, window.run_panel.eta.text())))
    assert window.run_task()
    qtbot.waitUntil(lambda: not window.state.running, timeout=60000)
    during = [eta for phase, eta in seen if phase == "select"]
    assert len(during) >= 2, seen  # several reports while it chooses
    assert all(eta.startswith("Time left: 0:") for eta in during)


def open_help(qtbot, window, action: str) -> QDialog:
    window.actions[action].trigger()
    found = [d for d in window.findChildren(QDialog) if d.isVisible()]
    assert found
    return found[-1]


def test_help_guide_says_what_tasks_region_and_models_do(qtbot, window):
    from dgp_engine.method.taskspec import menu_tasks

    assert window.actions["guide"] in window.menuBar().actions()[-1].menu().actions()
    dialog = open_help(qtbot, window, "guide")
    text = dialog.text.toPlainText()
    for spec in menu_tasks():
        assert spec.label in text
    assert "working region" in text and "Ctrl+R" in text
    assert "larger prior" in text.lower() or "bigger model" in text.lower()
    dialog.close()


@pytest.mark.parametrize("extra", [False, True])
def test_about_lists_version_and_installed_model_licences(qtbot, window, extra):
    from importlib.metadata import version

    if extra:  # an installed real prior appears with its licence
        from dgp_engine.priors import hub, studiogan

        from ..conftest import REFERENCE

        folder = REFERENCE / "studiogan_small" / "imagenet128"
        hub.import_files(
            "sg-about",
            folder / "model=G_ema-best-weights-step=1000.pth",
            folder / "model=D-best-weights-step=1000.pth",
            config=studiogan.config_from_yaml(folder / "studiogan.yaml"),
        )
    dialog = open_help(qtbot, window, "about")
    text = dialog.text.toPlainText()
    assert version("dgp-studio") in text
    bundled = registry.get_entry("bundled")
    assert bundled.title in text and bundled.licence in text
    for st in registry.list_models():
        if st.usable:
            assert st.name in text
        else:
            assert st.name not in text  # only what is installed
    if extra:
        assert "sg-about" in text and "licence not recorded" in text
    dialog.close()

"""The Manipulate panel inside the editor (issue 22): it works on the default (bundled)
model from a fresh start, its category slider is the model's classes by name, and morph
keyframes are the result selected in History, each with a thumbnail and a distinct
name, with a warning when two of them are the same result."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from .conftest import tiny_preset
from .test_editor import open_and_paint, paint_stroke, run_and_wait

pytestmark = pytest.mark.timeout(120)


def short_run(window, seed: int = 0) -> None:
    window.task_panel.add_preset("short", tiny_preset((3,), select_num=2))
    window.task_panel.iterations.setValue(3)
    window.task_panel.seed.setValue(seed)


@pytest.fixture
def bundled_window(qtbot):
    """A window as after a fresh start: the real catalog, the bundled model chosen."""
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    w = MainWindow(Settings(engine_threads=1, brush_size=20))
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    assert w.task_panel.model.currentText() == "bundled"
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.state.running:
        w.runs.cancel()
        qtbot.waitUntil(lambda: not w.state.running, timeout=10000)
    w.shutdown()


def test_category_tab_has_the_bundled_models_classes_from_a_fresh_start(
    qtbot, bundled_window, picture_file
):
    window, panel = bundled_window, bundled_window.manipulate
    qtbot.waitUntil(lambda: panel.prior is not None, timeout=20000)
    classes = (  # resources/models/bundled/classes.txt
        "tench",
        "English springer",
        "cassette player",
        "chain saw",
        "church",
        "French horn",
        "garbage truck",
        "gas pump",
        "golf ball",
        "parachute",
    )
    # before any run: the picker lists the model's 10 classes, the slider stops at them
    assert panel.category.count() == 10 and panel.category.itemText(0) == "0: tench"
    assert panel.category_slider.maximum() == 9
    panel.category_slider.setValue(56)  # as a drag past the end would: it stops at 9
    assert panel.category_slider.value() == 9
    assert panel.category_name.text() == "parachute"
    panel.category_slider.setValue(4)
    assert panel.category_name.text() == "church" and panel.category.currentIndex() == 4

    # after a run with the same (already offered) model: still the model's classes
    open_and_paint(qtbot, window, picture_file)
    short_run(window)
    run_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: panel.state is window.state.history[-1].state, timeout=10000)
    assert [panel.category.itemText(i) for i in range(panel.category.count())] == [
        f"{i}: {c}" for i, c in enumerate(classes)
    ]
    panel.tabs.setCurrentIndex(1)
    target = (panel.state.class_id + 1) % 10  # another class than the result's
    panel.category_slider.setValue(target)
    assert panel.category_name.text() == classes[target]
    qtbot.waitUntil(
        lambda: (
            (f := panel.last_frame.get("transfer")) is not None and f.params.get("target") == target
        ),
        timeout=10000,
    )
    assert "out of range" not in panel.status.text()


def test_keyframes_are_the_selected_history_result_named_with_thumbnails(
    qtbot, window, picture_file, tmp_path
):
    panel, tl = window.manipulate, window.manipulate.timeline
    open_and_paint(qtbot, window, picture_file)
    short_run(window, seed=0)
    run_and_wait(qtbot, window)
    time.sleep(1.1)  # the second result is made a second later: its name differs
    short_run(window, seed=1)
    run_and_wait(qtbot, window)
    first, second = window.state.history
    assert first.state is not None and second.state is not None

    for row, entry in ((0, first), (1, second)):
        window.history_panel.list.setCurrentRow(row)
        assert panel.state is entry.state  # the panel works on the selected result
        qtbot.mouseClick(tl.add_current, Qt.MouseButton.LeftButton)
        assert tl.keyframes()[-1] is entry.state
    a, b = tl.names()
    for name, entry in ((a, first), (b, second)):
        # task · class · time of the result
        assert (
            name.startswith("Inpaint · class ")
            and time.strftime("%H:%M:%S", time.localtime(entry.state.created)) in name
        )
    assert a != b
    qtbot.waitUntil(lambda: tl.has_thumbnail(0) and tl.has_thumbnail(1), timeout=10000)
    assert tl.warning.isHidden()

    # the same result twice: a distinct name, and a warning naming both
    qtbot.mouseClick(tl.add_current, Qt.MouseButton.LeftButton)
    assert tl.names()[2] == f"{b} (2)"
    assert (
        not tl.warning.isHidden() and b in tl.warning.text() and "same result" in tl.warning.text()
    )

    # only one result (twice): the morph would be one still frame; export refuses it
    tl.keyframe_list.setCurrentRow(0)
    tl.keyframe_list.item(0).setSelected(True)
    qtbot.mouseClick(tl.remove, Qt.MouseButton.LeftButton)
    assert tl.names() == [b, f"{b} (2)"]
    assert "one still frame" in tl.warning.text()
    dialog = panel.show_export_dialog()
    dialog.set_format("gif")
    target = tmp_path / "still.gif"
    dialog.path.setText(str(target))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert not dialog.running and "one still frame" in dialog.message.text()
    qtbot.wait(200)
    assert not target.exists()
    dialog.close()


def test_keyframes_from_a_loaded_state_get_a_thumbnail(qtbot, window, tmp_path):
    from ..helpers import tiny_prior
    from ..manipulation_helpers import quick_state

    panel = window.manipulate
    qtbot.waitUntil(lambda: panel.prior is not None, timeout=20000)
    path = quick_state(tiny_prior(), 2, seed=3).save(tmp_path / "kept.dgp")
    panel.add_keyframe_file(path)
    qtbot.waitUntil(lambda: panel.timeline.names() == ["kept"], timeout=10000)
    qtbot.waitUntil(lambda: panel.timeline.has_thumbnail(0), timeout=10000)


def test_applying_a_candidate_keeps_the_working_region(qtbot, window, picture_file):
    panel = window.manipulate
    open_and_paint(qtbot, window, picture_file)
    short_run(window)
    run_and_wait(qtbot, window)
    region = window.state.region  # around the mask
    assert region is not None and region[2] < min(window.state.size)  # not the whole photo
    qtbot.waitUntil(lambda: len(panel.grid.images) == len(panel.grid.buttons) > 0, timeout=10000)
    qtbot.mouseClick(panel.grid.buttons[1], Qt.MouseButton.LeftButton)
    n = len(window.state.history)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.state.history) == n + 1, timeout=10000)
    assert window.state.history[-1].applied
    assert window.state.region == region  # still where the candidate was composed
    # and the next stroke still moves it with the mask, as before
    window.set_tool("brush")
    paint_stroke(qtbot, window, [(20, 20), (24, 24)])
    assert window.state.region != region

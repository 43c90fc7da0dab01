"""One picture after another (issue 22): opening another photo leaves nothing of the
last one behind (keyframes, previews, the result layer's toolbar); each picture has its
own autosave and the recovery prompt lists them with their pictures; Esc asks before
throwing away a run that has been going a while; the mouse wheel never changes a control
it merely passes over; the Manipulate panel has room at 1280×800."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from dgp_engine.files import project as proj
from dgp_studio.model.state import HistoryEntry

from .conftest import tiny_preset
from .test_editor import open_and_paint, run_and_wait
from .test_project_files import fresh_window

pytestmark = pytest.mark.timeout(120)


def second_photo(picture_file, name="second.png"):
    other = picture_file.with_name(name)
    Image.open(picture_file).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(other)
    return other


def unapplied_result(window) -> HistoryEntry:
    """A result layer (not applied: the undo stack stays clean)."""
    patch = np.full((8, 8, 3), 77, np.uint8)
    entry = HistoryEntry(
        "Inpaint · tiny · 3 it",
        (0, 0, 8, 8),
        window.state.picture.pixels[:8, :8].copy(),
        patch,
        patch.copy(),
    )
    window.state.add_result(entry)
    return entry


def test_opening_another_photo_resets_keyframes_previews_and_the_result_layer(
    qtbot, window, picture_file
):
    panel = window.manipulate
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("short", tiny_preset((3,), select_num=2))
    window.task_panel.iterations.setValue(3)
    run_and_wait(qtbot, window)
    qtbot.mouseClick(panel.timeline.add_current, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.preview.image is not None, timeout=10000)
    assert panel.timeline.keyframes() and window.state.layer is not None
    assert window.result_label.text().startswith("Result: Inpaint")
    assert window.actions["apply_result"].isEnabled()

    assert window.open_path(second_photo(picture_file))
    # the result toolbar says there is no result, and Apply is off (it did nothing)
    assert window.result_label.text() == "No result"
    assert not window.actions["apply_result"].isEnabled()
    assert not window.layer_opacity.isEnabled()
    # the Manipulate panel forgot the other photo's result, keyframes and previews
    assert panel.timeline.keyframes() == [] and panel.state is None
    assert panel.preview.image is None and panel.last_frame == {}
    assert not panel.apply_button.isEnabled()
    assert window.candidates.base is None and panel.composite is None
    # so did the run panel's live preview
    assert window.run_panel.preview.pixmap().isNull()
    assert window.run_panel.preview.text() == "No run yet"


def test_each_photo_has_its_own_autosave_and_recovery_lists_them(qtbot, window, picture_file):
    first = picture_file
    second = second_photo(picture_file, "harbour.png")
    assert window.open_path(first)
    unapplied_result(window)  # unsaved work, though nothing asks before switching
    saved_first = window.autosave(force=True)
    assert saved_first is not None and "photo" in saved_first.name
    pixels_first = window.state.picture.pixels.copy()
    assert window.open_path(second)
    unapplied_result(window)
    saved_second = window.autosave(force=True)
    assert saved_second is not None and "harbour" in saved_second.name
    assert saved_second != saved_first and saved_first.is_file()  # not overwritten
    kept = proj.load_project(saved_first)
    assert np.array_equal(kept.sources["picture"], pixels_first)

    other = fresh_window(qtbot)  # as after a crash: both autosaves are still there
    try:
        offered = []
        other.ask_recovery = lambda items, restore: offered.append((items, restore))
        other.offer_recovery()
        [(items, restore)] = offered
        assert sorted(i.picture_name for i in items) == ["harbour.png", "photo.png"]
        for item in items:
            assert item.picture_name in item.describe()
            assert item.thumbnail is not None and item.thumbnail.ndim == 3
            assert max(item.thumbnail.shape[:2]) <= 96
        restore(next(i for i in items if i.picture_name == "photo.png"))
        assert np.array_equal(other.state.picture.pixels, pixels_first)
        assert len(other.state.history) == 1
    finally:
        other.shutdown()


def test_the_recovery_dialog_lists_pictures_with_thumbnails(qtbot, window, picture_file):
    from dgp_studio.recovery import RecoveryDialog

    assert window.open_path(picture_file)
    unapplied_result(window)
    assert window.autosave(force=True) is not None
    other = fresh_window(qtbot)
    try:
        other.offer_recovery()  # the real prompt: a list, not blocking
        dialog = other.findChild(RecoveryDialog)
        assert dialog is not None and dialog.isVisible()
        assert dialog.list.count() == 1
        item = dialog.list.item(0)
        assert "photo.png" in item.text() and not item.icon().isNull()
        qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
        assert other.state.has_picture and len(other.state.history) == 1
    finally:
        other.shutdown()


def long_run(window) -> None:
    window.task_panel.add_preset("long", tiny_preset((400, 400), select_num=2))
    window.task_panel.iterations.setValue(800)


def test_esc_asks_before_cancelling_a_run_that_has_been_going_a_while(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    long_run(window)
    asked = []
    window.confirm = lambda title, text: asked.append(text) or False
    # a run that just started: Esc cancels at once
    assert window.run_task()
    QTest.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.state.running, timeout=30000)
    assert asked == [] and window.state.history[-1].cancelled

    assert window.run_task()
    qtbot.waitUntil(lambda: window.run_panel.bar.maximum() > 1, timeout=30000)
    window.run_panel.run_started_at -= 30  # as if it had been running for half a minute
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert len(asked) == 1 and "0:3" in asked[0]  # how long it has run
    qtbot.wait(300)
    assert window.state.running  # "No": it goes on
    window.confirm = lambda title, text: asked.append(text) or True
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert len(asked) == 2
    qtbot.waitUntil(lambda: not window.state.running, timeout=30000)
    assert window.state.history[-1].cancelled
    # the Cancel button is an explicit choice: it never asks
    assert window.run_task()
    window.run_panel.run_started_at -= 30
    qtbot.mouseClick(window.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.state.running, timeout=30000)
    assert len(asked) == 2


def wheel(widget, steps: int = 1) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        pos,
        QPointF(widget.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_the_wheel_never_changes_a_control_without_focus(qtbot, window):
    panel = window.manipulate
    panel.dock.raise_()
    panel.tabs.setCurrentIndex(2)
    fps = panel.timeline.fps
    window.canvas.setFocus()
    qtbot.wait(50)
    assert not fps.hasFocus() and fps.value() == 24
    for w, read in (
        (fps, fps.value),
        (panel.timeline.frames, panel.timeline.frames.value),
        (panel.timeline.easing, panel.timeline.easing.currentIndex),
        (window.task_panel.iterations, window.task_panel.iterations.value),
        (window.task_panel.quality, window.task_panel.quality.value),
        (window.task_panel.preset, window.task_panel.preset.currentIndex),
        (window.mask_toolbar.size_spin, window.mask_toolbar.size_spin.value),
    ):
        before = read()
        wheel(w, -3)
        wheel(w, 2)
        assert read() == before, w.accessibleName() or w
        assert w.focusPolicy() == Qt.FocusPolicy.StrongFocus  # a wheel never focuses it
    # once the user has clicked into it, the wheel steps it
    fps.setFocus()
    qtbot.waitUntil(fps.hasFocus, timeout=2000)
    wheel(fps, 1)
    assert fps.value() == 25


def test_the_manipulate_panel_has_room_at_1280x800(qtbot, window):
    window.resize(1280, 800)
    panel = window.manipulate
    panel.dock.raise_()
    qtbot.wait(100)
    assert panel.dock.isVisible()
    area = panel.dock.widget()  # its scroll area
    for tab in range(3):
        panel.tabs.setCurrentIndex(tab)
        qtbot.wait(20)
        # the panel at its preferred size needs no more height than the dock gives it
        need = panel.sizeHint().height()
        assert area.viewport().height() >= need, (tab, area.viewport().height(), need)
    assert panel.dock.height() >= 480
    assert panel.preview.height() >= 160  # the candidate is visible, not a sliver
    assert panel.timeline.keyframe_list.height() >= 80

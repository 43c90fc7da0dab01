"""The editor a retoucher keeps open (issue 14): results as layers (opacity, original,
split view, Apply as an undoable bake), live frames marked, the soft-fill warning,
defaults and guidance, and Save / Discard / Cancel with the autosave kept."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from dgp_engine.files import project as proj

from .conftest import tiny_preset
from .test_editor import open_and_paint, run_and_wait


def short_run(window) -> None:
    window.task_panel.add_preset("short", tiny_preset((4,), select_num=2))
    window.task_panel.iterations.setValue(4)


def test_a_result_is_a_layer_with_opacity_original_split_and_undoable_apply(
    qtbot, window, picture_file
):
    open_and_paint(qtbot, window, picture_file)
    short_run(window)
    before = window.state.picture.pixels.copy()
    run_and_wait(qtbot, window)
    st, canvas = window.state, window.canvas
    entry = st.history[-1]
    np.testing.assert_array_equal(st.picture.pixels, before)  # nothing written yet
    assert st.layer is entry and canvas.result_item.has_image
    assert canvas.result_item.zValue() > canvas.mask_item.zValue()  # the mask never hides it
    assert "Result:" in window.result_label.text()
    # opacity: the layer shows the result mixed with the picture
    window.layer_opacity.setValue(50)
    half = st.layer_pixels()
    mixed = (entry.before.astype(float) + entry.after.astype(float)) / 2
    assert np.abs(half.astype(float) - mixed).max() <= 1.0
    # the original under it, then back
    window.actions["show_original"].trigger()
    assert st.show_original and not canvas.result_item.has_image
    window.actions["show_original"].trigger()
    assert canvas.result_item.has_image
    # split view: before left of the line, the result right of it; dragging moves the line
    window.actions["split_view"].trigger()
    assert canvas.split_mode and canvas.result_item.split is not None
    vp = canvas.viewport()
    at = canvas.mapFromScene(QPointF(30, 60))
    mask_before = st.mask.copy()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    assert abs(canvas.result_item.split - 30) < 2
    np.testing.assert_array_equal(st.mask, mask_before)  # the drag painted nothing
    window.actions["split_view"].trigger()
    assert not canvas.split_mode
    # Apply bakes what is shown (50 %) and clears the mask, as one undoable step
    assert window.apply_layer()
    x0, y0, x1, y1 = entry.bounds
    np.testing.assert_array_equal(st.picture.pixels[y0:y1, x0:x1], half)
    assert entry.applied and st.layer is None and not st.mask.any()
    assert not canvas.result_item.has_image
    window.actions["undo"].trigger()
    np.testing.assert_array_equal(st.picture.pixels, before)
    np.testing.assert_array_equal(st.mask, mask_before)  # the mask comes back too
    assert not entry.applied
    assert "(applied)" not in window.history_panel.list.item(0).text()
    assert st.layer is entry  # back as a layer, to apply again or leave
    window.actions["redo"].trigger()
    assert entry.applied and not st.mask.any()


def test_live_frames_are_a_marked_translucent_overlay_never_the_result(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("long", tiny_preset((300,)))
    window.task_panel.iterations.setValue(300)
    before = window.state.picture.pixels.copy()
    assert window.run_task()
    qtbot.waitUntil(lambda: window.canvas.live_preview_shown, timeout=20000)
    c = window.canvas
    assert c.preview_item.opacity() < 1.0
    assert c.preview_label.isVisible() and c.preview_label.text() == "Live preview"
    assert c.preview_outline.isVisible()
    np.testing.assert_array_equal(window.state.picture.pixels, before)
    window.cancel_run()
    qtbot.waitUntil(lambda: not window.state.running, timeout=10000)
    assert not c.live_preview_shown and not c.preview_label.isVisible()


def test_whole_photo_colorization_shows_no_live_square_and_no_region(qtbot, window, tmp_path):
    grey = np.repeat(np.linspace(30, 220, 150, dtype=np.uint8)[:, None], 50, axis=1)
    Image.fromarray(grey, "L").convert("RGB").save(tmp_path / "tall.png")  # 1:3
    assert window.open_path(tmp_path / "tall.png")
    assert window.task_panel.task_name() == "colorize"
    assert window.state.region is None and not window.canvas.frame_item.isVisible()
    assert "whole picture" in window.task_panel.region_note.text()
    request = window.build_request()
    assert request.region is None and request.bounds == (0, 0, 50, 150)


def test_a_region_enlarged_more_than_twice_warns_at_once(qtbot, window, picture_file):
    assert window.open_path(picture_file)
    qtbot.waitUntil(lambda: window.state.model_resolution == 32, timeout=10000)
    window.task_panel.task.setCurrentText("Inpaint")
    window.set_tool("frame")
    window.state.set_region(0, 0, 60)  # < 2 × 32
    note = window.task_panel.region_note
    assert note.isVisible() and "soft" not in note.text()
    window.state.set_region(0, 0, 100)  # > 2 × 32: the fill will be soft
    assert "soft" in note.text() and "64 px" in note.text() and "larger model" in note.text()


def test_defaults_and_guidance(qtbot, window, picture_file, tmp_path):
    from dgp_studio.canvas import EMPTY_HINT

    # an empty canvas says what to do; Run is in the always-visible toolbar, Ctrl+Enter too
    assert not window.state.has_picture and EMPTY_HINT
    assert window.run_tool.isVisible() and window.run_tool.accessibleName() == "Run task"
    keys = [k.toString() for k in window.actions["run"].shortcuts()]
    assert "Ctrl+Return" in keys and "Ctrl+Enter" in keys
    window.resize(1280, 800)
    qtbot.wait(50)
    top_left = window.run_tool.mapTo(window, window.run_tool.rect().topLeft())
    assert 0 <= top_left.y() < 800 // 3  # at the top, never below the fold
    # a colour photo keeps the chosen task, and the region is explained the first time
    assert window.task_panel.task_name() == "inpaint"
    assert window.open_path(picture_file)
    assert window.task_panel.task_name() == "inpaint"
    hint = window.region_hint
    assert hint.isVisible() and "working region" in hint.text.text()
    hint.ok.click()
    assert not hint.isVisible() and window.settings.region_explained
    window.state.set_region(0, 0, 40)
    assert not hint.isVisible()  # once only
    # a black-and-white photo opens on Colorize
    grey = np.asarray(Image.open(picture_file).convert("L"))
    Image.fromarray(grey).convert("RGB").save(tmp_path / "bw.png")
    assert window.open_path(tmp_path / "bw.png")
    assert window.task_panel.task_name() == "colorize"


def test_the_class_field_checks_as_you_type_and_lists_classes(qtbot, window):
    panel = window.task_panel
    panel.set_class_names(["tench", "goldfish", "great white shark", "tiger shark", "hen"])
    panel.class_edit.setText("car")
    assert panel.class_hint.isVisible()
    assert "car" in panel.class_hint.text() and "goldfish" in panel.class_hint.text()
    assert "border" in panel.class_edit.styleSheet()
    panel.class_edit.setText("shark")  # ambiguous: the fitting ones are listed
    assert "great white shark" in panel.class_hint.text()
    assert "tiger shark" in panel.class_hint.text()
    panel.class_edit.setText("goldfish")
    assert not panel.class_hint.isVisible() and panel.class_edit.styleSheet() == ""
    panel.class_edit.setText("auto")
    assert not panel.class_hint.isVisible()


@pytest.mark.parametrize("answer", ["save", "discard", "cancel"])
def test_close_asks_save_discard_cancel_and_discard_keeps_the_autosave(
    qtbot, window, picture_file, tmp_path, answer, monkeypatch
):
    open_and_paint(qtbot, window, picture_file)
    asked = []

    def ask(title, text):
        asked.append(title)
        return answer

    window.ask_save = ask
    target = tmp_path / "saved.png"
    # the document controller asks for a file name in its save_as
    monkeypatch.setattr(window.document, "save_as", lambda: window.save_to(target, overwrite=True))
    window.close()
    assert asked == ["Save changes?"]
    if answer == "cancel":
        assert window.isVisible() and window.state.dirty
        window.ask_save = lambda title, text: "discard"
        window.close()
        return
    assert not window.isVisible()
    kept = proj.find_recovery()
    if answer == "save":
        assert target.is_file() and kept == []
    else:  # discarded work is still recoverable at the next start
        assert len(kept) == 1


def test_opening_another_photo_asks_and_discarded_work_stays_until_a_clean_save(
    qtbot, window, picture_file, tmp_path
):
    open_and_paint(qtbot, window, picture_file)
    window.ask_save = lambda title, text: "cancel"
    other = tmp_path / "other.png"
    Image.open(picture_file).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other)
    assert not window.open_path(other)  # cancelled: the painted picture stays
    assert window.state.mask.any()
    window.ask_save = lambda title, text: "discard"
    assert window.open_path(other)
    assert len(proj.find_recovery()) == 1  # the discarded work is kept
    window.state.fill_mask()
    assert window.save_to(tmp_path / "clean.png")
    assert proj.find_recovery() == []  # a clean save drops it


def test_exports_default_beside_the_photo_and_follow_the_umask(qtbot, window, picture_file):
    import os

    assert window.open_path(picture_file)
    if window.manipulate is not None:
        dlg = window.manipulate.show_export_dialog()
        assert dlg.path.text() == str(picture_file.with_name("photo-animation.gif"))
        dlg.close()
    old = os.umask(0o022)
    try:
        from dgp_studio import image_files

        out = image_files.save_mask(window.state.mask, picture_file.with_name("m.png"))
        saved = picture_file.with_name("photo-saved.png")
        assert window.save_to(saved)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
    assert saved.stat().st_mode & 0o777 == 0o644


def test_candidates_are_composited_applied_keyframed_and_undone(qtbot, window, picture_file):
    panel = window.manipulate
    assert panel is not None, "the Manipulate panel ships with the app"
    open_and_paint(qtbot, window, picture_file)
    short_run(window)
    before = window.state.picture.pixels.copy()
    run_and_wait(qtbot, window)
    st = window.state
    result = st.history[-1]
    assert panel.composite is not None and panel.original[0] is result.state
    qtbot.waitUntil(lambda: len(panel.grid.images) == len(panel.grid.buttons) > 0, timeout=20000)
    # candidates are composed into the photo by the render thread, never the UI thread
    composed_in, inner = [], panel.composite

    def recording(image):
        composed_in.append(threading.current_thread())
        return inner(image)

    panel.composite = recording
    panel.new_seed.click()
    qtbot.waitUntil(lambda: len(composed_in) >= len(panel.grid.buttons) > 0, timeout=20000)
    qtbot.waitUntil(lambda: len(panel.grid.images) == len(panel.grid.buttons), timeout=20000)
    assert threading.main_thread() not in composed_in
    # thumbnails show the variation in the photo (the crop), not the raw square
    x0, y0, x1, y1 = result.bounds
    assert panel.grid.shown[0].shape[:2] == (y1 - y0, x1 - x0)
    panel.thumb_size.setValue(160)  # zoomable
    assert panel.grid.buttons[0].iconSize().width() == 160
    # a click shows the candidate over the picture, composed like the result
    qtbot.mouseClick(panel.grid.buttons[1], Qt.MouseButton.LeftButton)
    cand = st.layer
    assert cand is not None and cand is not result and "jitter" in cand.title
    assert cand.after.shape == result.after.shape
    np.testing.assert_array_equal(st.picture.pixels, before)  # still nothing written
    assert panel.state is result.state and len(st.history) == 1
    # Back to the original result
    panel.back_button.click()
    assert st.layer is result
    qtbot.waitUntil(lambda: len(panel.grid.images) == len(panel.grid.buttons), timeout=20000)
    # Add as keyframe: the morph timeline grows, the base stays
    qtbot.mouseClick(panel.grid.buttons[1], Qt.MouseButton.LeftButton)
    n = len(panel.timeline.keyframes())
    panel.keyframe_button.click()
    qtbot.waitUntil(lambda: len(panel.timeline.keyframes()) == n + 1, timeout=10000)
    assert panel.state is result.state
    # Apply to picture: a new History entry, baked in, undoable
    panel.apply_button.click()
    qtbot.waitUntil(lambda: len(st.history) == 2, timeout=10000)
    applied = st.history[-1]
    assert applied.applied and applied.state is not None and "jitter" in applied.title
    assert not np.array_equal(st.picture.pixels, before)
    outside = np.ones(before.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(st.picture.pixels[outside], before[outside])
    window.actions["undo"].trigger()
    np.testing.assert_array_equal(st.picture.pixels, before)
    assert not applied.applied
    # the category preview is composed into the photo too
    panel.tabs.setCurrentIndex(1)
    panel.category_slider.setValue(3)
    qtbot.waitUntil(
        lambda: (
            panel.preview.image is not None and panel.preview.image.shape[:2] == (y1 - y0, x1 - x0)
        ),
        timeout=10000,
    )

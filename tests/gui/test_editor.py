"""Drive the real main window offscreen: open, paint, run, cancel, undo, save."""

from __future__ import annotations

import os
import time

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from .conftest import tiny_preset


def view_point(window, x: float, y: float) -> QPoint:
    return window.canvas.mapFromScene(QPointF(x, y))


def paint_stroke(qtbot, window, points):
    vp = window.canvas.viewport()
    pts = [view_point(window, *p) for p in points]
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])


def open_and_paint(qtbot, window, picture_file):
    assert window.open_path(picture_file)
    window.set_tool("brush")
    paint_stroke(qtbot, window, [(60, 50), (70, 55), (80, 60)])
    assert (window.state.mask > 0).any()


def test_open_by_path_and_drop(qtbot, window, picture_file, tmp_path):
    assert window.open_path(picture_file)
    assert window.state.size == (160, 120)
    assert window.state.region is not None
    assert "photo.png" in window.windowTitle()
    assert str(picture_file.resolve()) in window.settings.recent_files
    other = tmp_path / "other.jpg"
    Image.new("RGB", (50, 40), (10, 200, 30)).save(other)
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(other))])
    ev = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        md,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(ev)
    assert window.state.size == (50, 40)


def test_bad_files_give_messages(qtbot, window, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert not window.open_path(bad)
    assert "broken.png" in window.last_error and "Traceback" not in window.last_error
    assert not window.open_path(tmp_path / "missing.jpg")
    window.settings.max_megapixels = 0.001  # as a 20000×20000 picture would be refused
    big = tmp_path / "big.png"
    Image.new("RGB", (200, 200)).save(big)
    assert not window.open_path(big)
    assert "limit" in window.last_error
    assert not window.state.has_picture


def test_brush_eraser_shortcuts_and_undo(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    painted = window.state.mask.copy()
    size = window.canvas.brush_size
    QTest.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert window.canvas.brush_size > size
    QTest.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    assert window.canvas.brush_size < size
    QTest.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.canvas.tool == "eraser"
    paint_stroke(qtbot, window, [(60, 50), (80, 60)])
    assert window.state.mask.sum() < painted.sum()
    window.actions["undo"].trigger()
    np.testing.assert_array_equal(window.state.mask, painted)
    window.actions["undo"].trigger()
    assert not window.state.mask.any()
    window.actions["redo"].trigger()
    np.testing.assert_array_equal(window.state.mask, painted)
    # strokes outside the picture are clipped, never an error
    window.set_tool("brush")
    paint_stroke(qtbot, window, [(-30, -30), (-5, 200)])


def test_rect_lasso_fill_invert_and_mask_files(qtbot, window, picture_file, tmp_path):
    assert window.open_path(picture_file)
    window.set_tool("rect")
    paint_stroke(qtbot, window, [(10, 10), (40, 30)])
    assert window.state.mask[20, 20] == 255 and window.state.mask[50, 50] == 0
    window.set_tool("lasso")
    paint_stroke(qtbot, window, [(100, 60), (140, 60), (140, 100), (100, 100)])
    assert window.state.mask[80, 120] == 255
    window.actions["invert_mask"].trigger()
    assert window.state.mask[20, 20] == 0 and window.state.mask[50, 50] == 255
    window.actions["fill_mask"].trigger()
    assert window.state.mask.min() == 255
    window.actions["clear_mask"].trigger()
    assert window.state.mask.max() == 0
    for _ in range(3):
        window.actions["undo"].trigger()
    assert window.state.mask[80, 120] == 255 and window.state.mask[20, 20] == 255
    from dgp_studio import image_files

    out = image_files.save_mask(window.state.mask, tmp_path / "mask.png")
    window.actions["clear_mask"].trigger()
    assert window.import_mask_from(out)
    assert window.state.mask[80, 120] == 255


def test_region_defaults_to_mask_and_moves(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    x, y, side = window.state.region
    b = window.state.mask_bounds()
    assert x <= b[0] and y <= b[1] and x + side >= b[2] and y + side >= b[3]
    window.set_tool("frame")
    start = view_point(window, x + side / 2, y + side / 2)
    end = view_point(window, x + side / 2 - 20, y + side / 2)
    vp = window.canvas.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(vp, end)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    assert window.state.region[0] < x or x == 0
    assert window.region_user_set


def optimise_step(window) -> int:
    """The step shown by the progress bar (read in the GUI thread)."""
    bar = window.run_panel.bar
    return bar.value() if bar.maximum() > 100 else 0


def run_and_wait(qtbot, window, timeout=30000):
    # wait on GUI-side state: the worker's own signals fire in its thread
    n = len(window.state.history)
    assert window.run_task(), window.last_error
    qtbot.waitUntil(lambda: not window.state.running, timeout=timeout)
    assert len(window.state.history) == n + 1, window.last_error


def test_inpainting_runs_to_completion_then_undo_redo_save(qtbot, window, picture_file, tmp_path):
    open_and_paint(qtbot, window, picture_file)
    before = window.state.picture.pixels.copy()
    t0 = time.perf_counter()
    run_and_wait(qtbot, window)
    assert not window.state.running
    assert window.last_error == ""
    assert window.run_panel.frames_shown >= 1
    assert window.run_panel.first_frame_at - t0 < 10
    entry = window.state.history[-1]
    # non-destructive: the result is a layer over the picture until applied
    assert not entry.applied and not entry.cancelled
    np.testing.assert_array_equal(window.state.picture.pixels, before)
    assert window.state.layer is entry and window.canvas.result_item.has_image
    assert window.actions["apply_result"].isEnabled()
    window.actions["apply_result"].trigger()  # Apply bakes it in, as one undoable step
    assert entry.applied and window.state.layer is None
    assert "(applied)" in window.history_panel.list.item(0).text()
    after = window.state.picture.pixels.copy()
    assert not np.array_equal(before, after)
    x0, y0, x1, y1 = entry.bounds
    outside = np.ones(before.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(before[outside], after[outside])  # only the region changes
    window.actions["undo"].trigger()
    np.testing.assert_array_equal(window.state.picture.pixels, before)
    assert not entry.applied  # History follows Undo
    assert "(applied)" not in window.history_panel.list.item(0).text()
    window.actions["redo"].trigger()
    np.testing.assert_array_equal(window.state.picture.pixels, after)
    assert entry.applied
    assert window.history_panel.list.count() == 1
    if window.manipulate is not None:  # the result can be manipulated at once
        assert window.manipulate.state is entry.state
    # saving never replaces the opened file silently: the first save asks for a name
    asked = []
    from PySide6.QtWidgets import QFileDialog

    target = tmp_path / "restored.png"

    def fake_dialog(*args, **kwargs):
        asked.append(args)
        return str(target), ""

    original = QFileDialog.getSaveFileName
    QFileDialog.getSaveFileName = staticmethod(fake_dialog)
    try:
        src_bytes = picture_file.read_bytes()
        assert window.save()
        assert asked and picture_file.read_bytes() == src_bytes
        np.testing.assert_array_equal(np.asarray(Image.open(target)), after)
        assert "*" not in window.windowTitle()
    finally:
        QFileDialog.getSaveFileName = original


def test_cancel_midway_keeps_last_frame(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("long", tiny_preset((400, 400)))
    window.task_panel.iterations.setValue(800)
    assert window.run_task()
    qtbot.waitUntil(lambda: optimise_step(window) >= 3, timeout=20000)
    t0 = time.perf_counter()
    QTest.mouseClick(window.run_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.state.running, timeout=5000)
    assert time.perf_counter() - t0 < 2.0
    assert not window.canvas.preview_item.isVisible()
    entry = window.state.history[-1]
    assert entry.cancelled and not entry.applied
    assert window.run_panel.preview.pixmap() is not None
    assert "Cancelled" in window.run_panel.status.text()
    assert entry.state.progress["step"] < 800


def test_pause_and_resume(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("long", tiny_preset((300,)))
    window.task_panel.iterations.setValue(300)
    assert window.run_task()
    qtbot.waitUntil(lambda: optimise_step(window) >= 2, timeout=20000)
    assert window.canvas.preview_item.isVisible()  # the live frame over the region
    window.run_panel.pause_button.click()
    assert "Resume" in window.run_panel.pause_button.text().replace("&", "")
    qtbot.wait(300)
    n = optimise_step(window)
    qtbot.wait(400)
    assert optimise_step(window) <= n + 1
    window.run_panel.pause_button.click()
    qtbot.waitUntil(lambda: optimise_step(window) > n + 2, timeout=5000)
    window.cancel_run()
    qtbot.waitUntil(lambda: not window.state.running, timeout=5000)


def probe_run(qtbot, window, timeout=60000) -> dict:
    """Run once with a 5 ms timer on the GUI thread; returns the measurements."""
    gaps = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    t0 = time.perf_counter()
    timer.start()
    run_and_wait(qtbot, window, timeout)
    t1 = time.perf_counter()
    timer.stop()
    rp = window.run_panel
    first = rp.first_frame_at - t0 if rp.first_frame_at else float("nan")
    return {
        "worst_gap_ms": max(gaps[1:]) * 1000,
        "ticks": len(gaps),
        "first_frame_s": first,
        "frames": rp.frames_shown,
        "fps": rp.frames_shown / max(1e-9, t1 - (rp.first_frame_at or t0)),
        "run_s": t1 - t0,
    }


def test_ui_never_blocks_during_a_run(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("probe", tiny_preset((60, 60), select_num=20))
    window.task_panel.iterations.setValue(120)
    m = probe_run(qtbot, window)
    print(
        f"\ntiny model: first frame {m['first_frame_s'] * 1000:.0f} ms after Run, "
        f"{m['frames']} frames at {m['fps']:.1f} fps over {m['run_s']:.2f} s, "
        f"worst UI stall {m['worst_gap_ms']:.1f} ms"
    )
    assert m["fps"] <= 13  # throttled to ~10 per second
    # Other processes competing for the cores also delay the GUI thread; that is not
    # the app blocking it, so the 100 ms bound applies on a machine that is not
    # oversubscribed (as in CI), a loose one otherwise.
    busy = os.getloadavg()[0] > (os.cpu_count() or 1) + 0.5
    assert m["worst_gap_ms"] < (1000 if busy else 100), m


def test_errors_are_messages(qtbot, window, picture_file):
    assert not window.run_task()
    assert "Open a picture" in window.last_error
    assert window.open_path(picture_file)
    assert not window.run_task()  # inpainting with an empty mask
    assert "mask is empty" in window.last_error
    window.task_panel.class_edit.setText("no such class at all")
    window.task_panel.task.setCurrentText("Restore")
    window.task_panel.preset.setCurrentText("tiny")
    assert not window.run_task()
    assert "Unknown class" in window.last_error
    window.task_panel.class_edit.setText("auto")
    window.task_panel.model.addItem("ghost")
    window.task_panel.model.setCurrentText("ghost")
    qtbot.waitUntil(lambda: "ghost" in window.last_error, timeout=10000)  # on selection
    window.last_error = ""
    window.run_task()
    qtbot.waitUntil(lambda: "ghost" in window.last_error, timeout=10000)
    assert "Traceback" not in window.last_error
    qtbot.waitUntil(lambda: not window.state.running, timeout=5000)


def test_model_picker_locked_during_run_and_close_asks(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("long", tiny_preset((500,)))
    window.task_panel.iterations.setValue(500)
    assert window.run_task()
    assert not window.task_panel.isEnabled()  # no model switch mid-run
    asked = []
    window.confirm = lambda title, text: asked.append(title) or False
    window.close()
    assert window.isVisible() and window.state.running and asked
    window.confirm = lambda title, text: True
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)
    assert not window.runs.lane.qthread.isRunning()


def test_help_sheet_and_accessible_names(qtbot, window):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractSlider,
        QComboBox,
        QLineEdit,
        QScrollBar,
        QSpinBox,
    )

    from dgp_studio.shortcuts import SHORTCUTS, HelpSheet

    sheet = HelpSheet(window)
    qtbot.addWidget(sheet)
    from PySide6.QtWidgets import QTableWidget

    assert sheet.findChild(QTableWidget).rowCount() >= len(SHORTCUTS)
    for ident in SHORTCUTS:
        assert ident in window.actions, ident
    unnamed = []
    for cls in (QAbstractButton, QAbstractSlider, QComboBox, QLineEdit, QSpinBox):
        for w in window.findChildren(cls):
            if (
                not w.isVisibleTo(window)
                or w.objectName().startswith("qt_")
                or isinstance(w, QScrollBar)
            ):  # part of their scroll area
                continue
            if window.manipulate is not None and window.manipulate.isAncestorOf(w):
                continue  # checked by the Manipulate panel's own tests
            if isinstance(w, QAbstractButton) and w.text():
                continue
            if cls is QLineEdit and isinstance(w.parent(), (QComboBox, QSpinBox)):
                continue
            if not w.accessibleName():
                unnamed.append(f"{type(w).__name__} {w.objectName()} {w.toolTip()}")
    assert not unnamed, unnamed

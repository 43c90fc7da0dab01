"""File → Batch…: the dialog drives a real batch job (worker process, journal) on a tiny
model: a list row per file with before/after thumbnails, cancel puts the current
pictures back to pending, Start on the same folder resumes, the contact sheet opens."""

from __future__ import annotations

import sqlite3

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from ..task_helpers import photo_array, tiny_model_folder, tiny_preset_file

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def batch_files(tmp_path):
    model = tiny_model_folder(tmp_path / "model")
    src = tmp_path / "album"
    (src / "sub").mkdir(parents=True)
    for i in range(3):
        # black and white: a colorize batch skips photos already in colour
        Image.fromarray(photo_array(40, 56, seed=i)).convert("L").save(src / f"p{i}.png")
    Image.fromarray(photo_array(24, 24, seed=7)).convert("L").save(src / "sub" / "q.jpg")
    return tmp_path, model, src


def fill(dlg, src, out, model, preset):
    dlg.input_dir.setText(str(src))
    dlg.output_dir.setText(str(out))
    dlg.task.setCurrentIndex(dlg.task.findData("colorize"))
    dlg.model.setCurrentText(str(model))
    dlg.preset.setCurrentText(str(preset))
    dlg.workers.setValue(1)
    dlg.save_state.setChecked(True)


def run_to_end(qtbot, dlg, timeout=90000):
    qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    assert dlg.running and not dlg.start_button.isEnabled() and dlg.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dlg.running, timeout=timeout)


def statuses(out):
    db = sqlite3.connect(out / ".dgp-batch" / "journal.sqlite")
    try:
        return dict(db.execute("SELECT rel, status FROM items"))
    finally:
        db.close()


def test_batch_dialog_runs_a_folder_and_opens_the_contact_sheet(qtbot, batch_files, monkeypatch):
    from dgp_studio import batch_dialog
    from dgp_studio.batch_dialog import BatchDialog

    root, model, src = batch_files
    preset = tiny_preset_file(root / "tiny.toml")
    out = root / "out"
    dlg = BatchDialog(threads=1)
    qtbot.addWidget(dlg)
    dlg.show()
    fill(dlg, src, out, model, preset)
    assert dlg.start_button.text() == "Start" and not dlg.sheet_button.isEnabled()
    jobs = []
    dlg.job_started.connect(jobs.append)
    run_to_end(qtbot, dlg)
    assert dlg.error is None and dlg.outcome == "finished"
    # the batch is a job like any run: one protocol for the status bar
    from dgp_studio.jobs import JobState

    assert len(jobs) == 1 and jobs[0].title.startswith("Batch")
    qtbot.waitUntil(lambda: jobs[0].state == JobState.FINISHED, timeout=5000)
    assert jobs[0].result == "finished"
    assert dlg.list.count() == 4
    texts = [dlg.list.item(i).text() for i in range(4)]
    assert all(" — done" in t for t in texts), texts
    assert all(not dlg.list.item(i).icon().isNull() for i in range(4))  # thumbnails
    assert dlg.progress.value() == dlg.progress.maximum() == 4
    assert (out / "sub" / "q.jpg").is_file() and (out / "p0.png.dgp").is_file()
    assert set(statuses(out).values()) == {"done"}
    opened = []
    monkeypatch.setattr(batch_dialog.QDesktopServices, "openUrl", lambda url: opened.append(url))
    assert dlg.sheet_button.isEnabled()
    qtbot.mouseClick(dlg.sheet_button, Qt.MouseButton.LeftButton)
    assert opened and opened[0].toLocalFile().endswith("contact-sheet.html")
    # the same folder again: a resume with nothing left to do
    assert dlg.start_button.text() == "Resume"
    run_to_end(qtbot, dlg)
    assert dlg.outcome == "nothing to do" and "nothing left" in dlg.status.text()
    assert all(" — done" in dlg.list.item(i).text() for i in range(4))


def test_batch_dialog_cancel_then_resume(qtbot, batch_files):
    from dgp_studio.batch_dialog import BatchDialog

    root, model, src = batch_files
    slow = tiny_preset_file(root / "slow.toml", iterations=[40, 40])
    out = root / "out"
    dlg = BatchDialog(threads=1)
    qtbot.addWidget(dlg)
    dlg.show()
    fill(dlg, src, out, model, slow)
    qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: list(dlg.statuses.values()).count("done") >= 1, timeout=90000)
    qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.running, timeout=30000)
    assert dlg.outcome == "abandoned" and "Resume" in dlg.status.text()
    st = statuses(out)
    assert "running" not in st.values() and "pending" in st.values()
    assert dlg.start_button.text() == "Resume"
    run_to_end(qtbot, dlg)
    assert dlg.outcome == "finished"
    assert set(statuses(out).values()) == {"done"}


def test_file_menu_opens_the_batch_dialog(window, qtbot):
    file_menu = window.menuBar().actions()[0].menu()
    batch = next(a for a in file_menu.actions() if a.text() == "&Batch…")
    batch.trigger()
    dlg = window.batch_dialog
    qtbot.waitExposed(dlg)
    assert dlg.isVisible() and dlg.start_button.isEnabled() and not dlg.running
    dlg.close()


def test_colorize_skips_colour_photos_unless_recolour_is_ticked(qtbot, tmp_path):
    """Issue 22: a colorize batch keeps the true colours of a photo already in colour (the
    row and the summary say why, the journal keeps the reason) unless "Recolour photos
    that are already in colour" is ticked."""
    from dgp_engine.tasks.postprocess import colour_check
    from dgp_studio.batch_dialog import RECOLOUR, BatchDialog

    model = tiny_model_folder(tmp_path / "model")
    preset = tiny_preset_file(tmp_path / "tiny.toml")
    src = tmp_path / "album"
    src.mkdir()
    colour = photo_array(40, 56, seed=1)
    assert colour_check(colour).colour
    Image.fromarray(colour).save(src / "colour.png")
    Image.fromarray(photo_array(40, 56, seed=2)).convert("L").save(src / "grey.png")
    dlg = BatchDialog(threads=1)
    qtbot.addWidget(dlg)
    dlg.show()
    fill(dlg, src, tmp_path / "kept", model, preset)
    assert dlg.recolor.isVisible() and dlg.recolor.text() == RECOLOUR
    assert not dlg.recolor.isChecked() and "recolor" not in dlg.task_options()
    run_to_end(qtbot, dlg)
    assert dlg.outcome == "finished", dlg.error
    assert dlg.statuses == {"colour.png": "skipped", "grey.png": "done"}
    row = dlg.rows["colour.png"].text()
    assert row.startswith("colour.png — skipped (already in colour: ")
    assert f"tick “{RECOLOUR}” to colorize it anyway" in row and "--recolor" not in row
    assert (
        "1 skipped" in dlg.status.text()
        and "Skipped — colour.png: already in colour" in dlg.status.text()
    )
    db = sqlite3.connect(tmp_path / "kept" / ".dgp-batch" / "journal.sqlite")
    try:
        reason = db.execute("SELECT reason FROM items WHERE rel = 'colour.png'").fetchone()[0]
    finally:
        db.close()
    assert reason.startswith("already in colour")
    assert not (tmp_path / "kept" / "colour.png").exists()

    # ticked: the colour photo is colorized too
    qtbot.mouseClick(
        dlg.recolor, Qt.MouseButton.LeftButton, pos=QPoint(8, dlg.recolor.height() // 2)
    )  # on the box itself
    assert dlg.task_options() == {"recolor": True} and dlg.settings().recolor
    dlg.output_dir.setText(str(tmp_path / "recoloured"))
    run_to_end(qtbot, dlg)
    assert dlg.outcome == "finished", dlg.error
    assert dlg.statuses == {"colour.png": "done", "grey.png": "done"}
    assert "Skipped" not in dlg.status.text()
    assert (tmp_path / "recoloured" / "colour.png").is_file()
    # the box is colorize's own: another task has no such setting
    dlg.task.setCurrentIndex(dlg.task.findData("inpaint"))
    assert not dlg.recolor.isVisible() and dlg.task_options() == {}

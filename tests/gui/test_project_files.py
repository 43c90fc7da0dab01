"""Project files from the GUI: save, open in a fresh window, damaged files, autosave
and crash recovery."""

from __future__ import annotations

import numpy as np

from dgp_engine.files import project as proj

from .conftest import tiny_preset
from .test_editor import open_and_paint


def fresh_window(qtbot):
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    from ..helpers import tiny_prior

    catalog = ModelCatalog()
    catalog.add("tiny", lambda dev: tiny_prior())
    w = MainWindow(Settings(engine_threads=1, brush_size=20), catalog)
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    w.messages = []
    w.inform = lambda title, text: w.messages.append((title, text))
    w.task_panel.add_preset("tiny", tiny_preset())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_save_and_open_project(qtbot, window, picture_file, tmp_path):
    open_and_paint(qtbot, window, picture_file)
    window.set_tool("frame")
    window.state.set_region(10, 20, 64)
    window.set_tool("brush")
    assert window.actions["save_project"].shortcut().toString() == "Ctrl+Alt+S"
    path = tmp_path / "session.dgpproj"
    assert window.save_project_to(path)
    assert path.is_file() and not window.state.dirty
    pixels, mask, region = (
        window.state.picture.pixels.copy(),
        window.state.mask.copy(),
        window.state.region,
    )
    assert region == (10, 20, 64)

    other = fresh_window(qtbot)
    try:
        assert other.open_project(path)
        assert np.array_equal(other.state.picture.pixels, pixels)
        assert np.array_equal(other.state.mask, mask)
        assert other.state.region == region
        assert other.project_path == path
        assert not other.state.dirty
        assert other.messages == []
    finally:
        other.shutdown()


def test_damaged_project_gives_message_and_is_left_alone(qtbot, window, picture_file, tmp_path):
    open_and_paint(qtbot, window, picture_file)
    path = tmp_path / "session.dgpproj"
    assert window.save_project_to(path)
    data = path.read_bytes()
    bad = tmp_path / "cut.dgpproj"
    bad.write_bytes(data[: len(data) // 3])
    before = bad.read_bytes()

    other = fresh_window(qtbot)
    try:
        asked = []
        other.confirm = lambda title, text: asked.append((title, text)) or False
        assert not other.open_project(bad)
        shown = other.messages + asked
        assert shown and "damaged" in shown[0][1] and "Traceback" not in shown[0][1]
        assert "cut.dgpproj" in other.last_error
        assert not other.state.has_picture
        assert bad.read_bytes() == before
        # cut after the picture: the recovered part opens when the user agrees
        late = tmp_path / "late.dgpproj"
        late.write_bytes(data[:-40])
        late_bytes = late.read_bytes()
        other.confirm = lambda title, text: True
        assert other.open_project(late)
        assert np.array_equal(other.state.picture.pixels, window.state.picture.pixels)
        assert other.project_path is None and other.state.dirty
        assert late.read_bytes() == late_bytes
        # not a project at all: a plain message
        junk = tmp_path / "junk.dgpproj"
        junk.write_bytes(b"nothing here")
        assert not other.open_project(junk)
        assert other.last_error and junk.read_bytes() == b"nothing here"
    finally:
        other.shutdown()


def test_history_round_trip(qtbot, window, picture_file, tmp_path):
    from dgp_studio.model.state import HistoryEntry

    open_and_paint(qtbot, window, picture_file)
    patch = np.full((8, 8, 3), 200, np.uint8)
    window.state.add_result(
        HistoryEntry(
            "t",
            (0, 0, 8, 8),
            window.state.picture.pixels[:8, :8].copy(),
            patch,
            patch.copy(),
            settings={"k": 1},
        ),
        apply=True,
    )
    path = tmp_path / "h.dgpproj"
    assert window.save_project_to(path)
    other = fresh_window(qtbot)
    try:
        assert other.open_project(path)
        [e] = other.state.history
        assert e.title == "t" and e.applied and e.settings == {"k": 1}
        assert np.array_equal(e.after, patch) and e.bounds == (0, 0, 8, 8)
    finally:
        other.shutdown()


def test_history_item_without_its_before_or_after_is_left_out(qtbot):
    # A project written by hand or damaged may hold a result with its preview but without
    # the region before/after it: such an entry cannot be shown or applied (both arrays are
    # drawn and composited), so it is left out like a result whose images were lost.
    from dgp_studio.model.state import AppState
    from dgp_studio.project_io import PICTURE, apply_project

    patch = np.full((8, 8, 3), 200, np.uint8)
    project = proj.Project(sources={PICTURE: np.zeros((16, 16, 3), np.uint8)})
    project.images = {
        "h0.before": patch.copy(),
        "h0.after": patch.copy(),
        "h0.preview": patch.copy(),
        "h1.preview": patch.copy(),
        "h2.before": patch.copy(),
        "h2.preview": patch.copy(),
    }
    for i, parts in enumerate(
        (("before", "after", "preview"), ("preview",), ("before", "preview"))
    ):
        project.history.append(
            {
                "id": f"h{i}",
                "title": f"r{i}",
                "bounds": [0, 0, 8, 8],
                "images": {part: f"h{i}.{part}" for part in parts},
            }
        )
    state = AppState()
    apply_project(state, project)
    [entry] = state.history
    assert entry.title == "r0"
    assert entry.before is not None and entry.after is not None


def test_autosave_and_recovery(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    assert window.autosave_timer.isActive()
    out = window.autosave()
    assert out is not None and out.is_file()
    assert window.autosave() is None  # nothing changed since
    mask = window.state.mask.copy()

    other = fresh_window(qtbot)  # as after a crash: the autosave is still there
    try:
        other.ask_recovery = lambda items, restore: restore(items[0])
        other.offer_recovery()
        assert other.state.has_picture
        assert np.array_equal(other.state.mask, mask)
        assert other.state.dirty  # restored work is unsaved
        # closed without saving: the work stays recoverable until a clean save
        other.shutdown()
        assert len(proj.find_recovery()) == 1
        assert other.save_to(picture_file.with_name("recovered.png"))
        assert proj.find_recovery() == []  # saved cleanly: the autosave is gone
    finally:
        other.shutdown()


def test_morph_timeline_round_trip(qtbot, window, picture_file, tmp_path):
    from dgp_engine.method.manipulate import MorphTimeline
    from dgp_studio.model.state import HistoryEntry

    from ..helpers import tiny_prior
    from ..manipulation_helpers import quick_state

    prior = tiny_prior()
    from_history, from_file = quick_state(prior, 1, seed=0), quick_state(prior, 3, seed=1)
    open_and_paint(qtbot, window, picture_file)
    patch = np.full((8, 8, 3), 90, np.uint8)
    window.state.add_result(
        HistoryEntry("r", (0, 0, 8, 8), patch.copy(), patch, patch.copy(), state=from_history),
        apply=False,
    )
    panel = window.manipulate
    panel.add_keyframe(from_history, "Start", prior=prior)
    panel.add_keyframe(from_file, "Loaded B")
    panel.timeline.set_timeline(
        MorphTimeline(frames=30, fps=12, easing="linear", hold_start=2, pingpong=True)
    )
    path = tmp_path / "m.dgpproj"
    assert window.save_project_to(path)
    saved = proj.load_project(path)
    # the history's keyframe is stored once; the file's keyframe gets its own state
    assert saved.timeline["keyframes"] == ["h0", "k1"] and set(saved.states) == {"h0", "k1"}

    other = fresh_window(qtbot)
    try:
        assert other.open_project(path)
        tl = other.manipulate.timeline
        assert tl.names() == ["Start", "Loaded B"]
        assert tl.timeline() == MorphTimeline(
            frames=30, fps=12, easing="linear", hold_start=2, pingpong=True
        )
        a, b = tl.keyframes()
        assert proj.states_equal(a, from_history) and proj.states_equal(b, from_file)
        assert a is other.state.history[0].state  # one object, as before saving
        # once the model is loaded, the restored timeline renders (scrub preview)
        other.models.load("tiny")
        qtbot.waitUntil(lambda: other.manipulate.prior is not None, timeout=20000)
        assert tl.scrub.isEnabled()
    finally:
        other.shutdown()

"""Face priors in the app (issue 23, item 4): the three-point tool (click the left eye,
the right eye, the mouth; drag to move) drawn over the picture with the aligned square,
a face prior restoring a portrait on its aligned face with the rest of the picture
untouched, and the sentence that asks for the points when no face is found; the Models
dialog says which models are face priors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from dgp_engine import Preset
from dgp_engine.cli import main
from dgp_engine.method import face_detect
from dgp_engine.method.face_align import FaceAlignment, FacePoints

from ..conftest import REFERENCE
from ..test_face_align import drawn_face

PKL = REFERENCE / "stylegan2_small" / "nvidia_uncond" / "network-snapshot-000100.pkl"


def click(window, x: float, y: float) -> None:
    vp = window.canvas.viewport()
    p = window.canvas.mapFromScene(QPointF(x, y))
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)


def drag(window, a: tuple[float, float], b: tuple[float, float]) -> None:
    vp = window.canvas.viewport()
    pa = window.canvas.mapFromScene(QPointF(*a))
    pb = window.canvas.mapFromScene(QPointF(*b))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pa)
    QTest.mouseMove(vp, pb)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pb)


def scene_close(window, got, want, tol_view_px=1.5):
    """Points placed by clicks land on view pixels: compare within a view pixel or so."""
    tol = tol_view_px / window.canvas.zoom()
    assert np.abs(np.asarray(got) - np.asarray(want)).max() <= tol


@pytest.fixture
def portrait(tmp_path):
    rgb, points = drawn_face()
    path = tmp_path / "portrait.png"
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).save(path)
    return path, points


def test_three_clicks_place_the_face_points_drag_moves_them_and_the_square_shows(
    qtbot, window, portrait
):
    path, points = portrait
    assert window.open_path(path)
    window.actions["face"].trigger()  # the tool, as its shortcut P does
    assert window.canvas.tool == "face" and window.actions["face"].isChecked()
    st = window.state
    assert st.next_face_point() == "left eye"
    click(window, *points.left_eye)
    assert st.next_face_point() == "right eye"
    click(window, *points.right_eye)
    assert window.canvas.face_item.square == []  # two points: no face yet
    click(window, *points.mouth)
    assert st.next_face_point() is None
    scene_close(window, st.face_points, [points.left_eye, points.right_eye, points.mouth])
    # the aligned square is drawn: the engine's for these points
    want = FaceAlignment.from_points(FacePoints(*st.face_points), st.model_resolution)
    np.testing.assert_allclose(window.canvas.face_item.square, want.corners(), atol=1e-6)
    # the task panel says where the task works now; the square frame is not drawn
    assert "aligned face the three face points mark" in window.task_panel.region_note.text()
    # a fourth click on empty picture places nothing
    click(window, 20, 20)
    assert len(st.face_points) == 3
    # dragging the mouth moves it (and the square)
    drag(window, st.face_points[2], (150, 260))
    scene_close(window, [st.face_points[2]], [(150, 260)])
    moved = FaceAlignment.from_points(FacePoints(*st.face_points), st.model_resolution)
    np.testing.assert_allclose(window.canvas.face_item.square, moved.corners(), atol=1e-6)
    # a mouth dragged onto the eye line: no face, one sentence, no square
    drag(window, st.face_points[2], (200, 187))
    assert window.canvas.face_item.square == []
    assert "lies on the line through the eyes" in st.face_problem()
    assert "lies on the line through the eyes" in window.task_panel.region_note.text()
    window.actions["clear_face"].trigger()
    assert st.face_points == [] and window.canvas.face_item.points == []
    # another picture starts with no points
    click(window, 120, 180)
    assert len(st.face_points) == 1
    assert window.open_path(path)
    assert st.face_points == []


@pytest.fixture
def face_window(qtbot, capsys):
    """The main window with the small reference StyleGAN2 imported as the face prior
    "faces" (``--face``) and chosen, with a two-iteration preset."""
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    assert main(["models", "import", "faces", "--pkl", str(PKL), "--face"]) == 0
    capsys.readouterr()
    w = MainWindow(Settings(engine_threads=1))
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    qtbot.addWidget(w)
    w.models.use("faces")
    assert w.task_panel.model.currentText() == "faces"
    quick = Preset.from_dict(
        {
            "name": "quick",
            "family": "stylegan2",
            "truncation_psi": 0.7,
            "iterations": [2],
            "ft_num": [1],
            "G_lrs": [1e-3],
            "z_lrs": [1e-2],
            "w_D_loss": [1.0],
            "w_mse": [1.0],
            "select_num": 2,
            "sample_std": 1.0,
        }
    )
    w.task_panel.add_preset("quick", quick)
    w.task_panel.iterations.setValue(2)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.state.running:
        w.runs.cancel()
        qtbot.waitUntil(lambda: not w.state.running, timeout=10000)
    w.shutdown()


def test_a_face_prior_restores_the_portrait_on_its_aligned_face(qtbot, face_window, portrait):
    w = face_window
    path, points = portrait
    assert w.open_path(path)
    w.task_panel.task.setCurrentText("Restore")
    w.set_tool("face")
    for p in (points.left_eye, points.right_eye, points.mouth):
        click(w, *p)
    before = w.state.picture.pixels.copy()
    assert w.run_task(), w.last_error
    qtbot.waitUntil(lambda: not w.state.running, timeout=60000)
    assert len(w.state.history) == 1, w.last_error
    entry = w.state.history[-1]
    face = w.state.face_alignment()
    x0, y0, x1, y1 = face.box(w.state.size)
    # the app sends the pixels the engine reads: the square and the sampling's reach
    assert entry.bounds == face.source_box(w.state.size)
    bx0, by0, bx1, by1 = entry.bounds
    assert bx0 < x0 and by0 < y0 and bx1 > x1 and by1 > y1
    placement = entry.state.placement
    assert placement is not None and placement.face is not None
    w.actions["apply_result"].trigger()
    after = w.state.picture.pixels
    assert after.shape == before.shape == (420, 300, 3)
    outside = np.ones((420, 300), bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    assert (after[y0:y1, x0:x1] != before[y0:y1, x0:x1]).any()


def test_a_face_prior_with_no_face_found_asks_for_the_three_points(
    qtbot, face_window, portrait, monkeypatch
):
    w = face_window
    path, _ = portrait
    assert w.open_path(path)
    monkeypatch.setattr(face_detect, "_cv2", lambda: None)
    assert not w.run_task()
    assert "faces is a face prior and no face detector is installed" in w.last_error
    assert "Face points (P)" in w.last_error and not w.state.running
    # points that cannot be a face: the engine's sentence, nothing runs
    w.set_tool("face")
    for p in ((100, 200), (160, 200), (220, 201)):
        click(w, *p)
    assert not w.run_task()
    assert "lies on the line through the eyes" in w.last_error


def test_the_detector_places_the_points_for_a_face_prior(qtbot, face_window, tmp_path):
    """With the detector installed (the face extra), running on a portrait places the
    three points it found (shown for the user to check) and runs on that face."""
    from skimage import data

    w = face_window
    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    assert w.open_path(path)
    w.task_panel.task.setCurrentText("Restore")
    assert w.run_task(), w.last_error
    assert len(w.state.face_points) == 3
    assert w.state.face_points[0] == pytest.approx((201, 101), abs=4)
    qtbot.waitUntil(lambda: not w.state.running, timeout=60000)
    assert len(w.state.history) == 1, w.last_error


def test_the_models_dialog_says_which_models_are_face_priors(qtbot, face_window):
    from dgp_studio.model_dialog import ModelDialog

    dlg = ModelDialog()
    qtbot.addWidget(dlg)
    assert dlg.select("faces")
    assert "face prior (faces, FFHQ-aligned" in dlg.details.text()
    assert dlg.select("bundled")
    assert "face prior" not in dlg.details.text()


QUICK_TOML = (
    'family = "stylegan2"\ntruncation_psi = 0.7\niterations = [2]\nft_num = [1]\n'
    "G_lrs = [1e-3]\nz_lrs = [1e-2]\nw_D_loss = [1.0]\nw_mse = [1.0]\nselect_num = 2\n"
    "sample_std = 1.0\n"
)


@pytest.mark.parametrize(
    ("task", "label", "points"),
    [
        # level eyes in the middle of the portrait
        ("restore", "Restore", "125,186 175,186 150,245"),
        # a tilted face near the right edge: part of its square lies outside the picture
        ("colorize", "Colorize", "232.5,150.25 281.75,161 252,212.5"),
        # the mouth filled
        ("inpaint", "Inpaint", "125,186 175,186 150,245"),
    ],
)
def test_the_app_and_the_command_line_restore_a_face_alike(
    qtbot, face_window, portrait, tmp_path, task, label, points
):
    """The app sends only the face's part of the picture; the CLI reads the whole photo:
    the same pixels come out (the equivalence of tests/gui/test_task_equivalence.py)."""
    from dgp_engine.method.face_align import parse_face_points

    w = face_window
    path, _ = portrait
    assert w.open_path(path)
    w.task_panel.task.setCurrentText(label)
    w.task_panel.add_preset("quick", Preset.from_dict({**_quick(), "name": "quick"}))
    w.task_panel.iterations.setValue(2)
    w.state.set_face_points(parse_face_points(points).as_list())
    extra: list[str] = []
    if task == "inpaint":
        mask = np.zeros((420, 300), np.uint8)
        mask[232:258, 125:175] = 255
        assert w.state.set_mask(mask)
        Image.fromarray(mask).save(tmp_path / "mask.png")
        extra = ["--mask", str(tmp_path / "mask.png")]
    assert w.run_task(), w.last_error
    qtbot.waitUntil(lambda: not w.state.running, timeout=60000)
    assert len(w.state.history) == 1, w.last_error
    assert w.apply_layer()
    app_out = w.state.picture.pixels
    preset = tmp_path / "quick.toml"
    preset.write_text(QUICK_TOML)
    out = tmp_path / "cli.png"
    argv = [task, str(path), "-o", str(out), "--model", "faces", "--preset", str(preset)]
    assert main([*argv, *extra, "--face-points", points, "--threads", "1", "-q"]) == 0
    cli_out = np.asarray(Image.open(out).convert("RGB"))
    assert cli_out.shape == app_out.shape
    diff = np.abs(cli_out.astype(int) - app_out.astype(int))
    assert diff.max() == 0, f"app and CLI outputs differ by up to {diff.max()} levels"
    assert not np.array_equal(cli_out, np.asarray(Image.open(path).convert("RGB")))


def _quick() -> dict:
    import tomllib

    return tomllib.loads(QUICK_TOML)


@pytest.mark.parametrize(("answer", "want"), [(True, "ffhq"), (False, "")])
def test_importing_a_pickle_named_ffhq_in_the_app_asks_whether_it_is_a_face_prior(
    qtbot, monkeypatch, tmp_path, answer, want
):
    import shutil

    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    from dgp_engine.priors import registry
    from dgp_studio.model_dialog import ModelDialog

    pkl = tmp_path / "ffhq.pkl"
    shutil.copyfile(PKL, pkl)
    asked = []
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(pkl), ""))
    )
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("ffhq", True)))

    def question(parent, title, text, *a, **k):
        asked.append(title)
        return QMessageBox.StandardButton.Yes if answer else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    dlg = ModelDialog()
    qtbot.addWidget(dlg)
    dlg.import_button.click()
    qtbot.waitUntil(lambda: not dlg.is_busy(), timeout=60000)
    assert asked == ["Face prior?"]
    assert registry.installed("ffhq").alignment == want
    assert dlg.select("ffhq")
    assert ("face prior" in dlg.details.text()) == answer


def test_face_point_edits_are_undoable_steps(qtbot, window, portrait):
    path, points = portrait
    assert window.open_path(path)
    window.actions["face"].trigger()
    st = window.state
    click(window, *points.left_eye)
    click(window, *points.right_eye)
    click(window, *points.mouth)
    placed = list(st.face_points)
    drag(window, placed[2], (150, 260))  # one drag = one step, however many moves
    moved = list(st.face_points)
    assert moved[:2] == placed[:2] and moved[2] != placed[2]
    stack = st.undo_stack
    assert stack.count() == 4 and stack.undoText() == "Move face point" and st.dirty
    stack.undo()
    assert st.face_points == placed and window.canvas.face_item.points == placed
    stack.undo()
    stack.undo()
    assert st.face_points == placed[:1] and stack.undoText() == "Place face point"
    stack.undo()
    assert st.face_points == [] and window.canvas.face_item.points == []
    for _ in range(4):
        stack.redo()
    assert st.face_points == moved
    window.actions["clear_face"].trigger()  # Shift+P
    assert st.face_points == [] and stack.undoText() == "Clear face points"
    stack.undo()
    assert st.face_points == moved and len(window.canvas.face_item.square) == 4
    click(window, 20, 20)  # a click that places nothing is no step
    assert stack.count() == 5


def test_face_points_are_saved_in_projects_and_follow_a_new_picture(
    qtbot, window, portrait, tmp_path
):
    from dgp_engine.files import project as proj
    from dgp_studio.model.state import HistoryEntry
    from dgp_studio.project_io import face_points_from_project

    from .test_project_files import fresh_window

    path, points = portrait
    assert window.open_path(path)
    st = window.state
    st.set_face_points([points.left_eye, points.right_eye, points.mouth], "Detect face points")
    placed = list(st.face_points)
    saved = tmp_path / "portrait.dgpproj"
    assert window.save_project_to(saved)
    other = fresh_window(qtbot)
    try:
        assert other.open_project(saved)
        assert other.state.face_points == placed
        assert other.canvas.face_item.points == placed
        assert len(other.canvas.face_item.square) == 4 and not other.state.dirty
    finally:
        other.shutdown()
    # a damaged face entry (hand-edited, hostile) is left out; the rest opens
    project = proj.load_project(saved)
    for bad in ([[1, 2], [3]], "eyes", [[1, 2]] * 4, [[float("nan"), 1.0]], [["a", "b"]]):
        project.regions = [r for r in project.regions if r.get("id") != "face"]
        project.regions.append({"id": "face", "source": "picture", "points": bad})
        assert face_points_from_project(project) == []
    # super-resolution's new picture is the old one scaled: the points follow, undoably
    h, w = st.picture.pixels.shape[:2]
    big = np.zeros((2 * h, 2 * w, 3), np.uint8)
    entry = HistoryEntry("Super-resolution", (0, 0, w, h), big, big, big, picture=big)
    st.history.append(entry)
    assert st.apply_result(entry)
    assert st.picture.pixels.shape[:2] == (2 * h, 2 * w)
    np.testing.assert_allclose(st.face_points, 2 * np.asarray(placed))
    st.undo_stack.undo()
    assert st.face_points == placed and st.picture.pixels.shape[:2] == (h, w)


_json = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats() | hs.text(max_size=3),
    lambda inner: hs.lists(inner, max_size=4) | hs.dictionaries(hs.text(max_size=2), inner),
    max_leaves=12,
)


@given(points=_json)
@settings(max_examples=300, deadline=None)
def test_any_saved_face_points_value_reads_as_points_or_none(points):
    from dgp_engine.files import project as proj
    from dgp_studio.project_io import face_points_from_project

    project = proj.Project(regions=[{"id": "face", "source": "picture", "points": points}])
    got = face_points_from_project(project)
    assert len(got) <= 3
    assert all(len(p) == 2 and all(np.isfinite(v) for v in p) for p in got)
    if got:
        assert got == [(float(x), float(y)) for x, y in points]

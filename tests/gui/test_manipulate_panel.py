"""Drive the real Manipulate panel offscreen: jitter variations, category slider,
morph keyframes/scrub/play, animation export and cancel."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from dgp_engine.method.manipulate import Renderer
from dgp_engine.method.pictures import signed_to_uint8

from ..helpers import tiny_prior
from ..manipulation_helpers import quick_state

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def model():
    prior = tiny_prior()
    return prior, quick_state(prior, class_id=1, seed=0), quick_state(prior, class_id=3, seed=1)


@pytest.fixture
def panel(qtbot, model):
    from dgp_studio.manipulate import ManipulatePanel

    p = ManipulatePanel(variations=4, threads=1)
    qtbot.addWidget(p)
    p.resize(420, 700)
    p.show()
    yield p
    p.shutdown()


def grid_full(panel):
    return len(panel.grid.images) == len(panel.grid.buttons) > 0


def wait_frame(qtbot, panel, channel, timeout=10000):
    """The frame of the latest request of ``channel`` (waits for it)."""
    qtbot.waitUntil(
        lambda: (
            (f := panel.last_frame.get(channel)) is not None and f.generation == panel._gen[channel]
        ),
        timeout=timeout,
    )
    return panel.last_frame[channel]


def test_sigma_slider_renders_variations_and_click_adopts(qtbot, panel, model):
    prior, state, _ = model
    panel.set_result(prior, state, "restored")
    qtbot.waitUntil(lambda: grid_full(panel), timeout=10000)
    assert wait_frame(qtbot, panel, "result").image.shape == (32, 32, 3)
    before = {i: a.copy() for i, a in panel.grid.images.items()}

    panel.sigma.setValue(150)  # σ = 1.5, as a slider drag would
    assert panel.sigma_label.text() == "1.50"
    qtbot.waitUntil(
        lambda: grid_full(panel) and panel.variation_params[0]["sigma"] == pytest.approx(1.5),
        timeout=10000,
    )
    assert any(not np.array_equal(before[i], panel.grid.images[i]) for i in before)
    assert not np.array_equal(panel.grid.images[0], panel.grid.images[1])

    clicked = panel.grid.images[2].copy()
    # a click picks the variation (shown, nothing replaced); Apply to picture adopts it
    with qtbot.waitSignal(panel.candidate_shown, timeout=10000) as shown:
        qtbot.mouseClick(panel.grid.buttons[2], Qt.MouseButton.LeftButton)
    assert np.array_equal(shown.args[0], clicked) and panel.state is state
    assert panel.selected == 2 and panel.grid.buttons[2].isChecked()
    with qtbot.waitSignal(panel.adopted, timeout=10000) as blocker:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    adopted, note = blocker.args
    want = Renderer(prior, state).jitter_latents(1, 1.5, panel.seed.value(), start=2)
    assert np.allclose(adopted.z.numpy(), want.numpy())
    assert "jitter" in note and panel.state is adopted
    # the adopted state is the new result: it renders as the clicked variation did,
    # and the grid now jitters around it
    f = wait_frame(qtbot, panel, "result")
    assert np.abs(f.image.astype(int) - clicked.astype(int)).max() <= 1
    qtbot.waitUntil(lambda: grid_full(panel), timeout=10000)

    # jitter only the coarse half of the latent chunks (input + block 1 here)
    panel.layers.setCurrentIndex(panel.layers.findData("coarse"))
    qtbot.waitUntil(
        lambda: grid_full(panel) and panel.variation_params[0]["sigma"] == [1.5, 1.5, 0.0, 0.0],
        timeout=10000,
    )
    qtbot.mouseClick(panel.grid.buttons[0], Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.adopted, timeout=10000) as blocker:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    moved = (blocker.args[0].z - adopted.z).abs().reshape(-1)
    assert moved[:8].min() > 0 and moved[8:].max() == 0


def test_category_slider_rerenders_live(qtbot, panel, model):
    prior, state, _ = model
    panel.set_result(prior, state)
    panel.tabs.setCurrentIndex(1)
    assert panel.category.count() == 5 and panel.category.currentIndex() == 1
    images = {}
    for cid in (0, 4):
        panel.category_slider.setValue(cid)
        assert panel.category.currentIndex() == cid
        f = wait_frame(qtbot, panel, "transfer")
        assert f.params["target"] == cid and f.elapsed < 1.0
        images[cid] = f.image
        assert np.array_equal(panel.preview.image, f.image)
    assert not np.array_equal(images[0], images[4])
    assert "ms per frame" in panel.latency.text()
    # a task running in the editor meanwhile trains its own copy of G: the panel
    # renders from the same prior object and its frames do not change
    before = {k: v.clone() for k, v in prior.G.state_dict().items()}
    run = threading.Thread(target=quick_state, args=(prior, 2, 5), kwargs={"iterations": [40]})
    run.start()
    try:
        panel.amount.setValue(99)
        panel.amount.setValue(100)
        assert np.array_equal(wait_frame(qtbot, panel, "transfer").image, images[4])
    finally:
        run.join(60)
    assert all(torch.equal(v, before[k]) for k, v in prior.G.state_dict().items())
    # the picker drives the same render, and adopting sets the class
    panel.category.setCurrentIndex(2)
    assert panel.category_slider.value() == 2
    assert wait_frame(qtbot, panel, "transfer").params["target"] == 2
    with qtbot.waitSignal(panel.adopted, timeout=10000) as blocker:
        qtbot.mouseClick(panel.adopt_category, Qt.MouseButton.LeftButton)
    assert blocker.args[0].class_id == 2


def test_morph_keyframes_scrub_play_pause(qtbot, panel, model):
    prior, a, b = model
    panel.set_result(prior, a, "A")
    tl = panel.timeline
    assert not tl.play_button.isEnabled()
    qtbot.mouseClick(tl.add_current, Qt.MouseButton.LeftButton)
    panel.add_keyframe(b, "B")
    assert tl.names() == ["A", "B"] and tl.play_button.isEnabled()
    panel.tabs.setCurrentIndex(2)

    ends = {
        0: signed_to_uint8(Renderer(prior, a).render()[0]),
        1000: signed_to_uint8(Renderer(prior, b).render()[0]),
    }
    for value, want in ends.items():
        tl.scrub.setValue(value)
        f = wait_frame(qtbot, panel, "scrub")
        assert np.abs(f.image.astype(int) - want.astype(int)).max() <= 1
        qtbot.waitUntil(lambda frame=f: panel.preview.image is frame.image, timeout=5000)
    tl.scrub.setValue(500)
    mid = wait_frame(qtbot, panel, "scrub").image
    assert not np.array_equal(mid, ends[0]) and not np.array_equal(mid, ends[1000])

    tl.frames.setValue(6)
    tl.fps.setValue(60)
    tl.pingpong.setChecked(True)
    assert tl.timeline().frame_count == 10 and "10 frames" in tl.summary.text()
    qtbot.mouseClick(tl.play_button, Qt.MouseButton.LeftButton)
    assert tl.playing and tl.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: len(tl.cache) == 10 and not tl.rendering, timeout=10000)
    shown = []
    panel.timeline.frame_shown.connect(lambda img: shown.append(img))
    qtbot.waitUntil(lambda: len(shown) >= 12, timeout=5000)  # wrapped around: it loops
    qtbot.mouseClick(tl.play_button, Qt.MouseButton.LeftButton)
    assert not tl.playing
    pos, n = tl.scrub.value(), len(shown)
    qtbot.wait(100)
    assert tl.scrub.value() == pos and len(shown) == n
    # dragging the scrubber while playing pauses playback
    tl.play()
    tl.scrub.setValue(250)
    assert not tl.playing
    with qtbot.waitSignal(panel.adopted, timeout=10000) as blocker:
        qtbot.mouseClick(tl.adopt, Qt.MouseButton.LeftButton)
    assert "morph" in blocker.args[1]


def test_keyframe_from_saved_state_file(qtbot, panel, model, tmp_path):
    prior, a, b = model
    path = b.save(tmp_path / "b.dgp")
    panel.set_result(prior, a, "A")
    panel.add_keyframe(a, "A")
    panel.add_keyframe_file(path)
    qtbot.waitUntil(lambda: panel.timeline.names() == ["A", "b"], timeout=10000)
    panel.add_keyframe_file(tmp_path / "missing.dgp")
    qtbot.waitUntil(lambda: "does not exist" in panel.status.text(), timeout=10000)
    # a keyframe restored with another model is refused, saying why
    panel.timeline.clear_keyframes()
    panel.add_keyframe(a, "A")
    panel.add_keyframe(dataclasses.replace(b, model={**b.model, "name": "other"}), "C")
    qtbot.waitUntil(lambda: "Cannot morph A and C" in panel.status.text(), timeout=10000)


def test_states_of_other_weights_render_with_a_warning(qtbot, panel, tmp_path):
    """Keyframes restored with another model of the same shapes (issue 20, defect 6): the
    app renders them with the loaded model, and says so once (not silently)."""
    from dgp_engine import load_prior

    from ..manipulation_helpers import save_model_folder

    prior_a = load_prior(save_model_folder(tiny_prior(seed=0), tmp_path / "tiny-a"))
    prior_b = load_prior(save_model_folder(tiny_prior(seed=1), tmp_path / "tiny-b"))
    a, a2 = quick_state(prior_a, 1, seed=0), quick_state(prior_a, 3, seed=1)
    panel.offer_prior(prior_b)  # the app loaded tiny-b, then a project of tiny-a opens
    panel.add_keyframe(a, "A")
    panel.add_keyframe(a2, "B")
    text = panel.status.text()
    assert "A was restored with the model 'tiny-a', not with the loaded 'tiny-b'" in text
    assert "B was restored" in text and "rendered with 'tiny-b' anyway" in text
    panel.tabs.setCurrentIndex(2)
    panel.timeline.scrub.setValue(0)
    f = wait_frame(qtbot, panel, "scrub")
    want = signed_to_uint8(Renderer(prior_b, a, allow_other_model=True).render()[0])
    assert np.abs(f.image.astype(int) - want.astype(int)).max() <= 1
    panel.status.setText("Something else.")
    panel._keyframes_changed()  # said once: a later change of keyframes does not repeat it
    assert panel.status.text() == "Something else."


def export_setup(panel, model, frames):
    prior, a, b = model
    panel.set_result(prior, a, "A")
    panel.add_keyframe(a, "A")
    panel.add_keyframe(b, "B")
    panel.timeline.frames.setValue(frames)
    panel.timeline.pingpong.setChecked(True)
    panel.timeline.fps.setValue(20)
    return panel.show_export_dialog()


def test_export_gif_through_dialog(qtbot, panel, model, tmp_path):
    dialog = export_setup(panel, model, 5)
    dialog.set_format("gif")
    dialog.path.setText(str(tmp_path / "anim.webp"))
    dialog.set_format("webp")
    dialog.set_format("gif")
    assert dialog.path.text().endswith("anim.gif")
    dialog.scale.setValue(2.0)
    with qtbot.waitSignal(
        panel.engine.export_finished if panel.engine else panel.message, timeout=20000
    ):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=20000)
    assert "Saved" in dialog.message.text()
    with Image.open(tmp_path / "anim.gif") as im:
        assert im.n_frames == 8 and im.size == (64, 64)  # 5 frames + 3 back (ping-pong)
    assert dialog.progress.value() == dialog.progress.maximum()


def test_cancel_export_and_clear_errors(qtbot, panel, model, tmp_path):
    dialog = export_setup(panel, model, 2000)
    dialog.set_format("apng")
    dialog.path.setText(str(tmp_path / "long.png"))
    # cancelled at once (before or just as it starts), then while writing frames
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=10000)
    assert "Cancelled" in dialog.message.text()
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.running and dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=10000)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=10000)
    assert "Cancelled" in dialog.message.text()
    assert not (tmp_path / "long.png").exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]

    panel.timeline.frames.setValue(3)
    folder = Path("/sys") if os.geteuid() == 0 else tmp_path / "ro"
    if folder != Path("/sys"):
        folder.mkdir()
        folder.chmod(0o555)
    for target, words in (
        (folder / "x.gif", "read-only"),
        (tmp_path / "missing" / "x.gif", "does not exist"),
    ):
        dialog.path.setText(str(target))
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dialog.running, timeout=10000)
        assert words in dialog.message.text()
        assert dialog.export_button.isEnabled()


def test_install_as_dock_and_stop_on_close(qtbot, model):
    from PySide6.QtWidgets import QDockWidget

    from dgp_studio.manipulate import ManipulatePanel, install_manipulate_panel

    win = QMainWindow()
    qtbot.addWidget(win)
    panel = install_manipulate_panel(win, threads=1)
    assert isinstance(panel, ManipulatePanel)
    dock = win.findChild(QDockWidget, "dock-Manipulate")
    assert dock is not None and dock.widget() is panel
    win.show()
    prior, a, _ = model
    panel.set_result(prior, a)
    wait_frame(qtbot, panel, "result")
    thread = panel.engine.qthread
    assert thread.isRunning()
    win.close()
    assert panel.engine is None and not thread.isRunning()


def test_a_png_sequence_into_a_folder_of_frames_asks_first(
    qtbot, panel, model, tmp_path, monkeypatch
):
    """Someone's frame_*.png in the chosen folder: the export asks; declined, nothing is
    touched and the dialog says why; accepted, the sequence replaces them and removes
    the frames past its end (the engine refused the folder outright before)."""
    from PySide6.QtWidgets import QMessageBox

    folder = tmp_path / "frames"
    folder.mkdir()
    theirs = {f"frame_{i:05d}.png": f"someone's {i}".encode() for i in range(12)}
    for name, data in theirs.items():
        (folder / name).write_bytes(data)
    dialog = export_setup(panel, model, 3)
    dialog.set_format("png-sequence")
    dialog.path.setText(str(folder))
    asked = []

    def answer(yes):
        def question(parent, title, text, *a, **k):
            asked.append(title)
            return QMessageBox.StandardButton.Yes if yes else QMessageBox.StandardButton.No

        monkeypatch.setattr(QMessageBox, "question", staticmethod(question))

    answer(False)
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert asked == ["Replace the frames?"] and not dialog.running
    assert "already holds frame_*.png" in dialog.message.text()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == theirs

    answer(True)
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=20000)
    assert asked == ["Replace the frames?"] * 2
    assert "Saved" in dialog.message.text(), dialog.message.text()
    written = sorted(p.name for p in folder.iterdir())
    assert written == [f"frame_{i:05d}.png" for i in range(4)]  # 3 frames + 1 back
    for name in written:
        with Image.open(folder / name) as im:
            assert im.size == (model[0].resolution,) * 2

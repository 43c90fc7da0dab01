"""The Manipulate panel on StyleGAN2 results (issue 23), real widgets offscreen: jitter
variations (all layers and the coarse blocks), the category of a conditional model (an
unconditional one says it has none), the morph and animation exports — each compared
with what the engine renders for the same request."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from dgp_engine import reconstruct
from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Morph, StyleGAN2Renderer
from dgp_engine.method.pictures import signed_to_uint8

from ..test_stylegan2_dgp import _two_results, import_small, short, target_of
from .test_manipulate_panel import grid_full, wait_frame

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def panel(qtbot):
    from dgp_studio.manipulate import ManipulatePanel

    p = ManipulatePanel(variations=4, threads=1)
    qtbot.addWidget(p)
    p.resize(420, 700)
    p.show()
    yield p
    p.shutdown()


def close_to(image: np.ndarray, want) -> bool:
    return np.abs(image.astype(int) - signed_to_uint8(want).astype(int)).max() <= 1


def test_jitter_category_and_morph_of_a_conditional_stylegan2_result(qtbot, panel, capsys):
    prior = import_small(capsys)
    a, b = _two_results(prior)
    r = StyleGAN2Renderer(prior, a)
    panel.set_result(prior, a, "restored")
    assert close_to(wait_frame(qtbot, panel, "result").image, r.render()[0])

    # jitter: a click shows a variation, Apply adopts it
    qtbot.waitUntil(lambda: grid_full(panel), timeout=20000)
    panel.sigma.setValue(80)
    qtbot.waitUntil(
        lambda: grid_full(panel) and panel.variation_params[0]["sigma"] == pytest.approx(0.8),
        timeout=20000,
    )
    seed = panel.seed.value()
    assert close_to(panel.grid.images[2], r.render(r.jitter_latents(1, 0.8, seed, start=2))[0])
    qtbot.mouseClick(panel.grid.buttons[2], Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.adopted, timeout=20000) as blocker:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    adopted = blocker.args[0]
    assert adopted.is_stylegan2 and "jitter" in blocker.args[1]
    want = r.jitter_latents(1, 0.8, seed, start=2)
    assert np.allclose(adopted.ws.numpy(), want.numpy())
    # the coarse layers: the first 3 of the 5 synthesis blocks
    panel.layers.setCurrentIndex(panel.layers.findData("coarse"))
    qtbot.waitUntil(
        lambda: grid_full(panel) and panel.variation_params[0]["sigma"] == [0.8] * 3 + [0.0] * 2,
        timeout=20000,
    )

    # category: the model's 3 classes; the slider renders the transfer, the button adopts
    panel.set_result(prior, a, "restored")
    panel.tabs.setCurrentIndex(1)
    assert panel.category.count() == 3 and panel.category.isEnabled()
    assert panel.category_note.isHidden()
    panel.category_slider.setValue(2)
    f = wait_frame(qtbot, panel, "transfer", timeout=20000)
    assert f.params["target"] == 2
    assert close_to(f.image, r.render(r.transfer_ws(2))[0])
    assert not close_to(f.image, r.render()[0])
    with qtbot.waitSignal(panel.adopted, timeout=20000) as blocker:
        qtbot.mouseClick(panel.adopt_category, Qt.MouseButton.LeftButton)
    assert blocker.args[0].class_id == 2
    assert np.allclose(blocker.args[0].ws.numpy(), r.transfer_ws(2).numpy())

    # morph: two StyleGAN2 keyframes, scrubbed and adopted
    panel.add_keyframe(a, "A")
    panel.add_keyframe(b, "B")
    panel.tabs.setCurrentIndex(2)
    panel.timeline.scrub.setValue(500)
    f = wait_frame(qtbot, panel, "scrub", timeout=20000)
    morph = StyleGAN2Morph(prior, [a, b], easing=panel.timeline.easing.currentText())
    assert close_to(f.image, morph.at(0.5)[0])
    with qtbot.waitSignal(panel.adopted, timeout=20000) as blocker:
        qtbot.mouseClick(panel.timeline.adopt, Qt.MouseButton.LeftButton)
    assert blocker.args[0].is_stylegan2 and "morph" in blocker.args[1]


@pytest.mark.parametrize(
    "source, frames", [("walk", 4), ("sweep", 4), ("morph", 3)], ids=["walk", "sweep", "morph"]
)
def test_exports_of_a_stylegan2_result(qtbot, panel, capsys, tmp_path, source, frames):
    prior = import_small(capsys)
    a, b = _two_results(prior)
    panel.set_result(prior, a, "A")
    panel.add_keyframe(a, "A")
    panel.add_keyframe(b, "B")
    panel.timeline.frames.setValue(frames)
    panel.category_slider.setValue(1)
    dialog = panel.show_export_dialog()
    dialog.source.setCurrentIndex(dialog.source.findData(source))
    dialog.set_format("apng")  # lossless: frames compared with the engine's
    out = tmp_path / f"{source}.png"
    dialog.path.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running, timeout=60000)
    assert "Saved" in dialog.message.text(), dialog.message.text()
    with Image.open(out) as im:
        assert im.n_frames == frames and im.size == (64, 64)
        images = []
        for i in range(frames):
            im.seek(i)
            images.append(np.asarray(im.convert("RGB")))
    r = StyleGAN2Renderer(prior, a)
    if source == "sweep":  # from the result itself to the full transfer to class 1
        assert close_to(images[0], r.render()[0])
        assert close_to(images[-1], r.render(r.transfer_ws(1))[0])
    elif source == "walk":  # through the variations of the panel's σ and seed
        sigma, seed = panel.sigma_value, panel.seed.value()
        assert close_to(images[0], r.render(r.jitter_latents(1, sigma, seed))[0])
    else:
        assert close_to(images[0], r.render()[0])
        assert close_to(images[-1], StyleGAN2Renderer(prior, b).render()[0])


def test_an_unconditional_stylegan2_result_has_no_category_to_offer(qtbot, panel, capsys, tmp_path):
    prior = import_small(capsys, "sgu", model="nvidia_uncond")
    state = reconstruct(
        prior, target_of(prior), "colorize", class_id=None, preset=short(iterations=[1], ft_num=[1])
    ).run_to_end()
    panel.set_result(prior, state, "restored")
    qtbot.waitUntil(lambda: grid_full(panel), timeout=20000)  # jitter works
    panel.tabs.setCurrentIndex(1)
    assert not panel.category.isEnabled() and not panel.adopt_category.isEnabled()
    assert not panel.category_note.isHidden()
    assert "sgu is an unconditional model: it has no classes" in panel.category_note.text()
    panel.amount.setValue(40)  # nothing to render: no request, no error
    qtbot.wait(200)
    assert "transfer" not in panel.last_frame
    assert panel.candidate() is None
    # the category sweep is refused in the export dialog, with the same sentence
    dialog = panel.show_export_dialog()
    dialog.source.setCurrentIndex(dialog.source.findData("sweep"))
    dialog.set_format("gif")
    dialog.path.setText(str(tmp_path / "sweep.gif"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert not dialog.running and "unconditional model" in dialog.message.text()
    assert not (tmp_path / "sweep.gif").exists()

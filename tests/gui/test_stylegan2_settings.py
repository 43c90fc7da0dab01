"""The app's task settings pick the StyleGAN2 presets for an installed StyleGAN2 model
(a BigGAN schedule would be refused by the loop)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dgp_engine.cli import main

from ..conftest import REFERENCE

PKL = REFERENCE / "stylegan2_small" / "nvidia_cond" / "network-snapshot-000100.pkl"


def test_the_default_preset_follows_the_model_family(qtbot, capsys):
    from dgp_studio.model.task_settings import TaskSettings

    assert main(["models", "import", "sg", "--pkl", str(PKL)]) == 0
    capsys.readouterr()
    settings = TaskSettings()
    settings.task = "colorize"
    settings.model = "sg"
    assert settings.preset == "stylegan2_colorization"
    settings.task = "inpaint"
    assert settings.preset == "stylegan2_inpainting"
    settings.model = "bundled"
    assert settings.preset == "bundled_inpainting"
    settings.model = "not-installed"
    assert settings.preset == "inpainting"


def test_the_app_loads_and_runs_an_unconditional_stylegan2_model(qtbot, capsys, tmp_path):
    """An unconditional StyleGAN2 has no class names: the app's model info must not ask
    the BigGAN config for its class count."""
    from dgp_engine import load_prior
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    uncond = REFERENCE / "stylegan2_small" / "nvidia_uncond" / "network-snapshot-000100.pkl"
    assert main(["models", "import", "sgu", "--pkl", str(uncond)]) == 0
    capsys.readouterr()
    catalog = ModelCatalog()
    catalog.add("sgu", lambda dev: load_prior("sgu", device=dev))
    w = MainWindow(Settings(engine_threads=1), catalog)
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    w.task_panel.set_models(["sgu"])
    w.task_panel.model.setCurrentText("sgu")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    try:
        qtbot.waitUntil(lambda: w.state.model_resolution == 64, timeout=20000)
        w.task_panel.task.setCurrentText("Colorize")
        assert w.task_panel.preset.currentText() == "stylegan2_colorization"
        # a restoration runs on it and its result applies like any other
        photo = tmp_path / "in.png"
        rng = np.random.default_rng(0)
        Image.fromarray((rng.random((40, 56)) * 255).astype(np.uint8)).save(photo)
        assert w.open_path(photo)
        w.task_panel.iterations.setValue(3)
        n = len(w.state.history)
        assert w.run_task(), w.last_error
        qtbot.waitUntil(lambda: not w.state.running, timeout=60000)
        assert len(w.state.history) == n + 1, w.last_error
        assert w.state.history[-1].state.is_stylegan2
        assert w.apply_layer()
        assert w.state.picture.pixels.shape[:2] == (40, 56)
    finally:
        if w.state.running:
            w.runs.cancel()
            qtbot.waitUntil(lambda: not w.state.running, timeout=10000)
        w.shutdown()

"""The app's task settings pick the StyleGAN2 presets for an installed StyleGAN2 model
(a BigGAN schedule would be refused by the loop)."""

from __future__ import annotations

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

from __future__ import annotations

import pytest

from dgp_engine import Preset, PresetError, load_preset, preset_names


def test_published_presets_ship_with_reference_values():
    names = preset_names()
    for required in ("colorization", "inpainting", "sr_d_biased", "sr_mse_biased",
                     "adversarial_defense", "manipulation"):
        assert required in names
    col = load_preset("colorization")
    assert col.iterations == (200, 200, 300, 400, 300)
    assert col.ft_num == (2, 3, 4, 5, 6)
    assert col.lr_ratio == (0.7, 0.7, 0.8, 0.9, 1.0)
    assert col.z_lrs[0] == 2e-3 and col.sample_std == 0.5 and col.ftr_num == (7,) * 5
    inp = load_preset("inpainting")
    assert inp.update_embed and all(inp.use_in) and inp.w_mse == (10, 10, 10, 100, 100)
    assert load_preset("adversarial_defense").stop_mse == 5e-3
    for name in names:  # every shipped file parses
        assert load_preset(name).total_iterations > 0


def test_from_dict_ignores_extra_keys_and_repeats_scalars():
    p = Preset.from_dict({"iterations": [3, 4], "G_lrs": 1e-4, "z_lrs": [1e-3, 1e-4],
                          "ft_num": ["all", 2], "dgp_mode": "colorization", "G_ch": 16})
    assert p.G_lrs == (1e-4, 1e-4)
    assert p.ft_groups(0, 6) == 6 and p.ft_groups(1, 6) == 2
    assert p.extra["dgp_mode"] == "colorization"
    assert Preset.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("bad,match", [
    ({}, "iterations"),
    ({"iterations": []}, "no stages"),
    ({"iterations": [0, 0]}, "0 iterations"),
    ({"iterations": [1, 2], "G_lrs": [1e-4]}, "1 entries"),
    ({"iterations": [1], "z_lrs": [float("nan")]}, "finite"),
    ({"iterations": [1], "G_lrs": [-1.0]}, "≥ 0"),
    ({"iterations": [1.5]}, "whole number"),
    ({"iterations": [1], "use_in": ["maybe"]}, "true or false"),
])
def test_bad_presets_are_refused_clearly(bad, match):
    with pytest.raises(PresetError, match=match):
        Preset.from_dict(bad)


def test_unknown_preset_lists_shipped_ones(tmp_path):
    with pytest.raises(PresetError, match="colorization"):
        load_preset("nope")
    f = tmp_path / "mine.toml"
    f.write_text("iterations = [2]\nG_lrs = [1e-4]\n")
    assert load_preset(f).name == "mine"
    f.write_text("iterations = [2\n")
    with pytest.raises(PresetError, match="not valid TOML"):
        load_preset(f)

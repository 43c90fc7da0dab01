from __future__ import annotations

import pytest

from dgp_engine import Preset, PresetError, load_preset, preset_names


def test_published_presets_ship_with_reference_values():
    names = preset_names()
    for required in (
        "colorization",
        "inpainting",
        "sr_d_biased",
        "sr_mse_biased",
        "adversarial_defense",
        "manipulation",
    ):
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
    p = Preset.from_dict(
        {
            "iterations": [3, 4],
            "G_lrs": 1e-4,
            "z_lrs": [1e-3, 1e-4],
            "ft_num": ["all", 2],
            "dgp_mode": "colorization",
            "G_ch": 16,
        }
    )
    assert p.G_lrs == (1e-4, 1e-4)
    assert p.ft_groups(0, 6) == 6 and p.ft_groups(1, 6) == 2
    assert p.extra["dgp_mode"] == "colorization"
    assert Preset.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    "bad,match",
    [
        ({}, "iterations"),
        ({"iterations": []}, "no stages"),
        ({"iterations": [0, 0]}, "0 iterations"),
        ({"iterations": [1, 2], "G_lrs": [1e-4]}, "1 entries"),
        ({"iterations": [1], "z_lrs": [float("nan")]}, "finite"),
        ({"iterations": [1], "G_lrs": [-1.0]}, "≥ 0"),
        ({"iterations": [1.5]}, "whole number"),
        ({"iterations": [1], "use_in": ["maybe"]}, "true or false"),
    ],
)
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


# --- hostile values (hostile test pass after issue 20) ----------------------------------------
@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_non_finite_iteration_counts_are_refused_in_a_sentence(value):
    # int(inf) raised OverflowError (a traceback from `dgp --preset`), int(nan) a ValueError
    # worded by Python ("cannot convert float NaN to integer")
    with pytest.raises(PresetError, match="iterations must be a whole number"):
        Preset.from_dict({"iterations": [2, value]})
    with pytest.raises(PresetError, match="select_num must be a whole number"):
        Preset.from_dict({"iterations": [2], "select_num": value})


def test_a_preset_file_that_is_not_utf8_is_refused_in_a_sentence(tmp_path):
    f = tmp_path / "latin1.toml"
    f.write_bytes("iterations = [2]\nname = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(PresetError, match="not UTF-8"):
        load_preset(f)
    f.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(PresetError, match="not UTF-8"):
        load_preset(f)


@pytest.mark.parametrize("scale", [float("inf"), float("nan"), 0.0, -1.0, 1e308])
def test_an_iteration_scale_that_gives_no_finite_schedule_is_refused(scale):
    from dgp_engine.tasks.restore import resolve_preset

    # inf (and 1e308 × 200 = inf) made round() raise OverflowError: a traceback from
    # `dgp colorize --iterations-scale inf`
    with pytest.raises(PresetError, match="The iteration scale must"):
        resolve_preset("colorization", "colorize", None, scale)
    if scale in (0.0, -1.0):  # the app scales by a spin box's ratio: ≤ 0 gives 1 per stage
        assert load_preset("colorization").scaled(scale).iterations == (1,) * 5
    else:
        with pytest.raises(PresetError, match="iteration scale must give a finite count"):
            load_preset("colorization").scaled(scale)
    assert resolve_preset("colorization", "colorize", None, 0.5).iterations == (
        100,
        100,
        150,
        200,
        150,
    )


def test_a_preset_path_that_is_a_device_or_folder_says_so(tmp_path):
    # it was "Unknown preset", as for a name that does not exist
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    (tmp_path / "folder.toml").mkdir()
    for path in (tmp_path / "zero.toml", tmp_path / "folder.toml"):
        with pytest.raises(PresetError, match="not a regular file"):
            load_preset(path)

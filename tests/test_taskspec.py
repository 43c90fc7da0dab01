"""The engine's one task table: names, presets, working regions, degradations."""

from __future__ import annotations

import numpy as np
import pytest

from dgp_engine import Compose, Downsample, Grayscale, Identity, Mask, make_degradation
from dgp_engine.errors import InputError
from dgp_engine.method.presets import preset_names
from dgp_engine.method.region import Region
from dgp_engine.method.taskspec import (
    TASK_SPECS,
    TASKS,
    covers_whole_photo,
    default_preset,
    default_preset_name,
    enlargement_warning,
    find_task,
    menu_tasks,
    task_by_label,
    task_spec,
    working_region,
)
from dgp_engine.tasks.evaluate import EVAL_TASKS, degrade


def test_names_aliases_labels_and_commands_are_unique():
    keys = [k for s in TASK_SPECS for k in (s.name, *s.aliases)]
    assert len(keys) == len(set(keys))
    assert len({s.label for s in TASK_SPECS}) == len({s.command for s in TASK_SPECS}) == 6
    assert TASKS == ("colorize", "inpaint", "superres", "reconstruct", "defend", "hybrid")
    for spec in TASK_SPECS:
        assert task_by_label(spec.label) is spec and task_spec(spec.command) is spec
    assert find_task("Super-Resolution").name == "superres"
    assert find_task("sharpen") is None
    with pytest.raises(
        InputError,
        match=r"Unknown task 'sharpen'\. Choose one of: colorize, "
        r"inpaint, superres, reconstruct, defend, hybrid",
    ):
        task_spec("sharpen")
    assert [s.label for s in menu_tasks()] == [
        "Restore",
        "Colorize",
        "Inpaint",
        "Super-resolve",
        "Hybrid",
        "Remove adversarial noise",
    ]
    assert EVAL_TASKS == ("reconstruct", "colorize", "inpaint", "superres")


def test_presets_named_in_the_table_ship():
    names = preset_names()
    for spec in TASK_SPECS:
        assert spec.published_preset in names
        assert default_preset_name(spec.name, "bundled") == f"bundled_{spec.preset_stem}"
        assert default_preset_name(spec.name, "someone_else") == spec.published_preset
        assert default_preset_name(spec.name) == spec.published_preset
    assert default_preset("colorize", "bundled").name == "bundled_colorization"
    assert default_preset("Colorization").name == "colorization"


def test_working_region_holds_the_hole_as_a_third():
    hole = np.zeros((300, 400), bool)
    hole[100:140, 200:240] = True  # 40 px → a 120 px square
    r = working_region("inpaint", (400, 300), 64, hole=hole)
    assert r == Region(160, 60, 120)
    assert working_region("inpaint", (400, 300), 64, hole_box=(200, 100, 240, 140)) == r
    assert working_region("inpaint", (400, 300), 256, hole=hole).size == 256  # ≥ the model
    # super-resolution takes at most half the model's side (×2 fits)
    assert working_region("superres", (400, 300), 64, hole=hole) is None
    small = np.zeros((300, 400), bool)
    small[100:110, 200:210] = True
    assert working_region("hybrid", (400, 300), 64, hole=small).size == 32  # ≥ 64, ≤ 64 // 2
    with pytest.raises(InputError, match="marks nothing"):
        working_region("inpaint", (400, 300), 64, hole=np.zeros((300, 400), bool))


def test_working_region_for_the_app_is_always_a_square():
    assert working_region("colorize", (400, 300), 64) is None  # the CLI fits the photo
    assert working_region("colorize", (400, 300), 64, always_square=True) == Region(50, 0, 300)
    assert working_region("superres", (400, 300), 64, always_square=True) == Region(184, 134, 32)
    wide = np.zeros((300, 400), bool)
    wide[:, 10:390] = True  # wider than any square
    assert working_region("inpaint", (400, 300), 64, hole=wide) is None
    assert working_region("inpaint", (400, 300), 64, hole=wide, always_square=True) == Region(
        50, 0, 300
    )


def test_degradations_follow_the_table():
    assert isinstance(make_degradation("reconstruct"), Identity)
    assert isinstance(make_degradation("defense"), Identity)
    assert isinstance(make_degradation("colorization"), Grayscale)
    assert make_degradation("sr").factor == 4
    assert isinstance(make_degradation("inpaint", resolution=32), Mask)
    hybrid = make_degradation("hybrid", resolution=32)
    assert isinstance(hybrid, Compose)
    assert [type(p) for p in hybrid.parts] == [Downsample, Grayscale, Mask]
    assert hybrid.parts[0].factor == 2
    assert len(make_degradation("hybrid").parts) == 2  # no hole without a mask
    with pytest.raises(InputError, match="Inpainting needs a mask"):
        make_degradation("inpaint")
    with pytest.raises(
        InputError,
        match=r"Choose one of: colorize, defend, hybrid, inpaint, "
        r"reconstruct, superres\.",
    ):
        make_degradation("sharpen")


def test_evaluation_observations_follow_the_table():
    clean = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    hole = np.zeros((32, 32), bool)
    hole[10:20, 10:20] = True
    assert degrade(clean, "inpainting", hole=hole).rgb[hole].max() == 0
    with pytest.raises(
        InputError, match="Evaluation covers reconstruct, colorize, inpaint, superres; not 'hybrid'"
    ):
        degrade(clean, "hybrid")


def test_colorization_covers_the_whole_photo_and_only_regions_warn_when_soft():
    assert covers_whole_photo("colorization")
    assert [s.name for s in TASK_SPECS if s.region.whole_photo] == ["colorize"]
    assert enlargement_warning("inpaint", 128, 64) is None  # 2×: fine
    text = enlargement_warning("inpaint", 300, 64)
    assert text is not None and "4.7×" in text and "128 px" in text and "larger model" in text
    assert enlargement_warning("restore", 200, 64) is not None
    assert enlargement_warning("colorize", 1000, 64) is None
    assert enlargement_warning("superres", 1000, 64) is None  # a new picture

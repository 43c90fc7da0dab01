"""What the engine's reports carry for progress displays (stage count, time left), and
the CLI bar that shows them without computing its own."""

from __future__ import annotations

import pytest

from dgp_engine import Preset, reconstruct
from dgp_engine.cli.tasks import ProgressBar

from .helpers import smooth_target, tiny_prior


@pytest.fixture(scope="module")
def reports():
    preset = Preset.from_dict(
        {
            "iterations": [3, 2, 2],
            "ft_num": [1, 2, "all"],
            "G_lrs": [1e-3] * 3,
            "z_lrs": [1e-2] * 3,
            "select_num": 3,
        }
    )
    return list(
        reconstruct(tiny_prior(), smooth_target(32), "reconstruct", class_id=1, preset=preset)
    )


def test_reports_carry_the_stage_count(reports):
    assert {r.num_stages for r in reports} == {3}


def test_eta_comes_from_the_optimisation_pace(reports):
    select = [r for r in reports if r.phase == "select"]
    steps = [r for r in reports if r.phase == "optimize" and not r.done]
    assert select and all(r.eta is None for r in select)
    assert steps[0].eta is None  # one iteration timed: no pace yet
    first = steps[0]
    for r in steps[1:]:
        per = (r.elapsed - first.elapsed) / (r.step - first.step)
        assert r.eta == pytest.approx(per * (r.total - r.step))
    assert steps[-1].eta == 0.0
    assert reports[-1].done and reports[-1].eta == 0.0


def test_cli_bar_shows_the_engines_stage_count_and_eta(reports, capsys):
    bar = ProgressBar(3, reports[-1].total, quiet=False)
    for r in reports:
        bar.update(r)
    bar.close()
    err = capsys.readouterr().err
    assert "stage 3/3" in err
    assert "ETA 00:00" in err  # the last iteration's (the bar draws at least that one)

"""Issue 22, regions that respect the model: when the automatic inpainting region must be
enlarged more than twice the model's resolution (the engine plan's ``advisories``), the
app says so once, before the run, under the task — with the plan's two remedies (a
larger model; a smaller mask, since the mask is what makes the region large) — and not
again after the run."""

from __future__ import annotations

import pytest

from dgp_engine.files.photos import Photo
from dgp_engine.tasks.restore import plan_task

from .test_editor import paint_stroke, run_and_wait
from .test_retoucher import short_run

pytestmark = pytest.mark.timeout(120)


def test_a_mask_too_large_for_the_model_is_advised_once_before_the_run(qtbot, window, picture_file):
    assert window.open_path(picture_file)
    qtbot.waitUntil(lambda: window.state.model_resolution == 32, timeout=10000)
    note = window.task_panel.region_note
    # a small hole: its region stays within 2 × 32 px, nothing to advise
    window.set_tool("brush")
    paint_stroke(qtbot, window, [(70, 50), (72, 52)])
    assert note.isVisible() and "soft" not in note.text()

    # a hole 80 px across: its region (with the least context) is 120 px, 3.8× the model's
    paint_stroke(qtbot, window, [(40, 60), (80, 60), (110, 60)])
    request = window.build_request()
    plan = plan_task(
        Photo.from_array(request.image),
        request.task,
        32,
        mask=request.restore.mask,
        region=request.region,
    )
    assert len(plan.advisories) == 1
    advisory = plan.advisories[0]
    larger, smaller = advisory.remedies
    assert smaller.startswith("make the mask at most")  # the mask, not the region
    text = note.text()
    assert note.isVisible() and "soft" in text
    assert f"enlarged {advisory.factor:.1f}× from the model's 32 px" in text
    assert smaller[1:] in text  # the mask remedy, with the plan's numbers
    assert f"larger model, {advisory.model_resolution_needed} px or more" in text
    assert "shrink the region" not in text and "dgp models list" not in text

    logged = window.log_panel.toPlainText().count(advisory.message)
    short_run(window)
    run_and_wait(qtbot, window)
    qtbot.wait(100)  # log records from the worker arrive through the event loop
    # not said again after the run: neither in the run panel nor in the log (the
    # engine logs its plan's notes once as the run starts, as the command line does)
    assert advisory.message not in window.run_panel.status.text()
    assert window.log_panel.toPlainText().count(advisory.message) <= logged + 1
    assert note.text() == text  # the one note stays with the region it is about

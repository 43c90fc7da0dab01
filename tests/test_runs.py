"""The one cancellable-run shell (dgp_engine.system.runs): every long operation — a
reconstruction, a restoration, a render job, an animation export — is cancelled the same
way (``run.cancel()``, from any thread) and reports it the same way (``run.cancelled``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dgp_engine import Preset, reconstruct
from dgp_engine.files.animation import AnimationExport
from dgp_engine.files.photos import Photo
from dgp_engine.method.manipulate import Renderer
from dgp_engine.system.runs import CancellableRun
from dgp_engine.tasks.restore import restore_image

from .helpers import smooth_target, tiny_prior
from .manipulation_helpers import quick_state
from .task_helpers import photo_array

LONG = {"iterations": [40, 40], "G_lrs": [1e-3, 1e-3], "z_lrs": [1e-2, 1e-2], "select_num": 2}


@pytest.fixture(scope="module")
def prior():
    return tiny_prior()


@pytest.fixture(scope="module")
def state(prior):
    return quick_state(prior)


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.random((8, 8, 3)) * 255).astype(np.uint8) for _ in range(n)]


def make_run(kind: str, prior, state, tmp_path):
    if kind == "reconstruction":
        return reconstruct(
            prior, smooth_target(32), "reconstruct", class_id=1, preset=Preset.from_dict(LONG)
        )
    if kind == "restoration":
        return restore_image(
            prior,
            Photo.from_array(photo_array(32, 32)),
            "restore",
            class_id=1,
            preset=Preset.from_dict(LONG),
        )
    if kind == "render":
        return Renderer(prior, state, batch_size=1).jitter(40, 0.5)
    return AnimationExport(_frames(40), tmp_path / "out.gif", fps=10)


KINDS = ["reconstruction", "restoration", "render", "export"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_long_operation_is_the_one_shell(kind, prior, state, tmp_path):
    run = make_run(kind, prior, state, tmp_path)
    assert isinstance(run, CancellableRun)
    assert callable(run.cancel) and not run.cancel_requested and not run.cancelled


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_from_another_thread_stops_the_run_marked_cancelled(kind, prior, state, tmp_path):
    run = make_run(kind, prior, state, tmp_path)
    seen = 0
    for _report in run:
        seen += 1
        if seen == 3:
            t = threading.Thread(target=run.cancel)  # as the app's GUI thread would
            t.start()
            t.join()
    assert run.cancel_requested and run.cancelled
    assert seen <= 5  # within one step of the request (a reconstruction adds its last report)
    run.cancel()  # asking again is harmless
    assert list(run) == []  # the same, finished run


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_that_ends_is_not_cancelled(kind, prior, state, tmp_path):
    run = make_run(kind, prior, state, tmp_path)
    n = sum(1 for _ in run)
    assert n > 3 and not run.cancelled
    run.cancel()  # too late: nothing was stopped
    assert not run.cancelled


def test_a_restoration_and_its_reconstruction_stop_together(prior):
    job = restore_image(
        prior,
        Photo.from_array(photo_array(32, 32)),
        "restore",
        class_id=1,
        preset=Preset.from_dict(LONG),
    )
    for report in job:
        if report.phase == "optimize" and report.step == 2 and not report.done:
            job.cancel()
    assert job.cancelled and job.run.cancelled
    assert job.result is not None and job.result.cancelled
    assert job.result.state.progress["step"] == 2


def test_an_event_given_at_construction_cancels_too(prior):
    """The CLI's Ctrl-C handler and the app's worker hold an event, not the run."""
    event = threading.Event()
    run = reconstruct(
        prior,
        smooth_target(32),
        "reconstruct",
        class_id=1,
        preset=Preset.from_dict(LONG),
        cancel=event,
    )
    for report in run:
        if report.phase == "optimize" and report.step == 1:
            event.set()
    assert run.cancelled and run.state is not None and run.state.cancelled

"""The one job protocol: the generator worker (yields, progress, pause/resume, cancel,
errors), a compute job and an I/O job driven alike through the status bar, and the
observable task settings bound to the task panel."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtTest import QTest

from dgp_engine import DGPError
from dgp_engine.errors import DownloadError
from dgp_engine.priors.progress import TransferProgress
from dgp_studio.jobs import Job, JobProgress, JobState
from dgp_studio.thread_worker import GeneratorWorker, WorkerLane

from .conftest import tiny_preset
from .test_editor import open_and_paint

pytestmark = pytest.mark.timeout(120)


class Recorder(QObject):
    """Lives in the GUI thread: what a worker's signals delivered, in order."""

    def __init__(self, worker: GeneratorWorker):
        super().__init__()
        self.events: list[tuple[str, object]] = []
        self.values: list[object] = []
        for name in ("started", "paused", "resumed", "cancelled", "finished"):
            getattr(worker, name).connect(getattr(self, f"_{name}"))
        worker.yielded.connect(self._yielded)
        worker.progress.connect(self._progress)
        worker.returned.connect(self._returned)
        worker.errored.connect(self._errored)

    def names(self) -> list[str]:
        return [e for e, _ in self.events]

    @Slot()
    def _started(self):
        self.events.append(("started", None))

    @Slot()
    def _paused(self):
        self.events.append(("paused", None))

    @Slot()
    def _resumed(self):
        self.events.append(("resumed", None))

    @Slot()
    def _cancelled(self):
        self.events.append(("cancelled", None))

    @Slot()
    def _finished(self):
        self.events.append(("finished", None))

    @Slot(object)
    def _yielded(self, v):
        self.values.append(v)
        self.events.append(("yielded", v))

    @Slot(object)
    def _progress(self, p):
        self.events.append(("progress", p))

    @Slot(object)
    def _returned(self, v):
        self.events.append(("returned", v))

    @Slot(str)
    def _errored(self, message):
        self.events.append(("errored", message))


@pytest.fixture
def lane(qtbot):
    lane = WorkerLane("test-lane")
    yield lane
    assert lane.stop(10000)


def start(lane, func, *args, **kwargs):
    worker = GeneratorWorker(func, *args, **kwargs)
    rec = Recorder(worker)
    job = Job.for_worker(worker, "test job")
    lane.start(worker)
    return worker, rec, job


def count_up(n, pause_s=0.0, closed=None):
    try:
        for i in range(n):
            yield i
            yield JobProgress((i + 1) / n, f"{i + 1} of {n}")
            if pause_s:
                time.sleep(pause_s)
        return "all counted"
    finally:
        if closed is not None:
            closed.set()


def test_worker_yields_progress_and_returns_in_the_gui_thread(qtbot, lane):
    worker, rec, job = start(lane, count_up, 3)
    assert job.state == JobState.QUEUED
    qtbot.waitUntil(lambda: job.state.ended, timeout=10000)
    assert rec.values == [0, 1, 2]
    names = rec.names()
    assert names[0] == "started" and names[-2:] == ["returned", "finished"]
    assert names.count("progress") == 3 and "cancelled" not in names
    assert job.state == JobState.FINISHED and job.result == "all counted"
    assert job.progress.fraction == 1.0 and job.progress.text == "3 of 3"


def test_worker_pause_resume_and_cancel_between_yields(qtbot, lane):
    closed = threading.Event()
    worker, rec, job = start(lane, count_up, 100000, 0.002, closed)
    qtbot.waitUntil(lambda: len(rec.values) >= 3, timeout=10000)
    job.pause()
    qtbot.waitUntil(lambda: job.state == JobState.PAUSED, timeout=5000)
    n = len(rec.values)
    qtbot.wait(200)
    assert len(rec.values) <= n + 1  # at most one value was already on its way
    job.resume()
    qtbot.waitUntil(lambda: job.state == JobState.RUNNING and len(rec.values) > n + 3, timeout=5000)
    assert "paused" in rec.names() and "resumed" in rec.names()
    job.cancel()
    qtbot.waitUntil(lambda: job.state.ended, timeout=5000)
    assert job.state == JobState.CANCELLED and job.result is None
    assert closed.is_set()  # the generator was closed between yields, its cleanup ran
    assert "returned" not in rec.names() and rec.names()[-2:] == ["cancelled", "finished"]
    # cancelling a paused worker ends it too (cancel wakes it)
    worker2, rec2, job2 = start(lane, count_up, 100000, 0.002)
    qtbot.waitUntil(lambda: len(rec2.values) >= 1, timeout=10000)
    job2.pause()
    qtbot.waitUntil(lambda: job2.state == JobState.PAUSED, timeout=5000)
    job2.cancel()
    qtbot.waitUntil(lambda: job2.state == JobState.CANCELLED, timeout=5000)


def test_cooperative_worker_winds_down_with_a_result(qtbot, lane):
    def engine_like(cancel):
        i = 0
        while not cancel.is_set():
            i += 1
            yield
            time.sleep(0.002)
        yield "last frame"
        return f"stopped after {i}"

    worker, rec, job = start(lane, engine_like, cooperative=True)
    qtbot.waitUntil(lambda: job.state == JobState.RUNNING, timeout=5000)
    qtbot.wait(50)
    job.cancel()
    job.cancel()  # a second cancel is harmless
    qtbot.waitUntil(lambda: job.state.ended, timeout=5000)
    assert job.state == JobState.CANCELLED
    assert rec.values == ["last frame"]  # bare yields send nothing
    assert str(job.result).startswith("stopped after")


def test_worker_errors_are_sentences_and_cancel_before_start(qtbot, lane):
    def broken(exc):
        yield 1
        raise exc

    _, rec, job = start(lane, broken, DGPError("The model files are damaged."))
    qtbot.waitUntil(lambda: job.state.ended, timeout=5000)
    assert job.state == JobState.FAILED and job.error == "The model files are damaged."
    assert rec.names()[-2:] == ["errored", "finished"]
    _, _, job = start(lane, broken, ValueError("boom"))
    qtbot.waitUntil(lambda: job.state.ended, timeout=5000)
    assert job.state == JobState.FAILED and "unexpected error: boom" in job.error

    ran = threading.Event()

    def never():
        ran.set()
        yield 1

    # a slow job holds the lane; one queued behind it is cancelled before it starts
    _, _, slow = start(lane, count_up, 100000, 0.002)
    worker, rec, queued = start(lane, never)
    queued.cancel()
    slow.cancel()
    qtbot.waitUntil(lambda: queued.state.ended, timeout=5000)
    assert queued.state == JobState.CANCELLED and not ran.is_set()
    assert "started" not in rec.names()


# --- a compute job and an I/O job, driven alike through the status bar ---------------
def click(button):
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def test_compute_and_io_jobs_look_alike_in_the_status_bar(qtbot, window, picture_file):
    status = window.job_status
    assert status.parent() is not None and status.label.accessibleName() == "Current job"

    # compute: a run of the editor
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.add_preset("long", tiny_preset((400, 400)))
    window.task_panel.iterations.setValue(800)
    assert window.run_task()
    run = window.runs.job
    assert run is not None and run.kind == "compute" and run in window.jobs.jobs
    qtbot.waitUntil(lambda: (run.progress.fraction or 0) > 0, timeout=20000)
    qtbot.waitUntil(lambda: "iteration" in status.label.text(), timeout=5000)
    assert status.isVisible() and status.label.text().startswith("Inpaint · tiny")
    assert status.bar.maximum() == 1000 and status.bar.value() > 0
    click(status.cancel_button)
    qtbot.waitUntil(lambda: run.state.ended, timeout=10000)
    assert run.state == JobState.CANCELLED
    assert run.result is not None and run.result.cancelled  # the last frame is kept
    qtbot.waitUntil(lambda: not window.state.running, timeout=5000)
    assert window.state.history[-1].cancelled
    assert "cancelled" in status.label.text() and not status.cancel_button.isVisible()

    # I/O: a transfer of the Models dialog (its helper-thread loop: no qasync loop here)
    window.show_models()
    dlg = window.model_dialog
    arrived = threading.Event()

    async def transfer(report, outcome):
        report(TransferProgress("fake", "download", "G.pth", 25_000_000, 100_000_000, 0, 1))
        arrived.set()
        if outcome == "wait":
            while True:
                await asyncio.sleep(0.01)
        if outcome == "fail":
            raise DownloadError("The Hub cannot be reached (offline).")
        return "installed"

    def start_transfer(outcome):
        dlg._start(lambda report: transfer(report, outcome), f"Download {outcome}")
        job = dlg.job
        assert job is not None and job.kind == "io" and job in window.jobs.jobs
        return job

    io = start_transfer("wait")
    qtbot.waitUntil(lambda: io.progress.fraction == 0.25, timeout=10000)
    assert status.label.text().startswith("Download wait") and "25.0 MB" in status.label.text()
    assert status.bar.value() == 250
    click(status.cancel_button)
    qtbot.waitUntil(lambda: io.state.ended, timeout=10000)
    assert io.state == JobState.CANCELLED and io.result is None
    assert "stopped" in dlg.status.text() and not dlg.is_busy()
    assert "cancelled" in status.label.text()

    # errors: the engine's sentence, in the job and in the status bar
    io = start_transfer("fail")
    qtbot.waitUntil(lambda: io.state.ended, timeout=10000)
    assert io.state == JobState.FAILED and io.error == "The Hub cannot be reached (offline)."
    assert io.error in status.label.text() and "failed" in status.label.text()

    def broken_prior(dev):
        raise DGPError("The model files are damaged.")

    window.catalog.add("broken", broken_prior)
    window.task_panel.set_models(["tiny", "broken"])
    window.task_panel.model.setCurrentText("broken")
    window.task_panel.preset.setCurrentText("long")
    assert window.run_task()
    run = window.runs.job
    qtbot.waitUntil(lambda: run.state.ended, timeout=10000)
    assert run.state == JobState.FAILED and run.error == "The model files are damaged."
    assert run.error in status.label.text() and window.last_error == run.error
    qtbot.waitUntil(lambda: not window.state.running, timeout=5000)

    # results
    io = start_transfer("ok")
    qtbot.waitUntil(lambda: io.state.ended, timeout=10000)
    assert io.state == JobState.FINISHED and io.result == "installed"
    assert "done" in status.label.text()
    window.task_panel.model.setCurrentText("tiny")
    window.task_panel.iterations.setValue(6)
    assert window.run_task()
    run = window.runs.job
    qtbot.waitUntil(lambda: run.state.ended, timeout=30000)
    assert run.state == JobState.FINISHED and run.result.state is window.state.history[-1].state
    assert "done" in status.label.text()


# --- the observable task settings ------------------------------------------------------
def test_task_settings_round_trip_to_the_panel_and_back(qtbot):
    from dgp_engine.method.taskspec import default_preset_name, task_spec
    from dgp_studio.model.task_settings import QUALITY, TaskSettings
    from dgp_studio.task_panel import TaskPanel

    settings = TaskSettings()
    panel = TaskPanel(["bundled", "other"], "cpu", settings=settings)
    qtbot.addWidget(panel)
    seen: dict[str, list] = {}
    for name in (
        "task",
        "model",
        "preset",
        "iterations",
        "seed",
        "device",
        "class_text",
        "quality",
    ):
        getattr(settings, f"{name}_changed").connect(seen.setdefault(name, []).append)

    # the panel's widgets set the model …
    assert settings.model == "bundled" and settings.device == "cpu"
    panel.task.setCurrentText(task_spec("colorize").label)
    assert settings.task == "colorize" and seen["task"] == ["colorize"]
    assert settings.preset == default_preset_name("colorize", "bundled")
    assert panel.preset.currentText() == settings.preset
    panel.seed.setValue(7)
    panel.class_edit.setText("3")
    panel.model.setCurrentText("other")
    assert (settings.seed, settings.class_text, settings.model) == (7, "3", "other")
    assert seen["seed"] == [7] and seen["model"] == ["other"]

    # … and the model sets the widgets, each change said once (no binding loops)
    settings.task = "inpaint"
    assert panel.task.currentText() == task_spec("inpaint").label
    assert panel.task_name() == "inpaint" and seen["task"] == ["colorize", "inpaint"]
    settings.seed = 42
    settings.device = "auto"
    settings.class_text = "auto"
    assert (panel.seed.value(), panel.device.currentText(), panel.class_edit.text()) == (
        42,
        "auto",
        "auto",
    )
    settings.quality = 3
    assert panel.quality.value() == 3 and panel.quality_label.text() == QUALITY[3][1]
    total = settings.base_preset().total_iterations
    assert settings.iterations == total and panel.iterations.value() == total
    panel.iterations.setValue(5)
    assert settings.iterations == 5 and settings.preset_for_run().total_iterations == 5
    settings.seed = 42  # unchanged: silent
    assert seen["seed"] == [7, 42]

    # custom presets, classes and what is saved with a result
    settings.add_preset("mine", tiny_preset((3, 3)))
    assert panel.preset.currentText() == "mine" and panel.preset.findText("mine") >= 0
    settings.task = "colorize"
    assert settings.preset == "mine"  # a custom preset stays chosen
    settings.set_class_names(["cat", "dog"])
    assert panel.class_choices() == ["auto", "0: cat", "1: dog"]
    panel.class_edit.setText("dog")
    assert settings.class_id() == 1
    settings.set_class_names(["one"])  # "dog" is not a class of this model
    assert panel.class_edit.text() == "auto" and settings.class_id() is None
    assert (
        panel.settings_dict()
        == settings.as_dict()
        == {
            "task": task_spec("colorize").label,
            "model": "other",
            "class": "auto",
            "preset": "mine",
            "iterations": settings.iterations,
            "seed": 42,
            "device": "auto",
            "precision": "auto",
        }
    )


def test_quality_starts_at_full_for_interactive_presets_until_the_user_moves_it(qtbot):
    """The bundled model's presets run in seconds (``interactive = true``): the app runs
    all of their iterations by default; a published schedule (minutes) starts at Quick;
    once the user picks a quality it stays across task and model changes."""
    from dgp_engine import load_preset
    from dgp_engine.method.taskspec import task_spec
    from dgp_studio.model.task_settings import DEFAULT_QUALITY, FULL_QUALITY, QUALITY
    from dgp_studio.task_panel import TaskPanel

    panel = TaskPanel(["bundled", "imagenet-128"], "cpu")
    qtbot.addWidget(panel)
    s = panel.settings
    for task in ("colorize", "inpaint"):
        panel.task.setCurrentText(task_spec(task).label)
        preset = load_preset(s.preset)
        assert s.preset.startswith("bundled_") and preset.extra["interactive"] is True
        assert panel.quality.value() == FULL_QUALITY and panel.quality_label.text() == "Full"
        assert s.iterations == panel.iterations.value() == preset.total_iterations
    panel.model.setCurrentText("imagenet-128")  # the published 1,400-iteration schedule
    assert s.preset == "inpainting" and "interactive" not in load_preset(s.preset).extra
    assert panel.quality.value() == DEFAULT_QUALITY and not s.quality_chosen
    assert s.iterations == round(load_preset("inpainting").total_iterations * QUALITY[1][0])
    panel.model.setCurrentText("bundled")
    assert panel.quality.value() == FULL_QUALITY
    # the user's choice stays
    panel.quality.setValue(2)
    assert s.quality_chosen and s.quality == 2
    balanced = round(load_preset("bundled_inpainting").total_iterations * QUALITY[2][0])
    assert s.iterations == panel.iterations.value() == balanced
    panel.model.setCurrentText("imagenet-128")
    panel.task.setCurrentText(task_spec("colorize").label)
    panel.model.setCurrentText("bundled")
    assert s.quality == panel.quality.value() == 2
    assert s.iterations == round(load_preset("bundled_colorization").total_iterations * 0.3)

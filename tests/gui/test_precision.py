"""Compute precision in the app: a preference passed to every run (and saved with its
result), a device that cannot use it falling back with a warning, and a run that runs out
of device memory part-way: its sentence shown, its last frame kept on screen."""

from __future__ import annotations

import numpy as np
import pytest

from dgp_engine.method.pictures import signed_to_uint8

from ..task_helpers import out_of_memory_after
from .test_editor import open_and_paint, run_and_wait

pytestmark = pytest.mark.timeout(120)


def test_precision_is_a_setting_passed_to_runs_and_saved_with_results(qtbot, window, picture_file):
    from dgp_studio.settings import Settings
    from dgp_studio.settings_dialog import SettingsDialog

    open_and_paint(qtbot, window, picture_file)
    dlg = SettingsDialog(window.settings, window)
    qtbot.addWidget(dlg)
    assert dlg.precision.currentText() == "auto"
    assert [dlg.precision.itemText(i) for i in range(dlg.precision.count())] == [
        "auto",
        "fp32",
        "tf32",
        "bf16",
    ]
    dlg.precision.setCurrentText("bf16")
    dlg.accept()
    window.apply_settings()
    assert Settings.load().precision == "bf16"
    assert window.build_request().precision == "bf16"
    run_and_wait(qtbot, window)
    entry = window.state.history[-1]
    assert entry.state.progress["precision"] == "bf16"
    assert entry.settings["precision"] == "bf16"

    # TF32 on the CPU: the run falls back to auto (float32) and says why
    window.settings.precision = "tf32"
    window.apply_settings()
    run_and_wait(qtbot, window)
    assert window.state.history[-1].state.progress["precision"] == "fp32"
    assert "TF32 needs an NVIDIA GPU" in window.statusBar().currentMessage()
    assert window.last_error == ""


def test_out_of_device_memory_shows_the_sentence_and_keeps_the_last_frame(
    qtbot, window, picture_file, monkeypatch
):
    from dgp_studio.jobs import JobState
    from dgp_studio.worker import PREVIEW_SIDE

    reports = out_of_memory_after(monkeypatch, steps=3)
    open_and_paint(qtbot, window, picture_file)
    assert window.runs.settings.preset_for_run().iterations == (6, 6)
    # frames only at the end of a phase: the run's newest frame is one the throttle held
    window.runs.runner.frame_interval = 1e9
    frames: list[np.ndarray] = []
    window.runs.frame.connect(frames.append)
    before = window.state.picture.pixels.copy()
    assert window.run_task()
    job = window.runs.job
    qtbot.waitUntil(lambda: not window.state.running, timeout=30000)

    message = window.last_error
    assert message.startswith("The CPU device ran out of memory at step 4 of 12")
    assert "precision 'bf16'" in message and "Traceback" not in message
    assert message in window.run_panel.status.text()
    assert job.state == JobState.FAILED and job.error == message
    assert not window.state.history and window.state.layer is None
    np.testing.assert_array_equal(window.state.picture.pixels, before)
    # the frame of the last report the run gave (step 3) is the one left on screen
    assert [r.step for r in reports if r.phase == "optimize"] == [1, 2, 3]
    last = signed_to_uint8(reports[-1].image[0], PREVIEW_SIDE)
    np.testing.assert_array_equal(frames[-1], last)
    assert _same_pixmap(window.run_panel, last)
    assert not window.run_panel.running and window.actions["run"].isEnabled()


def _same_pixmap(panel, rgb: np.ndarray) -> bool:
    """The panel's preview is ``rgb`` as show_frame draws it."""
    from PySide6.QtCore import Qt

    from dgp_studio.qimage import to_pixmap

    want = to_pixmap(rgb).scaled(
        panel.PREVIEW,
        panel.PREVIEW,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    return panel.preview.pixmap().toImage() == want.toImage()


def test_settings_say_what_auto_chose_and_why(qtbot, monkeypatch):
    """The settings page shows auto's choice on the chosen device and its reason, from a
    decision already made or known without measuring (never measured on the GUI thread)."""
    from dgp_engine.method import compute
    from dgp_studio.settings import Settings
    from dgp_studio.settings_dialog import SettingsDialog

    monkeypatch.delenv(compute.AUTO_BF16_ENV, raising=False)
    monkeypatch.setattr(compute, "_probe_cpu_bf16", lambda: "AMX")
    monkeypatch.setattr(compute, "_onednn_bf16", lambda: True)
    measured = []
    monkeypatch.setattr(compute, "measure_bf16_speedup", lambda: measured.append(1) or 1.8)
    compute.reset_auto_precision()
    try:
        s = Settings()
        s.device = "cpu"
        dlg = SettingsDialog(s)
        qtbot.addWidget(dlg)
        assert "the first run measures" in dlg.auto_precision.text()
        assert measured == []
        compute.resolve_precision("auto", compute.torch.device("cpu"), exact=False)  # a run
        dlg = SettingsDialog(s)
        qtbot.addWidget(dlg)
        text = dlg.auto_precision.text()
        assert text.startswith("auto: bfloat16, as this CPU has AMX")
        assert "1.8× as fast as float32" in text
        monkeypatch.setattr(compute, "_probe_cpu_bf16", lambda: None)
        compute.reset_auto_precision()
        dlg.device.setCurrentText("auto")  # no GPU in the tests: the CPU
        assert "no native bfloat16" in dlg.auto_precision.text()
        assert measured == [1]
    finally:
        compute.reset_auto_precision()

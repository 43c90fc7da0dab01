"""GUI test setup: real widgets offscreen, a tiny model, and a guard that fails any
test leaving a QThread running."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QThread  # noqa: E402

from dgp_engine import Preset  # noqa: E402

from ..helpers import tiny_prior  # noqa: E402

_started: list[weakref.ref] = []
_original_start = QThread.start


def _tracking_start(self, *args, **kwargs):
    _started.append(weakref.ref(self))
    return _original_start(self, *args, **kwargs)


QThread.start = _tracking_start


@pytest.fixture(autouse=True)
def no_thread_left_running(qtbot):
    """Fails the test if any QThread it started is still running afterwards."""
    _started.clear()
    yield
    alive = []
    for ref in _started:
        t = ref()
        try:
            if t is not None and t.isRunning():
                alive.append(t.objectName() or repr(t))
        except RuntimeError:  # the C++ object is gone: it is not running
            pass
    _started.clear()
    assert not alive, f"QThread(s) left running: {alive}"


def tiny_preset(iterations=(6, 6), select_num=3) -> Preset:
    n = len(iterations)
    return Preset.from_dict(
        {
            "iterations": list(iterations),
            "G_lrs": [1e-4] * n,
            "z_lrs": [1e-3] * n,
            "w_D_loss": [1.0] * n,
            "w_mse": [1.0] * n,
            "ft_num": ["all"] * n,
            "select_num": select_num,
            "name": "tiny",
        }
    )


@pytest.fixture
def picture_file(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((160, 120), Image.BILINEAR)
    path = tmp_path / "photo.png"
    img.save(path)
    return path


@pytest.fixture
def window(qtbot):
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    catalog = ModelCatalog()
    catalog.add("tiny", lambda dev: tiny_prior())
    settings = Settings(engine_threads=1, brush_size=20)
    w = MainWindow(settings, catalog)
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    w.task_panel.set_models(["tiny"])
    w.task_panel.model.setCurrentText("tiny")
    w.task_panel.add_preset("tiny", tiny_preset())
    w.task_panel.iterations.setValue(12)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.state.running:
        w.runs.cancel()
        qtbot.waitUntil(lambda: not w.state.running, timeout=10000)
    w.shutdown()

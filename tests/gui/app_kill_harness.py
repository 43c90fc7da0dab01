"""The editor in its own process, driven to a point and held there to be killed, for
tests/gui/test_app_kill.py: ``python -m tests.gui.app_kill_harness MODE PICTURE WORKDIR``.

Every mode opens PICTURE, imports a mask, autosaves (writing ``WORKDIR/autosaved.npy``
with the mask the autosave holds and printing ``@@autosaved``), then:

* ``run``: starts a reconstruction and prints ``@@running`` once it reports progress;
* ``save``: changes the mask again and saves ``WORKDIR/project.dgpproj``, printing
  ``@@saving`` when the temp file is half written (the save then waits, to be killed);
* ``close-run``: like ``run``, then closes the window itself mid-run (Cancel and quit,
  unsaved changes discarded) and exits.

The same user folders as the test (DGP_STUDIO_HOME) hold the autosave."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def say(text: str) -> None:
    sys.stdout.write(f"@@{text}\n")
    sys.stdout.flush()


def main(mode: str, picture: Path, work: Path) -> int:
    import torch
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from dgp_engine import Preset
    from dgp_engine.files import project as proj
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    from ..helpers import tiny_prior

    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    catalog = ModelCatalog()
    catalog.add("tiny", lambda dev: tiny_prior())
    w = MainWindow(Settings(engine_threads=1, brush_size=20), catalog)
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    w.inform = lambda title, text: None
    w.task_panel.set_models(["tiny"])
    w.task_panel.model.setCurrentText("tiny")
    w.task_panel.add_preset(
        "tiny",
        Preset.from_dict(
            {
                "iterations": [400, 400],
                "G_lrs": [1e-4] * 2,
                "z_lrs": [1e-3] * 2,
                "w_D_loss": [1.0] * 2,
                "w_mse": [1.0] * 2,
                "ft_num": ["all"] * 2,
                "select_num": 2,
                "name": "tiny",
            }
        ),
    )
    w.show()
    assert w.open_path(picture)
    h, wd = w.state.mask.shape[:2]
    mask = np.zeros((h, wd), np.uint8)
    mask[h // 3 : h // 2, wd // 3 : wd // 2] = 255
    assert w.state.set_mask(mask)
    out = w.autosave(force=True)
    assert out is not None
    np.save(work / "autosaved.npy", w.state.mask)
    say("autosaved")

    if mode == "save":
        second = np.zeros((h, wd), np.uint8)
        second[: h // 4, : wd // 4] = 255
        w.state.set_mask(second)
        real = proj.atomic_write

        def half_then_wait(path, write, suffix=".part"):
            def slow(fh):
                write(fh)
                fh.flush()
                fh.truncate(fh.tell() // 2)  # half of the file is on disk
                fh.flush()
                say("saving")
                time.sleep(60)

            return real(path, slow, suffix=suffix)

        proj.atomic_write = half_then_wait
        w.save_project_to(work / "project.dgpproj")
        return 0

    seen = {"progress": False, "told": False}

    def progressed(*_args) -> None:
        seen["progress"] = True
        if seen["told"]:
            return
        seen["told"] = True
        say("running")
        if mode == "close-run":  # Cancel and quit, as the user would
            QTimer.singleShot(0, w.close)

    w.runs.progress.connect(progressed)
    assert w.run_task()
    deadline = time.monotonic() + 60

    def quit_when_closed() -> None:
        if (
            mode == "close-run" and seen["told"] and not w.isVisible()
        ) or time.monotonic() > deadline:
            app.quit()
        else:
            QTimer.singleShot(100, quit_when_closed)

    QTimer.singleShot(100, quit_when_closed)
    app.exec()
    say("exited")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))

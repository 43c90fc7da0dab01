#!/usr/bin/env python
"""How many times one restoration looks its task up by name, per front end (issue 21).

    PYTHONPATH=$PWD python bench/count_task_lookups.py

Every lookup of a task by its name goes through the table's name index
(``dgp_engine.method.taskspec._BY_NAME``: ``find_task``, and ``task_spec`` and every
helper that takes a task name call it); this script counts the reads of that index while
one inpainting runs from each front end on the tiny seeded model of the tests:

  cli    ``dgp inpaint IN -o OUT --mask M --model FOLDER --iterations-scale S``,
         from the parsed arguments to the written file
  batch  a batch worker: its settings → worker config → start (prior, preset, class) →
         one picture restored (the driver's planning is left out)
  app    the run controller: the request from the picture, mask and task settings →
         the engine lane's run → the result in the history (Qt offscreen)

"before the loop" counts the lookups until the reconstruction's first report.

Measured (issue 21), before → after the RestoreRequest:

    cli    8 in all, 5 before the loop  →  0, 0   (the sub-command's TaskSpec)
    batch  9 in all, 6 before the loop  →  2, 2   (the settings; the worker's config)
    app   11 in all, 6 before the loop  →  2, 2   (the request; the settings' label)
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import UserDict
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from dgp_engine.method import reconstruct as R  # noqa: E402
from dgp_engine.method import taskspec  # noqa: E402
from tests.task_helpers import photo_array, tiny_model_folder  # noqa: E402

SCALE = 0.002  # a few iterations per stage


class CountingIndex(UserDict):
    def __init__(self, data):
        super().__init__(data)
        self.reads = 0
        self.at_first_report: int | None = None

    def get(self, key, default=None):
        self.reads += 1
        return self.data.get(key, default)  # (UserDict.get would count twice)

    def __getitem__(self, key):
        self.reads += 1
        return super().__getitem__(key)


INDEX = CountingIndex(taskspec._BY_NAME)
taskspec._BY_NAME = INDEX  # find_task reads the module global at each call

_steps = R.ReconstructionRun._steps


def _counted_steps(self):
    first = True
    for report in _steps(self):
        if first and INDEX.at_first_report is None:
            INDEX.at_first_report = INDEX.reads
        first = False
        yield report


R.ReconstructionRun._steps = _counted_steps


def measure(name, fn):
    INDEX.reads, INDEX.at_first_report = 0, None
    fn()
    print(
        f"{name:6s} lookups: {INDEX.reads:3d} in all, {INDEX.at_first_report} before the "
        "loop's first report"
    )


def files(root: Path) -> tuple[Path, Path, Path]:
    model = tiny_model_folder(root / "tiny")
    Image.fromarray(photo_array(40, 56)).save(root / "in.png")
    m = np.zeros((40, 56), np.uint8)
    m[15:25, 20:30] = 255
    Image.fromarray(m).save(root / "mask.png")
    return model, root / "in.png", root / "mask.png"


def cli(root: Path, model: Path, photo: Path, mask: Path) -> None:
    from dgp_engine.cli import main

    code = main(
        [
            "inpaint",
            str(photo),
            "-o",
            str(root / "cli.png"),
            "--mask",
            str(mask),
            "--model",
            str(model),
            "--iterations-scale",
            str(SCALE),
            "--threads",
            "1",
            "-q",
        ]
    )
    assert code == 0, code


def batch(root: Path, model: Path, photo: Path, mask: Path) -> None:
    from dgp_engine.batch import BatchSettings
    from dgp_engine.batch.runner import ItemRunner, worker_config

    settings = BatchSettings(
        "inpaint", root, root / "batch-out", model=str(model), iterations_scale=SCALE, mask=mask
    )
    runner = ItemRunner(worker_config(settings, device="cpu", threads=1))
    out = runner.process(
        {
            "rel": "in.png",
            "data": photo.read_bytes(),
            "out_suffix": ".png",
            "mask": np.asarray(Image.open(mask)) > 127,
            "mask_name": "mask.png",
        }
    )
    assert out["status"] == "done", out


def app(root: Path, model: Path, photo: Path, mask: Path) -> None:
    from PySide6.QtCore import QCoreApplication

    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.image_files import read_picture
    from dgp_studio.model.state import AppState
    from dgp_studio.model.task_settings import TaskSettings
    from dgp_studio.run_controller import RunController

    qapp = QCoreApplication.instance() or QCoreApplication([])
    catalog = ModelCatalog()
    name = catalog.add_folder(model)
    state, settings = AppState(), TaskSettings()
    state.open_picture(read_picture(photo))
    state.set_model_resolution(32)
    state.set_mask(np.asarray(Image.open(mask)))
    state.set_task("inpaint")
    settings.model = name
    settings.task = "inpaint"
    settings.iterations = 4
    runs = RunController(state, settings, catalog, threads=1)
    done = []
    runs.finished.connect(lambda result, entry: done.append(result))
    runs.failed.connect(lambda message: done.append(message))
    INDEX.reads, INDEX.at_first_report = 0, None  # the app's setup above is not a run
    runs.start(runs.build_request())
    while not done:
        qapp.processEvents()
    assert not isinstance(done[0], str), done[0]
    runs.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = files(root)
        measure("cli", lambda: cli(root, *paths))
        measure("batch", lambda: batch(root, *paths))
        measure("app", lambda: app(root, *paths))


if __name__ == "__main__":
    main()

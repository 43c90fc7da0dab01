"""The app and the CLI run the same request alike: the same preset, the same working
region and the same output, because both read the engine's task table."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dgp_engine.cli import main as dgp_main
from dgp_engine.imageio import read_image
from dgp_engine.region import Region
from dgp_engine.tasks import plan_task, resolve_preset
from dgp_engine.taskspec import menu_tasks

from ..task_helpers import tiny_model_folder

# A tiny random prior saved under the bundled model's name, so the model's own presets
# (bundled_inpainting, bundled_colorization, …) are the defaults on both paths.
MODEL = "bundled"
ITERATIONS = 7  # of bundled_inpainting's 175: one per stage, a run of a few seconds


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("equivalence") / MODEL)


@pytest.fixture
def request_files(tmp_path):
    """A 160×120 photo and a mask with a 20×16 hole: 3× its side (60 px) is larger than
    the 32 px model, so the region rule shows in the region's size."""
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    photo = photo.resize((160, 120), Image.BILINEAR)
    photo.save(tmp_path / "in.png")
    mask = np.zeros((120, 160), np.uint8)
    mask[50:66, 70:90] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path, mask


@pytest.fixture
def app(qtbot, model_folder):
    from dgp_engine import load_prior
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    catalog = ModelCatalog()
    catalog.add(MODEL, lambda dev: load_prior(model_folder, device=dev))
    w = MainWindow(Settings(engine_threads=1), catalog)
    w.confirm = lambda title, text: True
    w.task_panel.set_models([MODEL])
    w.task_panel.model.setCurrentText(MODEL)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.state.model_resolution == 32, timeout=20000)
    yield w
    if w.state.running:
        w.engine.worker.cancel()
        qtbot.waitUntil(lambda: not w.state.running, timeout=10000)
    w.shutdown()


def test_task_panel_picks_the_cli_default_preset_for_every_task_and_model(qtbot):
    from dgp_studio.task_panel import TaskPanel

    panel = TaskPanel(["bundled", "someone_else"])
    qtbot.addWidget(panel)
    for spec in menu_tasks():
        panel.task.setCurrentText(spec.label)
        assert panel.task_name() == spec.name
        for model in ("bundled", "someone_else"):
            panel.model.setCurrentText(model)
            cli = resolve_preset(None, spec.name, model)
            assert panel.preset.currentText() == cli.name, (spec.name, model)
            assert panel.base_preset() == cli
    panel.task.setCurrentText("Colorize")
    panel.model.setCurrentText("bundled")
    assert panel.preset.currentText() == "bundled_colorization"  # not the published one


def test_inpainting_request_gives_the_same_preset_region_and_output(qtbot, app, model_folder,
                                                                   request_files):
    folder, mask = request_files
    assert app.open_path(folder / "in.png")
    assert app.state.set_mask(mask)
    app.task_panel.task.setCurrentText("Inpaint")
    app.task_panel.iterations.setValue(ITERATIONS)

    # the app's request, as the Run button builds it
    request = app.build_request()
    photo = read_image(folder / "in.png")
    hole = mask > 127
    scale = ITERATIONS / app.task_panel.base_preset().total_iterations
    cli_preset = resolve_preset(None, "inpaint", MODEL, scale)
    assert request.task == "inpaint"
    assert request.preset == cli_preset and request.preset.name == "bundled_inpainting"

    cli_plan = plan_task(photo, "inpaint", 32, mask=hole)
    app_region = Region(*app.state.region)
    assert app_region == cli_plan.view.region
    assert app_region.size == 60  # the hole's 20 px side × 3: the hole a third of it

    # the app's run (worker thread, region crop, engine compositing) …
    n = len(app.state.history)
    assert app.run_task(), app.last_error
    qtbot.waitUntil(lambda: not app.state.running, timeout=60000)
    assert len(app.state.history) == n + 1, app.last_error
    assert app.state.history[-1].applied
    app_out = app.state.picture.pixels

    # … and the CLI's, on the whole photo file
    code = dgp_main(["inpaint", str(folder / "in.png"), "-o", str(folder / "out.png"),
                     "--mask", str(folder / "mask.png"), "--model", str(model_folder),
                     "--iterations-scale", repr(scale), "--threads", "1", "-q"])
    assert code == 0
    cli_out = np.asarray(Image.open(folder / "out.png").convert("RGB"))
    assert cli_out.shape == app_out.shape
    diff = np.abs(cli_out.astype(int) - app_out.astype(int))
    assert diff.max() == 0, f"app and CLI outputs differ by up to {diff.max()} levels"
    assert not np.array_equal(cli_out, np.asarray(Image.open(folder / "in.png")))


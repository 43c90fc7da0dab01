"""The app and the CLI run the same request alike: the same preset, the same working
region and the same output, because both read the engine's task table."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dgp_engine.cli import main as dgp_main
from dgp_engine.files.photos import read_image
from dgp_engine.method.region import Region
from dgp_engine.method.taskspec import menu_tasks, task_spec
from dgp_engine.tasks.restore import plan_task, resolve_preset

from ..task_helpers import tiny_model_folder

# A tiny random prior saved under the bundled model's name, so the model's own presets
# (bundled_inpainting, bundled_colorization, …) are the defaults on both paths.
MODEL = "bundled"
ITERATIONS = 7  # of bundled_inpainting's 175: one per stage, a run of a second or two


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
    w.ask_save = lambda title, text: "discard"
    w.task_panel.set_models([MODEL])
    w.task_panel.model.setCurrentText(MODEL)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.state.model_resolution == 32, timeout=20000)
    yield w
    if w.state.running:
        w.runs.cancel()
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


def run_both(qtbot, app, folder, task: str, iterations: int, cli_args: list[str]):
    """Run the app's current request and the CLI's same command; returns (the app's
    request, its scale, the app's picture, the CLI's output)."""
    app.task_panel.iterations.setValue(iterations)
    request = app.build_request()  # the app's request, as the Run button builds it
    scale = iterations / app.task_panel.base_preset().total_iterations
    # the app's run (worker thread, region crop, engine compositing) …
    n = len(app.state.history)
    assert app.run_task(), app.last_error
    qtbot.waitUntil(lambda: not app.state.running, timeout=60000)
    assert len(app.state.history) == n + 1, app.last_error
    assert app.apply_layer()  # the result is a layer until applied
    assert app.state.history[-1].applied
    # … and the CLI's, on the whole photo file
    code = dgp_main(
        [
            task_spec(task).command,
            str(folder / "in.png"),
            "-o",
            str(folder / "out.png"),
            *cli_args,
            "--iterations-scale",
            repr(scale),
            "--threads",
            "1",
            "-q",
        ]
    )
    assert code == 0
    cli_out = np.asarray(Image.open(folder / "out.png").convert("RGB"))
    return request, scale, app.state.picture.pixels, cli_out


def assert_same_pixels(app_out: np.ndarray, cli_out: np.ndarray, folder) -> None:
    assert cli_out.shape == app_out.shape
    diff = np.abs(cli_out.astype(int) - app_out.astype(int))
    assert diff.max() == 0, f"app and CLI outputs differ by up to {diff.max()} levels"
    assert not np.array_equal(cli_out, np.asarray(Image.open(folder / "in.png")))


def test_inpainting_request_gives_the_same_preset_region_and_output(
    qtbot, app, model_folder, request_files
):
    folder, mask = request_files
    assert app.open_path(folder / "in.png")
    assert app.state.set_mask(mask)
    app.task_panel.task.setCurrentText("Inpaint")
    photo = read_image(folder / "in.png")
    cli_plan = plan_task(photo, "inpaint", 32, mask=mask > 127)
    app_region = Region(*app.state.region)
    assert app_region == cli_plan.view.region
    assert app_region.size == 60  # the hole's 20 px side × 3: the hole a third of it

    request, scale, app_out, cli_out = run_both(
        qtbot,
        app,
        folder,
        "inpaint",
        ITERATIONS,
        ["--mask", str(folder / "mask.png"), "--model", str(model_folder)],
    )
    assert request.task == "inpaint"
    assert request.preset == resolve_preset(None, "inpaint", MODEL, scale)
    assert request.preset.name == "bundled_inpainting"
    assert_same_pixels(app_out, cli_out, folder)


def test_colorization_request_gives_the_same_preset_and_output(
    qtbot, app, model_folder, request_files
):
    """Colorization covers the whole photo in the app, as ``dgp colorize`` without a
    region: the engine fits it into the model's square and keeps L at full resolution."""
    folder, _mask = request_files
    assert app.open_path(folder / "in.png")
    app.task_panel.task.setCurrentText("Colorize")
    assert app.state.region is None  # no square: the whole picture
    request, scale, app_out, cli_out = run_both(
        qtbot, app, folder, "colorize", 5, ["--model", str(model_folder)]
    )
    assert request.region is None and request.bounds == (0, 0, 160, 120)
    assert request.preset == resolve_preset(None, "colorize", MODEL, scale)
    assert request.preset.name == "bundled_colorization"  # not the published schedule
    assert_same_pixels(app_out, cli_out, folder)


def chroma_jumps(rgb: np.ndarray, axis: int) -> np.ndarray:
    """How much the mean a, b changes between neighbouring lines along ``axis``."""
    from skimage import color

    ab = color.rgb2lab(rgb.astype(np.float32) / 255)[..., 1:]
    means = ab.mean(axis=1 - axis)
    return np.linalg.norm(np.diff(means, axis=0), axis=-1)


@pytest.mark.parametrize("height, width", [(180, 60), (60, 180)], ids=["1:3", "3:1"])
def test_colorization_of_a_long_photo_leaves_no_grey_pixel_and_no_seam(
    qtbot, app, model_folder, tmp_path, height, width
):
    """A black-and-white 1:3 or 3:1 photo opens on Colorize, and every pixel gets colour
    (no grey strips above and below a square), smoothly, exactly as the CLI does it."""
    rng = np.random.default_rng(5)
    small = rng.integers(40, 220, (max(2, height // 30), max(2, width // 30)), dtype=np.uint8)
    grey = Image.fromarray(small, "L").resize((width, height), Image.BILINEAR).convert("RGB")
    grey.save(tmp_path / "in.png")
    assert app.open_path(tmp_path / "in.png")
    assert app.task_panel.task_name() == "colorize"  # black and white → Colorize
    assert app.state.region is None
    plan = plan_task(read_image(tmp_path / "in.png"), "colorize", 32)
    assert (plan.view.w, plan.view.h) == (width, height)  # the whole photo, padded
    request, _scale, app_out, cli_out = run_both(
        qtbot, app, tmp_path, "colorize", 5, ["--model", str(model_folder)]
    )
    assert request.bounds == (0, 0, width, height)
    assert_same_pixels(app_out, cli_out, tmp_path)
    rgb = app_out.astype(int)
    grey_left = (rgb.max(axis=-1) - rgb.min(axis=-1)) == 0
    # no grey strip: every row and column has colour; the odd neutral pixel is where the
    # random model's own a, b cross zero, not a part the model did not cover
    assert not grey_left.all(axis=0).any() and not grey_left.all(axis=1).any()
    assert grey_left.mean() < 0.001, f"{grey_left.sum()} pixels stayed grey"
    jumps = chroma_jumps(app_out, 0 if height > width else 1)
    assert jumps.max() < 8 * np.median(jumps) + 1.0  # no line stands out: no seam


# --------------------------------------------------------------------------- StyleGAN2


@pytest.fixture
def sg_app(qtbot, capsys):
    """The window on the small conditional StyleGAN2 reference model, imported as "sg"."""
    from dgp_engine import load_prior
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    from ..conftest import REFERENCE

    pkl = REFERENCE / "stylegan2_small" / "nvidia_cond" / "network-snapshot-000100.pkl"
    assert dgp_main(["models", "import", "sg", "--pkl", str(pkl)]) == 0, capsys.readouterr()
    catalog = ModelCatalog()
    catalog.add("sg", lambda dev: load_prior("sg", device=dev))
    w = MainWindow(Settings(engine_threads=1), catalog)
    w.confirm = lambda title, text: True
    w.ask_save = lambda title, text: "discard"
    w.task_panel.set_models(["sg"])
    w.task_panel.model.setCurrentText("sg")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.state.model_resolution == 64, timeout=20000)
    yield w
    if w.state.running:
        w.runs.cancel()
        qtbot.waitUntil(lambda: not w.state.running, timeout=10000)
    w.shutdown()


def test_a_stylegan2_restore_and_category_transfer_are_the_same_in_app_and_cli(
    qtbot, sg_app, request_files
):
    """Colorize a photo with a StyleGAN2 prior in the app and with ``dgp colorize``: the
    same preset and pixels; then move the result to another class with the Manipulate
    panel (Apply to picture) and with ``dgp transfer`` of the app's saved state: the
    same pixels again."""
    from PySide6.QtCore import Qt

    app, (folder, _mask) = sg_app, request_files
    assert app.open_path(folder / "in.png")
    app.task_panel.task.setCurrentText("Colorize")
    request, scale, app_out, cli_out = run_both(
        qtbot, app, folder, "colorize", 3, ["--model", "sg"]
    )
    assert request.preset == resolve_preset(None, "colorize", "sg", scale, family="stylegan2")
    assert request.preset.name == "stylegan2_colorization"
    assert_same_pixels(app_out, cli_out, folder)
    app_out = app_out.copy()  # the picture's own pixels, which applying changes
    entry = app.state.history[-1]
    assert entry.state.is_stylegan2 and entry.state.mapped_z is not None

    # the panel manipulates the new result: its category, applied to the picture
    panel = app.manipulate
    qtbot.waitUntil(lambda: panel.state is entry.state, timeout=10000)
    target = (entry.state.class_id + 1) % 3
    panel.tabs.setCurrentIndex(1)
    panel.category_slider.setValue(target)
    qtbot.waitUntil(
        lambda: (
            (f := panel.last_frame.get("transfer")) is not None
            and f.generation == panel._gen["transfer"]
            and f.params["target"] == target
        ),
        timeout=20000,
    )
    n = len(app.state.history)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(app.state.history) == n + 1, timeout=20000)
    assert app.state.history[-1].applied and app.state.history[-1].state.class_id == target
    app_moved = app.state.picture.pixels

    saved = entry.state.save(folder / "result.dgp")
    code = dgp_main(
        [
            "transfer",
            str(saved),
            "--class",
            str(target),
            "--model",
            "sg",
            "--onto",
            str(folder / "in.png"),
            "-o",
            str(folder / "moved.png"),
            "--threads",
            "1",
            "-q",
        ]
    )
    assert code == 0
    cli_moved = np.asarray(Image.open(folder / "moved.png").convert("RGB"))
    assert cli_moved.shape == app_moved.shape
    assert not np.array_equal(app_moved, app_out)  # the class changed the picture
    # the same model output, composed the same way: the CLI composes the float output,
    # the app the 8-bit frame its panel showed (frames cross threads as uint8 arrays),
    # which the full-resolution colour transfer turns into a level or three here and there
    from dgp_engine import load_prior
    from dgp_engine.method.manipulators import renderer_for
    from dgp_engine.method.pictures import signed_to_uint8
    from dgp_engine.method.state import ReconstructionState
    from dgp_engine.tasks.postprocess import PhotoComposer

    state = ReconstructionState.load(saved)
    output = renderer_for(load_prior("sg"), state).transfer([target]).run_to_end()[0]
    composer = PhotoComposer(read_image(folder / "in.png"), state.placement)
    assert np.array_equal(composer(output), cli_moved)
    assert np.array_equal(composer(signed_to_uint8(output)), app_moved)
    diff = np.abs(cli_moved.astype(int) - app_moved.astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.5, (diff.max(), diff.mean())

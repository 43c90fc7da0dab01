"""The app's first run with real priors: the Models dialog (what each prior is for, size,
licence; Download with progress, Stop, resume, the engine's error sentence) against a
local fake Hub, the first-run hint, the class picker and the default presets.

No network: the fake Hub listens on 127.0.0.1, and the shipped entries are either
offline (HF_HUB_OFFLINE=1) or pointed at a closed local port."""

from __future__ import annotations

import asyncio
import threading
import time

import huggingface_hub.constants
import pytest
from PySide6.QtCore import Qt

from dgp_engine.priors import hub, registry
from dgp_engine.system import paths

from ..conftest import REFERENCE
from ..fakehub import FakeHub, leftovers

qasync = pytest.importorskip("qasync")

SMALL = REFERENCE / "studiogan_small"
REPO = "dgp-test/PyTorch-StudioGAN"
RUN = "studiogan_official_ckpt/ImageNet_tailored/ImageNet-BigGAN-256-train-2022_05_01_10_00_00"
G_FILE = f"{RUN}/model=G_ema-best-weights-step=1000.pth"
D_FILE = f"{RUN}/model=D-best-weights-step=1000.pth"
G_PATTERN = f"{RUN.rsplit('-train-', 1)[0]}-train-*/model=G_ema-*-weights-step=*.pth"
D_PATTERN = f"{RUN.rsplit('-train-', 1)[0]}-train-*/model=D-*-weights-step=*.pth"
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens: a stray request fails at once


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def qloop(qapp):
    """The app's qasync event loop (app.py runs the same); tests drive it with `drive`."""
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


def drive(loop, action, until, timeout: float = 60.0) -> None:
    """Run ``action`` inside the running event loop (as a click in the app is), then let
    the loop and Qt run until ``until()`` holds."""

    async def scenario():
        action()
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.02)

    loop.run_until_complete(scenario())


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    # the real priors must never be fetched from here
    for name in ("imagenet-128", "afhq-256"):
        registry.set_source(name, endpoint=CLOSED_PORT)


@pytest.fixture
def fake():
    with FakeHub() as server:
        server.put(REPO, "README.md", b"StudioGAN checkpoints")
        yield server


def serve_small_model(fake: FakeHub) -> None:
    for path, file in (
        (G_FILE, "model=G_ema-best-weights-step=1000.pth"),
        (D_FILE, "model=D-best-weights-step=1000.pth"),
    ):
        fake.put(REPO, path, (SMALL / "imagenet128" / file).read_bytes())


@pytest.fixture
def small_model(fake):
    """A pattern/StudioGAN entry like imagenet-128, on the small reference architecture
    (128 px, 1000 ImageNet classes)."""
    from dgp_engine.priors import studiogan

    config = studiogan.config_from_yaml(SMALL / "imagenet128" / "studiogan.yaml")
    registry.add_model(
        "sg-small",
        config,
        registry.HubSource(
            endpoint=fake.url, repo_id=REPO, G=G_PATTERN, D=D_PATTERN, format="studiogan"
        ),
    )
    return "sg-small"


def models_dialog(window):
    window.show_models()
    dlg = window.model_dialog
    assert dlg is not None and dlg.isVisible()
    return dlg


def row_of(dlg, name: str) -> dict[str, str]:
    from dgp_studio.model_dialog import COLUMNS

    r = dlg.names().index(name)
    return {c: dlg.table.item(r, j).text() for j, c in enumerate(COLUMNS)}


def record_progress(dlg) -> list:
    """Every engine report the dialog shows, with the words and bar it showed."""
    seen = []
    show = dlg._progress

    def spy(p):
        show(p)
        seen.append((p.stage, dlg.status.text(), dlg.bar.value(), dlg.bar.maximum()))

    dlg._progress = spy  # the dialog hands self._progress to the engine at each start
    return seen


# --------------------------------------------------------------------------- the dialog


def test_dialog_lists_the_real_priors_with_size_licence_and_purpose(qtbot, window):
    dlg = models_dialog(window)
    names = dlg.names()
    assert {"bundled", "imagenet-128", "afhq-256"} <= set(names)
    assert "larger prior" in dlg.intro.text()  # what a bigger model changes
    imagenet, afhq = row_of(dlg, "imagenet-128"), row_of(dlg, "afhq-256")
    assert imagenet["Download"] == "1.34 GB" and afhq["Download"] == "1.50 GB"
    assert imagenet["Licence"].startswith("MIT") and "CC BY-NC" in afhq["Licence"]
    assert imagenet["Resolution"] == "128 px" and afhq["Resolution"] == "256 px"
    assert imagenet["Classes"] == "1000" and afhq["Classes"] == "3"
    assert imagenet["State"] == "not installed" and row_of(dlg, "bundled")["State"] == "bundled"

    dlg.select("imagenet-128")
    about = registry.get_entry("imagenet-128").about
    assert about in dlg.details.text() and "1000 classes" in dlg.details.text()
    assert "1.34 GB to download" in dlg.details.text()
    assert "about 317.3 MB once installed" in dlg.details.text()
    assert "MIT" in dlg.details.text()
    assert dlg.download_button.isEnabled() and "1.34 GB" in dlg.download_button.text()
    assert not dlg.use_button.isEnabled()

    assert row_of(dlg, "biggan-128")["Download"] == "—"  # no public source
    dlg.select("biggan-128")  # the authors' files: import only, no command line offered
    assert not dlg.download_button.isEnabled()
    assert "Import files" in dlg.details.text() and "dgp " not in dlg.details.text()
    dlg.select("bundled")
    assert not dlg.download_button.isEnabled() and dlg.use_button.isEnabled()
    for w in (
        dlg.table,
        dlg.details,
        dlg.status,
        dlg.bar,
        dlg.download_button,
        dlg.use_button,
        dlg.cancel_button,
        dlg.intro,
    ):
        assert w.accessibleName()


def test_download_shows_progress_completes_and_the_model_becomes_selectable(
    qtbot, window, qloop, online, fake, small_model
):
    serve_small_model(fake)
    dlg = models_dialog(window)
    seen = record_progress(dlg)
    dlg.select(small_model)
    assert dlg.download_button.isEnabled()
    drive(
        qloop,
        lambda: qtbot.mouseClick(dlg.download_button, Qt.MouseButton.LeftButton),
        until=lambda: not dlg.is_busy(),
    )
    stages = [s for s, *_ in seen]
    assert stages[0] == "list" and "plan" in stages
    assert stages.index("plan") < stages.index("download")  # the size before any byte
    texts = dict((s, t) for s, t, *_ in reversed(seen))  # the first text of each stage
    assert "Looking up sg-small's files" in texts["list"]
    planned = (SMALL / "imagenet128" / "model=G_ema-best-weights-step=1000.pth").stat().st_size + (
        SMALL / "imagenet128" / "model=D-best-weights-step=1000.pth"
    ).stat().st_size
    assert f"{planned / 1e6:.1f} MB to download" in texts["plan"]
    assert "downloading file 1 of 2" in texts["download"]
    downloads = [(v, m) for s, _, v, m in seen if s == "download"]
    assert downloads[-1] == (1000, 1000)  # the whole plan arrived
    assert [v for v, _ in downloads] == sorted(v for v, _ in downloads)  # one overall bar
    assert "done" in dlg.status.text() and "Traceback" not in dlg.status.text()
    assert not dlg.bar.isVisible() and not dlg.cancel_button.isEnabled()
    assert row_of(dlg, small_model)["State"] == "installed"
    assert registry.installed(small_model) is not None

    # selectable at once in the task panel; Use this model picks it and its classes
    tp = window.task_panel
    assert tp.model.findText(small_model) >= 0
    dlg.select(small_model)
    assert dlg.use_button.isEnabled()
    qtbot.mouseClick(dlg.use_button, Qt.MouseButton.LeftButton)
    assert tp.model.currentText() == small_model
    choices = tp.class_choices()
    assert len(choices) == 1001 and choices[0] == "auto"
    assert choices[1] == "0: " + registry.class_names(small_model)[0]
    qtbot.waitUntil(lambda: window.state.model_resolution == 128, timeout=30000)
    assert len(tp.class_choices()) == 1001  # the loaded prior agrees


def test_stop_mid_download_installs_nothing_and_download_resumes(
    qtbot, window, qloop, online, fake, small_model, monkeypatch
):
    from dgp_studio.model_dialog import kept_download_bytes

    serve_small_model(fake)
    gate, arrived = threading.Event(), threading.Event()
    serve = fake._serve
    bodies = []

    def gated(h, head):  # hold the discriminator's body until the test has pressed Stop
        if not head:
            bodies.append(h.path)
        if not head and "D-best-weights" in h.path and not gate.is_set():
            arrived.set()
            gate.wait(30)
        return serve(h, head)

    monkeypatch.setattr(fake, "_serve", gated)
    dlg = models_dialog(window)
    dlg.select(small_model)
    drive(qloop, dlg.download_button.click, until=arrived.is_set)
    assert dlg.is_busy() and dlg.cancel_button.isEnabled()
    assert not dlg.download_button.isEnabled() and not dlg.import_button.isEnabled()

    def stop():
        qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
        assert dlg.status.text() == "Stopping…"
        gate.set()

    drive(qloop, stop, until=lambda: not dlg.is_busy())
    kept = kept_download_bytes(small_model)
    assert kept == len(fake.repos[REPO][G_FILE])  # the finished generator's file
    assert "stopped; nothing was installed" in dlg.status.text()
    assert "kept" in dlg.status.text() and "Resume download" in dlg.status.text()
    assert registry.installed(small_model) is None
    assert leftovers(paths.cache_dir()) == []
    assert window.task_panel.model.findText(small_model) < 0
    assert row_of(dlg, small_model)["State"] == "stopped (resumable)"
    assert dlg.download_button.isEnabled() and "Resume" in dlg.download_button.text()

    fetched = len(bodies)
    drive(qloop, dlg.download_button.click, until=lambda: not dlg.is_busy())
    assert "done" in dlg.status.text(), dlg.status.text()
    assert registry.installed(small_model) is not None
    assert window.task_panel.model.findText(small_model) >= 0
    # resumed: the generator came from the cache, only the discriminator was fetched again
    assert not any("G_ema" in p for p in bodies[fetched:])


def test_stopped_before_any_file_finished_is_not_called_resumable(
    qtbot, window, qloop, online, fake, small_model, monkeypatch
):
    serve_small_model(fake)
    gate, arrived = threading.Event(), threading.Event()
    serve = fake._serve

    def gated(h, head):  # hold the generator's body: nothing is finished when Stop comes
        if not head and "G_ema" in h.path and not gate.is_set():
            arrived.set()
            gate.wait(30)
        return serve(h, head)

    monkeypatch.setattr(fake, "_serve", gated)
    dlg = models_dialog(window)
    dlg.select(small_model)
    drive(qloop, dlg.download_button.click, until=arrived.is_set)

    def stop():
        qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
        gate.set()

    drive(qloop, stop, until=lambda: not dlg.is_busy())
    assert "stopped; nothing was installed" in dlg.status.text()
    assert "Resume" not in dlg.status.text()
    assert row_of(dlg, small_model)["State"] == "not installed"
    assert dlg.download_button.isEnabled() and "Resume" not in dlg.download_button.text()


def test_a_failed_download_shows_the_engines_sentence_then_succeeds(
    qtbot, window, online, fake, small_model
):
    # No qasync loop here: the dialog runs the same coroutine on a helper thread's loop.
    g = (SMALL / "imagenet128" / "model=G_ema-best-weights-step=1000.pth").read_bytes()
    fake.put(REPO, G_FILE, g)  # a run without its discriminator: nothing to install
    dlg = models_dialog(window)
    dlg.select(small_model)
    dlg.download_button.click()
    qtbot.waitUntil(lambda: not dlg.is_busy(), timeout=30000)
    text = dlg.status.text()
    assert "Download sg-small failed: No run of sg-small was found in " + REPO in text
    assert "Traceback" not in text and "Error(" not in text
    # nothing was downloaded, so there is nothing to resume: Download starts again
    assert "Resume" not in dlg.download_button.text() and dlg.download_button.isEnabled()
    assert row_of(dlg, small_model)["State"] != "stopped (resumable)"
    assert registry.installed(small_model) is None

    serve_small_model(fake)  # the files are there now: the same button gets them
    dlg.download_button.click()
    qtbot.waitUntil(lambda: not dlg.is_busy(), timeout=60000)
    assert "done" in dlg.status.text(), dlg.status.text()
    assert window.task_panel.model.findText(small_model) >= 0


def test_an_offline_failure_points_at_the_import_button_and_is_not_resumable(
    qtbot, window, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry.set_source("imagenet-128", endpoint=CLOSED_PORT)
    dlg = models_dialog(window)
    dlg.select("imagenet-128")
    dlg.download_button.click()  # no qasync loop: the dialog's helper thread runs it
    qtbot.waitUntil(lambda: not dlg.is_busy(), timeout=30000)
    text = dlg.status.text()
    assert "imagenet-128 is not downloaded yet and DGP Studio is offline" in text
    assert "press Import files…" in text  # the button below, not a command line
    assert "dgp " not in text and "`" not in text
    assert dlg.focusWidget() is dlg.import_button and dlg.import_button.isEnabled()
    # nothing was downloaded: not "stopped (resumable)", and Download starts over
    assert row_of(dlg, "imagenet-128")["State"] == "not installed"
    assert "Resume" not in dlg.download_button.text()


# --------------------------------------------------------------------------- first run


def test_first_run_hint_offers_the_imagenet_download_once(
    qtbot, window, qloop, picture_file, monkeypatch, tmp_path
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the real download must fail here, offline
    registry.set_source("imagenet-128", endpoint=CLOSED_PORT)
    hint = window.first_run_hint
    assert not hint.isVisible()
    assert window.open_path(picture_file)
    assert hint.isVisible()
    text = hint.label.text()
    about = registry.get_entry("bundled").about  # what the bundled prior is for
    assert text.startswith("Bundled prior only: ") and about[1:] in text
    assert hint.download_button.text() == "Download ImageNet prior (1.34 GB)"
    assert hint.download_button.accessibleName() and hint.close_button.accessibleName()
    assert window.model_dialog is None  # it never opens a dialog by itself

    drive(
        qloop,
        lambda: qtbot.mouseClick(hint.download_button, Qt.MouseButton.LeftButton),
        until=lambda: window.model_dialog is not None and not window.model_dialog.is_busy(),
    )
    dlg = window.model_dialog
    assert dlg._selected_name() == "imagenet-128"
    assert (
        "Download imagenet-128 failed: imagenet-128 is not downloaded yet and DGP "
        "Studio is offline" in dlg.status.text()
    )
    assert not hint.isVisible()
    dlg.close()

    copy = tmp_path / "again.png"
    copy.write_bytes(picture_file.read_bytes())
    assert window.open_path(copy)
    assert not hint.isVisible()  # once per session


def test_first_run_hint_can_be_dismissed(qtbot, window, picture_file):
    assert window.open_path(picture_file)
    hint = window.first_run_hint
    assert hint.isVisible()
    qtbot.mouseClick(hint.close_button, Qt.MouseButton.LeftButton)
    assert not hint.isVisible()
    assert window.open_path(picture_file)
    assert not hint.isVisible()


def test_no_first_run_hint_once_a_real_prior_is_installed(qtbot, window, picture_file):
    from dgp_engine.priors import studiogan

    folder = SMALL / "imagenet128"
    hub.import_files(
        "sg-imported",
        folder / "model=G_ema-best-weights-step=1000.pth",
        folder / "model=D-best-weights-step=1000.pth",
        config=studiogan.config_from_yaml(folder / "studiogan.yaml"),
    )
    assert window.open_path(picture_file)
    assert not window.first_run_hint.isVisible()


# --------------------------------------------------------------------------- classes, presets


def test_class_picker_follows_the_chosen_model(qtbot, window, tmp_path):
    from dgp_engine.priors import studiogan

    folder = SMALL / "afhq256"
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\nwild\n")
    hub.import_files(
        "afhq-small",
        folder / "model=G_ema-best-weights-step=1000.pth",
        folder / "model=D-best-weights-step=1000.pth",
        config=studiogan.config_from_yaml(folder / "studiogan.yaml"),
        classes=names,
    )
    folder = SMALL / "imagenet128"
    hub.import_files(
        "imagenet-small",
        folder / "model=G_ema-best-weights-step=1000.pth",
        folder / "model=D-best-weights-step=1000.pth",
        config=studiogan.config_from_yaml(folder / "studiogan.yaml"),
    )
    window.models.refresh()
    tp = window.task_panel
    window.use_model("imagenet-small")
    assert len(tp.class_choices()) == 1001
    tp.class_edit.setText("207: golden retriever")
    assert tp.class_id() == 207
    window.use_model("afhq-small")  # switching refreshes the list at once
    assert tp.class_choices() == ["auto", "0: cat", "1: dog", "2: wild"]
    assert tp.class_edit.text() == "auto"  # 207 means nothing to this model
    qtbot.waitUntil(lambda: window.state.model_resolution == 256, timeout=30000)
    assert tp.class_choices() == ["auto", "0: cat", "1: dog", "2: wild"]
    tp.class_edit.setText("dog")
    assert tp.class_id() == 1


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            "imagenet-128",
            {"Colorize": "colorization", "Inpaint": "inpainting", "Super-resolve": "sr_mse_biased"},
        ),
        (
            "afhq-256",
            {"Colorize": "colorization", "Inpaint": "inpainting", "Super-resolve": "sr_mse_biased"},
        ),
    ],
)
def test_real_priors_get_the_published_presets(qtbot, model, expected):
    from dgp_engine import load_preset
    from dgp_engine.method.taskspec import default_preset_name, menu_tasks
    from dgp_studio.task_panel import TaskPanel

    panel = TaskPanel(["bundled", model])
    qtbot.addWidget(panel)
    labels = {spec.label: spec.name for spec in menu_tasks()}
    panel.model.setCurrentText("bundled")
    panel.task.setCurrentText(next(iter(expected)))
    assert panel.preset.currentText().startswith("bundled_")
    panel.model.setCurrentText(model)
    for label, preset in expected.items():
        panel.task.setCurrentText(label)
        assert panel.preset.currentText() == preset
    # the 256 px published schedules: adversarial defence and manipulation
    for label, name in labels.items():
        want = default_preset_name(name, model)
        panel.task.setCurrentText(label)
        assert panel.preset.currentText() == want and not want.startswith("bundled_")
    for name, preset in (("defend", "adversarial_defense"), ("reconstruct", "manipulation")):
        assert default_preset_name(name, model) == preset
        assert "BigGAN-256" in load_preset(preset).description

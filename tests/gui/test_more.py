"""Bad input and the smaller features: huge files, paste, recent files, metadata,
missing GPU, settings and models dialogs."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QGuiApplication

from .conftest import tiny_preset
from .test_editor import open_and_paint, run_and_wait


def test_20000px_picture_is_refused_clearly(qtbot, window, tmp_path):
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)  # 48 kB on disk, 400 megapixels
    assert not window.open_path(huge)
    assert "too large" in window.last_error and "Traceback" not in window.last_error
    assert not window.state.has_picture


def test_paste_and_recent_files(qtbot, window, picture_file):
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)
    from dgp_studio.qimage import to_qimage

    QGuiApplication.clipboard().setImage(to_qimage(rgb))
    window.paste()
    assert window.state.size == (40, 30)
    np.testing.assert_array_equal(window.state.picture.pixels[0, 0], (255, 0, 0))
    assert window.open_path(picture_file)
    actions = window.recent_menu.actions()
    assert actions and actions[0].text() == str(picture_file.resolve())


def test_jpeg_metadata_kept_on_save(qtbot, window, tmp_path):
    src = tmp_path / "camera.jpg"
    img = Image.new("RGB", (64, 48), (120, 90, 60))
    exif = img.getexif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = 6  # rotated: the editor shows it upright
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img.save(src, exif=exif, icc_profile=icc)
    assert window.open_path(src)
    assert window.state.size == (48, 64)
    assert not window.save_to(src)  # never replaces the opened file unasked
    assert "refusing to overwrite" in window.last_error
    out = tmp_path / "out.jpg"
    assert window.save_to(out)
    with Image.open(out) as back:
        assert back.getexif().get(0x010F) == "TestCam"
        assert back.getexif().get(0x0112) in (None, 1)
        assert back.info.get("icc_profile") == icc
        assert back.size == (48, 64)


def test_missing_gpu_falls_back_with_a_message(qtbot, window, picture_file):
    open_and_paint(qtbot, window, picture_file)
    window.task_panel.device.addItem("cuda")
    window.task_panel.device.setCurrentText("cuda")
    run_and_wait(qtbot, window)
    assert "CPU" in window.statusBar().currentMessage() or window.state.history


def test_settings_dialog_saves_toml_and_applies_threads(qtbot, window):
    from dgp_studio.settings import Settings
    from dgp_studio.settings_dialog import SettingsDialog

    dlg = SettingsDialog(window.settings, window)
    qtbot.addWidget(dlg)
    dlg.threads.setValue(1)
    dlg.device.setCurrentText("cpu")
    dlg.repos.setPlainText("biggan-128 = someone/biggan128\n")
    dlg.accept()
    window.apply_settings()
    saved = Settings.load()
    assert saved.engine_threads == 1 and saved.device == "cpu"
    assert saved.hub_repos == {"biggan-128": "someone/biggan128"}
    assert window.runs.threads == 1
    bad = SettingsDialog(window.settings, window)
    qtbot.addWidget(bad)
    bad.repos.setPlainText("nonsense")
    bad.accept()
    assert "name = owner/repository" in bad.note.text()


def test_models_dialog_lists_registry(qtbot, window):
    from dgp_studio.model_dialog import ModelDialog

    dlg = ModelDialog(window)
    qtbot.addWidget(dlg)
    names = [dlg.table.item(r, 0).text() for r in range(dlg.table.rowCount())]
    assert "bundled" in names
    dlg.download_selected()  # nothing selected: a hint, no crash
    assert "Select" in dlg.status.text()


def test_colorize_and_superres_tasks_run(qtbot, window, picture_file):
    assert window.open_path(picture_file)
    qtbot.waitUntil(lambda: window.state.model_resolution == 32, timeout=10000)
    window.task_panel.add_preset("short", tiny_preset((4,), select_num=2))
    window.task_panel.task.setCurrentText("Colorize")
    window.task_panel.preset.setCurrentText("short")
    window.task_panel.iterations.setValue(4)
    run_and_wait(qtbot, window)
    assert window.last_error == ""
    assert window.apply_layer() and window.state.history[-1].applied
    window.task_panel.task.setCurrentText("Super-resolve")
    assert window.state.region[2] == 16  # half the 32 px model: ×2
    window.task_panel.preset.setCurrentText("short")
    window.task_panel.iterations.setValue(4)
    run_and_wait(qtbot, window)
    assert window.state.size == (160, 120)  # a result layer until applied
    assert window.apply_layer()
    assert window.state.size == (32, 32)  # the region, super-resolved ×2, as a new picture
    window.actions["undo"].trigger()
    assert window.state.size == (160, 120)
    window.actions["redo"].trigger()
    assert window.state.size == (32, 32)


def test_zoom_fit_and_region_scaling(qtbot, window, picture_file):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    assert window.open_path(picture_file)
    window.actions["actual"].trigger()
    assert abs(window.canvas.zoom() - 1.0) < 1e-6
    window.actions["zoom_in"].trigger()
    assert window.canvas.zoom() > 1.0
    window.actions["fit"].trigger()
    window.set_tool("frame")
    window.state.set_region(0, 0, 60)
    c = window.canvas
    vp = c.viewport()
    corner = c.mapFromScene(QPointF(60, 60))
    target = c.mapFromScene(QPointF(90, 90))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corner)
    QTest.mouseMove(vp, target)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, target)
    x, y, side = window.state.region
    assert (x, y) == (0, 0) and 80 <= side <= 100  # scaled, still square


def test_class_picker(qtbot, window):
    from dgp_engine import InputError

    qtbot.waitUntil(lambda: bool(window.task_panel._class_names), timeout=10000)
    tp = window.task_panel
    tp.class_edit.setText("auto")
    assert tp.class_id() is None
    tp.class_edit.setText("3: class 3")
    assert tp.class_id() == 3
    tp.class_edit.setText("class 2")
    assert tp.class_id() == 2
    tp.class_edit.setText("99")
    try:
        tp.class_id()
        raise AssertionError("out of range accepted")
    except InputError as exc:
        assert "0..4" in str(exc)


def test_models_dialog_transfer_progress_and_outcome(qtbot, window):
    import asyncio

    from dgp_engine.priors.progress import TransferProgress
    from dgp_studio.model_dialog import ModelDialog

    dlg = ModelDialog(window)
    qtbot.addWidget(dlg)
    changed = []
    dlg.models_changed.connect(lambda: changed.append(True))

    async def fake_pull():
        dlg._progress(
            TransferProgress("biggan-128", "download", "G_ema.pth", 50_000_000, 200_000_000, 0, 2)
        )
        assert dlg.bar.value() == 250
        assert "50.0 MB of 200.0 MB" in dlg.status.text()

    asyncio.run(dlg._run(fake_pull(), "Download biggan-128"))
    assert changed and "done" in dlg.status.text()

    async def failing():
        from dgp_engine.errors import DownloadError

        raise DownloadError("The Hub cannot be reached (offline).")

    asyncio.run(dlg._run(failing(), "Download biggan-128"))
    assert "offline" in dlg.status.text() and dlg.download_button.isEnabled()


def test_cache_folder_setting_moves_where_models_are_found(qtbot, window, tmp_path):
    from dgp_engine.system import paths
    from dgp_studio.settings_dialog import SettingsDialog

    from ..helpers import parity_folder

    src = parity_folder(tmp_path / "src")
    registry_before = paths.models_dir()
    elsewhere = tmp_path / "big disk" / "dgp cache"
    elsewhere.mkdir(parents=True)
    try:
        dlg = SettingsDialog(window.settings, window)
        qtbot.addWidget(dlg)
        dlg.cache.setText(str(elsewhere))
        dlg.accept()
        window.apply_settings()
        assert paths.cache_dir() == elsewhere and paths.models_dir() == elsewhere / "models"
        from dgp_engine.priors import hub

        hub.import_files("parity", src / "G_ema.pth", src / "D.pth", config=src / "config.json")
        assert (elsewhere / "models" / "parity" / "model.json").is_file()
        window.models.refresh()
        models = [
            window.task_panel.model.itemText(i) for i in range(window.task_panel.model.count())
        ]
        assert "parity" in models and "tiny" in models
        # back to the default folder: the model installed elsewhere is no longer offered
        dlg = SettingsDialog(window.settings, window)
        qtbot.addWidget(dlg)
        dlg.cache.setText("")
        dlg.accept()
        window.apply_settings()
        assert paths.models_dir() == registry_before
        models = [
            window.task_panel.model.itemText(i) for i in range(window.task_panel.model.count())
        ]
        assert "parity" not in models and "tiny" in models
    finally:
        paths.set_cache_dir(None)

"""Issue 22, what leaves the app is a deliverable: the Manipulate panel's export writes
every frame composed into the photo (the engine's PhotoComposer, the path the candidates
are previewed by) at the photo's resolution, says what it writes and why only the raw
squares can be when the keyframes come from different places, and shows the even-size
choice for an MP4 of an odd-sized photo."""

from __future__ import annotations

import time

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from dgp_engine.files.photos import Photo
from dgp_engine.method.manipulate import Morph
from dgp_engine.method.pictures import signed_to_uint8
from dgp_engine.method.placement import pixels_digest
from dgp_engine.tasks.postprocess import PhotoComposer

from ..task_helpers import photo_array
from .test_editor import open_and_paint, paint_stroke, run_and_wait
from .test_manipulate_in_window import short_run

pytestmark = pytest.mark.timeout(180)


def photo_file(tmp_path, w, h):
    path = tmp_path / f"photo-{w}x{h}.png"
    Image.fromarray(photo_array(h, w, seed=3)).save(path)
    return path


def two_results_as_keyframes(qtbot, window, picture):
    """Open ``picture``, inpaint twice (seeds 0 and 1) and add both results as keyframes."""
    panel = window.manipulate
    # the model first: its resolution decides the working region (the same for both)
    qtbot.waitUntil(lambda: panel.prior is not None, timeout=20000)
    open_and_paint(qtbot, window, picture)
    for seed in (0, 1):
        short_run(window, seed=seed)
        run_and_wait(qtbot, window)
        time.sleep(1.05)  # the results' names hold the second they were made
    first, second = window.state.history
    for row in (0, 1):
        window.history_panel.list.setCurrentRow(row)
        qtbot.mouseClick(panel.timeline.add_current, Qt.MouseButton.LeftButton)
    assert panel.timeline.keyframes() == [first.state, second.state]
    panel.timeline.frames.setValue(4)
    panel.timeline.pingpong.setChecked(False)
    return first, second


def with_result(pixels, entry):
    """The picture with ``entry``'s result applied (its crop's new content)."""
    out = pixels.copy()
    x0, y0, x1, y1 = entry.bounds
    out[y0:y1, x0:x1] = entry.after
    return out


def export(qtbot, panel, dialog, path, fmt):
    dialog.set_format(fmt)
    dialog.path.setText(str(path))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.running, dialog.message.text()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60000)
    assert "Saved" in dialog.message.text(), dialog.message.text()


def frames_of(path):
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB")))
        return out


def video_frames(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return (w, h), [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


def test_morph_of_two_results_exports_composed_at_the_photos_resolution(qtbot, window, tmp_path):
    picture = photo_file(tmp_path, 500, 375)
    panel = window.manipulate
    first, second = two_results_as_keyframes(qtbot, window, picture)
    pixels = window.state.picture.pixels.copy()
    # the results record where they sit in the whole picture, not in the run's crop
    for entry in (first, second):
        placement = entry.state.placement
        assert placement.photo_size == (500, 375)
        assert placement.photo_path == str(picture.absolute())
        assert placement.photo_digest == pixels_digest(pixels)
        x0, y0, x1, y1 = entry.bounds
        v = placement.view
        assert x0 <= v.x and v.x + v.w <= x1 and y0 <= v.y and v.y + v.h <= y1

    dialog = panel.show_export_dialog()
    assert dialog.frames.currentData() == "photo" and dialog.composed
    assert dialog.frames.currentText() == "In the photo (500×375)"
    summary = dialog.summary.text()
    assert "4 frames of 500×375 px" in summary and "composed into inpaint of region" in summary
    assert picture.name in summary

    export(qtbot, panel, dialog, tmp_path / "morph.gif", "gif")
    gif = frames_of(tmp_path / "morph.gif")
    assert len(gif) == 4 and gif[0].shape == (375, 500, 3)
    export(qtbot, panel, dialog, tmp_path / "morph.png", "apng")  # lossless: exact check
    apng = frames_of(tmp_path / "morph.png")
    assert len(apng) == 4 and apng[0].shape == (375, 500, 3)

    # the first frame, made independently: the engine's morph at t = 0, composed by the
    # engine's PhotoComposer into the photo as opened …
    prior = panel.prior
    raw = Morph(prior, [first.state, second.state]).render([0.0]).run_to_end()[0]
    composer = PhotoComposer(Photo.from_array(pixels), first.state.placement)
    want = composer(raw)
    # … is what the in-app preview shows: the run's own composer over its crop
    preview = pixels.copy()
    x0, y0, x1, y1 = first.bounds
    preview[y0:y1, x0:x1] = first.compose(signed_to_uint8(raw))
    assert np.abs(preview.astype(int) - want.astype(int)).max() <= 1
    assert np.abs(apng[0].astype(int) - want.astype(int)).max() <= 1
    # the GIF's 256-colour palette costs a few levels (2.8 on average here), no more
    assert np.abs(gif[0].astype(float) - want).mean() < 4
    # the photo with the result in it: changed where the result sits, the photo elsewhere
    v = first.state.placement.view
    inside = (slice(v.y, v.y + v.h), slice(v.x, v.x + v.w))
    assert np.abs(apng[0][inside].astype(int) - pixels[inside].astype(int)).mean() > 2
    outside = apng[0].copy()
    outside[inside] = pixels[inside]
    assert np.array_equal(outside, pixels)
    assert not np.array_equal(apng[0], apng[-1])  # it morphs

    # a category sweep and the jitter variations of the result shown are composed too
    assert panel.state is second.state
    panel.category_slider.setValue((second.state.class_id + 1) % 5)  # another class
    dialog.set_source("sweep")
    assert "4 frames of 500×375 px" in dialog.summary.text() and dialog.composed
    export(qtbot, panel, dialog, tmp_path / "sweep.png", "apng")
    sweep = frames_of(tmp_path / "sweep.png")
    assert len(sweep) == 4 and sweep[0].shape == (375, 500, 3)
    assert np.abs(sweep[0].astype(int) - with_result(pixels, second).astype(int)).max() <= 1
    dialog.set_source("grid")
    assert not dialog.format.isEnabled() and dialog.path.text().endswith(".png")
    n = panel.count.value()
    assert f"A grid picture of {n} variations, each 500×375 px" in dialog.summary.text()
    export(qtbot, panel, dialog, tmp_path / "grid.png", "gif")  # the format is not asked
    with Image.open(tmp_path / "grid.png") as im:
        tiles = np.asarray(im.convert("RGB"))
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    assert tiles.shape == (rows * 375 + (rows - 1) * 2, cols * 500 + (cols - 1) * 2, 3)
    tile = tiles[:375, :500].copy()
    assert not np.array_equal(tile[inside], pixels[inside])
    tile[inside] = pixels[inside]
    assert np.array_equal(tile, pixels)  # the photo around each variation


def test_odd_photo_to_mp4_offers_pad_or_crop_and_different_regions_export_raw(
    qtbot, window, tmp_path
):
    picture = photo_file(tmp_path, 501, 375)
    panel = window.manipulate
    two_results_as_keyframes(qtbot, window, picture)
    dialog = panel.show_export_dialog()
    dialog.set_format("gif")
    assert dialog.even.isHidden() and dialog.even_note.isHidden()
    dialog.set_format("mp4")
    assert not dialog.even.isHidden() and not dialog.even_note.isHidden()
    assert dialog.even_note.text() == (
        "MP4 video (H.264) needs an even width and height: the 501×375 frames (odd width "
        "and height) are padded to 502×376 (the last column and last row repeated)."
    )
    assert "4 frames of 502×376 px" in dialog.summary.text()
    export(qtbot, panel, dialog, tmp_path / "pad.mp4", "mp4")
    size, frames = video_frames(tmp_path / "pad.mp4")
    assert size == (502, 376) and len(frames) == 4

    dialog.even.setCurrentIndex(dialog.even.findData("crop"))
    assert "cropped to 500×374" in dialog.even_note.text()
    export(qtbot, panel, dialog, tmp_path / "crop.mp4", "mp4")
    size, frames = video_frames(tmp_path / "crop.mp4")
    assert size == (500, 374) and len(frames) == 4
    # H.264 is lossy: the frame still shows the photo (the top-left block, away from
    # the region, within the codec's error)
    photo = window.state.picture.pixels
    assert np.abs(frames[0][:40, :40].astype(int) - photo[:40, :40].astype(int)).mean() < 6

    # a third result elsewhere in the photo: no single photo shows every frame, so the
    # dialog says the raw squares will be written, and why
    paint_stroke(qtbot, window, [(330, 230), (345, 235), (360, 240)])
    window.state.set_region(290, 190, 100)
    short_run(window, seed=2)
    run_and_wait(qtbot, window)
    window.history_panel.list.setCurrentRow(2)
    qtbot.mouseClick(panel.timeline.add_current, Qt.MouseButton.LeftButton)
    assert len(panel.timeline.keyframes()) == 3
    assert dialog.frames.currentData() == "raw" and not dialog.composed
    assert not dialog.frames.model().item(0).isEnabled()
    summary = dialog.summary.text()
    assert "the generator's own 32×32 squares only" in summary
    assert "different places of the photo" in summary
    dialog.set_format("gif")
    export(qtbot, panel, dialog, tmp_path / "raw.gif", "gif")
    assert frames_of(tmp_path / "raw.gif")[0].shape == (32, 32, 3)


def test_larger_than_an_export_takes_asks_for_a_size(qtbot):
    """A photo over the limit is never scaled down silently: Export refuses until a
    largest side (or a size, or the raw square) is chosen, and then says the size."""
    from dgp_engine.files.animation import MAX_EXPORT_SIDE
    from dgp_engine.method.placement import Placement
    from dgp_engine.method.region import Region, View
    from dgp_studio.manipulate.export_dialog import ExportDialog
    from dgp_studio.manipulate.export_plan import ExportPlan

    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    view = View.of_region(Region(100, 100, 256), 128)
    placement = Placement("reconstruct", (5000, 3000), view, 4)
    plan = ExportPlan(128, placement, np.zeros((1, 1, 3), np.uint8))
    dialog.set_plan(plan, 48, 24.0)
    assert dialog.composed and dialog.problem is not None
    assert "5000×3000" in dialog.problem and "largest side" in dialog.problem
    dialog.max_side.setValue(MAX_EXPORT_SIDE)
    assert dialog.problem is None
    assert "48 frames of 3840×2304 px" in dialog.summary.text()
    dialog.max_side.setValue(0)
    dialog.width_box.setValue(1000)
    dialog.height_box.setValue(600)
    assert dialog.problem is None and "48 frames of 1000×600 px" in dialog.summary.text()
    dialog.width_box.setValue(0)
    dialog.frames.setCurrentIndex(1)  # the raw square needs no size
    assert dialog.problem is None and "128×128" in dialog.summary.text()

"""Animation export: files decode to the right frame count, size and timing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine import InputError
from dgp_engine.errors import ExportTooLarge
from dgp_engine.files.animation import (
    MAX_EXPORT_SIDE,
    AnimationExport,
    ExportCancelled,
    ExportError,
    even_size,
    export_animation,
    export_size,
    format_for,
    frame_delays,
    grid,
    save_image,
)
from dgp_engine.method.manipulate import Renderer

from .helpers import tiny_prior
from .manipulation_helpers import quick_state


def frames(n=6, w=20, h=14, seed=0):
    """Distinct frames (Pillow merges identical neighbours in GIF/APNG)."""
    rng = np.random.default_rng(seed)
    return [(rng.random((h, w, 3)) * 255).astype(np.uint8) for _ in range(n)]


def pillow_info(path: Path) -> tuple[int, tuple[int, int], int, int | None]:
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()
            durations.append(im.info.get("duration"))
        return im.n_frames, im.size, int(round(sum(durations))), im.info.get("loop")


def video_info(path: Path) -> tuple[int, tuple[int, int], float, str]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    n = sum(1 for _ in reader)
    return n, tuple(meta["size"]), meta["fps"], meta["codec"]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    "name,fmt", [("a.gif", "GIF"), ("a.png", "PNG"), ("a.apng", "PNG"), ("a.webp", "WEBP")]
)
def test_pillow_formats(tmp_path, name, fmt):
    reports = []
    out = export_animation(frames(6), tmp_path / name, fps=12, progress=reports.append)
    n, size, total_ms, loop = pillow_info(out)
    assert (n, size, loop) == (6, (20, 14), 0)
    assert Image.open(out).format == fmt
    assert abs(total_ms - 500) <= 10  # 6 frames at 12 fps
    assert [r.done for r in reports if r.stage == "frames"] == [1, 2, 3, 4, 5, 6]
    assert reports[-1].stage == "done" and reports[-1].path == out
    assert leftovers(tmp_path) == []


def test_gif_delays_follow_the_fps():
    delays = frame_delays(24, 24, 10)  # 41.67 ms does not fit GIF's 10 ms steps
    assert set(delays) == {40, 50} and sum(delays) == 1000
    assert frame_delays(3, 30, 1) == [33, 34, 33]


@pytest.mark.parametrize("name,codec", [("a.mp4", "h264"), ("a.webm", "vp9")])
def test_video_odd_size_is_padded_to_even(tmp_path, name, codec):
    out = export_animation(frames(5, w=21, h=15), tmp_path / name, fps=10)
    n, size, fps, got_codec = video_info(out)
    assert (n, size, fps) == (5, (22, 16), 10)
    assert got_codec.startswith(codec)
    assert leftovers(tmp_path) == []


def test_video_odd_size_cropped_to_even_and_said(tmp_path):
    export = AnimationExport(frames(4, w=21, h=15), tmp_path / "c.mp4", fps=10, even="crop")
    export.run()
    assert video_info(tmp_path / "c.mp4")[:2] == (4, (20, 14))
    assert export.even_note == (
        "MP4 video (H.264) needs an even width and height: the 21×15 "
        "frames (odd width and height) are cropped to 20×14 (the "
        "last column and last row left out)."
    )
    assert even_size((501, 375), "mp4", "pad") == (
        (502, 376),
        "MP4 video (H.264) needs an even width and height: the 501×375 frames "
        "(odd width and height) are padded to 502×376 (the last column and last "
        "row repeated).",
    )
    assert even_size((500, 375), "webm", "crop")[0] == (500, 374)
    assert even_size((501, 375), "gif") == ((501, 375), None)  # GIF takes any size
    assert even_size((500, 376), "mp4") == ((500, 376), None)


def test_frames_over_the_limit_are_refused_unless_a_size_is_chosen(tmp_path):
    assert MAX_EXPORT_SIDE == 3840
    with pytest.raises(ExportTooLarge, match="4000×3000 px, more than the 3840 px") as info:
        export_size((4000, 3000))
    assert info.value.size == (4000, 3000) and info.value.limit == 3840
    assert export_size((4000, 3000), max_side=3840) == (3840, 2880)  # asked: scaled down
    assert export_size((4000, 3000), size=(4000, 3000)) == (4000, 3000)  # asked: as is
    assert export_size((64, 48), scale=2, max_side=100) == (100, 75)
    assert export_size((64, 48), max_side=100) == (64, 48)  # never enlarged
    with pytest.raises(ExportTooLarge):  # the exporter itself refuses, writing nothing
        export_animation(frames(2, w=30, h=20), tmp_path / "big.gif", limit=25)
    assert list(tmp_path.iterdir()) == []
    out = export_animation(frames(2, w=30, h=20), tmp_path / "ok.gif", limit=25, max_side=24)
    assert pillow_info(out)[1] == (24, 16)


def test_video_resize_and_upscale(tmp_path):
    out = export_animation(
        frames(3, w=21, h=15),
        tmp_path / "a.mp4",
        fps=25,
        scale=2,
        even="resize",
        resample="nearest",
    )
    assert video_info(out)[:3] == (3, (42, 30), 25)
    out = export_animation(
        frames(3, w=21, h=15), tmp_path / "b.mp4", fps=8, size=(33, 17), even="resize"
    )
    assert video_info(out)[:3] == (3, (34, 18), 8)


def test_png_sequence_and_size(tmp_path):
    folder = tmp_path / "seq"
    export_animation(frames(5), folder, size=(40, 28), resample="nearest")
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"frame_{i:05d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (40, 28)
    src = np.asarray(Image.open(files[3]))
    assert np.array_equal(src[::2, ::2], frames(5)[3])  # nearest ×2 keeps the pixels
    before = {f.name: f.read_bytes() for f in files}
    # frames already in the folder (someone's own, or an earlier export) are never replaced
    # or removed unless the caller asked (the app and the CLI ask the user first)
    with pytest.raises(ExportError, match="already holds frame_"):
        export_animation(frames(2), folder)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    export_animation(frames(2), folder, replace_frames=True)  # asked: the whole sequence
    assert sorted(f.name for f in folder.iterdir()) == ["frame_00000.png", "frame_00001.png"]
    assert leftovers(tmp_path) == []


def test_streams_a_render_job(tmp_path):
    prior = tiny_prior()
    job = Renderer(prior, quick_state(prior)).jitter(4, 0.6, seed=3)
    out = AnimationExport(job, tmp_path / "walk.gif", fps=5, scale=2).run()
    n, size, total_ms, _ = pillow_info(out)
    assert (n, size, total_ms) == (4, (64, 64), 800)
    assert len(job.frames) == 4


def test_tensor_frames(tmp_path):
    x = torch.linspace(-1, 1, 4 * 3 * 8 * 8).reshape(4, 3, 8, 8)
    out = export_animation(x, tmp_path / "t.webp", fps=4)
    assert pillow_info(out)[:2] == (4, (8, 8))


def test_cancel_leaves_nothing(tmp_path):
    cancel = threading.Event()
    target = tmp_path / "a.mp4"
    export = AnimationExport(frames(8), target, fps=10, cancel=cancel)
    for report in export:
        if report.done == 3:
            cancel.set()
    assert export.cancelled and export.written is None
    assert not target.exists() and leftovers(tmp_path) == []
    with pytest.raises(ExportCancelled):
        export_animation(frames(3), tmp_path / "b.gif", cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_file(tmp_path):
    target = tmp_path / "a.gif"
    target.write_bytes(b"previous")
    bad = frames(3) + [np.zeros((5, 5, 3), np.uint8)]
    with pytest.raises(InputError, match="same size"):
        export_animation(bad, target)
    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []
    with pytest.raises(InputError, match="no frames"):
        export_animation([], tmp_path / "empty.webm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]


def _read_only_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root ignores permission bits: use a read-only file system
        return Path("/sys")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_read_only_folder_is_a_clear_error(tmp_path):
    folder = _read_only_folder(tmp_path)
    for name in ("x.gif", "x.mp4", "seq"):
        with pytest.raises(ExportError, match="read-only or you lack permission"):
            export_animation(frames(2), folder / name)
    with pytest.raises(ExportError, match="read-only"):
        save_image(frames(1)[0], folder / "x.png")
    with pytest.raises(ExportError, match="does not exist"):
        export_animation(frames(2), tmp_path / "missing" / "x.gif")


def test_bad_names_and_options(tmp_path):
    with pytest.raises(InputError, match=r"\.gif, \.png"):
        format_for("x.avi")
    assert format_for("out") == "png-sequence" and format_for("A.MP4") == "mp4"
    with pytest.raises(InputError, match="fps"):
        AnimationExport(frames(2), tmp_path / "x.gif", fps=0)
    with pytest.raises(InputError, match="even"):
        AnimationExport(frames(2), tmp_path / "x.mp4", even="trim")


def test_grid_and_save_image(tmp_path):
    g = grid(frames(5, w=10, h=6), cols=3, pad=2)
    assert g.shape == (6 * 2 + 2, 10 * 3 + 4, 3)
    out = save_image(g, tmp_path / "g.png")
    assert np.array_equal(np.asarray(Image.open(out)), g)


def test_render_job_sharing_the_cancel_event_cancels_the_export(tmp_path):
    """A job that stops early because the shared event was set must not leave a short file."""
    import threading

    from dgp_engine.files.animation import AnimationExport, ExportCancelled

    cancel = threading.Event()

    def frames():
        for i in range(50):
            if i == 5:
                cancel.set()  # the job sees it first and ends quietly
                return
            yield np.full((16, 16, 3), i * 5, dtype=np.uint8)

    out = tmp_path / "short.gif"
    with pytest.raises(ExportCancelled):
        AnimationExport(frames(), out, fps=10, cancel=cancel).run()
    assert not out.exists()
    assert not list(tmp_path.iterdir())

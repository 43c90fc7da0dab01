#!/usr/bin/env python
"""Render the DGP Studio main window to a PNG for review.

    python scripts/screenshot.py --out main-window.png               # under Xvfb
    python scripts/screenshot.py --offscreen --out main-window.png   # no X server

Without a DISPLAY the script re-runs itself under ``xvfb-run`` (Debian packages:
xvfb xauth libxcb-icccm4 libxcb-keysyms1, and fonts-dejavu-core on bare images).
It opens a generated picture, paints a mask, runs a short inpainting with a small
random model (or ``--model bundled``) and saves the window once the result is in.

    # a black-and-white portrait-format photo colorized with the bundled prior, shown
    # as a split before | after on the canvas
    python scripts/screenshot.py --photo portrait --gray --task colorize --model bundled \
        --split --size 1280x800 --out colorized-portrait.png

``--photo portrait`` / ``landscape`` cut a 1:2 / 2:1 photo from scikit-image's sample
pictures; ``--canvas-out`` also saves the canvas alone; ``--apply`` bakes the result in
before the screenshot.

    # the Manipulate tab with two results as morph keyframes (named by their class), and
    # the first frame of the morph exported as a GIF at the 500×375 photo's resolution
    python scripts/screenshot.py --model bundled --photo-size 500x375 --keyframes 2 \
        --size 1280x800 --palette --out manipulate.png --export-frame morph-frame.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="dgp-studio-screenshot.png")
    p.add_argument("--offscreen", action="store_true", help="Qt offscreen platform, no X")
    p.add_argument("--picture", help="a picture to open (default: a generated one)")
    p.add_argument("--model", default="random", help="'random' (small, fast) or a model name")
    p.add_argument("--size", default="1400x900")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--task", default="Inpaint", help="the task's label or engine name")
    p.add_argument(
        "--class", dest="class_text", default="auto", help="the Class field: a name, an id or auto"
    )
    p.add_argument(
        "--photo",
        choices=("demo", "portrait", "landscape"),
        default="demo",
        help="the generated picture, or a photo from scikit-image's samples",
    )
    p.add_argument("--gray", action="store_true", help="open the picture in black and white")
    p.add_argument("--split", action="store_true", help="split before | after on the canvas")
    p.add_argument("--apply", action="store_true", help="apply the result before the shot")
    p.add_argument("--canvas-out", help="also save the canvas alone here")
    p.add_argument(
        "--max-side",
        type=int,
        default=0,
        help="shrink the saved PNGs to at most this many pixels (0: as is)",
    )
    p.add_argument(
        "--palette",
        action="store_true",
        help="save 256-colour PNGs (a third of the size; for docs/screenshots)",
    )
    p.add_argument("--photo-size", help="resize the picture to WxH first (e.g. 500x375)")
    p.add_argument(
        "--keyframes",
        type=int,
        default=0,
        help="run this many results (seeds 0, 1, …), add them as morph keyframes "
        "and show the Manipulate tab's morph",
    )
    p.add_argument(
        "--export-frame",
        help="with --keyframes: export the morph as a GIF composed at the photo's "
        "resolution and save its first frame here (PNG)",
    )
    p.add_argument("--in-xvfb", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def relaunch_under_xvfb(args: argparse.Namespace) -> int:
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        print(
            "No DISPLAY and no xvfb-run: apt-get install xvfb xauth libxcb-icccm4 "
            "libxcb-keysyms1, or pass --offscreen.",
            file=sys.stderr,
        )
        return 2
    w, h = args.size.split("x")
    cmd = [
        xvfb,
        "-a",
        "-s",
        f"-screen 0 {w}x{h}x24",
        sys.executable,
        __file__,
        *sys.argv[1:],
        "--in-xvfb",
    ]
    return subprocess.call(cmd)


def demo_picture(folder: Path) -> Path:
    import numpy as np
    from PIL import Image, ImageDraw

    h, w = 600, 900
    y, x = np.mgrid[0:h, 0:w]
    sky = np.stack([90 + 80 * y / h, 140 + 60 * y / h, 220 - 40 * y / h], -1)
    img = Image.fromarray(sky.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((620, 60, 760, 200), fill=(250, 210, 90))
    d.polygon(
        [(0, 420), (220, 250), (420, 400), (640, 230), (900, 420), (900, 600), (0, 600)],
        fill=(60, 120, 70),
    )
    d.rectangle((300, 380, 420, 500), fill=(170, 80, 60))
    path = folder / "demo.png"
    img.save(path)
    return path


def sample_photo(folder: Path, shape: str, gray: bool) -> Path:
    """A 1:2 (portrait) or 2:1 (landscape) cut of a scikit-image sample photo."""
    from PIL import Image
    from skimage import data

    rgb = data.chelsea() if shape == "portrait" else data.coffee()
    h, w = rgb.shape[:2]
    if shape == "portrait":
        cw = h // 2
        rgb = rgb[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:
        ch = w // 2
        rgb = rgb[(h - ch) // 2 : (h - ch) // 2 + ch]
    img = Image.fromarray(rgb)
    if gray:
        img = img.convert("L").convert("RGB")
    path = folder / f"{shape}.png"
    img.save(path)
    return path


def save_small(image, path: Path, max_side: int, palette: bool = False) -> bool:
    """Save a QImage/QPixmap, shrunk to ``max_side`` when given and as a 256-colour PNG
    with ``palette`` (screenshots kept in the repository stay small)."""
    from PIL import Image
    from PySide6.QtCore import Qt

    if max_side and max(image.width(), image.height()) > max_side:
        image = image.scaled(
            max_side,
            max_side,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    if not image.save(str(path)):
        return False
    if palette:
        rgb = Image.open(path).convert("RGB")
        rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            path, optimize=True
        )
    return True


def export_first_frame(panel, gif: Path, out: Path, wait) -> bool:
    """Export the panel's morph as a GIF composed into the photo at its resolution (the
    export dialog's defaults), then save the GIF's first frame as ``out``."""
    from PIL import Image

    dialog = panel.show_export_dialog()
    dialog.set_source("morph")
    dialog.set_format("gif")
    dialog.path.setText(str(gif))
    print(f"export: {dialog.summary.text()}")
    dialog.export_button.click()
    t0 = time.time()
    while dialog.running and time.time() - t0 < 600:
        wait(50)
    print(f"export: {dialog.message.text()}")
    dialog.close()
    if not gif.is_file():
        return False
    with Image.open(gif) as im:
        print(f"export: {gif.name}: {im.n_frames} frames of {im.size[0]}×{im.size[1]}")
        im.seek(0)
        im.convert("RGB").save(out, optimize=True)
    print(f"wrote {out}")
    return True


def main() -> int:
    args = parse()
    if args.offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif not os.environ.get("DISPLAY") and not args.in_xvfb:
        return relaunch_under_xvfb(args)
    tmp = Path(tempfile.mkdtemp(prefix="dgp-shot-"))
    os.environ.setdefault("DGP_STUDIO_HOME", str(tmp / "home"))  # leave real settings alone

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from dgp_engine import BigGANConfig, Preset, build_prior
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 — kept alive
    catalog = ModelCatalog()
    if args.model == "random":
        cfg = BigGANConfig(
            resolution=64,
            G_ch=16,
            D_ch=16,
            dim_z=32,
            shared_dim=16,
            n_classes=10,
            G_attn="0",
            D_attn="0",
        )
        catalog.add("random-64", lambda dev: build_prior(cfg, device=dev, seed=0, name="random-64"))
        model = "random-64"
    else:
        model = args.model
    window = MainWindow(Settings(), catalog)
    window.confirm = lambda title, text: True
    window.ask_save = lambda title, text: "discard"
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.task_panel.set_models(catalog.names())
    window.task_panel.model.setCurrentText(model)
    window.task_panel.add_preset(
        "screenshot",
        Preset.from_dict(
            {
                "iterations": [args.iterations],
                "G_lrs": [1e-4],
                "z_lrs": [1e-3],
                "w_mse": [1.0],
                "select_num": 4,
                "name": "screenshot",
            }
        ),
    )
    window.task_panel.iterations.setValue(args.iterations)
    window.show()
    if args.picture:
        picture = Path(args.picture)
    elif args.photo != "demo":
        picture = sample_photo(tmp, args.photo, args.gray)
    else:
        picture = demo_picture(tmp)
    if args.gray and args.photo == "demo":
        from PIL import Image

        Image.open(picture).convert("L").convert("RGB").save(tmp / "gray.png")
        picture = tmp / "gray.png"
    if args.photo_size:
        from PIL import Image

        pw, ph = (int(v) for v in args.photo_size.split("x"))
        resized = tmp / f"{picture.stem}-{pw}x{ph}.png"
        Image.open(picture).convert("RGB").resize((pw, ph), Image.Resampling.LANCZOS).save(resized)
        picture = resized

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    if not window.open_path(picture):
        print(window.last_error, file=sys.stderr)
        return 1
    from dgp_engine.method.taskspec import task_spec

    label = task_spec(args.task).label
    if window.task_panel.task.currentText() != label:
        window.task_panel.task.setCurrentText(label)
    if args.model == "random":
        window.task_panel.preset.setCurrentText("screenshot")
        window.task_panel.iterations.setValue(args.iterations)
    else:  # a real model runs its own default schedule, as the app would
        from dgp_engine.method.taskspec import default_preset_name
        from dgp_engine.priors import registry

        record = registry.installed(args.model)  # a StyleGAN2 prior has its own presets
        family = record.family if record is not None else None
        window.task_panel.preset.setCurrentText(default_preset_name(args.task, args.model, family))
        window.task_panel.iterations.setValue(window.task_panel.base_preset().total_iterations)
    window.task_panel.class_edit.setText(args.class_text)
    if task_spec(args.task).uses_mask:
        W, H = window.state.size
        window.state.mask[int(H * 0.62) : int(H * 0.85), int(W * 0.32) : int(W * 0.48)] = 255
        window.state.mask_changed.emit(None)
        window.reset_region()
    t0 = time.time()
    while window.state.model_resolution == 128 and time.time() - t0 < 60:
        wait(50)  # the model's own resolution places the region
    wait(200)

    def run_and_wait(seed: int) -> None:
        window.task_panel.seed.setValue(seed)
        window.run_task()
        t0 = time.time()
        while window.state.running and time.time() - t0 < 600:
            wait(50)

    run_and_wait(0)
    panel = getattr(window, "manipulate", None)
    if args.keyframes > 1 and panel is not None:
        for seed in range(1, args.keyframes):
            wait(1100)  # a keyframe is named by its time to the second: distinct names
            run_and_wait(seed)
        for row in range(len(window.state.history)):
            window.history_panel.list.setCurrentRow(row)
            panel.timeline.add_current.click()
        panel.dock.raise_()
        panel.tabs.setCurrentIndex(2)  # the morph: keyframes, their thumbnails, scrub
        panel.timeline.frames.setValue(12)
        t0 = time.time()
        while time.time() - t0 < 60 and not all(
            panel.timeline.has_thumbnail(i) for i in range(args.keyframes)
        ):
            wait(50)
        panel.timeline.set_position(0.5)
        wait(1500)  # the scrubbed frame, composed into the photo
    # (guarded: the script also shoots older versions of the app, for before/after)
    if args.apply and hasattr(window, "apply_layer"):
        window.apply_layer()
    if args.split and hasattr(window, "set_split_view"):
        window.actions["split_view"].setChecked(True)
        window.set_split_view(True)
        window.canvas.set_split(window.state.size[0] / 2)
    window.canvas.fit()
    wait(300)
    out = Path(args.out).resolve()
    ok = save_small(window.grab(), out, args.max_side, args.palette)
    if args.canvas_out:
        save_small(
            window.canvas.grab(), Path(args.canvas_out).resolve(), args.max_side, args.palette
        )
    print(f"{'wrote' if ok else 'FAILED to write'} {out} ({window.last_error or 'no errors'})")
    if args.export_frame and args.keyframes > 1 and panel is not None:
        ok = (
            export_first_frame(panel, tmp / "morph.gif", Path(args.export_frame).resolve(), wait)
            and ok
        )
    window.shutdown()
    window.hide()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Render the DGP Studio main window to a PNG for review.

    python scripts/screenshot.py --out main-window.png               # under Xvfb
    python scripts/screenshot.py --offscreen --out main-window.png   # no X server

Without a DISPLAY the script re-runs itself under ``xvfb-run`` (Debian packages:
xvfb xauth libxcb-icccm4 libxcb-keysyms1, and fonts-dejavu-core on bare images).
It opens a generated picture, paints a mask, runs a short inpainting with a small
random model (or ``--model bundled``) and saves the window once the result is in.
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
    p.add_argument("--in-xvfb", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def relaunch_under_xvfb(args: argparse.Namespace) -> int:
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        print("No DISPLAY and no xvfb-run: apt-get install xvfb xauth libxcb-icccm4 "
              "libxcb-keysyms1, or pass --offscreen.", file=sys.stderr)
        return 2
    w, h = args.size.split("x")
    cmd = [xvfb, "-a", "-s", f"-screen 0 {w}x{h}x24", sys.executable, __file__,
           *sys.argv[1:], "--in-xvfb"]
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
    d.polygon([(0, 420), (220, 250), (420, 400), (640, 230), (900, 420), (900, 600), (0, 600)],
              fill=(60, 120, 70))
    d.rectangle((300, 380, 420, 500), fill=(170, 80, 60))
    path = folder / "demo.png"
    img.save(path)
    return path


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
        cfg = BigGANConfig(resolution=64, G_ch=16, D_ch=16, dim_z=32, shared_dim=16,
                           n_classes=10, G_attn="0", D_attn="0")
        catalog.add("random-64", lambda dev: build_prior(cfg, device=dev, seed=0,
                                                         name="random-64"))
        model = "random-64"
    else:
        model = args.model
    window = MainWindow(Settings(), catalog)
    window.confirm = lambda title, text: True
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.task_panel.set_models(catalog.names())
    window.task_panel.model.setCurrentText(model)
    window.task_panel.add_preset("screenshot", Preset.from_dict({
        "iterations": [args.iterations], "G_lrs": [1e-4], "z_lrs": [1e-3], "w_mse": [1.0],
        "select_num": 4, "name": "screenshot"}))
    window.task_panel.iterations.setValue(args.iterations)
    window.show()
    picture = Path(args.picture) if args.picture else demo_picture(tmp)
    if not window.open_path(picture):
        print(window.last_error, file=sys.stderr)
        return 1
    W, H = window.state.size
    window.state.mask[int(H * 0.62):int(H * 0.85), int(W * 0.32):int(W * 0.48)] = 255
    window.state.mask_changed.emit(None)
    window.reset_region()

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    wait(200)
    window.run_task()
    t0 = time.time()
    while window.state.running and time.time() - t0 < 300:
        wait(50)
    window.canvas.fit()
    wait(300)
    out = Path(args.out).resolve()
    ok = window.grab().save(str(out))
    print(f"{'wrote' if ok else 'FAILED to write'} {out} ({window.last_error or 'no errors'})")
    window.shutdown()
    window.hide()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Peak RSS of one app run on the bundled model (offscreen window): open a photo, paint a
hole, run inpainting with the bundled model's default preset scaled to a short run, wait
for the result, print ``ru_maxrss``.  Run with PYTHONPATH pointing at the code to measure:

    QT_QPA_PLATFORM=offscreen python bench/app_peak_rss.py --iterations 60
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=60)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dgp-rss-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")  # no user settings touched
    import numpy as np
    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from dgp_studio.main_window import MainWindow
    from dgp_studio.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    rng = np.random.default_rng(0)
    photo = tmp / "photo.png"
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).resize(
        (320, 240), Image.BILINEAR
    ).save(photo)
    w = MainWindow(Settings(engine_threads=1))
    w.confirm = lambda *a: True
    w.show()
    w.task_panel.model.setCurrentText("bundled")
    w.open_path(str(photo))
    mask = np.zeros((240, 320), np.uint8)
    mask[100:140, 140:180] = 255
    w.state.set_mask(mask)
    w.task_panel.task.setCurrentText("Inpaint")
    w.task_panel.iterations.setValue(args.iterations)
    t0 = time.perf_counter()
    if not w.run_task():
        print("run refused:", w.last_error)
        return 1
    while w.state.running and time.perf_counter() - t0 < 900:
        app.processEvents()
        time.sleep(0.01)
    run_s = time.perf_counter() - t0
    ok = len(w.state.history) == 1
    w.shutdown()
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"code={Path(__import__('dgp_studio').__file__).parent.parent} result={ok} "
        f"iterations={args.iterations} run_s={run_s:.1f} peak_rss_MiB={kb / 1024:.1f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

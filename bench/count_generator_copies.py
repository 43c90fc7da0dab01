#!/usr/bin/env python
"""Count the generator copies one inpainting run from the app makes (issue 16).

    QT_QPA_PLATFORM=offscreen python bench/count_generator_copies.py [--runs 2]

Drives the app's own code paths on a tiny seeded model, in this thread (no
QThread, so every call is seen): ``EngineRunner.run`` for an inpainting request
(the engine run plus whatever the runner does with the result), then the
Manipulate panel's follow-up render of the result (``Renderers.handle`` of a
``RenderResult``).  Counted while each step runs:
  deepcopy        ``copy.deepcopy`` of a Generator or of a Prior (top-level calls)
  new Generator   ``Generator.__init__``
  load_state_dict ``Generator.load_state_dict``
  state clones    a full clone of G's state dict (``dgp_engine.method.state.snapshot``)
Each of them holds (or fills) one full set of generator weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="inpainting runs in a row")
    args = ap.parse_args()

    import threading

    import numpy as np

    import dgp_engine.method.state as state_mod
    from dgp_engine import BigGANConfig, Preset, Prior, build_prior
    from dgp_engine.method.taskspec import task_spec
    from dgp_engine.models import Generator
    from dgp_engine.tasks.request import RestoreRequest
    from dgp_studio.catalog import ModelCatalog
    from dgp_studio.engine_session import RegionRequest
    from dgp_studio.manipulate.render_worker import Renderers, RenderResult
    from dgp_studio.worker import EngineRunner

    counts: Counter[str] = Counter()
    depth = [0]
    real_deepcopy = copy.deepcopy

    def counting_deepcopy(x, memo=None, _nil=None):
        if depth[0] == 0 and isinstance(x, (Generator, Prior)):
            counts[f"deepcopy({type(x).__name__})"] += 1
        depth[0] += 1
        try:
            return real_deepcopy(x, memo) if _nil is None else real_deepcopy(x, memo, _nil)
        finally:
            depth[0] -= 1

    real_init, real_load = Generator.__init__, Generator.load_state_dict

    def counting_init(self, *a, **kw):
        counts["new Generator"] += 1
        real_init(self, *a, **kw)

    def counting_load(self, *a, **kw):
        counts["load_state_dict"] += 1
        return real_load(self, *a, **kw)

    copy.deepcopy = counting_deepcopy
    Generator.__init__ = counting_init
    Generator.load_state_dict = counting_load
    real_snapshot = getattr(state_mod, "snapshot", None)
    if real_snapshot is not None:

        def counting_snapshot(G):
            counts["state clones"] += 1
            return real_snapshot(G)

        state_mod.snapshot = counting_snapshot
        rec_mod = sys.modules["dgp_engine.method.reconstruct"]
        if hasattr(rec_mod, "snapshot"):
            rec_mod.snapshot = counting_snapshot

    cfg = BigGANConfig(
        resolution=32, G_ch=8, D_ch=8, dim_z=16, shared_dim=8, n_classes=5, G_attn="0", D_attn="0"
    )
    prior = build_prior(cfg, seed=0, name="tiny")
    counts.clear()  # building the model is not part of a run

    catalog = ModelCatalog()
    catalog.add("tiny", lambda dev: prior)
    runner = EngineRunner(catalog, threads=1)
    renderers = Renderers(threads=1)
    preset = Preset.from_dict(
        {
            "iterations": [2, 2],
            "ft_num": [1, "all"],
            "G_lrs": [1e-3] * 2,
            "z_lrs": [1e-2] * 2,
            "use_in": [False, True],
            "select_num": 2,
        }
    )
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 10:24] = 255

    def drive(job):
        """Run a cooperative generator job to its end; its return value."""
        try:
            while True:
                next(job)
        except StopIteration as stop:
            return stop.value

    report = []
    for n in range(args.runs):
        counts.clear()
        settings = RestoreRequest(
            task_spec("inpaint"),
            model="tiny",
            preset=preset,
            class_spec=1,
            seed=n,
            device="cpu",
            threads=1,
        )
        request = RegionRequest.for_crop(settings, image, mask, (0, 0, 32, 32), None, {})
        result = drive(runner.run(request, threading.Event()))
        run_counts = dict(counts)
        counts.clear()
        model = getattr(result, "prior", None) or prior
        drive(renderers.handle(RenderResult(model, result.state), threading.Event()))
        report.append(
            {
                "run": n + 1,
                "worker run": run_counts,
                "render of the result": dict(counts),
                "total": sum(run_counts.values()) + sum(counts.values()),
            }
        )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

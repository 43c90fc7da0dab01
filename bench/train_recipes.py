#!/usr/bin/env python
"""Short recipe trials for the bundled prior: each variant trains from scratch for the
same CPU time (process CPU seconds, so that other jobs on a shared machine do not
favour one variant), then its checkpoint is scored as the scoreboard scores it.

  python bench/train_recipes.py --data .../train.npz --out bench/results/recipes.json \
      --cpu-seconds 300 --threads 1 --variants baseline b64 b64_lecam ...

Variants are named in ``VARIANTS`` (TrainSettings changes on top of the common base).
Training never sees the evaluation classifier's held-out images; FID/KID *_val are
against them.  Results are appended to the JSON as each variant finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER = REPO / "resources" / "models" / "bundled" / "eval_classifier.safetensors"
BASE: dict[str, Any] = dict(
    resolution=64,
    ch=16,
    lr_g=2e-4,
    lr_d=4e-4,
    steps=10**9,
    checkpoint_every_s=float("inf"),
)
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": dict(batch=32),  # the shipped step-1718 recipe
    "b64": dict(batch=64),
    "b64_lecam": dict(batch=64, lecam=0.3),
    "b64_lecam_ada": dict(batch=64, lecam=0.3, ada_target=0.6, ada_speed=20_000),
    "b64_lecam_d2": dict(batch=64, lecam=0.3, d_steps=2),
    "b64_lecam_lr1": dict(batch=64, lecam=0.3, lr_g=1e-4, lr_d=2e-4),
    "b64_ct": dict(batch=64, lecam=0.3, augment="color,translation"),
    "b64_d2": dict(batch=64, d_steps=2),
    "b64_lecam001": dict(batch=64, lecam=0.01),
    "b64_ada": dict(batch=64, ada_target=0.6, ada_speed=20_000),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--cpu-seconds", type=float, default=300.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--samples", type=int, default=5000)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from dgp_engine.training import Evaluator, Trainer, TrainSettings, load_npz
    from dgp_engine.training.classifier import load_classifier
    from dgp_engine.training.scoreboard import shipped_generator

    data = load_npz(args.data)
    held = json.loads(CLASSIFIER.with_suffix(".json").read_text())["holdout_indices"]
    train, val = data.split(held)
    clf = load_classifier(CLASSIFIER)
    t0 = time.perf_counter()
    evaluator = Evaluator.build(clf, val, train, samples=args.samples)
    feature_s = time.perf_counter() - t0
    for name in args.variants:
        settings = TrainSettings(**{**BASE, **VARIANTS[name]})
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(train, settings, tmp)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            while time.process_time() - cpu0 < args.cpu_seconds:
                losses = trainer.train_step()
            cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
            t1 = time.perf_counter()
            G = shipped_generator({**trainer._progress(), "G_ema": trainer.ema.model.state_dict()})
            metrics = evaluator.evaluate(G)
            eval_s = time.perf_counter() - t1
        row = {
            "variant": name,
            "changes": VARIANTS[name],
            "steps": trainer.step,
            "images_seen": trainer.images_seen,
            "cpu_seconds": round(cpu_s, 1),
            "wall_seconds": round(wall_s, 1),
            "images_per_cpu_s": round(trainer.images_seen / cpu_s, 2),
            "last_losses": [round(v, 3) for v in losses],
            "ada_p": round(trainer.ada_p, 3),
            **metrics,
            "eval_seconds": round(eval_s, 1),
            "threads": args.threads,
            "load_avg_1min_after": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(row), flush=True)
        record = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": []}
        record.update(
            machine=f"{platform.machine()} {os.cpu_count()} cores (shared with other jobs)",
            torch=str(torch.__version__),
            feature_seconds=round(feature_s, 1),
            base=BASE | {"steps": None, "checkpoint_every_s": None},
        )
        record["rows"] = [r for r in record["rows"] if r["variant"] != name] + [row]
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()

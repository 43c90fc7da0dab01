#!/usr/bin/env python
"""Score an installed prior (e.g. the shipped bundled one) exactly as `dgp train`'s
scoreboard scores a checkpoint: class accuracy of N samples under the evaluation
classifier, FID/KID on its features against its held-out images (*_val) and against the
rest of the training split (*_train).

  python bench/score_prior.py [--prior resources/models/bundled] [--samples 5000] [--json out]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER = REPO / "resources" / "models" / "bundled" / "eval_classifier.safetensors"
DATA = REPO.parent / "shared" / "datasets" / "imagenette" / "train.npz"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prior", default=str(REPO / "resources" / "models" / "bundled"))
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from dgp_engine.priors.load import load_prior
    from dgp_engine.training import Evaluator, load_npz
    from dgp_engine.training.classifier import load_classifier

    data = load_npz(args.data)
    held = json.loads(CLASSIFIER.with_suffix(".json").read_text())["holdout_indices"]
    train, val = data.split(held)
    t0 = time.perf_counter()
    evaluator = Evaluator.build(load_classifier(CLASSIFIER), val, train, samples=args.samples)
    row = {"prior": str(args.prior), **evaluator.evaluate(load_prior(args.prior).G)}
    row["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(row, indent=1))
    if args.json:
        args.json.write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()

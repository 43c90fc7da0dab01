#!/usr/bin/env python
"""Measure a trained prior with a small classifier trained on the same training split.

  python scripts/eval_prior.py --data train.npz --classifier clf.safetensors \
      (--prior FOLDER | --checkpoint checkpoint.pt) [--per-class 500] [--json out.json]

If the classifier file does not exist it is trained first (a few minutes on one
CPU thread) and saved, with its held-out accuracy in ``<classifier>.json``.
Reports: class-conditional accuracy of generated samples (chance = 1/n_classes),
KID and FID between generated samples and the training images on the
classifier's penultimate features, and the same numbers for held-out real
images as a reference of what "real" scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--classifier", type=Path, required=True)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prior", help="prior folder or registry name (e.g. bundled)")
    src.add_argument("--checkpoint", type=Path, help="training checkpoint.pt (uses G_ema)")
    p.add_argument("--per-class", type=int, default=500)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from dgp_engine.training import load_npz, standing_stats
    from dgp_engine.training.classifier import load_classifier, save_classifier, train_classifier
    from dgp_engine.training.metrics import features_and_predictions, fid, generate, kid

    data = load_npz(args.data)
    info_file = args.classifier.with_suffix(".json")
    if args.classifier.is_file():
        clf = load_classifier(args.classifier)
        clf_info = json.loads(info_file.read_text())
    else:
        clf, clf_info = train_classifier(
            data, epochs=args.epochs, progress=lambda m: print(m, flush=True)
        )
        args.classifier.parent.mkdir(parents=True, exist_ok=True)
        save_classifier(clf, args.classifier)
        clf_info["holdout_indices"] = clf_info["holdout_indices"].tolist()
        info_file.write_text(json.dumps(clf_info))
        print(
            f"classifier saved: {args.classifier} "
            f"({os.path.getsize(args.classifier) / 1e6:.2f} MB), held-out accuracy "
            f"{clf_info['holdout_accuracy']:.3f}",
            flush=True,
        )

    result: dict = {
        "classifier_holdout_accuracy": clf_info["holdout_accuracy"],
        "classifier_train_images": clf_info["train_images"],
        "classifier_holdout_images": clf_info["holdout_images"],
    }
    holdout = torch.tensor(clf_info["holdout_indices"], dtype=torch.long)
    mask = torch.ones(len(data), dtype=torch.bool)
    mask[holdout] = False
    train_x, _ = data.batch(torch.arange(len(data)))
    f_train, _ = features_and_predictions(clf, train_x)
    f_rest, f_hold = f_train[mask.numpy()], f_train[holdout.numpy()]
    result["reference_kid_holdout_vs_rest"] = kid(f_hold, f_rest)[0]
    result["reference_fid_holdout_vs_rest"] = fid(f_hold, f_rest)

    if args.prior or args.checkpoint:
        t0 = time.perf_counter()
        if args.checkpoint:
            from dgp_engine.models import BigGANConfig, Generator
            from dgp_engine.training.trainer import read_checkpoint

            ckpt = read_checkpoint(args.checkpoint)
            G = Generator(BigGANConfig.from_dict(ckpt["model_config"]))
            G.load_state_dict(ckpt["G_ema"])
            G = standing_stats(G, 64, 32, torch.Generator().manual_seed(0))
            result["step"] = int(ckpt["step"])
            result["images_seen"] = int(ckpt["images_seen"])
        else:
            from dgp_engine.priors.load import load_prior

            G = load_prior(args.prior).G
        x, y = generate(G, args.per_class)
        f_gen, pred = features_and_predictions(clf, x)
        result["samples"] = int(len(y))
        result["generated_accuracy"] = float((torch.from_numpy(pred) == y).float().mean())
        result["kid_generated_vs_train"], result["kid_std"] = kid(f_gen, f_train)
        result["fid_generated_vs_train"] = fid(f_gen, f_train)
        result["eval_seconds"] = time.perf_counter() - t0
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

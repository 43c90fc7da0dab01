#!/usr/bin/env python
"""Export the latest training checkpoint as the bundled prior (resources/models/bundled).

  python scripts/export_bundled.py --checkpoint STATE_DIR/checkpoint.pt \
      --eval eval.json [--classes-tsv .../class_info.tsv]

STATE_DIR is the run's resume-state folder that ``dgp train`` prints first (by default in
the user cache's training/ folder; it stays there, outside the repository, for a later
``dgp train --resume``).

Writes config.json, G_ema.safetensors + D.safetensors (fp16, EMA G with standing BN
statistics), classes.txt and MODEL_CARD.md (numbers from --eval, made by
scripts/eval_prior.py), then checks that ``load_prior`` reads the folder and renders.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TSV = REPO.parent / "shared" / "datasets" / "imagenette" / "class_info.tsv"


def class_names(tsv: Path) -> list[str]:
    with open(tsv, encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh, delimiter="\t"), key=lambda r: int(r["label"]))
    return [r["name"] for r in rows]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="export the bundled prior")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, default=REPO / "resources" / "models" / "bundled")
    p.add_argument("--classes-tsv", type=Path, default=DEFAULT_TSV)
    p.add_argument("--eval", type=Path, help="JSON written by scripts/eval_prior.py")
    p.add_argument("--speeds", default="", help="measured training speeds, for the card")
    p.add_argument(
        "--classifier",
        type=Path,
        help="evaluation classifier (.safetensors + .json) to ship beside the model",
    )
    p.add_argument("--notes", default="", help="extra line for the card's training section")
    p.add_argument(
        "--restoration",
        type=Path,
        nargs="+",
        default=[],
        metavar="RESULT.json",
        help="`dgp eval` results scored with these exact weights (checked by "
        "checksum), tabled in the card",
    )
    p.add_argument(
        "--restoration-notes",
        default="",
        help="how the restoration results were made (images, presets), for the card",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    from dgp_engine.priors.load import load_prior
    from dgp_engine.tasks.evaluate import (
        format_table,
        ordering_summary,
        read_results,
        weights_digest,
    )
    from dgp_engine.training import export_prior

    restoration = read_results(args.restoration)
    info = export_prior(args.checkpoint, args.out, class_names(args.classes_tsv))
    digest = weights_digest(args.out)
    for path, r in zip(args.restoration, restoration, strict=True):
        if r.get("model", {}).get("checksum") != digest:
            raise SystemExit(
                f"{path} scored other weights than the ones exported now; re-run it on this export."
            )
    quality = json.loads(args.eval.read_text()) if args.eval else {}
    if restoration:
        order = "\n".join(f"- {line}" for line in ordering_summary(restoration))
        quality["restoration"] = (
            f"{args.restoration_notes}\n\n{format_table(restoration)}\n\n{order}"
        ).strip()
    (args.out / "MODEL_CARD.md").write_text(
        card(info, quality, args.speeds, args.notes), encoding="utf-8"
    )
    if args.classifier:
        shutil.copyfile(args.classifier, args.out / "eval_classifier.safetensors")
        shutil.copyfile(args.classifier.with_suffix(".json"), args.out / "eval_classifier.json")

    prior = load_prior(args.out)
    with torch.no_grad():
        n = prior.config.n_classes  # one sample of every class
        img = prior.G(torch.randn(n, prior.G.dim_z), prior.G.shared(torch.arange(n)))
    assert img.shape[-1] == prior.resolution and torch.isfinite(img).all()
    size = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(
        f"exported step {info['step']} to {args.out} ({size:.1f} MB); load_prior renders "
        f"{tuple(img.shape)}; classes: {', '.join(prior.class_names)}"
    )
    return 0


def card(info: dict, q: dict, speeds: str, notes: str = "") -> str:
    s, c = info["settings"], info["config"]

    def num(key: str, fmt: str = "{:.3f}") -> str:
        return fmt.format(q[key]) if key in q else "not measured"

    samples = q.get("samples", "N")
    rows = [
        (
            f"class-conditional accuracy of {samples} generated samples (chance 0.100)",
            num("generated_accuracy"),
        ),
        (
            "KID, generated vs training set (classifier features)",
            num("kid_generated_vs_train", "{:.4f}"),
        ),
        (
            "FID, generated vs training set (classifier features)",
            num("fid_generated_vs_train", "{:.2f}"),
        ),
        (
            "reference: KID, held-out real vs rest of training set",
            num("reference_kid_holdout_vs_rest", "{:.4f}"),
        ),
        (
            "reference: FID, held-out real vs rest of training set",
            num("reference_fid_holdout_vs_rest", "{:.2f}"),
        ),
    ]
    table = "\n".join(f"| {metric} | {value} |" for metric, value in rows)

    return f"""# Bundled prior: class-conditional BigGAN, Imagenette, 64×64

DGP Studio's offline default prior: a BigGAN generator (EMA weights, standing BN
statistics) **and** its discriminator, trained from scratch in this project with
`dgp train` (dgp_engine/training). Weights are float16 safetensors (cast to float32
on load).

## Architecture
- BigGAN (this project's implementation, BigGAN-PyTorch layout), {c["resolution"]} px,
  G_ch = D_ch = {c["G_ch"]}, dim_z {c["dim_z"]} (hierarchical z), shared class
  embedding {c["shared_dim"]}, {c["n_classes"]} classes, attention: G "{c["G_attn"]}",
  D "{c["D_attn"]}" (none; measured 12–18 % slower with attention at 32 px on this CPU),
  spectral norm in G and D, orthogonal init.
- Width chosen by measured speed (1 CPU thread, batch 32, images/s of one D + one G
  step): {speeds or "see bench/train_speed.py"}. With about an hour of
  one-core CPU time, the narrowest width gets ~3× more optimisation steps than ch 32,
  which matters more than capacity this early in GAN training.

## Data
Imagenette (fast.ai), train split only: 9,469 images of 10 ImageNet classes,
resized to 64×64 (see `shared/datasets/imagenette/README.md`). Labels 0..9 =
`classes.txt`: tench, English springer, cassette player, chain saw, church,
French horn, garbage truck, gas pump, golf ball, parachute.

## Training
- Hinge loss; Adam β = (0, 0.999), ε 1e-6; TTUR lr G {s["lr_g"]:g} / D {s["lr_d"]:g};
  batch {s["batch"]}; one D step per G step; EMA of G, decay {s["ema_decay"]}
  (ramped in as (1+t)/(10+t)); standing BN statistics over 64×32 samples at export.
- DiffAugment-style differentiable augmentation (`{s["augment"]}`) on real and
  generated images before D; random horizontal flips of real images.
- Steps: **{info["step"]}**; images seen by D: **{info["images_seen"]:,}**
  (≈ {info["images_seen"] / 9469:.1f} epochs).
- Hardware: 2-core x86 CPU, **one thread**, no GPU; training time
  **{info["hours"]:.2f} h** wall-clock. {notes}

## Measured quality
With no Inception weights offline, quality is measured with a small CNN
classifier (`dgp_engine/training/classifier.py`, 4 conv stages, width 24) trained
here on 90 % of the training split (shipped as `eval_classifier.safetensors`; the
held-out indices are in `eval_classifier.json`); its accuracy on the other 10 % (held-out
real images) is **{num("classifier_holdout_accuracy")}**. Features for KID/FID are
that classifier's penultimate (global-average-pooled, {8 * 24}-d) features —
**not Inception features; the numbers are not comparable with published FID/KID.**

| metric | value |
|---|---|
{table}

Evaluated at step {q.get("step", info["step"])}.

## Restoration with DGP
{q.get("restoration") or "Not measured for this export (`dgp eval`, then --restoration)."}

This is a small, briefly trained model: samples show class colours and rough
layouts, not photographic detail. It exists so the app works offline on first
start; for real restoration quality use a larger prior.

## Licence
The weights are derived from ImageNet pixels (Imagenette is a subset of ILSVRC
2012). ImageNet's terms allow **non-commercial research/educational use only**;
the image copyrights stay with their owners. Do not ship this model in a
commercial product.
"""


if __name__ == "__main__":
    sys.exit(main())

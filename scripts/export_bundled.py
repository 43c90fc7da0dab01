#!/usr/bin/env python
"""Export a training checkpoint as the bundled prior (resources/models/bundled).

  python scripts/export_bundled.py --best STATE_DIR [--select fid_val] \
      [--recipe-notes bench/results/bundled_recipe.md] [--classes-tsv .../class_info.tsv]
  python scripts/export_bundled.py --checkpoint STATE_DIR/checkpoint.pt --eval eval.json

STATE_DIR is the run's resume-state folder that ``dgp train`` prints first (by default in
the user cache's training/ folder; it stays there, outside the repository, for a later
``dgp train --resume``).  ``--best`` ships the best checkpoint by the run's scoreboard
(``dgp train --eval-classifier``), not the last one, and tables the scoreboard in the card.

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
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="a resume state or snapshot to export")
    src.add_argument(
        "--best",
        type=Path,
        metavar="STATE_DIR",
        help="export the best snapshot of this run by its scoreboard",
    )
    p.add_argument(
        "--select",
        default="fid_val",
        help="scoreboard metric that picks the checkpoint with --best (default fid_val: "
        "FID against held-out real images; also kid_val, accuracy, fid_train, kid_train)",
    )
    p.add_argument(
        "--recipe-notes",
        type=Path,
        help="Markdown (e.g. the recipe trials' table) for the card's training section",
    )
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
    from dgp_engine.training import best_row, export_prior, read_scoreboard

    restoration = read_results(args.restoration)
    quality = json.loads(args.eval.read_text()) if args.eval else {}
    checkpoint = args.checkpoint
    if args.best is not None:
        rows = read_scoreboard(args.best / "scoreboard.json")
        row = best_row(rows, args.select)
        checkpoint = args.best / row["snapshot"]
        quality.update(scoreboard_quality(row))
        shipped_classifier = args.out / "eval_classifier.json"
        if "classifier_holdout_accuracy" not in quality and shipped_classifier.is_file():
            info_clf = json.loads(shipped_classifier.read_text(encoding="utf-8"))
            quality["classifier_holdout_accuracy"] = info_clf["holdout_accuracy"]
        quality["scoreboard"] = scoreboard_table(rows, row, args.select)
    info = export_prior(checkpoint, args.out, class_names(args.classes_tsv))
    digest = weights_digest(args.out)
    for path, r in zip(args.restoration, restoration, strict=True):
        if r.get("model", {}).get("checksum") != digest:
            raise SystemExit(
                f"{path} scored other weights than the ones exported now; re-run it on this export."
            )
    if args.recipe_notes:
        notes = args.notes + "\n\n" + args.recipe_notes.read_text(encoding="utf-8").strip()
    else:
        notes = args.notes
    if restoration:
        order = "\n".join(f"- {line}" for line in ordering_summary(restoration))
        quality["restoration"] = (
            f"{args.restoration_notes}\n\n{format_table(restoration)}\n\n{order}"
        ).strip()
    (args.out / "MODEL_CARD.md").write_text(
        card(info, quality, args.speeds, notes), encoding="utf-8"
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


def scoreboard_quality(row: dict) -> dict:
    """The chosen scoreboard row in the keys of scripts/eval_prior.py's JSON."""
    q = {
        "samples": row.get("samples"),
        "generated_accuracy": row.get("accuracy"),
        "kid_generated_vs_heldout": row.get("kid_val"),
        "fid_generated_vs_heldout": row.get("fid_val"),
        "step": row["step"],
    }
    if row.get("fid_train") is not None:
        q["fid_generated_vs_train"] = row["fid_train"]
        q["kid_generated_vs_train"] = row["kid_train"]
    return {k: v for k, v in q.items() if v is not None}


def scoreboard_table(rows: list[dict], best: dict, select: str) -> str:
    head = "| step | images seen | CPU-hours | accuracy | FID held-out | KID held-out | FID train |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "**" if r["step"] == best["step"] else ""
        lines.append(
            f"| {mark}{r['step']}{mark} | {r.get('images_seen', '')} | "
            f"{r.get('cpu_hours', float('nan')):.2f} | {r.get('accuracy', float('nan')):.3f} | "
            f"{r.get('fid_val', float('nan')):.2f} | {r.get('kid_val', float('nan')):.4f} | "
            f"{r.get('fid_train', float('nan')):.2f} |"
        )
    last = rows[-1]["step"] == best["step"]
    why = "the run's last row too" if last else "not the last"
    return (
        "\n".join(lines) + f"\n\nShipped: step {best['step']}, the best by {select} (bold), {why}."
    )


def recipe(s: dict) -> str:
    """The training recipe in words, from the checkpoint's settings."""
    batch = f"batch {s['batch']}"
    if s.get("accumulate", 1) > 1:
        batch += f" (gradient accumulation over {s['accumulate']} micro-batches for D)"
    d_steps = s.get("d_steps", 1)
    parts = [
        f"Hinge loss; Adam β = ({s['beta1']:g}, {s['beta2']:g}), ε {s['adam_eps']:g}; "
        f"lr G {s['lr_g']:g} / D {s['lr_d']:g}; {batch}; "
        f"{d_steps} D step{'s' if d_steps > 1 else ''} per G step; EMA of G, decay "
        f"{s['ema_decay']} (ramped in as (1+t)/(10+t)); standing BN statistics over "
        f"{s.get('standing_batches', 64)}×{s.get('standing_batch', 32)} samples at export."
    ]
    if s.get("ada_target", 0) > 0:
        parts.append(
            f"Adaptive augmentation (`{s['augment']}`, each transform with probability p, "
            f"p steered so that the mean sign of D's real outputs stays near "
            f"{s['ada_target']:g}; {s['ada_speed']:,} images move p by 1) on real and "
            "generated images before D; random horizontal flips of real images."
        )
    else:
        parts.append(
            f"DiffAugment-style differentiable augmentation (`{s['augment']}`) on real and "
            "generated images before D; random horizontal flips of real images."
        )
    if s.get("lecam", 0) > 0:
        parts.append(
            f"LeCam regularisation of D, weight {s['lecam']:g}, EMA anchors of D's real "
            f"and fake outputs (decay {s['lecam_decay']:g})."
        )
    return "\n".join(f"- {p}" for p in parts)


def held_out(info: dict) -> str:
    n = info.get("n_images", 9469)
    if n == 9469:
        return "9,469 images"
    return (
        f"{n:,} of its 9,469 images (the other {9469 - n:,}, the evaluation classifier's "
        "held-out images, were never trained on: they are the scoreboard's real reference)"
    )


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
            "KID, generated vs held-out real images (classifier features)",
            num("kid_generated_vs_heldout", "{:.4f}"),
        ),
        (
            "FID, generated vs held-out real images (classifier features)",
            num("fid_generated_vs_heldout", "{:.2f}"),
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
    rows = [
        r
        for r in rows
        if r[1] != "not measured"
        or not ("held-out real images" in r[0] or r[0].startswith("reference"))
    ]
    table = "\n".join(f"| {metric} | {value} |" for metric, value in rows)
    if q.get("scoreboard"):
        table += "\n\nScoreboard of the run (every checkpoint, scored as shipped):\n\n"
        table += q["scoreboard"]

    return f"""# Bundled prior: class-conditional BigGAN, Imagenette, 64×64

DGP Studio's offline default prior: a BigGAN generator (EMA weights, standing BN
statistics) **and** its discriminator, trained from scratch in this project with
`dgp train` (dgp_engine/training). Weights are float16 safetensors (cast to float32
on load).

## Architecture
- BigGAN (this project's implementation, BigGAN-PyTorch layout), {c["resolution"]} px,
  G_ch = D_ch = {c["G_ch"]}, dim_z {c["dim_z"]} (hierarchical z), shared class
  embedding {c["shared_dim"]}, {c["n_classes"]} classes, attention: G "{c["G_attn"]}",
  D "{c["D_attn"]}", spectral norm in G and D, orthogonal init.
- Width and attention chosen by measured training speed (images per CPU-second of one
  D + one G step): {speeds or "see the training section and bench/train_speed.py"}.

## Data
Imagenette (fast.ai), train split only: {held_out(info)} of 10 ImageNet classes,
resized to 64×64 (see `shared/datasets/imagenette/README.md`). Labels 0..9 =
`classes.txt`: tench, English springer, cassette player, chain saw, church,
French horn, garbage truck, gas pump, golf ball, parachute.

## Training
{recipe(s)}
- Steps: **{info["step"]}**; images seen by D: **{info["images_seen"]:,}**
  (≈ {info["images_seen"] / info.get("n_images", 9469):.1f} epochs).
- Hardware: 2-core x86 CPU, no GPU; training time **{info["hours"]:.2f} h** wall-clock,
  **{info.get("cpu_hours", info["hours"]):.2f} CPU-hours** (CPU time of the training
  steps; sittings before 2026-12-05 23:10 UTC counted wall × threads). {notes}

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

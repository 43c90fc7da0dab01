#!/usr/bin/env python
"""Whole-photo colorization of a long photo: one padded view or overlapping tiles?

    python bench/colorize_plan.py [--model bundled] [--scale 1] [--threads 1]

Takes colour photos that ship with scikit-image, cuts a 1:3 (portrait) and a 3:1
(landscape) strip from each, makes them grey and colorizes them two ways with the same
model, preset and seed:

  padded  the engine's plan: the whole photo fitted into the model's square (longest
          side = R, the margin edge-padded and left out of the loss), one run, its
          a, b resized to every pixel, L kept from the photo;
  tiled   squares of the photo's shorter side overlapping by a quarter, one run each,
          their a, b blended with linear ramps across the overlaps, L kept.

Prints, per strip and plan: seconds, a,b RMSE against the true colours (Lab units),
the share of pixels left grey (chroma < 2) and a seam score: the largest jump of mean
a,b between neighbouring lines across the long axis, over the median jump (1 = no
line stands out; a seam shows as a large ratio).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from skimage import color, data

from dgp_engine import load_prior
from dgp_engine.files.photos import Photo
from dgp_engine.method.region import resize
from dgp_engine.tasks.postprocess import to_gray
from dgp_engine.tasks.restore import resolve_preset, restore_image

PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea}


def strips(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """A 1:3 and a 3:1 strip from the middle of ``rgb``."""
    h, w = rgb.shape[:2]
    tall_h = h - h % 3
    tall_w = tall_h // 3
    wide_w = w - w % 3
    wide_h = wide_w // 3
    x0, y0 = (w - tall_w) // 2, (h - wide_h) // 2
    return {"1:3": rgb[:tall_h, x0 : x0 + tall_w], "3:1": rgb[y0 : y0 + wide_h, :wide_w]}


def ab_of(rgb: np.ndarray) -> np.ndarray:
    return color.rgb2lab(np.clip(rgb, 0, 1))[..., 1:].astype(np.float32)


def with_l(gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
    lab = np.concatenate([color.rgb2lab(gray)[..., :1], ab], axis=-1)
    return np.clip(color.lab2rgb(lab), 0, 1).astype(np.float32)


def padded(prior, gray: np.ndarray, preset, seed: int) -> np.ndarray:
    job = restore_image(prior, Photo.from_array(gray), "colorize", preset=preset, seed=seed)
    return job.run_to_end().photo.rgb


def tiled(prior, gray: np.ndarray, preset, seed: int, overlap: float = 0.25) -> np.ndarray:
    h, w = gray.shape[:2]
    side, long = min(h, w), max(h, w)
    n = max(1, math.ceil((long - side) / (side * (1 - overlap))) + 1)
    starts = [round(i * (long - side) / max(1, n - 1)) for i in range(n)]
    acc = np.zeros((h, w, 2), np.float32)
    weight = np.zeros((h, w), np.float32)
    ramp_len = max(1, round(side * overlap))
    ramp = np.minimum(1.0, (np.arange(side) + 1) / ramp_len)
    along = np.minimum(ramp, ramp[::-1]).astype(np.float32)
    for s in starts:
        x, y = (s, 0) if w > h else (0, s)
        job = restore_image(
            prior, Photo.from_array(gray), "colorize", region=(x, y, side), preset=preset, seed=seed
        )
        out = job.run_to_end().model_output
        ab = ab_of(resize(out, side, side))
        wt = along[None, :] if w > h else along[:, None]
        wt = np.broadcast_to(wt, (side, side))
        acc[y : y + side, x : x + side] += ab * wt[..., None]
        weight[y : y + side, x : x + side] += wt
    return with_l(gray, acc / np.maximum(weight, 1e-6)[..., None])


def seam_score(ab: np.ndarray, axis: int) -> float:
    """Largest jump of the mean a,b between neighbouring lines along ``axis``, over
    the median jump."""
    means = ab.mean(axis=1 - axis)  # one a,b per line across the long axis
    jumps = np.linalg.norm(np.diff(means, axis=0), axis=-1)
    return float(jumps.max() / max(np.median(jumps), 1e-6))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--scale", type=float, default=1.0, help="preset iteration scale")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the rows here too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prior = load_prior(args.model, device="cpu")
    preset = resolve_preset(None, "colorize", prior.name, args.scale)
    rows = []
    print(
        f"model {prior.name} ({prior.resolution} px), preset {preset.name}, "
        f"{preset.total_iterations} it, seed {args.seed}"
    )
    print(f"{'photo':10} {'shape':9} {'plan':7} {'s':>6} {'ab RMSE':>8} {'grey %':>7} {'seam':>6}")
    for name, load in PHOTOS.items():
        rgb = load().astype(np.float32) / 255
        for shape, strip in strips(rgb).items():
            gray = to_gray(strip)
            truth = ab_of(strip)
            axis = 0 if strip.shape[0] > strip.shape[1] else 1
            for plan, fn in (("padded", padded), ("tiled", tiled)):
                t0 = time.perf_counter()
                out = fn(prior, gray, preset, args.seed)
                secs = time.perf_counter() - t0
                ab = ab_of(out)
                rmse = float(np.sqrt(((ab - truth) ** 2).sum(-1).mean()))
                grey = float((np.linalg.norm(ab, axis=-1) < 2).mean() * 100)
                seam = seam_score(ab, axis)
                rows.append(
                    {
                        "photo": name,
                        "shape": shape,
                        "size": list(strip.shape[:2]),
                        "plan": plan,
                        "seconds": round(secs, 2),
                        "ab_rmse": round(rmse, 2),
                        "grey_pct": round(grey, 2),
                        "seam": round(seam, 2),
                    }
                )
                print(
                    f"{name:10} {shape:9} {plan:7} {secs:6.1f} {rmse:8.2f} {grey:7.2f} {seam:6.2f}",
                    flush=True,
                )
    for plan in ("padded", "tiled"):
        mine = [r for r in rows if r["plan"] == plan]
        print(
            f"mean {plan:7}: {np.mean([r['seconds'] for r in mine]):.1f} s, ab RMSE "
            f"{np.mean([r['ab_rmse'] for r in mine]):.2f}, grey "
            f"{np.mean([r['grey_pct'] for r in mine]):.2f} %, seam "
            f"{np.mean([r['seam'] for r in mine]):.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

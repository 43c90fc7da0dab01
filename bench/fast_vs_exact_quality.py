#!/usr/bin/env python
"""Quality cost of the fast path: the same target, seed and schedule in exact and
fast mode; prints PSNR/SSIM of each result against the clean image and their
difference.

    python bench/fast_vs_exact_quality.py [--scale 0.1] [--threads 1]
    python bench/fast_vs_exact_quality.py --model bundled --data train.npz --images 4 \
        --preset bundled_colorization --scale 1

Default model: the reference parity weights (../shared/reference/parity_small,
BigGAN-128 ch16, random weights) on its colorization target, with the colorization
preset's iterations scaled by --scale.  With --model, a trained prior is measured on
--images images of --data (an .npz with images and labels; evenly spread), each
with z selection from the same seed in both modes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import dgp_engine as dgp

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO.parent / "shared" / "reference" / "parity_small"


def to01(x: torch.Tensor) -> np.ndarray:
    return ((x[0].detach().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def lab_transfer(x, clean) -> torch.Tensor:
    """Colorization post-processing: L from the input, a,b from the model."""
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(to01(x))
    lab[..., 0] = rgb2lab(to01(clean))[..., 0]
    return torch.from_numpy(lab2rgb(lab) * 2 - 1).permute(2, 0, 1)[None].float()


def metrics(x, clean):
    a, b = to01(x), to01(clean)
    return (peak_signal_noise_ratio(b, a, data_range=1),
            structural_similarity(b, a, channel_axis=-1, data_range=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--preset", default="colorization")
    ap.add_argument("--data", type=Path, help="with --model: .npz of clean images and labels")
    ap.add_argument("--images", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        measure_trained(args)
    else:
        measure_parity(args)


def measure_parity(args) -> None:
    rec = torch.load(PARITY / "dgp_colorization_stage1_2iters.pt", weights_only=False)
    tmp = Path(tempfile.mkdtemp())
    for f in ("G_ema.pth", "D.pth"):
        shutil.copy(PARITY / f, tmp / f)
    (tmp / "config.json").write_text(json.dumps(
        {k: rec["hyperparameters"][k] for k in ("resolution", "G_ch", "D_ch", "dim_z",
                                                "shared_dim", "hier", "n_classes",
                                                "G_attn", "D_attn", "SN_eps")}))
    prior = dgp.load_prior(tmp)
    clean = rec["target_origin"]
    target = dgp.Grayscale()(clean)
    preset = dgp.load_preset(args.preset).scaled(args.scale)
    print(f"preset {preset.name} x{args.scale}: iterations {preset.iterations}, "
          f"z from forward.pt, class {int(rec['y'])}")
    out = {}
    for mode in ("exact", "fast"):
        t = time.perf_counter()
        run = dgp.reconstruct(prior, target, "colorize", class_id=int(rec["y"]), preset=preset,
                              z_init=rec["z_init"], exact=mode == "exact", seed=0)
        state = run.run_to_end()
        sec = time.perf_counter() - t
        x = dgp.render(prior, state)
        psnr, ssim = metrics(x, clean)
        ppsnr, pssim = metrics(lab_transfer(x, clean), clean)
        out[mode] = x
        print(f"{mode:>5}: {sec / preset.total_iterations:.3f} s/iter, final loss "
              f"{state.losses['total']:.5f}; vs clean: raw G PSNR {psnr:.3f} dB SSIM {ssim:.4f}, "
              f"Lab post-processed PSNR {ppsnr:.3f} dB SSIM {pssim:.4f}")
    d = (out["exact"] - out["fast"]).abs()
    print(f"exact vs fast output: max |Δ| {float(d.max()):.4g}, mean |Δ| {float(d.mean()):.4g}, "
          f"PSNR between them {metrics(out['fast'], out['exact'])[0]:.2f} dB")


def measure_trained(args) -> None:
    from dgp_engine.evaluate import load_dataset, to_model_square

    if args.data is None:
        raise SystemExit("--model needs --data (an .npz with images and labels)")
    prior = dgp.load_prior(args.model)
    data = load_dataset(args.data, args.images)
    preset = dgp.load_preset(args.preset).scaled(args.scale)
    print(f"{prior.name}: preset {preset.name} x{args.scale}, iterations {preset.iterations}, "
          f"{preset.select_num} z samples, {len(data.images)} images")
    rows = {"exact": [], "fast": [], "between": []}
    for img, label in zip(data.images, data.labels):
        sq = to_model_square(img, prior.resolution)
        clean = torch.from_numpy(sq).permute(2, 0, 1)[None].float() * 2 - 1
        target = dgp.Grayscale()(clean)
        out = {}
        for mode in ("exact", "fast"):
            t = time.perf_counter()
            run = dgp.reconstruct(prior, target, "colorize", class_id=int(label), preset=preset,
                                  exact=mode == "exact", seed=0)
            state = run.run_to_end()
            sec = time.perf_counter() - t
            out[mode] = x = dgp.render(prior, state)
            rows[mode].append((*metrics(lab_transfer(x, clean), clean), sec))
        rows["between"].append(metrics(out["fast"], out["exact"])[0])
    for mode in ("exact", "fast"):
        psnr, ssim, sec = np.mean(rows[mode], axis=0)
        print(f"{mode:>5}: Lab post-processed PSNR {psnr:.3f} dB SSIM {ssim:.4f} "
              f"(mean of {len(rows[mode])}), {sec:.1f} s/image")
    print(f"fast vs exact outputs: PSNR between them {np.mean(rows['between']):.2f} dB (mean)")


if __name__ == "__main__":
    main()

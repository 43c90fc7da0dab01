#!/usr/bin/env python
"""DGP engine speed: seconds per iteration and peak memory, one config per subprocess.

    python bench/engine_speed.py [--res 128 --ch 96] [--iters 3] [--threads N] [--device cpu]
                                 [--families biggan-pytorch,studiogan]

Builds a BigGAN with random (orthogonal) weights and times, each in a fresh
process (so peak RSS is per configuration):
  reference  the reference loop's work: target D features recomputed every
             iteration, D weight gradients, W/σ re-made every forward, every G
             group's weight gradients, default allocator
  exact      our reference-exact mode (same arithmetic as the reference)
  fast       the default fast path
for stage 1 (ft_num 2) and stage 5 (ft_num 6) of the colorization schedule, plus
z-selection seconds per sample.  Prints a table and the speed-up ratios.

``--families`` times the same modes for each checkpoint family's network (the authors'
BigGAN-PyTorch layout, or StudioGAN's as ``load_prior`` builds it for a StudioGAN
checkpoint: fixed-u/v spectral norm, BN eps 1e-4) and prints their ratio: they are the
same network, so they should run at the same speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODES = ["reference", "exact", "fast"]
STAGES = {1: 2, 5: 6}  # stage -> ft_num (colorization preset)


def child(args) -> dict:
    import torch
    import torch.nn.functional as F

    import dgp_engine as dgp
    from dgp_engine import runtime

    if args.mode != "reference":
        runtime.tune_allocator()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    extra = {"family": "studiogan", "BN_eps": 1e-4} if args.family == "studiogan" else {}
    cfg = dgp.BigGANConfig(resolution=args.res, G_ch=args.ch, D_ch=args.ch, **extra)
    prior = dgp.build_prior(cfg, device=dev, seed=0)
    g = torch.Generator().manual_seed(1)
    target = F.interpolate(torch.rand(1, 3, 8, 8, generator=g) * 1.6 - 0.8, size=args.res,
                           mode="bilinear").to(dev)
    target = dgp.Grayscale()(target).contiguous()
    out: dict = {"mode": args.mode, "stage": args.stage, "family": args.family}

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if args.mode == "select":
        preset = dgp.Preset.from_dict({"iterations": [0, 1], "select_num": args.samples})
        run = dgp.reconstruct(prior, target, "colorize", class_id=1, preset=preset,
                              select_batch=args.batch)
        it = iter(run)
        next(it)  # first batch: warm-up
        sync()
        t = t_end = time.perf_counter()
        n = args.batch
        for r in it:
            if r.phase != "select":
                break
            sync()
            n, t_end = r.iteration, time.perf_counter()
        run.cancel.set()
        out["sec_per_sample"] = (t_end - t) / max(1, n - args.batch)
    else:
        ft = STAGES[args.stage]
        n = args.iters + 1
        if args.mode == "reference":
            times = reference_loop(prior, target, ft, n, sync)
        else:
            preset = dgp.Preset.from_dict({
                "iterations": [n], "ft_num": [ft], "lr_ratio": [0.7], "G_lrs": [5e-5],
                "z_lrs": [2e-3], "w_D_loss": [1], "w_mse": [0], "ftr_num": [7],
                "select_num": 0})
            run = dgp.reconstruct(prior, target, "colorize", class_id=1, preset=preset,
                                  exact=args.mode == "exact")
            times, last = [], time.perf_counter()
            for r in run:
                sync()
                now = time.perf_counter()
                if r.phase == "optimize" and not r.done:
                    times.append(now - last)
                last = now
        out["sec_per_iter"] = sum(times[1:]) / len(times[1:])  # first iteration is warm-up
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if dev.type == "cuda":
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def reference_loop(prior, target, ft_num, n, sync):
    """The reference implementation's per-iteration work, with our modules."""
    import torch
    import torch.nn.functional as F

    import dgp_engine as dgp

    G, D = prior.G, prior.D
    phi = dgp.Grayscale()
    for p in D.parameters():
        p.requires_grad_(True)
    groups = [G.group_params(i) for i in range(G.num_groups)]
    opt = torch.optim.Adam([{"params": ps} for ps in groups], lr=0, betas=(0.0, 0.999))
    z = torch.zeros(1, G.dim_z, device=target.device).normal_().requires_grad_(True)
    zopt = torch.optim.Adam([z], lr=2e-3, betas=(0.0, 0.999))
    y = torch.tensor([1], device=target.device)
    times, last = [], time.perf_counter()
    for _ in range(n):
        for i, pg in enumerate(opt.param_groups):
            pg["lr"] = 5e-5 * 0.7**i if i < ft_num else 0
        zopt.zero_grad()
        opt.zero_grad()
        x = G(z, G.shared(y))
        xm = phi(x)
        with torch.no_grad():
            _, real = D(target)
        _, fake = D(xm)
        loss = sum(F.l1_loss(fake[-i - 1], real[-i - 1]) for i in range(min(7, len(fake))))
        loss = loss + (z**2 / 2).mean() * 0.02
        loss.backward()
        zopt.step()
        opt.step()
        sync()
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--ch", type=int, default=96)
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per config")
    ap.add_argument("--samples", type=int, default=6, help="z-selection samples to time")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default=None)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--families", default="biggan-pytorch",
                    help="comma-separated: biggan-pytorch, studiogan")
    ap.add_argument("--family", default="biggan-pytorch", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--stage", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        print(json.dumps(child(args)))
        return

    def run(mode, stage=1, batch=1, family="biggan-pytorch"):
        cmd = [sys.executable, __file__, "--child", "--mode", mode, "--stage", str(stage),
               "--family", family,
               "--res", str(args.res), "--ch", str(args.ch), "--iters", str(args.iters),
               "--samples", str(args.samples), "--threads", str(args.threads),
               "--device", args.device, "--batch", str(batch)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            sys.exit(f"{mode} stage {stage} failed:\n{res.stderr}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    print(f"BigGAN {args.res}px ch{args.ch}, {args.device}, {args.threads} thread(s), "
          f"{args.iters} timed iterations per config")
    families = args.families.split(",")
    print(f"{'config':<34}{'s/iter':>10}{'peak RSS GiB':>14}")
    results = {}
    for family in families:
        tag = f" [{family}]" if len(families) > 1 else ""
        for mode in args.modes.split(","):
            for stage in STAGES:
                r = run(mode, stage, family=family)
                results[(family, mode, stage)] = r
                extra = f"{r['peak_cuda_gib']:>10.2f} GiB cuda" if "peak_cuda_gib" in r else ""
                print(f"{mode + ' stage ' + str(stage) + tag:<34}{r['sec_per_iter']:>10.3f}"
                      f"{r['peak_rss_gib']:>14.2f}{extra}", flush=True)
        batches = [1] + ([8] if args.device == "cuda" else [])
        for b in batches:
            r = run("select", batch=b, family=family)
            print(f"{'z selection b' + str(b) + tag:<34}{r['sec_per_sample']:>10.3f}"
                  f"{r['peak_rss_gib']:>14.2f}   (s/sample)", flush=True)
        if (family, "reference", 1) in results:
            for mode in ("exact", "fast"):
                for stage in STAGES:
                    if (family, mode, stage) in results:
                        ratio = (results[(family, "reference", stage)]["sec_per_iter"]
                                 / results[(family, mode, stage)]["sec_per_iter"])
                        print(f"speed-up {mode} vs reference, stage {stage}{tag}: {ratio:.2f}x")
    if len(families) > 1:
        base = families[0]
        for other in families[1:]:
            for (fam, mode, stage), r in results.items():
                if fam == other and (base, mode, stage) in results:
                    ratio = r["sec_per_iter"] / results[(base, mode, stage)]["sec_per_iter"]
                    print(f"{other} / {base}, {mode} stage {stage}: {ratio:.2f}x time")


if __name__ == "__main__":
    main()

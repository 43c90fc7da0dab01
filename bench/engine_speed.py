#!/usr/bin/env python
"""DGP engine speed: time per iteration, FLOP rate and peak memory, one config per subprocess.

    python bench/engine_speed.py [--res 128 --ch 96] [--iters 3] [--threads N] [--device cpu]
                                 [--precisions fp32,bf16] [--families biggan-pytorch,studiogan]
                                 [--rounds N] [--no-select]

``--res 128,256`` measures both resolutions in one run; ``--rounds 2`` runs every config
twice, interleaved, and keeps each one's fastest (a shared machine slows some rounds).
The issue-25 measurement (reference, fast fp32 and fast bf16; 128 and 256 px):

    python bench/engine_speed.py --res 128,256 --ch 96 --iters 3 --threads 2 \
        --modes reference,fast --precisions fp32,bf16 --rounds 2

Builds a BigGAN with random (orthogonal) weights and times, each in a fresh
process (so peak RSS and peak CUDA memory are per configuration):
  reference  the reference loop's work: target D features recomputed every
             iteration, D weight gradients, W/σ re-made every forward, every G
             group's weight gradients, default allocator (float32, TF32 off)
  exact      our reference-exact mode (same arithmetic as the reference, float32)
  fast       the default fast path, once per ``--precisions`` entry (fp32, tf32 on
             CUDA, bf16), rows labelled e.g. ``fast[bf16] stage 1``
for stage 1 (ft_num 2) and stage 5 (ft_num 6) of the colorization schedule, plus
z selection per sample (batch 1, and 16 on CUDA) in each precision.  Prints a table
(seconds per iteration on the CPU, milliseconds on CUDA), the speed-up ratios, and a
projected full colorization: the preset's 500 z samples at the best measured batch
plus its 1,400 iterations, stage by stage (stage-1 timing for stages that train at
most 2 groups, stage-5 timing for the others, so the projection leans long).

FLOPs: after its timed iterations each config counts one more iteration (one
reference-loop iteration; for z selection one batch, divided by its size) under
``torch.utils.flop_counter.FlopCounterMode``.  That counts matrix products and
convolutions only (forward and backward), not elementwise work, normalisation or the
optimiser, so GFLOP/s is the rate of the dense arithmetic, a lower bound on all work.

``--families`` times the same modes for each checkpoint family's network (the authors'
BigGAN-PyTorch layout, or StudioGAN's as ``load_prior`` builds it for a StudioGAN
checkpoint: fixed-u/v spectral norm, BN eps 1e-4) and prints their ratio: at 128 and 256
px they are the same network, so they should run at the same speed (StudioGAN's 64 px
generator is one block narrower: fewer FLOPs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

MODES = ["reference", "exact", "fast"]
STAGES = {1: 2, 5: 6}  # stage -> ft_num (colorization preset)
DIM_Z = {256: 140}  # BigGAN-256's latent size (BigGAN-128's 120 otherwise)
PROJECTED = "colorization"  # the preset whose full run is projected


def child(args) -> dict:
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    import dgp_engine as dgp
    from dgp_engine.method.compute import apply_matmul_precision
    from dgp_engine.system import runtime

    if args.mode != "reference":
        runtime.tune_allocator()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    extra = {"family": "studiogan", "BN_eps": 1e-4} if args.family == "studiogan" else {}
    cfg = dgp.BigGANConfig(
        resolution=args.res, G_ch=args.ch, D_ch=args.ch, dim_z=DIM_Z.get(args.res, 120), **extra
    )
    prior = dgp.build_prior(cfg, device=dev, seed=0)
    g = torch.Generator().manual_seed(1)
    target = F.interpolate(
        torch.rand(1, 3, 8, 8, generator=g) * 1.6 - 0.8, size=args.res, mode="bilinear"
    ).to(dev)
    target = dgp.Grayscale()(target).contiguous()
    # reference and exact compute in float32; the engine sets TF32 per run, the
    # reference loop is not a run
    precision = args.precision if args.mode in ("fast", "select") else "fp32"
    apply_matmul_precision(precision, dev)
    out: dict = {
        "mode": args.mode,
        "stage": args.stage,
        "family": args.family,
        "precision": precision,
    }

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if args.mode == "select":
        timed = max(1, math.ceil(args.samples / args.batch))  # timed batches
        # a warm-up batch, the timed ones, one more to count FLOPs
        preset = dgp.Preset.from_dict(
            {"iterations": [0, 1], "select_num": args.batch * (timed + 2)}
        )
        run = dgp.reconstruct(
            prior,
            target,
            "colorize",
            class_id=1,
            preset=preset,
            select_batch=args.batch,
            precision=precision,
        )
        it = iter(run)

        def batches(k):  # a report per candidate; a batch's first report computes it
            for _ in range(k * args.batch):
                next(it)

        batches(1)  # warm-up
        sync()
        t = time.perf_counter()
        batches(timed)
        sync()
        sec = time.perf_counter() - t
        with FlopCounterMode(display=False) as flops:
            batches(1)
        run.cancel()
        out["sec"] = sec / (timed * args.batch)
        out["gflop"] = flops.get_total_flops() / 1e9 / args.batch
    else:
        ft = STAGES[args.stage]
        n = args.iters + 1  # the first iteration is warm-up
        if args.mode == "reference":
            times, count = reference_loop(prior, target, ft, n + 1, sync)
        else:
            preset = dgp.Preset.from_dict(
                {
                    "iterations": [n + 1],
                    "ft_num": [ft],
                    "lr_ratio": [0.7],
                    "G_lrs": [5e-5],
                    "z_lrs": [2e-3],
                    "w_D_loss": [1],
                    "w_mse": [0],
                    "ftr_num": [7],
                    "select_num": 0,
                }
            )
            run = dgp.reconstruct(
                prior,
                target,
                "colorize",
                class_id=1,
                preset=preset,
                exact=args.mode == "exact",
                precision=None if args.mode == "exact" else precision,
            )
            it = iter(run)
            times, last = [], time.perf_counter()
            while len(times) < n:
                r = next(it)
                sync()
                now = time.perf_counter()
                if r.phase == "optimize" and not r.done:
                    times.append(now - last)
                last = now

            def count():
                with FlopCounterMode(display=False) as flops:
                    next(it)
                return flops.get_total_flops()

        out["sec"] = sum(times[1:]) / len(times[1:])
        out["gflop"] = count() / 1e9
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if dev.type == "cuda":
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def reference_loop(prior, target, ft_num, n, sync):
    """The reference implementation's per-iteration work, with our modules: the times of
    ``n - 1`` iterations, and a function counting the FLOPs of the last one."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

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

    def iteration():
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

    times, last = [], time.perf_counter()
    for _ in range(n - 1):
        iteration()
        sync()
        now = time.perf_counter()
        times.append(now - last)
        last = now

    def count():
        with FlopCounterMode(display=False) as flops:
            iteration()
        return flops.get_total_flops()

    return times, count


def projection(stage_sec: dict[int, float], select: dict[int, float]) -> str:
    """A full run of the projected preset from the measured stage 1/5 and z-selection
    times (seconds): one line."""
    import dgp_engine as dgp

    preset = dgp.load_preset(PROJECTED)
    batch, per_sample = min(select.items(), key=lambda kv: kv[1])
    sel = preset.select_num * per_sample
    parts, total = [], sel
    for s in range(preset.num_stages):
        ft = preset.ft_num[s]
        like = 1 if ft != "all" and int(ft) <= 2 else 5
        sec = preset.iterations[s] * stage_sec[like]
        total += sec
        parts.append(f"{preset.iterations[s]}x s{like} {sec:.1f}")
    return (
        f"z {preset.select_num} (b{batch}) {sel:.1f} + {' + '.join(parts)} = "
        f"{total:.1f} s ({total / 60:.1f} min)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", default="128", help="resolution, or several comma-separated (128,256)")
    ap.add_argument("--ch", type=int, default=96)
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per config")
    ap.add_argument("--samples", type=int, default=6, help="z-selection samples to time")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default=None)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument(
        "--precisions",
        default="fp32",
        help="comma-separated precisions of the fast mode: fp32, tf32 (CUDA), bf16, auto",
    )
    ap.add_argument(
        "--families", default="biggan-pytorch", help="comma-separated: biggan-pytorch, studiogan"
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every config this many times, interleaved, and keep each one's fastest "
        "(a busy machine slows some rounds; the ratios stay comparable)",
    )
    ap.add_argument("--no-select", action="store_true", help="leave the z-selection configs out")
    ap.add_argument("--family", default="biggan-pytorch", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--stage", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        args.res = int(args.res)
        print(json.dumps(child(args)))
        return
    from dgp_engine.errors import DGPError
    from dgp_engine.method.compute import default_select_batch, resolve_precision

    precisions = args.precisions.split(",")
    try:
        for p in precisions:
            resolve_precision(p, torch.device(args.device), exact=False)
    except DGPError as exc:
        sys.exit(str(exc))
    cuda = args.device.startswith("cuda")
    unit, scale = ("ms", 1e3) if cuda else ("s", 1.0)

    def run(res, mode, stage=1, batch=1, family="biggan-pytorch", precision="fp32"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--mode",
            mode,
            "--stage",
            str(stage),
            "--family",
            family,
            "--precision",
            precision,
            "--res",
            str(res),
            "--ch",
            str(args.ch),
            "--iters",
            str(args.iters),
            "--samples",
            str(args.samples),
            "--threads",
            str(args.threads),
            "--device",
            args.device,
            "--batch",
            str(batch),
        ]
        res_ = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res_.returncode:
            sys.exit(f"{mode} stage {stage} [{precision}] failed:\n{res_.stderr}")
        return json.loads(res_.stdout.strip().splitlines()[-1])

    def row(label, r, note=""):
        cols = (
            f"{label:<38}{r['sec'] * scale:>10.3f}{r['gflop']:>11.2f}"
            f"{r['gflop'] / r['sec']:>10.1f}{r['peak_rss_gib']:>10.2f}"
        )
        if "peak_cuda_gib" in r:
            cols += f"{r['peak_cuda_gib']:>10.2f}"
        print(cols + note, flush=True)

    resolutions = [int(r) for r in str(args.res).split(",")]
    families = args.families.split(",")
    # every config: (res, family, label, mode, stage, batch, precision)
    configs = []
    for res in resolutions:
        for family in families:
            for mode in args.modes.split(","):
                variants = (
                    [(f"fast[{p}]", p) for p in precisions] if mode == "fast" else [(mode, "fp32")]
                )
                for label, precision in variants:
                    for stage in STAGES:
                        configs.append((res, family, label, mode, stage, 1, precision))
            if not args.no_select:
                default = default_select_batch(torch.device(args.device), res)
                for precision in precisions:
                    for b in sorted({1, default}):
                        label = f"z selection b{b} [{precision}]"
                        configs.append((res, family, label, "select", 1, b, precision))
    results: dict[tuple, dict] = {}
    for k in range(args.rounds):
        for res, family, label, mode, stage, batch, precision in configs:
            r = run(res, mode, stage, batch=batch, family=family, precision=precision)
            key = (res, family, label, stage)
            if key not in results or r["sec"] < results[key]["sec"]:
                results[key] = r
            if args.rounds > 1:
                print(
                    f"  round {k + 1}: {res}px {label} stage {stage}: "
                    f"{r['sec'] * scale:.3f} {unit}",
                    flush=True,
                )
    fastest = " (fastest of the rounds)" if args.rounds > 1 else ""
    for res in resolutions:
        print(
            f"BigGAN {res}px ch{args.ch}, {args.device}, {args.threads} thread(s), "
            f"{args.iters} timed iterations per config, {args.rounds} round(s){fastest}; "
            "GFLOP counts matmul/conv only"
        )
        print(
            f"{'config':<38}{unit + '/iter':>10}{'GFLOP/it':>11}{'GFLOP/s':>10}{'RSS GiB':>10}"
            + (f"{'CUDA GiB':>10}" if cuda else "")
        )
        for family in families:
            tag = f" [{family}]" if len(families) > 1 else ""
            labels = []
            select: dict[str, dict[int, float]] = {}
            for r_res, fam, label, mode, stage, batch, precision in configs:
                if (r_res, fam) != (res, family):
                    continue
                r = results[(res, family, label, stage)]
                if mode == "select":
                    select.setdefault(precision, {})[batch] = r["sec"]
                    row(f"{label}{tag}", r, f"   ({unit}/sample)")
                else:
                    if label not in labels:
                        labels.append(label)
                    row(f"{label} stage {stage}{tag}", r)
            if (res, family, "reference", 1) in results:
                for label in labels:
                    if label == "reference":
                        continue
                    for stage in STAGES:
                        ratio = (
                            results[(res, family, "reference", stage)]["sec"]
                            / results[(res, family, label, stage)]["sec"]
                        )
                        print(
                            f"speed-up {label} vs reference, {res}px stage {stage}{tag}: "
                            f"{ratio:.2f}x"
                        )
            for precision in precisions:
                label = f"fast[{precision}]"
                if label in labels and precision in select:
                    stage_sec = {s: results[(res, family, label, s)]["sec"] for s in STAGES}
                    print(
                        f"projected {PROJECTED} {res}px, {label}{tag}: "
                        f"{projection(stage_sec, select[precision])}"
                    )
        if len(families) > 1:
            base = families[0]
            for other in families[1:]:
                for (r_res, fam, label, stage), r in results.items():
                    if r_res == res and fam == other and (res, base, label, stage) in results:
                        ratio = r["sec"] / results[(res, base, label, stage)]["sec"]
                        print(f"{other} / {base}, {label} stage {stage}: {ratio:.2f}x time")


if __name__ == "__main__":
    main()

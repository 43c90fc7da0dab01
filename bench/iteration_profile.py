#!/usr/bin/env python
"""Where one fast-path DGP iteration's time goes, by op kind, per precision.

    python bench/iteration_profile.py [--res 128 --ch 96] [--stage 1] [--threads 2]
                                      [--precisions fp32,bf16] [--iters 2] [--rounds 1]

``--precisions`` also takes variants of the bfloat16 path, measured in the same process:
``bf16:nchw`` (activations not channels-last), ``bf16:gemm64`` (matrix-product
convolutions only up to 8×8 px), e.g. ``--precisions fp32,bf16,bf16:nchw,bf16:gemm64``.

Builds a BigGAN with random weights (as ``bench/engine_speed.py``), runs the fast path
(colorization stage 1: ft_num 2, or stage 5: ft_num 6, with the D-feature loss) and
profiles ``--iters`` iterations after a warm-up one with ``torch.profiler``, in each
precision in turn, interleaved (fp32, bf16, fp32, bf16, ...) so that a busy machine
slows every precision alike.  Each op's own time (self CPU time) goes to one kind:

  conv        convolutions and their backward (oneDNN, transposed, folded)
  matmul      matrix products (mm, bmm, addmm, linear: the ≤ 8×8 px convolutions
              run as matrix products on the CPU, attention)
  spectral    everything under σ (the power step, 1/σ), wherever it is called
  bn          batch / instance norm and their backward
  optimizer   everything under the in-backward Adam step (and z's Adam)
  convert     dtype conversions, copies and re-layouts (to, copy_, contiguous, clone,
              unfold/fold, cat, oneDNN reorders)
  elementwise everything else (add, mul, ReLU, tanh, pooling, losses, ...)

It then prints the achieved GFLOP/s of the conv + matmul part (FLOPs of one iteration
counted by ``FlopCounterMode`` over the conv + matmul time), beside the same
process's microbenchmarks, in both precisions: a 2048² matrix product and a 3×3
convolution, 384 → 384 channels at 32×32 px (forward + input gradient + weight
gradient; NCHW and channels-last).  Those are this machine's ceiling for the kind of
work an iteration does.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

KINDS = ("conv", "matmul", "spectral", "bn", "optimizer", "convert", "elementwise")
SCOPES = {"dgp::sigma": "spectral", "dgp::adam": "optimizer"}
DIM_Z = {256: 140}
DEFAULTS: dict[str, Any] = {}


def kind_of(name: str) -> str:
    n = name.lower()
    if "conv" in n:
        return "conv"
    if any(k in n for k in ("norm",)):
        return "bn"
    if n.startswith("aten::") and n[6:] in (
        "mm",
        "bmm",
        "addmm",
        "matmul",
        "linear",
        "baddbmm",
        "mv",
        "dot",
        "addr",
        "addmv",
    ):
        return "matmul"
    if any(
        k in n
        for k in (
            "to_copy",
            "aten::to",
            "copy_",
            "contiguous",
            "clone",
            "im2col",
            "col2im",
            "unfold",
            "aten::fold",
            "aten::cat",
            "reorder",
            "to_mkldnn",
            "to_dense",
        )
    ):
        return "convert"
    return "elementwise"


@contextmanager
def scoped_engine() -> Any:
    """Label σ and the Adam steps with record_function scopes (this process only)."""
    from dgp_engine.method import compute
    from dgp_engine.models import spectral

    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, attr: str, scope: str) -> None:
        original = getattr(owner, attr)

        def inner(*a: Any, **k: Any) -> Any:
            with torch.profiler.record_function(scope):
                return original(*a, **k)

        patched.append((owner, attr, original))
        setattr(owner, attr, inner)

    wrap(spectral.SpectralNorm, "sigma", "dgp::sigma")
    wrap(spectral.SpectralNorm, "sigma_vectors", "dgp::sigma")
    wrap(compute.InBackwardAdam, "_step", "dgp::adam")
    wrap(torch.optim.Adam, "step", "dgp::adam")
    for name in dir(compute):  # the bf16 weight refresh, if the engine has one
        if name == "BF16Weights":
            wrap(compute.BF16Weights, "refresh", "dgp::convert")
    SCOPES["dgp::convert"] = "convert"
    try:
        yield
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def by_kind(prof: torch.profiler.profile, iters: int) -> dict[str, float]:
    """Seconds per iteration of each kind (self CPU time)."""
    out: dict[str, float] = defaultdict(float)
    for ev in prof.events():
        scope = None
        p = ev
        while p is not None:
            if p.name in SCOPES:
                scope = SCOPES[p.name]
                break
            p = p.cpu_parent
        if ev.name in SCOPES:
            kind = SCOPES[ev.name]
        else:
            kind = scope or kind_of(ev.name)
        out[kind] += ev.self_cpu_time_total / 1e6 / iters
    return out


def top_ops(prof: torch.profiler.profile, iters: int) -> dict[tuple[str, str], float]:
    """Seconds per iteration by (op name, input shapes), self CPU time."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for ev in prof.key_averages(group_by_input_shape=True):
        out[(ev.key, str(ev.input_shapes)[:60])] += ev.self_cpu_time_total / 1e6 / iters
    return out


def build(args: argparse.Namespace) -> tuple[Any, torch.Tensor]:
    import dgp_engine as dgp

    cfg = dgp.BigGANConfig(
        resolution=args.res, G_ch=args.ch, D_ch=args.ch, dim_z=DIM_Z.get(args.res, 120)
    )
    prior = dgp.build_prior(cfg, device=torch.device("cpu"), seed=0)
    g = torch.Generator().manual_seed(1)
    target = F.interpolate(
        torch.rand(1, 3, 8, 8, generator=g) * 1.6 - 0.8, size=args.res, mode="bilinear"
    )
    return prior, dgp.Grayscale()(target).contiguous()


def apply_variant(label: str) -> str:
    """Set the bfloat16 path's switches for a variant label ("bf16", "bf16:nchw",
    "bf16:gemm64", ...); returns the precision."""
    from dgp_engine.models import spectral

    precision, *opts = label.split(":")
    spectral.BF16_CHANNELS_LAST = DEFAULTS["channels_last"]
    spectral.BF16_GEMM_MAX_PIXELS = DEFAULTS["gemm"]
    for opt in opts:
        if opt == "nchw":
            spectral.BF16_CHANNELS_LAST = False
        elif opt.startswith("gemm"):
            spectral.BF16_GEMM_MAX_PIXELS = int(opt[4:])
        else:
            raise SystemExit(f"unknown variant option {opt!r}")
    return precision


def fast_run(prior: Any, target: torch.Tensor, stage: int, precision: str, n: int) -> Any:
    import dgp_engine as dgp

    preset = dgp.Preset.from_dict(
        {
            "iterations": [n],
            "ft_num": [{1: 2, 5: 6}[stage]],
            "lr_ratio": [0.7],
            "G_lrs": [5e-5],
            "z_lrs": [2e-3],
            "w_D_loss": [1],
            "w_mse": [0],
            "ftr_num": [7],
            "select_num": 0,
        }
    )
    return iter(
        dgp.reconstruct(prior, target, "colorize", class_id=1, preset=preset, precision=precision)
    )


def bench(fn: Callable[[], Any], reps: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def microbenchmarks(reps: int) -> dict[str, float]:
    """GFLOP/s of a 2048² matmul and a 3×3 conv (384 → 384 ch, 32×32, fwd + both grads)."""
    res: dict[str, float] = {}
    for dt, tag in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        a = torch.randn(2048, 2048, dtype=dt)
        b = torch.randn(2048, 2048, dtype=dt)
        res[f"matmul 2048² {tag}"] = 2 * 2048**3 / bench(lambda a=a, b=b: a @ b, reps) / 1e9
        for cl in (False, True):
            fmt = torch.channels_last if cl else torch.contiguous_format
            x = torch.randn(1, 384, 32, 32, dtype=dt).to(memory_format=fmt)
            w = torch.randn(384, 384, 3, 3, dtype=dt).to(memory_format=fmt)
            go = torch.randn(1, 384, 32, 32, dtype=dt).to(memory_format=fmt)

            def conv(x=x, w=w, go=go) -> None:
                F.conv2d(x, w, None, 1, 1)
                torch.ops.aten.convolution_backward(
                    go, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, False]
                )

            flops = 3 * 2 * 384 * 384 * 9 * 32 * 32
            label = f"conv3x3 384ch 32² {'NHWC' if cl else 'NCHW'} {tag}"
            res[label] = flops / bench(conv, reps) / 1e9
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--ch", type=int, default=96)
    ap.add_argument("--stage", type=int, default=1, choices=(1, 5))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2, help="profiled iterations per precision")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument(
        "--top", type=int, default=0, help="also list the N heaviest ops (with input shapes)"
    )
    args = ap.parse_args()
    from torch.utils.flop_counter import FlopCounterMode

    from dgp_engine.system import runtime

    runtime.tune_allocator()
    torch.set_num_threads(args.threads)
    from dgp_engine.models import spectral

    DEFAULTS.update(channels_last=spectral.BF16_CHANNELS_LAST, gemm=spectral.BF16_GEMM_MAX_PIXELS)
    precisions = args.precisions.split(",")
    prior, target = build(args)
    runs = {
        p: fast_run(
            prior, target, args.stage, apply_variant(p), 2 + args.rounds * (args.iters + 1) + 1
        )
        for p in precisions
    }
    totals: dict[str, dict[str, float]] = {p: defaultdict(float) for p in precisions}
    wall: dict[str, float] = defaultdict(float)
    tops: dict[str, dict[tuple[str, str], float]] = {p: defaultdict(float) for p in precisions}
    for p in precisions:
        apply_variant(p)
        next(runs[p])  # warm-up iteration (and the run's set-up)
    with scoped_engine():
        for _ in range(args.rounds):
            for p in precisions:
                apply_variant(p)
                it = runs[p]
                with torch.profiler.profile(
                    activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=args.top > 0
                ) as pr:
                    t = time.perf_counter()
                    for _ in range(args.iters):
                        next(it)
                    wall[p] += (time.perf_counter() - t) / args.iters / args.rounds
                for k, v in by_kind(pr, args.iters).items():
                    totals[p][k] += v / args.rounds
                if args.top:
                    for k2, v in top_ops(pr, args.iters).items():
                        tops[p][k2] += v / args.rounds
    flops = {}
    for p in precisions:
        apply_variant(p)
        with FlopCounterMode(display=False) as fc:
            next(runs[p])
        flops[p] = fc.get_total_flops() / 1e9
    micro = microbenchmarks(reps=3)

    print(
        f"BigGAN {args.res}px ch{args.ch}, fast path stage {args.stage}, "
        f"{args.threads} thread(s), {args.iters} iteration(s) x {args.rounds} round(s) per "
        "precision, interleaved; self CPU seconds per iteration (profiled)"
    )
    print(f"{'kind':<14}" + "".join(f"{p:>10}" for p in precisions))
    for k in KINDS:
        print(f"{k:<14}" + "".join(f"{totals[p][k]:>10.3f}" for p in precisions))
    print(f"{'sum':<14}" + "".join(f"{sum(totals[p].values()):>10.3f}" for p in precisions))
    print(f"{'wall (prof.)':<14}" + "".join(f"{wall[p]:>10.3f}" for p in precisions))
    print(f"{'GFLOP/iter':<14}" + "".join(f"{flops[p]:>10.1f}" for p in precisions))
    print(
        f"{'conv+mm GF/s':<14}"
        + "".join(
            f"{flops[p] / max(1e-9, totals[p]['conv'] + totals[p]['matmul']):>10.0f}"
            for p in precisions
        )
    )
    print("microbenchmarks, same process (GFLOP/s):")
    for label, v in micro.items():
        print(f"  {label:<34}{v:>8.0f}")
    for p in precisions if args.top else ():
        print(f"heaviest ops [{p}] (self CPU s/iteration, kind, op, input shapes):")
        ranked = sorted(tops[p].items(), key=lambda kv: -kv[1])[: args.top]
        for (name, shapes), v in ranked:
            print(f"  {v:7.4f}  {kind_of(name):<11} {name:<34} {shapes}")


if __name__ == "__main__":
    main()

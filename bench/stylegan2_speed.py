#!/usr/bin/env python
"""DGP on a StyleGAN2 prior, CPU float32: seconds per iteration and peak RSS.

    python bench/stylegan2_speed.py [--iters 3] [--threads 2] [--stage first|all]
                                    [--config afhq256|ffhq1024]

Builds a StyleGAN2 G+D with random weights in the architecture of StudioGAN's AFHQv2
256 px conditional model (``reference/stylegan2_keys_studiogan_afhq256_cond.json``'s
constructor settings; ``--config afhq256``, the default) or of NVIDIA's 1024 px FFHQ
model (``stylegan2_keys_nvidia_ffhq1024.json``: unconditional, channel base 32768,
mbstd 4, conv clamp 256; ``--config ffhq1024``) and runs the colorization loop from
w_avg (no candidate selection) for ``--iters`` iterations of one stage: ``first`` tunes
the 4 px block only, ``all`` every synthesis block (the costliest stage). The first
iteration is timed apart (warm-up); the rest give the seconds per iteration (wall
time, and the process's CPU time, which other users of the machine disturb less). Peak RSS is
the process's maximum resident set (``ru_maxrss``), models included. Prints one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"
KEYS = REFERENCE / "stylegan2_keys_studiogan_afhq256_cond.json"
FFHQ_KEYS = REFERENCE / "stylegan2_keys_nvidia_ffhq1024.json"


def config_of(name: str) -> object:
    """The full-size StyleGAN2Config of ``name`` (from the reference key manifests)."""
    from dgp_engine.models import stylegan2 as sg2

    if name == "ffhq1024":
        c = json.loads(FFHQ_KEYS.read_text())["config"]
        return sg2.StyleGAN2Config(
            resolution=c["img_resolution"],
            z_dim=c["z_dim"],
            w_dim=c["w_dim"],
            c_dim=c["c_dim"],
            channel_base=c["channel_base"],
            channel_max=c["channel_max"],
            mapping_layers=c["map"],
            conv_clamp=c["conv_clamp"],
            mbstd_group_size=c["mbstd"],
        )
    kw = json.loads(KEYS.read_text())["constructor_kwargs"]
    g, d = kw["G"], kw["D"]
    return sg2.StyleGAN2Config(
        resolution=g["img_resolution"],
        z_dim=g["z_dim"],
        w_dim=g["w_dim"],
        c_dim=g["c_dim"],
        channel_base=g["synthesis_kwargs"]["channel_base"],
        channel_max=g["synthesis_kwargs"]["channel_max"],
        mapping_layers=g["mapping_kwargs"]["num_layers"],
        conv_clamp=g["synthesis_kwargs"]["conv_clamp"],
        mbstd_group_size=d["epilogue_kwargs"]["mbstd_group_size"],
        d_head="studiogan",
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stage", choices=("first", "all"), default="all")
    ap.add_argument("--config", choices=("afhq256", "ffhq1024"), default="afhq256")
    args = ap.parse_args()

    import torch

    from dgp_engine.method.presets import Preset
    from dgp_engine.method.reconstruct import reconstruct
    from dgp_engine.models import stylegan2 as sg2
    from dgp_engine.priors.load import Prior
    from dgp_engine.system.runtime import configure

    configure(args.threads)
    torch.manual_seed(0)
    cfg = config_of(args.config)
    assert isinstance(cfg, sg2.StyleGAN2Config)
    G, D = sg2.build(cfg)
    prior = Prior(G, D, cfg, name=f"random-{args.config}")
    n = len(cfg.block_resolutions)
    preset = Preset.from_dict(
        {
            "family": "stylegan2",
            "w_init": "avg",
            "iterations": [args.iters],
            "ft_num": [1 if args.stage == "first" else n],
            "G_lrs": [1e-4],
            "z_lrs": [1e-2],
            "w_D_loss": [1],
            "w_mse": [0],
            "ftr_num": [8],
            "select_num": 0,
        }
    )
    target = torch.rand(1, 3, cfg.resolution, cfg.resolution) * 2 - 1
    times, cpu = [], []
    last, last_cpu = time.perf_counter(), time.process_time()
    for report in reconstruct(
        prior, target, "colorize", class_id=0 if cfg.c_dim else None, preset=preset
    ):
        if report.phase == "optimize" and report.state is None:
            now, now_cpu = time.perf_counter(), time.process_time()
            times.append(now - last)
            cpu.append(now_cpu - last_cpu)
            last, last_cpu = now, now_cpu
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steady = times[1:] or times
    steady_cpu = cpu[1:] or cpu
    print(
        json.dumps(
            {
                "config": cfg.describe(),
                "resolution": cfg.resolution,
                "stage": args.stage,
                "threads": args.threads,
                "iterations": len(times),
                "first_s": round(times[0], 2),
                "s_per_iteration": round(sum(steady) / len(steady), 2),
                # CPU seconds of this process (all threads): less sensitive to other
                # users of a shared machine than the wall time
                "cpu_s_per_iteration": round(sum(steady_cpu) / len(steady_cpu), 2),
                "peak_rss_mib": round(rss_mib),
                "torch": torch.__version__,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Training speed of the BigGAN trainer per channel width (images/s, one D + one G step).

  python bench/train_speed.py [--res 64] [--widths 16 24 32] [--attn 0 32] [--batch 32 64]
                              [--steps 3] [--threads 1] [--json out.json]

Uses random data of the right shape, so it needs no dataset.  Run it with
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 for the numbers the
training script gets (scripts/train_bundled.sh sets them).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch


def measure(
    res: int, ch: int, attn: str, batch: int, steps: int
) -> tuple[float, float, float, float]:
    from dgp_engine.training import ImageDataset, Trainer, TrainSettings

    n = max(batch * (steps + 1), 64)
    data = ImageDataset(
        torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8), torch.arange(n) % 10, 10
    )
    settings = TrainSettings(
        resolution=res,
        ch=ch,
        batch=batch,
        steps=steps + 1,
        G_attn=attn,
        D_attn=attn,
        checkpoint_every_s=float("inf"),
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(data, settings, tmp)
        trainer.train_step()  # warm-up (allocations, first-call overheads)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            trainer.train_step()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    g = sum(p.numel() for p in trainer.G.parameters()) / 1e6
    d = sum(p.numel() for p in trainer.D.parameters()) / 1e6
    return steps * batch / dt, steps * batch / cpu, g, d


def main() -> None:
    p = argparse.ArgumentParser(description="BigGAN training speed per width")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--widths", type=int, nargs="+", default=[16, 24, 32])
    p.add_argument("--attn", nargs="+", default=["0"])
    p.add_argument("--batch", type=int, nargs="+", default=[32])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"res {args.res}, batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} (a shared machine: per CPU-second")
    print("numbers are steadier than wall-clock ones)")
    print("| ch | attn | batch | G params (M) | D params (M) | images/s | images/CPU-s |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for ch in args.widths:
        for attn in args.attn:
            for batch in args.batch:
                ips, ipc, g, d = measure(args.res, ch, attn, batch, args.steps)
                print(
                    f"| {ch} | {attn} | {batch} | {g:.2f} | {d:.2f} | {ips:.2f} | {ipc:.2f} |",
                    flush=True,
                )
                rows.append(
                    dict(
                        ch=ch,
                        attn=attn,
                        batch=batch,
                        G_M=round(g, 3),
                        D_M=round(d, 3),
                        images_per_s=round(ips, 2),
                        images_per_cpu_s=round(ipc, 2),
                    )
                )
    if args.json:
        record = dict(
            threads=args.threads,
            res=args.res,
            steps=args.steps,
            torch=str(torch.__version__),
            load_avg_1min_after=round(os.getloadavg()[0], 2),
            rows=rows,
        )
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()

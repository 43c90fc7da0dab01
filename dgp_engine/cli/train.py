"""``dgp train``: train a class-conditional BigGAN (G + D) on an image archive."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .tasks import EXIT_INTERRUPTED, cancel_on_sigint

if TYPE_CHECKING:
    from ..training import TrainSettings

# option name → TrainSettings field; None on the command line means "keep the default,
# or what the checkpoint was trained with when resuming".
_OPTIONS = {
    "res": "resolution",
    "ch": "ch",
    "batch": "batch",
    "steps": "steps",
    "lr_g": "lr_g",
    "lr_d": "lr_d",
    "ema_decay": "ema_decay",
    "attn": None,
    "augment": "augment",
    "seed": "seed",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a BigGAN prior (generator + discriminator) on an .npz archive",
        description="Train a class-conditional BigGAN with hinge loss, EMA generator and "
        "differentiable augmentation. Checkpoints (every --checkpoint-minutes and "
        "at the end) allow an exact --resume; they are kept in the user cache "
        "(one folder per --out), or in --state-dir.",
    )
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help=".npz with images (uint8 N×H×W×3) and labels (0..n_classes-1)",
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (samples, train.log)")
    p.add_argument(
        "--state-dir",
        type=Path,
        help="folder of the resume state (checkpoint.pt, tens of MB; default: "
        "the user cache's training/ folder, one folder per --out)",
    )
    p.add_argument("--res", type=int, help="resolution in px (default 64)")
    p.add_argument("--ch", type=int, help="G and D channel width, multiple of 8 (default 16)")
    p.add_argument("--batch", type=int, help="batch size (default 32)")
    p.add_argument("--steps", type=int, help="total steps to reach (default 10000)")
    p.add_argument("--lr-g", type=float, help="generator learning rate (default 1e-4)")
    p.add_argument("--lr-d", type=float, help="discriminator learning rate (default 4e-4)")
    p.add_argument("--ema-decay", type=float, help="EMA decay of G (default 0.999)")
    p.add_argument("--attn", help="attention resolutions for G and D, e.g. 32 or 0 (default 0)")
    p.add_argument(
        "--augment", help="DiffAugment policy (default color,translation,cutout; '' for none)"
    )
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: cores − 1)")
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=10.0,
        help="minutes between checkpoints (default 10)",
    )
    p.add_argument("--log-every", type=int, default=10, help="print progress every N steps")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run of --out from its resume state (found again in the "
        "user cache, or pass the same --state-dir)",
    )
    p.set_defaults(func=run_train)


def _state_dir(args: argparse.Namespace) -> Path:
    from ..training.trainer import default_state_dir

    return Path(args.state_dir) if args.state_dir is not None else default_state_dir(args.out)


def _settings(args: argparse.Namespace) -> TrainSettings:
    from ..training import TrainSettings
    from ..training.trainer import CHECKPOINT_NAME, read_checkpoint

    base = TrainSettings()
    if args.resume:
        saved = read_checkpoint(_state_dir(args) / CHECKPOINT_NAME)["settings"]
        known = {f.name for f in dataclasses.fields(TrainSettings)}
        base = TrainSettings(**{k: v for k, v in saved.items() if k in known})
    changes = {
        field: getattr(args, opt)
        for opt, field in _OPTIONS.items()
        if field and getattr(args, opt) is not None
    }
    if args.attn is not None:
        changes["G_attn"] = changes["D_attn"] = args.attn
    changes["checkpoint_every_s"] = args.checkpoint_minutes * 60.0
    return base.replace(**changes)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from ..training import Trainer, load_npz
    from ..training.trainer import format_duration

    threads = args.threads or max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(threads)
    settings = _settings(args)
    data = load_npz(args.data, resolution=settings.resolution)
    cancel = threading.Event()
    trainer = Trainer(
        data,
        settings,
        args.out,
        device=args.device,
        resume=args.resume,
        cancel=cancel,
        state_dir=_state_dir(args),
    )
    log_file = args.out / "train.log"
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = trainer.config
    n_g = sum(p.numel() for p in trainer.G.parameters()) / 1e6
    n_d = sum(p.numel() for p in trainer.D.parameters()) / 1e6
    head = (
        f"{'resuming' if args.resume else 'training'} {cfg.describe()} "
        f"(G {n_g:.2f} M, D {n_d:.2f} M params) on {len(data)} images from {args.data}; "
        f"step {trainer.step} → {settings.steps}, batch {settings.batch}, "
        f"device {trainer.device}, {threads} thread(s); resume state in "
        f"{trainer.state_dir}"
    )
    _emit(head, log_file)
    report = None

    def stopping() -> None:
        _emit(
            "Stopping after this step and saving a checkpoint… (Ctrl-C again to abort "
            "without saving)",
            log_file,
        )

    with cancel_on_sigint(cancel, stopping, also_sigterm=True):
        for report in trainer.run():
            if (
                report.step % args.log_every == 0
                or report.checkpoint
                or report.step == report.total
            ):
                _emit(
                    f"{time.strftime('%H:%M:%S')} {report.line()} | seen "
                    f"{report.images_seen} | trained {format_duration(report.elapsed_s)}",
                    log_file,
                )
            if report.checkpoint:
                _emit(f"checkpoint {report.checkpoint}; samples {report.grid}", log_file)
    if cancel.is_set():
        _emit(f"stopped at step {trainer.step}; continue with --resume", log_file)
        return EXIT_INTERRUPTED
    if report is None:
        _emit(
            f"nothing to do: the run is already at step {trainer.step} of {settings.steps}",
            log_file,
        )
    return 0


def _emit(line: str, log_file: Path) -> None:
    print(line, flush=True)
    with open(log_file, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    logging.getLogger(__name__).debug(line)


if __name__ == "__main__":  # pragma: no cover
    from . import main

    sys.exit(main(["train", *sys.argv[1:]]))

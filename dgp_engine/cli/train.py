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
    from ..training import Evaluator, ImageDataset, TrainSettings

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
    "accumulate": "accumulate",
    "d_steps": "d_steps",
    "lecam": "lecam",
    "lecam_decay": "lecam_decay",
    "ada_target": "ada_target",
    "ada_kimg": None,
    "eval_samples": None,
    "max_cpu_hours": "max_cpu_hours",
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
    p.add_argument(
        "--accumulate",
        type=int,
        help="split each batch into N micro-batches for D (gradient accumulation: the same "
        "gradients as the whole batch, less memory; default 1)",
    )
    p.add_argument("--d-steps", type=int, help="D steps per G step (default 1)")
    p.add_argument(
        "--lecam",
        type=float,
        help="LeCam regularisation weight of D (0 = off, the default; e.g. 0.3)",
    )
    p.add_argument("--lecam-decay", type=float, help="EMA decay of LeCam's anchors (default 0.99)")
    p.add_argument(
        "--ada-target",
        type=float,
        help="adaptive augmentation: each --augment transform is applied with a "
        "probability p raised while the mean sign of D's real outputs is above this "
        "target and lowered below it (e.g. 0.6; 0 = always apply, the default)",
    )
    p.add_argument(
        "--ada-kimg",
        type=float,
        help="thousands of images over which p can move by 1 (default 100)",
    )
    p.add_argument(
        "--eval-classifier",
        type=Path,
        help="score every checkpoint with this classifier (.safetensors with its .json, "
        "e.g. resources/models/bundled/eval_classifier.safetensors): a scoreboard beside "
        "the resume state. The classifier's held-out images are held out of training "
        "too and are the scoreboard's real reference (give it again with --resume)",
    )
    p.add_argument(
        "--eval-samples",
        type=int,
        default=5000,
        help="generated samples scored per checkpoint (default 5000)",
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
    p.add_argument(
        "--max-cpu-hours",
        type=float,
        help="stop with a checkpoint once training has used this many CPU-hours "
        "(this process's CPU time on a CPU, wall time on a GPU; all sittings together; "
        "scoring not counted; default: no limit)",
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
    if args.ada_kimg is not None:
        changes["ada_speed"] = max(1, int(round(args.ada_kimg * 1000)))
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
    evaluator = None
    if args.eval_classifier is not None:
        data, evaluator = _evaluation(args.eval_classifier, data, args.eval_samples)
    cancel = threading.Event()
    trainer = Trainer(
        data,
        settings,
        args.out,
        device=args.device,
        resume=args.resume,
        cancel=cancel,
        state_dir=_state_dir(args),
        evaluator=evaluator,
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
            if report.score:
                shown = ("accuracy", "fid_val", "kid_val", "fid_train", "cpu_hours")
                _emit(
                    f"scoreboard step {report.step}: "
                    + ", ".join(f"{k} {report.score.get(k)}" for k in shown),
                    log_file,
                )
    if cancel.is_set():
        _emit(f"stopped at step {trainer.step}; continue with --resume", log_file)
        return EXIT_INTERRUPTED
    if trainer.budget_spent():
        _emit(
            f"CPU budget of {settings.max_cpu_hours:g} h spent at step {trainer.step}; "
            "give a larger --max-cpu-hours with --resume to go on",
            log_file,
        )
    elif report is None:
        _emit(
            f"nothing to do: the run is already at step {trainer.step} of {settings.steps}",
            log_file,
        )
    return 0


def _evaluation(
    classifier: Path, data: ImageDataset, samples: int
) -> tuple[ImageDataset, Evaluator]:
    """The training part of ``data`` and the scoreboard's evaluator: the classifier's
    held-out images (listed in its .json) are the real reference and are not trained on."""
    import json

    from ..training import Evaluator
    from ..training.classifier import load_classifier
    from ..training.errors import TrainingError

    info_file = classifier.with_suffix(".json")
    try:
        model = load_classifier(classifier)
        held = json.loads(info_file.read_text(encoding="utf-8"))["holdout_indices"]
    except Exception as exc:  # damaged files raise many kinds (safetensors' own too)
        raise TrainingError(
            f"could not read the evaluation classifier {classifier} with its held-out "
            f"list {info_file.name} ({exc})"
        ) from exc
    if model.n_classes != data.n_classes:
        raise TrainingError(
            f"the evaluation classifier knows {model.n_classes} classes; the dataset has "
            f"{data.n_classes}"
        )
    if samples < 2:
        raise TrainingError("--eval-samples must be at least 2")
    train, val = data.split([int(i) for i in held])
    return train, Evaluator.build(model, val, train, samples=samples)


def _emit(line: str, log_file: Path) -> None:
    print(line, flush=True)
    with open(log_file, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    logging.getLogger(__name__).debug(line)


if __name__ == "__main__":  # pragma: no cover
    from . import main

    sys.exit(main(["train", *sys.argv[1:]]))

"""BigGAN training (hinge loss, TTUR Adam, EMA of G, DiffAugment or adaptive augmentation,
LeCam regularisation, gradient accumulation, several D steps per G step) with exact resume
and a scoreboard of every checkpoint.

``Trainer.run()`` is an iterator of ``TrainReport`` objects, one per step, and
checks a cancel ``threading.Event`` between steps (the engine's convention for
long work).  A checkpoint holds everything the next step depends on — weights,
EMA, both optimisers, the random generator, the data order and the step — so
N steps in one go and N/2 + resume + N/2 give bit-identical weights (same
device and thread count).

The checkpoint (the resume state, tens of MB) lives in the run's state folder: by default,
for ``dgp train``, one per run folder in the user cache (:func:`default_state_dir`), so
it never lands in a repository or beside the samples one shares.  Beside it: a snapshot
of every checkpoint's EMA G and D (``snapshots/``, what an export ships) and, with an
:class:`~.scoreboard.Evaluator`, the scoreboard (``scoreboard.json``/``.csv``/``.md``).

Kill safety: every file is written atomically, in the order snapshot → checkpoint →
scoreboard row, and a resumed run first scores any snapshot that has no row yet, so a
run killed at any moment loses at most the steps since its last checkpoint.

Gradient accumulation (``accumulate`` = k) splits only D's work into k micro-batches:
G renders the whole batch at once (its batch norm sees the same batch as without
accumulation), the augmentation draws for the whole batch, and D's spectral-norm
vectors are put back before each micro-batch, so k micro-batches give the gradients of
one large batch (up to float summation order).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DeviceError
from ..models import BigGANConfig, Discriminator, Generator, orthogonal_init
from ..system import paths
from ..system.fileio import atomic_path
from .augment import ada_adjust, adaptive_augment, diff_augment, hflip, parse_policy
from .data import EpochSampler, ImageDataset
from .ema import GeneratorEMA
from .errors import DivergenceError, ResumeError, TrainingError
from .scoreboard import SCOREBOARD_NAME, SNAPSHOT_FORMAT, Evaluator, Scoreboard, shipped_generator

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "dgp-studio-biggan-train/1"
CHECKPOINT_NAME = "checkpoint.pt"
SNAPSHOT_DIR = "snapshots"
# Settings that define the networks: a checkpoint can only resume if they agree.
ARCHITECTURE_FIELDS = ("resolution", "ch", "dim_z", "shared_dim", "G_attn", "D_attn")


@dataclass(frozen=True)
class TrainSettings:
    resolution: int = 64
    ch: int = 16
    batch: int = 32
    steps: int = 10_000
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.999
    adam_eps: float = 1e-6
    ema_decay: float = 0.999
    dim_z: int = 120
    shared_dim: int = 128
    G_attn: str = "0"
    D_attn: str = "0"
    augment: str = "color,translation,cutout"
    flip: bool = True
    seed: int = 0
    checkpoint_every_s: float = 600.0
    checkpoint_every: int = 0  # steps; 0 = by time only
    # Standing BN statistics of the EMA G, as exported (the scoreboard scores that G).
    standing_batches: int = 64
    standing_batch: int = 32
    grid_columns: int = 8  # fixed latents of the sample grid (one row each, a column per class)
    # Effective batch = ``batch``, split for D into ``accumulate`` micro-batches.
    accumulate: int = 1
    d_steps: int = 1  # D steps (each on a new real batch) per G step
    # LeCam regularisation of D (weight; 0 = off) towards EMA anchors of its outputs.
    lecam: float = 0.0
    lecam_decay: float = 0.99
    # Adaptive augmentation: 0 = the policy always on (DiffAugment); else the target of
    # the mean sign of D's real outputs, p adjusted every ``ada_interval`` D steps so
    # that ``ada_speed`` images move it by 1.
    ada_target: float = 0.0
    ada_speed: int = 100_000
    ada_interval: int = 4
    ada_p0: float = 0.0
    # Stop (with a checkpoint) once training has used this many CPU-hours (on a CPU the
    # process's CPU time during training steps, so other work on a shared machine is not
    # charged to the budget; on a GPU wall time; over all sittings); 0 = no limit.
    max_cpu_hours: float = 0.0

    def model_config(self, n_classes: int) -> BigGANConfig:
        return BigGANConfig(
            resolution=self.resolution,
            G_ch=self.ch,
            D_ch=self.ch,
            dim_z=self.dim_z,
            shared_dim=self.shared_dim,
            hier=True,
            n_classes=n_classes,
            G_attn=self.G_attn,
            D_attn=self.D_attn,
        )

    def replace(self, **changes: Any) -> TrainSettings:
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """One sentence for settings that cannot train."""
        if self.batch < 1 or self.accumulate < 1 or self.batch % self.accumulate:
            raise TrainingError(
                f"batch {self.batch} does not split into {self.accumulate} equal "
                "micro-batches; give a batch that --accumulate divides"
            )
        if self.d_steps < 1:
            raise TrainingError(f"D steps per G step must be at least 1, got {self.d_steps}")
        if self.lecam < 0 or not 0 <= self.lecam_decay < 1:
            raise TrainingError("LeCam weight must be ≥ 0 and its EMA decay in [0, 1)")
        if not 0 <= self.ada_target < 1 or self.ada_speed < 1 or self.ada_interval < 1:
            raise TrainingError(
                "adaptive augmentation needs a target in [0, 1) (0 = off), a speed ≥ 1 "
                "image and an interval ≥ 1 step"
            )


@dataclass(frozen=True)
class TrainReport:
    step: int
    total: int
    loss_d_real: float
    loss_d_fake: float
    loss_g: float
    images_seen: int
    images_per_s: float
    eta_s: float
    elapsed_s: float
    checkpoint: Path | None = None
    grid: Path | None = None
    score: dict[str, Any] | None = None  # the scoreboard row of this checkpoint

    def line(self) -> str:
        return (
            f"step {self.step}/{self.total} | D real {self.loss_d_real:.3f} "
            f"fake {self.loss_d_fake:.3f} | G {self.loss_g:.3f} | "
            f"{self.images_per_s:.1f} img/s | ETA {format_duration(self.eta_s)}"
        )


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}; use cpu, cuda, cuda:N, mps or auto") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA GPU is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("MPS was requested but is not available; use --device cpu")
    return device


def default_state_dir(out_dir: str | Path) -> Path:
    """The user-cache folder holding the resume state of the run whose folder is
    ``out_dir``: named after it, with a digest of its full path so that runs of the same
    name elsewhere do not meet, and the same ``--out`` finds its state again."""
    out = Path(os.path.abspath(Path(out_dir).expanduser()))
    digest = hashlib.sha256(str(out).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return paths.training_dir() / f"{out.name or 'run'}-{digest}"


def read_checkpoint(path: Path, snapshot: bool = False) -> dict[str, Any]:
    """A resume state; with ``snapshot``, also a snapshot (EMA G + D of one checkpoint)."""
    if not path.is_file():
        raise ResumeError(
            f"no training checkpoint at {path}; start without --resume, or "
            "give the --out (and --state-dir, if it had one) of the run to "
            "continue"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged/truncated files raise many kinds
        raise ResumeError(
            f"could not read the training checkpoint {path} ({exc}); "
            "it is damaged or not a DGP Studio training checkpoint"
        ) from exc
    formats = (CHECKPOINT_FORMAT, SNAPSHOT_FORMAT) if snapshot else (CHECKPOINT_FORMAT,)
    if not isinstance(ckpt, dict) or ckpt.get("format") not in formats:
        raise ResumeError(
            f"{path} is not a DGP Studio training checkpoint (expected format {CHECKPOINT_FORMAT})"
        )
    return ckpt


def check_resumable(
    ckpt: dict[str, Any], settings: TrainSettings, n_classes: int, n_images: int
) -> None:
    saved = ckpt["settings"]
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r} vs requested {getattr(settings, k)!r}"
        for k in ARCHITECTURE_FIELDS
        if saved.get(k) != getattr(settings, k)
    ]
    if ckpt["model_config"]["n_classes"] != n_classes:
        diffs.append(
            f"n_classes: checkpoint {ckpt['model_config']['n_classes']} vs dataset {n_classes}"
        )
    if int(ckpt["data"]["n_images"]) != n_images:
        diffs.append(
            f"images: checkpoint trained on {ckpt['data']['n_images']}, dataset has {n_images}"
        )
    if diffs:
        raise ResumeError(
            "the checkpoint does not match this run ("
            + "; ".join(diffs)
            + "). Resume with the settings it was trained with, or use a new --out."
        )


class Trainer:
    def __init__(
        self,
        dataset: ImageDataset,
        settings: TrainSettings,
        out_dir: str | Path,
        device: str | torch.device = "cpu",
        resume: bool = False,
        cancel: threading.Event | None = None,
        state_dir: str | Path | None = None,
        evaluator: Evaluator | None = None,
    ):
        """``out_dir`` gets the sample grids (and a copy of the scoreboard's Markdown);
        ``state_dir`` (default ``out_dir``) the checkpoint that ``resume`` continues
        from, the snapshots and, with an ``evaluator``, the scoreboard."""
        settings.check()
        self.data = dataset
        self.settings = settings
        self.evaluator = evaluator
        self.out = Path(out_dir)
        self.state_dir = Path(state_dir) if state_dir is not None else self.out
        self.device = resolve_device(str(device))
        self.cancel = cancel or threading.Event()
        self.policy = parse_policy(settings.augment)
        if dataset.resolution != settings.resolution:
            raise TrainingError(
                f"the dataset is {dataset.resolution}px; the run is set to {settings.resolution}px"
            )
        self.config = settings.model_config(dataset.n_classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.G = Generator(self.config)
            self.D = Discriminator(self.config)
            orthogonal_init(self.G)
            orthogonal_init(self.D)
        self.G.to(self.device).train()
        self.D.to(self.device).train()
        betas = (float(settings.beta1), float(settings.beta2))
        self.opt_G = torch.optim.Adam(
            self.G.parameters(), lr=settings.lr_g, betas=betas, eps=settings.adam_eps
        )
        self.opt_D = torch.optim.Adam(
            self.D.parameters(), lr=settings.lr_d, betas=betas, eps=settings.adam_eps
        )
        self.ema = GeneratorEMA(self.G, settings.ema_decay)
        self.gen = torch.Generator().manual_seed(settings.seed + 1)
        self.sampler = EpochSampler(len(dataset), self.gen)
        self.step = 0
        self.images_seen = 0
        self.elapsed_s = 0.0  # training wall time (scoring excluded)
        self.cpu_s = 0.0  # CPU time of the training steps (see max_cpu_hours)
        self.last_checkpoint: Path | None = None
        # LeCam anchors: EMA of D's mean output on real and on generated images.
        self.anchor_real: float | None = None
        self.anchor_fake: float | None = None
        self.ada_p = float(settings.ada_p0)
        self._ada_sign_sum = 0.0
        self._ada_count = 0
        self._ada_steps = 0
        if not resume and (
            (self.state_dir / CHECKPOINT_NAME).exists()
            or (self.state_dir / SCOREBOARD_NAME).exists()
        ):
            raise TrainingError(
                f"{self.state_dir} already holds a run (its checkpoint or scoreboard); "
                "continue it with --resume, or start the new run with another --out "
                "(or --state-dir)"
            )
        self.scoreboard = Scoreboard(self.state_dir, copy_to=self.out)
        if resume:
            self.load(self.state_dir / CHECKPOINT_NAME)

    # --- one step -------------------------------------------------------------
    def _noise(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.G.dim_z, generator=self.gen).to(self.device)
        y = torch.randint(0, self.config.n_classes, (n,), generator=self.gen).to(self.device)
        return z, y

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.settings.ada_target > 0:
            return adaptive_augment(x, self.policy, self.ada_p, self.gen)
        return diff_augment(x, self.policy, self.gen)

    def _micro_batches(self) -> list[slice]:
        m = self.settings.batch // self.settings.accumulate
        return [slice(i * m, (i + 1) * m) for i in range(self.settings.accumulate)]

    def d_step(self) -> tuple[float, float]:
        """One D update on a new real batch; returns the hinge losses (real, fake)."""
        s = self.settings
        B = s.batch
        x, y = self.data.batch(self.sampler.next(B))
        x, y = x.to(self.device), y.to(self.device)
        if s.flip:
            x = hflip(x, self.gen)
        z, y_fake = self._noise(B)
        with torch.no_grad():
            fake = self.G(z, self.G.shared(y_fake))
        both = self._augment(torch.cat([x, fake]))  # one draw for the whole batch
        real_in, fake_in = both[:B], both[B:]
        use_lecam = s.lecam > 0 and self.anchor_real is not None
        self.opt_D.zero_grad(set_to_none=True)
        sn = _spectral_vectors(self.D)
        stats = torch.zeros(5, dtype=torch.float64)  # hinge r, hinge f, Σ D(r), Σ D(f), Σ sign
        for i, part in enumerate(self._micro_batches()):
            if i:
                _restore(sn)
            m = part.stop - part.start
            out, _ = self.D(
                torch.cat([real_in[part], fake_in[part]]), torch.cat([y[part], y_fake[part]])
            )
            out_real, out_fake = out[:m].flatten(), out[m:].flatten()
            loss_real = F.relu(1.0 - out_real).sum() / B
            loss_fake = F.relu(1.0 + out_fake).sum() / B
            loss = loss_real + loss_fake
            if use_lecam:
                loss = loss + s.lecam * lecam_term(
                    out_real,
                    out_fake,
                    float(self.anchor_real or 0.0),
                    float(self.anchor_fake or 0.0),
                    B,
                )
            loss.backward()
            with torch.no_grad():
                stats += torch.stack(
                    [
                        loss_real.detach(),
                        loss_fake.detach(),
                        out_real.sum(),
                        out_fake.sum(),
                        out_real.sign().sum(),
                    ]
                ).double()
        self.opt_D.step()
        mean_real, mean_fake = float(stats[2]) / B, float(stats[3]) / B
        self.anchor_real, self.anchor_fake = (
            ema_anchor(self.anchor_real, mean_real, s.lecam_decay),
            ema_anchor(self.anchor_fake, mean_fake, s.lecam_decay),
        )
        if s.ada_target > 0:
            self._ada_sign_sum += float(stats[4])
            self._ada_count += B
            self._ada_steps += 1
            if self._ada_steps % s.ada_interval == 0:
                self.ada_p = ada_adjust(
                    self.ada_p,
                    self._ada_sign_sum / self._ada_count,
                    s.ada_target,
                    self._ada_count,
                    s.ada_speed,
                )
                self._ada_sign_sum, self._ada_count = 0.0, 0
        self.images_seen += B
        return float(stats[0]), float(stats[1])

    def g_step(self) -> float:
        """One G update; D's micro-batches pass their input gradients back to one
        backward through the augmentation and G."""
        B = self.settings.batch
        z, y_g = self._noise(B)
        fake = self._augment(self.G(z, self.G.shared(y_g)))
        detached = fake.detach()
        grad = torch.zeros_like(detached)
        loss_g = 0.0
        self.D.requires_grad_(False)  # D's weights are fixed here, so skip their gradients
        try:
            sn = _spectral_vectors(self.D)
            for i, part in enumerate(self._micro_batches()):
                if i:
                    _restore(sn)
                piece = detached[part].requires_grad_(True)
                out, _ = self.D(piece, y_g[part])
                loss = -out.sum() / B
                loss.backward()
                assert piece.grad is not None
                grad[part] = piece.grad
                loss_g += float(loss.detach())
        finally:
            self.D.requires_grad_(True)
        self.opt_G.zero_grad(set_to_none=True)
        fake.backward(grad)
        self.opt_G.step()
        return loss_g

    def train_step(self) -> tuple[float, float, float]:
        for _ in range(self.settings.d_steps):
            loss_real, loss_fake = self.d_step()
        loss_g = self.g_step()
        self.ema.update(self.G, self.step)
        self.step += 1
        return loss_real, loss_fake, loss_g

    # --- the loop -------------------------------------------------------------
    def run(self) -> Iterator[TrainReport]:
        s = self.settings
        self.score_pending()
        start_step = self.step
        session_s = 0.0
        last_ckpt_t = time.perf_counter()
        on_cpu = self.device.type == "cpu"
        while self.step < s.steps and not self.cancel.is_set() and not self.budget_spent():
            t_step, cpu_step = time.perf_counter(), time.process_time()
            losses = self.train_step()
            now = time.perf_counter()
            session_s += now - t_step
            self.elapsed_s += now - t_step
            # process time counts every thread of this process (torch's included) and
            # nothing of the other programs sharing the cores
            self.cpu_s += time.process_time() - cpu_step if on_cpu else now - t_step
            if not all(math.isfinite(v) for v in losses):
                where = (
                    f"the last good checkpoint (step {self._saved_step()}) is kept at "
                    f"{self.state_dir / CHECKPOINT_NAME}"
                    if self._saved_step() is not None
                    else "no checkpoint had been written yet"
                )
                raise DivergenceError(
                    f"training diverged at step {self.step}: losses D real {losses[0]}, "
                    f"D fake {losses[1]}, G {losses[2]}. Stopped; {where}. Resume from it "
                    "with lower learning rates (--lr-g/--lr-d), or start again."
                )
            ckpt = grid = None
            score = None
            due = (
                now - last_ckpt_t >= s.checkpoint_every_s
                or (s.checkpoint_every and self.step % s.checkpoint_every == 0)
                or self.step == s.steps
                or self.cancel.is_set()
                or self.budget_spent()
            )
            if due:
                ckpt = self.save()
                score, grid = self.score(self.step)
                last_ckpt_t = time.perf_counter()
            per_step = s.batch * s.d_steps
            rate = (self.step - start_step) * per_step / max(session_s, 1e-9)
            eta = (s.steps - self.step) * per_step / rate if rate > 0 else float("inf")
            yield TrainReport(
                self.step,
                s.steps,
                *losses,
                images_seen=self.images_seen,
                images_per_s=rate,
                eta_s=eta,
                elapsed_s=self.elapsed_s,
                checkpoint=ckpt,
                grid=grid,
                score=score,
            )
        if self.cancel.is_set() and self._saved_step() != self.step and self.step > start_step:
            self.save()
            self.score(self.step)

    def budget_spent(self) -> bool:
        limit = self.settings.max_cpu_hours
        return limit > 0 and self.cpu_s >= limit * 3600.0

    # --- scoreboard -----------------------------------------------------------
    def snapshot_path(self, step: int) -> Path:
        return self.state_dir / SNAPSHOT_DIR / f"step_{step:07d}.pt"

    def score_pending(self) -> None:
        """Score the snapshots a killed run left without a scoreboard row (at most the
        last one, unless scoring itself was interrupted several times)."""
        folder = self.state_dir / SNAPSHOT_DIR
        if self.evaluator is None or not folder.is_dir():
            return
        done = {int(r["step"]) for r in self.scoreboard.rows}
        for path in sorted(folder.glob("step_*.pt")):
            step = int(path.stem.split("_")[1])
            if step not in done and step <= self.step:
                self.score(step)

    def score(self, step: int) -> tuple[dict[str, Any] | None, Path]:
        """The sample grid of the snapshot of ``step`` and, with an evaluator, its
        scoreboard row (written before returning)."""
        snap = read_checkpoint(self.snapshot_path(step), snapshot=True)
        G = shipped_generator(snap, self.device)
        grid = self.out / "samples" / f"step_{step:07d}.png"
        grid.parent.mkdir(parents=True, exist_ok=True)
        write_png(grid, sample_grid(G, self.settings.grid_columns, seed=0, classes_as_columns=True))
        if self.evaluator is None:
            return None, grid
        t0 = time.perf_counter()
        metrics = self.evaluator.evaluate(G)
        row: dict[str, Any] = {
            "step": step,
            "images_seen": int(snap["images_seen"]),
            "epochs": round(int(snap["images_seen"]) / max(1, len(self.data)), 3),
            "train_hours": round(float(snap["elapsed_s"]) / 3600.0, 4),
            "cpu_hours": round(float(snap.get("cpu_s", snap["elapsed_s"])) / 3600.0, 4),
            **metrics,
            "ada_p": snap.get("ada_p"),
            "eval_seconds": round(time.perf_counter() - t0, 1),
            "grid": str(grid.relative_to(self.out)),
            "snapshot": str(self.snapshot_path(step).relative_to(self.state_dir)),
        }
        self.scoreboard.add(row)
        log.info("scoreboard at step %d: %s", step, row)
        return row, grid

    # --- checkpoints ----------------------------------------------------------
    def _saved_step(self) -> int | None:
        return getattr(self, "_last_saved_step", None)

    def _progress(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "settings": dataclasses.asdict(self.settings),
            "model_config": self.config.to_dict(),
            "data": {
                "n_images": len(self.data),
                "n_classes": self.data.n_classes,
                "source": self.data.source,
            },
            "step": self.step,
            "images_seen": self.images_seen,
            "elapsed_s": self.elapsed_s,
            "cpu_s": self.cpu_s,
            "ada_p": self.ada_p,
            "torch_version": str(torch.__version__),
        }

    def state(self) -> dict[str, Any]:
        return {
            **self._progress(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.ema.model.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "rng": self.gen.get_state(),
            "sampler": self.sampler.state_dict(),
            "lecam_anchors": [self.anchor_real, self.anchor_fake],
            "ada": [self._ada_sign_sum, self._ada_count, self._ada_steps],
        }

    def save(self) -> Path:
        """Snapshot (EMA G + D, what an export ships), then the resume state; both atomic."""
        (self.state_dir / SNAPSHOT_DIR).mkdir(parents=True, exist_ok=True)
        snapshot = {
            **self._progress(),
            "format": SNAPSHOT_FORMAT,
            "G_ema": self.ema.model.state_dict(),
            "D": self.D.state_dict(),
        }
        with atomic_path(self.snapshot_path(self.step)) as tmp:
            torch.save(snapshot, tmp)
        path = self.state_dir / CHECKPOINT_NAME
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)  # never leave a half-written checkpoint behind
        self._last_saved_step = self.step
        self.last_checkpoint = path
        log.info("checkpoint at step %d: %s", self.step, path)
        return path

    def load(self, path: Path) -> None:
        ckpt = read_checkpoint(path)
        check_resumable(ckpt, self.settings, self.data.n_classes, len(self.data))
        try:
            self.G.load_state_dict(ckpt["G"])
            self.D.load_state_dict(ckpt["D"])
            self.ema.model.load_state_dict(ckpt["G_ema"])
            self.opt_G.load_state_dict(ckpt["opt_G"])
            self.opt_D.load_state_dict(ckpt["opt_D"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ResumeError(f"{path} does not fit the model it claims ({exc})") from exc
        # An optimiser's state brings its old hyper-parameters with it: the run's settings
        # (which --resume may change, e.g. a lower learning rate) win, moments are kept.
        s = self.settings
        for opt, lr in ((self.opt_G, s.lr_g), (self.opt_D, s.lr_d)):
            for group in opt.param_groups:
                group.update(lr=float(lr), betas=(float(s.beta1), float(s.beta2)), eps=s.adam_eps)
        self.gen.set_state(ckpt["rng"])
        self.sampler.load_state_dict(ckpt["sampler"])
        self.step = int(ckpt["step"])
        self.images_seen = int(ckpt["images_seen"])
        self.elapsed_s = float(ckpt["elapsed_s"])
        self.cpu_s = float(ckpt.get("cpu_s", self.elapsed_s))
        self.anchor_real, self.anchor_fake = ckpt.get("lecam_anchors", [None, None])
        self.ada_p = float(ckpt.get("ada_p", self.settings.ada_p0))
        ada = ckpt.get("ada", [0.0, 0, 0])
        self._ada_sign_sum, self._ada_count, self._ada_steps = (
            float(ada[0]),
            int(ada[1]),
            int(ada[2]),
        )
        self._last_saved_step = self.step
        self.last_checkpoint = path
        log.info("resumed from %s at step %d", path, self.step)


def lecam_term(
    out_real: torch.Tensor, out_fake: torch.Tensor, anchor_real: float, anchor_fake: float, n: int
) -> torch.Tensor:
    """LeCam regulariser (Tseng et al., 2021), summed over a (micro-)batch and divided by
    the batch size ``n``: D's real outputs are pulled towards the EMA anchor of its fake
    outputs and its fake outputs towards the anchor of its real ones, which bounds how far
    apart D can push them on a small data set."""
    return ((out_real - anchor_fake) ** 2).sum() / n + ((out_fake - anchor_real) ** 2).sum() / n


def ema_anchor(anchor: float | None, value: float, decay: float) -> float:
    """The next EMA anchor; the first value starts it."""
    return value if anchor is None else decay * anchor + (1.0 - decay) * value


def _spectral_vectors(module: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(buffer, saved copy) of every spectral-norm vector that a training forward moves."""
    return [
        (b, b.detach().clone())
        for name, b in module.named_buffers()
        if name.rsplit(".", 1)[-1] in ("u0", "v0", "sv0")
    ]


def _restore(saved: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buf, copy in saved:
            buf.copy_(copy)


@torch.no_grad()
def sample_grid(
    G: Generator, columns: int = 8, seed: int = 0, classes_as_columns: bool = False
) -> np.ndarray:
    """One row per class (up to 10), ``columns`` fixed latents; uint8 H×W×3.
    ``classes_as_columns``: transposed (a row per latent, a column per class)."""
    gen = torch.Generator().manual_seed(seed)
    rows = min(G.cfg.n_classes, 10)
    device = next(G.parameters()).device
    z = torch.randn(columns, G.dim_z, generator=gen).to(device)
    was_training = G.training
    G.eval()
    imgs = []
    for c in range(rows):
        y = torch.full((columns,), c, dtype=torch.long, device=device)
        imgs.append(G(z, G.shared(y)))
    G.train(was_training)
    x = torch.stack(imgs)  # rows × cols × 3 × R × R
    if classes_as_columns:
        x = x.transpose(0, 1)
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    r, c, _, h, w = x.shape
    return x.permute(0, 3, 1, 4, 2).reshape(r * h, c * w, 3).numpy()


def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path, suffix=".part.png") as tmp:
        Image.fromarray(array).save(tmp)

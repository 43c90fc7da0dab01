"""BigGAN training (hinge loss, TTUR Adam, EMA of G, DiffAugment) with exact resume.

``Trainer.run()`` is an iterator of ``TrainReport`` objects, one per step, and
checks a cancel ``threading.Event`` between steps (the engine's convention for
long work).  A checkpoint holds everything the next step depends on — weights,
EMA, both optimisers, the random generator, the data order and the step — so
N steps in one go and N/2 + resume + N/2 give bit-identical weights (same
device and thread count).

The checkpoint (the resume state, tens of MB) lives in the run's state folder: by default,
for ``dgp train``, one per run folder in the user cache (:func:`default_state_dir`), so
it never lands in a repository or beside the samples one shares.
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
from .augment import diff_augment, hflip, parse_policy
from .data import EpochSampler, ImageDataset
from .ema import GeneratorEMA, standing_stats
from .errors import DivergenceError, ResumeError, TrainingError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "dgp-studio-biggan-train/1"
CHECKPOINT_NAME = "checkpoint.pt"
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
    standing_batches: int = 16
    standing_batch: int = 32
    grid_columns: int = 8

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


def read_checkpoint(path: Path) -> dict[str, Any]:
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
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
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
    ):
        """``out_dir`` gets the sample grids; ``state_dir`` (default ``out_dir``) the
        checkpoint that ``resume`` continues from."""
        self.data = dataset
        self.settings = settings
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
        self.elapsed_s = 0.0
        self.last_checkpoint: Path | None = None
        if resume:
            self.load(self.state_dir / CHECKPOINT_NAME)

    # --- one step -------------------------------------------------------------
    def _noise(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.G.dim_z, generator=self.gen).to(self.device)
        y = torch.randint(0, self.config.n_classes, (n,), generator=self.gen).to(self.device)
        return z, y

    def train_step(self) -> tuple[float, float, float]:
        B = self.settings.batch
        x, y = self.data.batch(self.sampler.next(B))
        x, y = x.to(self.device), y.to(self.device)
        if self.settings.flip:
            x = hflip(x, self.gen)

        # D: hinge loss on augmented real and generated images (one forward for both).
        z, y_fake = self._noise(B)
        with torch.no_grad():
            fake = self.G(z, self.G.shared(y_fake))
        out, _ = self.D(
            diff_augment(torch.cat([x, fake]), self.policy, self.gen), torch.cat([y, y_fake])
        )
        loss_real = F.relu(1.0 - out[:B]).mean()
        loss_fake = F.relu(1.0 + out[B:]).mean()
        self.opt_D.zero_grad(set_to_none=True)
        (loss_real + loss_fake).backward()
        self.opt_D.step()

        # G: D's weights are fixed here, so skip their gradients.
        self.D.requires_grad_(False)
        try:
            z, y_g = self._noise(B)
            out, _ = self.D(diff_augment(self.G(z, self.G.shared(y_g)), self.policy, self.gen), y_g)
            loss_g = -out.mean()
            self.opt_G.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_G.step()
        finally:
            self.D.requires_grad_(True)
        self.ema.update(self.G, self.step)
        self.step += 1
        self.images_seen += B
        return loss_real.item(), loss_fake.item(), loss_g.item()

    # --- the loop -------------------------------------------------------------
    def run(self) -> Iterator[TrainReport]:
        s = self.settings
        start_step, t0 = self.step, time.perf_counter()
        elapsed0 = self.elapsed_s
        last_ckpt_t = t0
        while self.step < s.steps and not self.cancel.is_set():
            losses = self.train_step()
            now = time.perf_counter()
            self.elapsed_s = elapsed0 + (now - t0)
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
            due = (
                now - last_ckpt_t >= s.checkpoint_every_s
                or (s.checkpoint_every and self.step % s.checkpoint_every == 0)
                or self.step == s.steps
                or self.cancel.is_set()
            )
            if due:
                ckpt = self.save()
                grid = self.save_grid()
                last_ckpt_t = time.perf_counter()
            rate = (self.step - start_step) * s.batch / max(now - t0, 1e-9)
            eta = (s.steps - self.step) * s.batch / rate if rate > 0 else float("inf")
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
            )
        if self.cancel.is_set() and self._saved_step() != self.step and self.step > start_step:
            self.save()

    # --- checkpoints ----------------------------------------------------------
    def _saved_step(self) -> int | None:
        return getattr(self, "_last_saved_step", None)

    def state(self) -> dict[str, Any]:
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
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.ema.model.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "rng": self.gen.get_state(),
            "sampler": self.sampler.state_dict(),
            "torch_version": str(torch.__version__),
        }

    def save(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / CHECKPOINT_NAME
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)  # never leave a half-written checkpoint behind
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
        self.gen.set_state(ckpt["rng"])
        self.sampler.load_state_dict(ckpt["sampler"])
        self.step = int(ckpt["step"])
        self.images_seen = int(ckpt["images_seen"])
        self.elapsed_s = float(ckpt["elapsed_s"])
        self._last_saved_step = self.step
        self.last_checkpoint = path
        log.info("resumed from %s at step %d", path, self.step)

    # --- samples ----------------------------------------------------------------
    def save_grid(self) -> Path:
        folder = self.out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{self.step:07d}.png"
        G = standing_stats(
            self.ema.model,
            self.settings.standing_batches,
            self.settings.standing_batch,
            torch.Generator().manual_seed(12345),
        )
        write_png(path, sample_grid(G, self.settings.grid_columns, seed=0))
        return path


@torch.no_grad()
def sample_grid(G: Generator, columns: int = 8, seed: int = 0) -> np.ndarray:
    """One row per class (up to 10), ``columns`` fixed latents; uint8 H×W×3."""
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
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    r, c, _, h, w = x.shape
    return x.permute(0, 3, 1, 4, 2).reshape(r * h, c * w, 3).numpy()


def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)

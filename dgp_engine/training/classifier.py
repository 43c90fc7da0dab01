"""A small CNN classifier of the training classes, used only to *measure* a trained prior.

No Inception weights are available offline, so sample quality is judged with a
classifier trained here on the same training split: class-conditional accuracy
of generated images, and KID/FID on its penultimate (global-pooled) features.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import ImageDataset


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SmallClassifier(nn.Module):
    """64 px → stride-2 stem, three conv stages with 2× pooling, global average pool."""

    def __init__(self, n_classes: int = 10, width: int = 24):
        super().__init__()
        w = width
        self.n_classes = n_classes
        self.width = width
        self.features = nn.Sequential(
            _block(3, w, stride=2),  # 32
            _block(w, 2 * w),
            nn.MaxPool2d(2),  # 16
            _block(2 * w, 4 * w),
            nn.MaxPool2d(2),  # 8
            _block(4 * w, 8 * w),
            nn.MaxPool2d(2),  # 4
            _block(8 * w, 8 * w),
        )
        self.head = nn.Linear(8 * w, n_classes)

    @property
    def feature_dim(self) -> int:
        return 8 * self.width

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (global average pool), for KID/FID."""
        features: torch.Tensor = self.features(x)
        return features.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.embed(x))
        return logits


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flip and ±4 px translation (reflect padding) of a batch in [-1, 1]."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    pad = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dy, dx = torch.randint(0, 9, (2,), generator=gen).tolist()
    return pad[:, :, dy : dy + h, dx : dx + w]


def train_classifier(
    data: ImageDataset,
    epochs: int = 6,
    batch: int = 64,
    lr: float = 2e-3,
    width: int = 24,
    seed: int = 0,
    holdout: float = 0.1,
    progress: Callable[[str], None] | None = None,
) -> tuple[SmallClassifier, dict[str, Any]]:
    """Train on all but a ``holdout`` fraction (stratified by shuffling), report its accuracy."""
    gen = torch.Generator().manual_seed(seed)
    n = len(data)
    perm = torch.randperm(n, generator=gen)
    n_val = int(round(n * holdout))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallClassifier(data.n_classes, width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(train_idx) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        total = correct = 0
        for i in range(steps_per_epoch):
            idx = order[i * batch : (i + 1) * batch]
            x, y = data.batch(idx)
            logits = model(_augment(x, gen))
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += len(idx)
            correct += int((logits.argmax(1) == y).sum())
        msg = f"epoch {epoch + 1}/{epochs}: train acc {correct / total:.3f}"
        if n_val:
            msg += f", held-out acc {accuracy(model, data, val_idx):.3f}"
        if progress:
            progress(f"{msg} ({time.perf_counter() - t0:.0f} s)")
    info = {
        "epochs": epochs,
        "train_images": len(train_idx),
        "holdout_images": n_val,
        "holdout_accuracy": accuracy(model, data, val_idx) if n_val else float("nan"),
        "seconds": time.perf_counter() - t0,
        "width": width,
        "seed": seed,
        "holdout_indices": val_idx,
    }
    return model.eval(), info


@torch.no_grad()
def accuracy(
    model: SmallClassifier, data: ImageDataset, index: torch.Tensor, batch: int = 256
) -> float:
    model.eval()
    hits = 0
    for i in range(0, len(index), batch):
        x, y = data.batch(index[i : i + batch])
        hits += int((model(x).argmax(1) == y).sum())
    return hits / max(1, len(index))


def save_classifier(model: SmallClassifier, path: str | Path) -> None:
    from safetensors.torch import save_file

    sd = {
        k: (v.half() if v.is_floating_point() else v).contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(
        sd, str(path), metadata={"n_classes": str(model.n_classes), "width": str(model.width)}
    )


def load_classifier(path: str | Path) -> SmallClassifier:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    model = SmallClassifier(int(meta.get("n_classes", 10)), int(meta.get("width", 24)))
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    )
    return model.eval()

"""Small models and files for tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from dgp_engine import BigGANConfig, build_prior

from .conftest import PARITY

PARITY_CONFIG = dict(
    resolution=128,
    G_ch=16,
    D_ch=16,
    dim_z=120,
    shared_dim=128,
    hier=True,
    n_classes=1000,
    G_attn="64",
    D_attn="64",
    SN_eps=1e-6,
)


def parity_folder(dest: Path) -> Path:
    """A model folder holding the reference parity weights and their config.json."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("G_ema.pth", "D.pth"):
        shutil.copy(PARITY / name, dest / name)
    (dest / "config.json").write_text(json.dumps(PARITY_CONFIG))
    return dest


TINY = BigGANConfig(
    resolution=32, G_ch=8, D_ch=8, dim_z=16, shared_dim=8, n_classes=5, G_attn="0", D_attn="0"
)


def tiny_prior(seed: int = 0):
    """A seeded random 32 px BigGAN with 5 classes (fast enough for loops in tests)."""
    return build_prior(TINY, seed=seed, name="tiny")


def smooth_target(res: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 4, 4, generator=g) * 1.6 - 0.8
    return torch.nn.functional.interpolate(
        low, size=(res, res), mode="bilinear", align_corners=False
    )

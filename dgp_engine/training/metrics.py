"""Quality of a trained prior: class-conditional accuracy and KID/FID on classifier features."""

from __future__ import annotations

import numpy as np
import torch

from ..models import Generator
from .classifier import SmallClassifier


@torch.no_grad()
def generate(
    G: Generator, per_class: int, seed: int = 0, batch: int = 100, truncation: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` images of every class (in [-1, 1], on the CPU) and their labels, G in
    eval mode (on any device; the latents are drawn on the CPU, so the same for all)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    G.eval()
    labels = torch.arange(G.cfg.n_classes).repeat_interleave(per_class)
    out = []
    for i in range(0, len(labels), batch):
        y = labels[i : i + batch]
        z = torch.randn(len(y), G.dim_z, generator=gen)
        if truncation is not None:  # resample |z| > t (truncation trick)
            bad = z.abs() > truncation
            while bad.any():
                z[bad] = torch.randn(int(bad.sum()), generator=gen)
                bad = z.abs() > truncation
        out.append(G(z.to(device), G.shared(y.to(device))).cpu())
    return torch.cat(out), labels


@torch.no_grad()
def features_and_predictions(
    model: SmallClassifier, images: torch.Tensor, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    feats, preds = [], []
    for i in range(0, len(images), batch):
        f = model.embed(images[i : i + batch])
        feats.append(f)
        preds.append(model.head(f).argmax(1))
    return torch.cat(feats).double().numpy(), torch.cat(preds).numpy()


def kid(
    a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance (unbiased MMD² with the cubic polynomial kernel
    k(x, y) = (x·y / d + 1)³), averaged over random subsets: (mean, std)."""
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    vals = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean()
        )
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean[0] if isinstance(covmean, tuple) else covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))

"""Differentiable augmentation (DiffAugment-style) for GAN training on small data sets.

The same random transform family is applied to real and generated images before
D sees them, and gradients flow through it to G, so D cannot memorise the
training set while G is not asked to reproduce the augmentations.  Every random
draw comes from an explicit ``torch.Generator`` so a resumed run repeats the
exact same augmentations.
"""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(POLICIES)}"
        )
    return names


def _rand(gen: torch.Generator, n: int, device: torch.device) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, generator=gen).to(device)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random brightness (±0.5), saturation (×0..2) and contrast (×0.5..1.5), in [-1, 1] units."""
    n = x.size(0)
    x = x + (_rand(gen, n, x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(gen, n, x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(gen, n, x.device) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; uncovered pixels become 0 (grey)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=gen).to(x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=gen).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy  # source row of each output row
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx
    valid = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)
    rows = rows.clamp(0, h - 1).expand(n, h, w)
    cols = cols.clamp(0, w - 1).expand(n, h, w)
    flat = (rows * w + cols).view(n, 1, h * w).expand(-1, x.size(1), -1)
    out = torch.gather(x.reshape(n, x.size(1), h * w), 2, flat).view_as(x)
    return out * valid.to(x.dtype)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of side ``ratio``×size at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen).to(x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (
        (rows >= cy - ch // 2)
        & (rows < cy - ch // 2 + ch)
        & (cols >= cx - cw // 2)
        & (cols < cx - cw // 2 + cw)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """Apply the named transforms in order; an empty policy returns ``x`` unchanged."""
    for name in policy:
        x = _OPS[name](x, gen)
    return x


def adaptive_augment(
    x: torch.Tensor, policy: tuple[str, ...], p: float, gen: torch.Generator
) -> torch.Tensor:
    """ADA-style: each transform of ``policy`` is applied to each image with probability
    ``p`` (the rest pass unchanged). The random draws do not depend on ``p``, so a run's
    draws stay aligned whatever the strength is."""
    for name in policy:
        apply = (torch.rand(x.size(0), generator=gen) < p).view(-1, 1, 1, 1).to(x.device)
        x = torch.where(apply, _OPS[name](x, gen), x)
    return x


def ada_adjust(p: float, sign_mean: float, target: float, images: int, speed_images: int) -> float:
    """The next augmentation strength: up when D is too sure of the real images (the mean
    sign of its real outputs is above ``target``, the overfitting heuristic of ADA), down
    when it is below; ``speed_images`` images move p by 1. Clamped to [0, 1]."""
    if sign_mean == target:
        return p
    step = images / float(speed_images)
    return min(1.0, max(0.0, p + (step if sign_mean > target else -step)))


def hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the batch (data augmentation of real images only)."""
    flip = torch.rand(x.size(0), generator=gen) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(3), x)


__all__ = [
    "POLICIES",
    "ada_adjust",
    "adaptive_augment",
    "color",
    "cutout",
    "diff_augment",
    "hflip",
    "parse_policy",
    "translation",
]

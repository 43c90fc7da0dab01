"""Exponential moving average of the generator, and BigGAN's "standing" BN statistics."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ..models.biggan import ConditionalBatchNorm, Generator, OutputBatchNorm


class GeneratorEMA:
    """``G_ema`` = decay·G_ema + (1−decay)·G for parameters; buffers are copied from G.

    The effective decay ramps up as (1+step)/(10+step) so that an EMA of a short
    run is not dominated by the random initial weights.
    """

    def __init__(self, G: Generator, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(G).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def effective_decay(self, step: int) -> float:
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, G: Generator, step: int) -> None:
        d = self.effective_decay(step)
        for p_ema, p in zip(self.model.parameters(), G.parameters(), strict=True):
            if p.requires_grad:
                p_ema.lerp_(p.detach(), 1.0 - d)
            else:  # DGP's instance-norm affine terms: not trained, keep G's values
                p_ema.copy_(p.detach())
        for b_ema, b in zip(self.model.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)


def _bn_layers(G: nn.Module) -> list[ConditionalBatchNorm | OutputBatchNorm]:
    return [m for m in G.modules() if isinstance(m, (ConditionalBatchNorm, OutputBatchNorm))]


@torch.no_grad()
def standing_stats(
    G: Generator, batches: int, batch_size: int, gen: torch.Generator, n_classes: int | None = None
) -> Generator:
    """Return a copy of ``G`` whose stored BN statistics are the exact average over
    ``batches`` batches of random (z, class) — BigGAN's "standing statistics".
    ``G`` itself (including its spectral-norm vectors) is left untouched."""
    G2 = copy.deepcopy(G)
    layers = _bn_layers(G2)
    for m in layers:
        m.stored_mean.zero_()
        m.stored_var.fill_(1.0)
    n_classes = n_classes or G2.cfg.n_classes
    device = next(G2.parameters()).device
    G2.train()
    for k in range(1, batches + 1):
        for m in layers:
            m.momentum = 1.0 / k  # cumulative average: m_k = m_{k-1} + (x_k − m_{k-1})/k
        z = torch.randn(batch_size, G2.dim_z, generator=gen).to(device)
        y = torch.randint(0, n_classes, (batch_size,), generator=gen).to(device)
        G2(z, G2.shared(y))
    for m in layers:
        m.momentum = 0.1
    # Spectral-norm vectors moved one power step per batch in train mode; restore
    # G's so that eval-mode outputs differ only by the statistics.
    for (name, b2), b in zip(G2.named_buffers(), G.buffers(), strict=True):
        if name.endswith(("u0", "sv0")):
            b2.copy_(b)
    return G2.eval()

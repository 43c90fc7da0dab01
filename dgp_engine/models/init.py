"""Weight initialisation of the BigGAN family (orthogonal, as BigGAN-PyTorch)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .spectral import sn_layers

#: Power steps that settle a fresh "fixed"-style layer's u, v on its top singular pair.
SETTLE_STEPS = 10


def orthogonal_init(net: nn.Module) -> None:
    """Orthogonal init of every conv, linear and embedding weight; biases keep defaults.

    Spectral-norm layers of the "fixed" style (StudioGAN's) then get u, v from a few
    power steps on the new weight: their sigma is u^T W v as stored, so random vectors
    would give a meaningless (even negative) sigma. "Power"-style layers refine u at
    every forward and need nothing."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)
    with torch.no_grad():
        for layer in sn_layers(net):
            if layer.sn_style == "fixed" and isinstance(layer, nn.Module):
                was_training = layer.training
                layer.train()
                for _ in range(SETTLE_STEPS):
                    layer.sigma()
                layer.train(was_training)

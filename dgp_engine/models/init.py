"""Weight initialisation of the BigGAN family (orthogonal, as BigGAN-PyTorch)."""

from __future__ import annotations

import torch.nn as nn


def orthogonal_init(net: nn.Module) -> None:
    """Orthogonal init of every conv, linear and embedding weight; biases keep defaults."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)

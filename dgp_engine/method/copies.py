"""Run-local versions of a prior's networks, so a run never touches the prior.

A reconstruction fine-tunes :func:`private_generator` (its own weights) and reads
the discriminator through :func:`frozen_view` (D's weights shared, not copied).
Everything a run sets — gradient flags, train/eval mode, cached spectral-norm
1/σ, instance-norm initialisation — lands on these objects, so any number of runs
(in any threads) can use one prior at the same time and the prior stays
bit-identical.
"""

from __future__ import annotations

import copy

import torch.nn as nn

from ..models import Generator, unfreeze_sn


def private_generator(G: Generator) -> Generator:
    """A full copy of ``G`` (weights and buffers) in eval mode, for one run to train."""
    own = copy.deepcopy(G).eval()
    unfreeze_sn(own)  # caches computed on the prior are not the run's
    own.reset_in_init()
    return own


def frozen_view(net: nn.Module) -> nn.Module:
    """``net``'s module tree over the same parameter and buffer storage, with every
    parameter ``requires_grad=False``, in eval mode and without spectral-norm caches.

    Costs no weight memory.  Only for reading: in eval mode nothing in a BigGAN
    forward writes a weight or buffer (power iteration updates ``u0`` only in
    training mode), so the storage shared with ``net`` is never written."""
    memo: dict[int, object] = {}
    for p in net.parameters():
        memo[id(p)] = nn.Parameter(p.detach(), requires_grad=False)
    for b in net.buffers():
        memo[id(b)] = b.detach()
    view = copy.deepcopy(net, memo).eval()
    unfreeze_sn(view)
    return view

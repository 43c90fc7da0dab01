"""Spectrally normalised layers with the BigGAN-PyTorch state-dict layout.

Two styles, one per checkpoint family (``BigGANConfig.sn_style``):

* ``"power"`` (BigGAN-PyTorch): the layer keeps its left singular-vector estimate
  in the buffer ``u0`` ([1, out]) and the last logged singular value in ``sv0``
  ([1]).  Every forward does one power-iteration step from ``u0`` to get sigma
  (gradients flow through sigma, not through the vectors); ``u0``/``sv0`` are only
  written in training mode.  An exact SVD would not reproduce the public checkpoints.
* ``"fixed"`` (PyTorch's own ``spectral_norm``, as StudioGAN uses it): the layer keeps
  both vectors, ``u0`` ([1, out]) and ``v0`` ([1, in]), and in eval mode sigma is
  u0ᵀ W v0 exactly as stored (no power step, no re-normalisation: StudioGAN's EMA
  generators store averaged, not unit, vectors).  Training mode does one power step
  (v, then u) and updates both, as PyTorch does.

When a layer's weight cannot change (all of D during DGP, frozen generator
groups, rendering) ``freeze_sn()`` computes 1/sigma once and the layer scales
its output instead of its weight: op(x, W/σ) + b = op(x, W)·(1/σ) + b.  No
weight-sized tensor is made per forward and none is kept (caching W/σ itself
would double the model's memory).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


class SpectralNorm:
    """Mixin for modules with a ``weight`` parameter (conv, linear, embedding)."""

    sn_eps: float
    _inv_sigma: torch.Tensor | None
    # Provided by the nn.Module the mixin is combined with (weight, training) or
    # registered as buffers by ``_init_sn`` (u0, v0, sv0).
    weight: torch.Tensor
    training: bool
    u0: torch.Tensor
    v0: torch.Tensor
    sv0: torch.Tensor

    def _init_sn(self, num_outputs: int, eps: float, style: str = "power",
                 num_inputs: int = 0) -> None:
        if style not in ("power", "fixed"):
            raise ValueError(f"unknown spectral-norm style {style!r}")
        self.sn_eps = eps
        self.sn_style = style
        self._inv_sigma = None
        # Fast path for trainable layers: op(x, W)·(1/σ(W)) instead of op(x, W/σ(W)),
        # the same function without a weight-sized W/σ kept for backward.
        self.sn_scale_output = False
        self.register_buffer("u0", torch.randn(1, num_outputs))  # type: ignore[attr-defined]
        if style == "power":
            self.register_buffer("sv0", torch.ones(1))  # type: ignore[attr-defined]
        else:
            self.register_buffer(  # type: ignore[attr-defined]
                "v0", F.normalize(torch.randn(1, num_inputs), eps=eps))
            with torch.no_grad():
                self.u0.copy_(F.normalize(self.u0, eps=eps))

    def sigma(self) -> torch.Tensor:
        """Sigma with grad through W: one power step from ``u0`` ("power"), or
        u0ᵀ W v0 from the stored vectors ("fixed")."""
        w_mat = self.weight.view(self.weight.size(0), -1)
        if self.sn_style == "fixed":
            if self.training:
                with torch.no_grad():
                    v = F.normalize(torch.mv(w_mat.t(), self.u0[0]), dim=0, eps=self.sn_eps)
                    u = F.normalize(torch.mv(w_mat, v), dim=0, eps=self.sn_eps)
                    self.v0.copy_(v.unsqueeze(0))
                    self.u0.copy_(u.unsqueeze(0))
            return torch.dot(self.u0[0], torch.mv(w_mat, self.v0[0]))
        with torch.no_grad():
            v = F.normalize(torch.matmul(self.u0, w_mat), eps=self.sn_eps)
            u = F.normalize(torch.matmul(v, w_mat.t()), eps=self.sn_eps)
            if self.training:
                self.u0.copy_(u)
        sv = torch.squeeze(torch.matmul(torch.matmul(v, w_mat.t()), u.t()))
        if self.training:
            with torch.no_grad():
                self.sv0.copy_(sv)
        return sv

    @property
    def sn_frozen(self) -> bool:
        return self._inv_sigma is not None

    def sn_weight(self) -> torch.Tensor:
        return self.weight / self.sigma()

    def freeze_sn(self) -> None:
        """Cache 1/sigma; valid until ``unfreeze_sn`` (the weight must not change)."""
        with torch.no_grad():
            self._inv_sigma = None
            self._inv_sigma = (1.0 / self.sigma()).detach().clone()

    def unfreeze_sn(self) -> None:
        self._inv_sigma = None

    def _output_scale(self) -> torch.Tensor | None:
        """1/σ to multiply the output by, or None to use W/σ as the weight."""
        if self._inv_sigma is not None:
            return self._inv_sigma
        if self.sn_scale_output:
            return 1.0 / self.sigma()
        return None

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Any:
        # The cache does not follow .to(): recompute.  nn.Module._apply is untyped (Any).
        self._inv_sigma = None
        return super()._apply(fn, recurse)  # type: ignore[misc]  # mixin: the Module is next in the MRO


def _add_bias(out: torch.Tensor, bias: torch.Tensor | None, channel_dim: int) -> torch.Tensor:
    if bias is None:
        return out
    shape = [1] * out.dim()
    shape[channel_dim] = -1
    return out + bias.view(shape)


class SNConv2d(SpectralNorm, nn.Conv2d):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 1,
                 bias: bool = True, eps: float = 1e-6, style: str = "power"):
        nn.Conv2d.__init__(self, in_ch, out_ch, kernel_size, padding=padding, bias=bias)
        self._init_sn(out_ch, eps, style, in_ch * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self._output_scale()
        if scale is not None:
            out = F.conv2d(x, self.weight, None, self.stride, self.padding) * scale
            return _add_bias(out, self.bias, 1)
        return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding)


class SNLinear(SpectralNorm, nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 eps: float = 1e-6, style: str = "power"):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_sn(out_features, eps, style, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self._output_scale()
        if scale is not None:
            return _add_bias(F.linear(x, self.weight) * scale, self.bias, -1)
        return F.linear(x, self.sn_weight(), self.bias)


class SNEmbedding(SpectralNorm, nn.Embedding):
    """Spectral-normed embedding; ``num_embeddings`` is the 'out' dimension."""

    def __init__(self, num_embeddings: int, embedding_dim: int, eps: float = 1e-6,
                 style: str = "power"):
        nn.Embedding.__init__(self, num_embeddings, embedding_dim)
        self._init_sn(num_embeddings, eps, style, embedding_dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        scale = self._output_scale()
        if scale is not None:
            return F.embedding(y, self.weight) * scale
        return F.embedding(y, self.sn_weight())


def sn_layers(module: nn.Module) -> list[SpectralNorm]:
    return [m for m in module.modules() if isinstance(m, SpectralNorm)]


def freeze_sn(module: nn.Module) -> None:
    for m in sn_layers(module):
        m.freeze_sn()


def unfreeze_sn(module: nn.Module) -> None:
    for m in sn_layers(module):
        m.unfreeze_sn()


def scale_outputs(module: nn.Module, on: bool) -> None:
    """Switch the W/σ-free formulation for the trainable layers of ``module``."""
    for m in sn_layers(module):
        m.sn_scale_output = on

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

Folded resampling (:meth:`SNConv2d.forward_upsampled`, :meth:`SNConv2d.forward_pooled`):
a 3×3 convolution of a nearest-×2-upsampled input is a stride-2 transposed convolution
of the input with a 4×4 kernel, and a 3×3 convolution followed by 2×2 average pooling is
a stride-2 convolution with a 4×4 kernel; both kernels are sums of the 3×3 taps.  The
same function with 16/36 of the multiply-adds and no upsampled tensor (float rounding
differs, so the reference-exact mode does not use it).
"""

from __future__ import annotations

import contextlib
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

    def _init_sn(
        self, num_outputs: int, eps: float, style: str = "power", num_inputs: int = 0
    ) -> None:
        if style not in ("power", "fixed"):
            raise ValueError(f"unknown spectral-norm style {style!r}")
        self.sn_eps = eps
        self.sn_style = style
        self._inv_sigma = None
        # Fast path for trainable layers: op(x, W)·(1/σ(W)) instead of op(x, W/σ(W)),
        # the same function without a weight-sized W/σ kept for backward.
        self.sn_scale_output = False
        self._folded: dict[str, torch.Tensor] = {}  # 4×4 kernels of a frozen layer
        self.register_buffer("u0", torch.randn(1, num_outputs))  # type: ignore[attr-defined]
        if style == "power":
            self.register_buffer("sv0", torch.ones(1))  # type: ignore[attr-defined]
        else:
            self.register_buffer(  # type: ignore[attr-defined]
                "v0", F.normalize(torch.randn(1, num_inputs), eps=eps)
            )
            with torch.no_grad():
                self.u0.copy_(F.normalize(self.u0, eps=eps))

    def sigma(self) -> torch.Tensor:
        """Sigma with grad through W: one power step from ``u0`` ("power"), or
        u0ᵀ W v0 from the stored vectors ("fixed").  Always in the weight's precision
        (float32), also under a bfloat16 autocast: σ's products are tiny, and in
        bfloat16 each one would first copy W."""
        with _full_precision(self.weight):
            return self._sigma()

    def _sigma(self) -> torch.Tensor:
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

    def sigma_vectors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, b, σ) with σ = aᵀ W b, all without grad (eval mode: nothing is written):
        the power step's u and v, or the stored u0 and v0.  The power step's σ reuses
        its W v (the same expression as :meth:`sigma`), so W is read twice, not three
        times."""
        with torch.no_grad(), _full_precision(self.weight):
            w_mat = self.weight.view(self.weight.size(0), -1)
            if self.sn_style == "fixed":
                a, b = self.u0[0], self.v0[0]
                return a, b, torch.dot(a, torch.mv(w_mat, b))
            v = F.normalize(torch.matmul(self.u0, w_mat), eps=self.sn_eps)
            wv = torch.matmul(v, w_mat.t())
            u = F.normalize(wv, eps=self.sn_eps)
            return u[0], v[0], torch.squeeze(torch.matmul(wv, u.t()))

    @property
    def sn_frozen(self) -> bool:
        return self._inv_sigma is not None

    def sn_weight(self) -> torch.Tensor:
        return self.weight / self.sigma()

    def freeze_sn(self) -> None:
        """Cache 1/sigma; valid until ``unfreeze_sn`` (the weight must not change)."""
        with torch.no_grad():
            self._inv_sigma = None
            self._folded = {}
            self._inv_sigma = (1.0 / self.sigma()).detach().clone()

    def unfreeze_sn(self) -> None:
        self._inv_sigma = None
        self._folded = {}

    def _output_scale(self) -> torch.Tensor | None:
        """1/σ to multiply the output by, or None to use W/σ as the weight."""
        if self._inv_sigma is not None:
            return self._inv_sigma
        if self.sn_scale_output:
            return 1.0 / self.sigma()
        return None

    def _frozen_copy(self, key: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """A tensor derived from the weight of a frozen layer, made once (see freeze_sn)."""
        made = self._folded.get(key)
        if made is None:
            with torch.no_grad():
                made = self._folded[key] = make()
        return made

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Any:
        # The cache does not follow .to(): recompute.  nn.Module._apply is untyped (Any).
        self._inv_sigma = None
        self._folded = {}
        return super()._apply(fn, recurse)  # type: ignore[misc]  # mixin: the Module is next in the MRO


def _full_precision(t: torch.Tensor) -> contextlib.AbstractContextManager[Any]:
    """Autocast off on ``t``'s device while it is on (nothing to do otherwise)."""
    dev = t.device.type
    if torch.is_autocast_enabled(dev):
        return torch.autocast(dev, enabled=False)
    return contextlib.nullcontext()


# The bfloat16 fast path (a fast-kernel layer under a bfloat16 autocast; method/compute.py):
# activations channels-last, frozen layers' weights converted once, trained layers' once
# per forward, σ and weight gradients in float32.  Measured choices (2-core Xeon with AMX;
# docs/performance.md#bfloat16-on-the-cpu):
# - oneDNN's bfloat16 convolutions reach the AMX kernels only in channels-last (NHWC);
# - bfloat16 matrix products beat oneDNN's bfloat16 convolutions up to 8×8 px, where the
#   layers are bound by their weights and oneDNN re-packs the weight every call; at
#   16×16 px (768 channels) oneDNN's channels-last kernels win (BigGAN-128 ch96 stage 1,
#   1 thread: 0.72 s/iteration with matrix products up to 8×8 px, 0.77 up to 16×16).
BF16_CHANNELS_LAST = True
BF16_GEMM_MAX_PIXELS = 64


def _activation_format() -> torch.memory_format:
    return torch.channels_last if BF16_CHANNELS_LAST else torch.contiguous_format


def lowp_dtype(x: torch.Tensor) -> torch.dtype | None:
    """bfloat16 while a bfloat16 autocast is on for ``x``'s device, else None."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) == torch.bfloat16:
        return torch.bfloat16
    return None


def _add_bias(out: torch.Tensor, bias: torch.Tensor | None, channel_dim: int) -> torch.Tensor:
    if bias is None:
        return out
    if bias.dtype != out.dtype:  # bfloat16 path: a float32 bias would promote the output
        bias = bias.to(out.dtype)
    shape = [1] * out.dim()
    shape[channel_dim] = -1
    return out + bias.view(shape)


# Rows: the 4 taps of the folded kernel; columns: the 3×3 kernel's taps summed into each.
# Nearest ×2 upsampling, then 3×3: output 2i sees inputs i−1 (tap 0) and i (taps 1+2),
# output 2i+1 sees i (taps 0+1) and i+1 (tap 2); as a transposed convolution (stride 2,
# padding 1) those are kernel positions 3, 1 and 2, 0.
_UPSAMPLE_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))
# 3×3 then 2×2 average: output i is the mean of rows 2i and 2i+1, i.e. inputs 2i−1 … 2i+2.
_POOL_TAPS = ((0.5, 0.0, 0.0), (0.5, 0.5, 0.0), (0.0, 0.5, 0.5), (0.0, 0.0, 0.5))


def fold_upsample_kernel(w: torch.Tensor) -> torch.Tensor:
    """[out, in, 3, 3] → the [in, out, 4, 4] transposed-convolution kernel of
    conv3×3(upsample_nearest2(x))."""
    m = w.new_tensor(_UPSAMPLE_TAPS)
    return torch.einsum("yi,xj,ocij->coyx", m, m, w)


def fold_pool_kernel(w: torch.Tensor) -> torch.Tensor:
    """[out, in, 3, 3] → the [out, in, 4, 4] stride-2 kernel of avg_pool2(conv3×3(x))."""
    m = w.new_tensor(_POOL_TAPS)
    return torch.einsum("yi,xj,ocij->ocyx", m, m, w)


# Convolutions over at most this many pixels run as matrix products on the CPU (fast path):
# there the wide layers are bound by reading their weight, which a matrix product reads
# where it lies while oneDNN first copies it into its own layout.  Measured on 2 cores,
# 1536→1536 channels 3×3: at 8×8 px forward 17→11 ms, input gradient 17→11 ms; at 4×4
# 12→4 and 10→4.5 ms; at 16×16 (768 channels) no gain.
GEMM_MAX_PIXELS = 64


def _gemm_conv(
    x: torch.Tensor, weight: torch.Tensor, padding: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(conv2d(x, weight) with stride 1 and "same" padding, the unfolded input as
    [C·k·k, N·H·W]) by one matrix product over the whole batch."""
    n, _, h, w = x.shape
    k = weight.shape[-1]
    cols = F.unfold(x, k, padding=padding)  # [N, C·k·k, H·W]
    cols = cols.transpose(0, 1).reshape(cols.shape[1], n * h * w)  # [C·k·k, N·H·W]
    out = torch.mm(weight.view(weight.shape[0], -1), cols)  # [O, N·H·W]
    return out.view(-1, n, h, w).transpose(0, 1), cols


def _gemm_conv_backward(
    grad: torch.Tensor,
    weight: torch.Tensor,
    cols: torch.Tensor | None,
    padding: int,
    need_x: bool,
    need_w: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(input gradient, weight gradient) of :func:`_gemm_conv`."""
    n, o, h, w = grad.shape
    g = grad.transpose(0, 1).reshape(o, n * h * w)  # [O, N·H·W]
    w_mat = weight.view(o, -1)
    grad_x = grad_w = None
    if need_x:
        # (gᵀ·W)ᵀ reads W row by row, as it lies (Wᵀ·g was measured 1.6× slower)
        grad_cols = torch.mm(g.t(), w_mat).t()  # [C·k·k, N·H·W]
        grad_cols = grad_cols.reshape(-1, n, h * w).transpose(0, 1)
        k = weight.shape[-1]
        grad_x = F.fold(grad_cols, (h, w), k, padding=padding)
    if need_w:
        assert cols is not None
        grad_w = torch.mm(g, cols.t()).view_as(weight)
    return grad_x, grad_w


class _GemmConv(torch.autograd.Function):
    """conv2d(x, W) (stride 1, "same" padding) as a matrix product; see GEMM_MAX_PIXELS."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
        out, cols = _gemm_conv(x, weight, padding)
        ctx.padding = padding
        ctx.save_for_backward(weight, cols if weight.requires_grad else None)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        weight, cols = ctx.saved_tensors
        grad_x, grad_w = _gemm_conv_backward(
            grad, weight, cols, ctx.padding, ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        )
        return grad_x, grad_w, None


class _ScaledConv(torch.autograd.Function):
    """conv2d(x, W) / σ with σ = aᵀ W b (a, b constant; σ given), for a trained layer.

    Autograd through σ would make σ's weight gradient, the rank-1 (∂L/∂σ)·a bᵀ, as a
    weight-sized tensor and then add it to the convolution's weight gradient; here it is
    added into that gradient in place: one weight-sized tensor fewer and two passes
    over it saved, per trained layer and iteration."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        a: torch.Tensor,
        b: torch.Tensor,
        sigma: torch.Tensor,
        padding: tuple[int, int],
        gemm: bool,
        lowp: torch.dtype | None = None,
    ) -> torch.Tensor:
        ctx.weight_dtype = weight.dtype
        if lowp is not None:  # bfloat16 path: one copy of W per forward, kept for backward
            fmt = torch.contiguous_format if gemm else _activation_format()
            weight = weight.to(lowp, memory_format=fmt)
        if gemm:  # x is not needed for the gradients, its unfolded copy is
            raw, saved = _gemm_conv(x, weight, padding[0])
        else:
            raw, saved = F.conv2d(x, weight, None, 1, padding), x
        ctx.padding, ctx.gemm, ctx.lowp = padding, gemm, lowp
        ctx.save_for_backward(saved, weight, a, b, raw, sigma)
        return raw / sigma

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved, weight, a, b, raw, sigma = ctx.saved_tensors
        grad_raw = grad / sigma
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if ctx.gemm:
            grad_x, grad_w = _gemm_conv_backward(
                grad_raw, weight, saved, ctx.padding[0], need_x, need_w
            )
        else:
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad_raw,
                saved,
                weight,
                None,
                [1, 1],
                list(ctx.padding),
                [1, 1],
                False,
                [0, 0],
                1,
                [need_x, need_w, False],
            )
        if grad_w is not None:
            # ∂L/∂σ = Σ grad · (−raw/σ²); ∂σ/∂W = a bᵀ
            if ctx.lowp is None:
                d_sigma = -(grad_raw * raw).sum() / sigma
            else:  # the master weight's gradient, and its σ term, in float32
                d_sigma = -(grad_raw * raw).sum(dtype=torch.float32) / sigma
                grad_w = grad_w.to(ctx.weight_dtype, memory_format=torch.contiguous_format)
            # the rank-1 term as a K = 1 matrix product: the same sum, 1.8× faster than
            # addr_ (a 1536×13824 gradient: 6.0 vs 10.6 ms, 1 thread; addr_ does not
            # use the second thread)
            grad_w.view(grad_w.size(0), -1).addmm_((a * d_sigma).unsqueeze(1), b.unsqueeze(0))
        return grad_x, grad_w, None, None, None, None, None, None


class SNConv2d(SpectralNorm, nn.Conv2d):
    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        padding: int = 1,
        bias: bool = True,
        eps: float = 1e-6,
        style: str = "power",
    ):
        nn.Conv2d.__init__(self, in_ch, out_ch, kernel_size, padding=padding, bias=bias)
        self._init_sn(out_ch, eps, style, in_ch * kernel_size * kernel_size)
        self.fast_kernels = False  # small convolutions as matrix products (GEMM_MAX_PIXELS)

    def _use_gemm(self, x: torch.Tensor, lowp: torch.dtype | None = None) -> bool:
        return (
            self.fast_kernels
            and x.device.type == "cpu"
            and x.shape[-1] * x.shape[-2]
            <= (GEMM_MAX_PIXELS if lowp is None else BF16_GEMM_MAX_PIXELS)
            and self.stride == (1, 1)
            and self.padding == (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
            and self.kernel_size[0] == self.kernel_size[1]
            and (lowp is not None or not torch.is_autocast_enabled("cpu"))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor
        lowp = lowp_dtype(x) if self.fast_kernels else None
        if lowp is not None:
            return self._forward_lowp(x, lowp)
        if (
            self.sn_scale_output
            and self._inv_sigma is None
            and not self.training
            and self.weight.requires_grad
            and torch.is_grad_enabled()
            and self.stride == (1, 1)
            and not torch.is_autocast_enabled(x.device.type)
        ):
            a, b, sigma = self.sigma_vectors()
            out = _ScaledConv.apply(  # type: ignore[no-untyped-call]
                x, self.weight, a, b, sigma, self.padding, self._use_gemm(x)
            )
            return _add_bias(out, self.bias, 1)
        scale = self._output_scale()
        if scale is not None:
            if self._use_gemm(x):
                out = _GemmConv.apply(  # type: ignore[no-untyped-call]
                    x, self.weight, self.padding[0]
                )
            else:
                out = F.conv2d(x, self.weight, None, self.stride, self.padding)
            return _add_bias(out * scale, self.bias, 1)
        return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding)

    def _forward_lowp(self, x: torch.Tensor, lowp: torch.dtype) -> torch.Tensor:
        """The fast path's forward under a bfloat16 autocast (see BF16_CHANNELS_LAST)."""
        gemm = self._use_gemm(x, lowp)
        x = x.to(lowp, memory_format=torch.contiguous_format if gemm else _activation_format())
        out: torch.Tensor
        if self._inv_sigma is None:
            if (
                self.sn_scale_output
                and not self.training
                and self.weight.requires_grad
                and torch.is_grad_enabled()
                and self.stride == (1, 1)
            ):
                a, b, sigma = self.sigma_vectors()
                out = _ScaledConv.apply(  # type: ignore[no-untyped-call]
                    x, self.weight, a, b, sigma, self.padding, gemm, lowp
                )
                return _add_bias(out, self.bias, 1)
            return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding)
        if gemm:
            w = self._frozen_copy("lowp", lambda: self.weight.detach().to(lowp))
            out = _GemmConv.apply(x, w, self.padding[0])  # type: ignore[no-untyped-call]
        else:
            w = self._frozen_copy(
                f"lowp {_activation_format()}",
                lambda: self.weight.detach().to(lowp, memory_format=_activation_format()),
            )
            out = F.conv2d(x, w, None, self.stride, self.padding)
        return _add_bias(out * self._inv_sigma, self.bias, 1)

    def _fold(
        self, kind: str, fold: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(folded kernel, output scale or None if the kernel is already W/σ); the kernel
        of a frozen layer is made once."""
        if self.kernel_size != (3, 3) or self.padding != (1, 1) or self.stride != (1, 1):
            raise ValueError("folded resampling needs a 3×3 convolution with padding 1")
        scale = self._output_scale()
        if scale is None:
            return fold(self.sn_weight()), None
        if self._inv_sigma is None:
            return fold(self.weight), scale
        kernel = self._folded.get(kind)
        if kernel is None:
            with torch.no_grad():
                kernel = self._folded[kind] = fold(self.weight.detach()).contiguous()
        return kernel, scale

    def _folded_op(
        self,
        x: torch.Tensor,
        kind: str,
        fold: Callable[[torch.Tensor], torch.Tensor],
        op: Callable[..., torch.Tensor],
    ) -> torch.Tensor:
        lowp = lowp_dtype(x)
        if lowp is not None:  # bfloat16: a frozen layer's kernel converted once
            x = x.to(lowp, memory_format=_activation_format())
            if self._inv_sigma is not None:
                kernel = self._frozen_copy(
                    f"{kind} lowp {_activation_format()}",
                    lambda: fold(self.weight.detach()).to(lowp, memory_format=_activation_format()),
                )
                out = op(x, kernel, None, stride=2, padding=1)
                return _add_bias(out * self._inv_sigma, self.bias, 1)
        kernel, scale = self._fold(kind, fold)
        if scale is None:
            return op(x, kernel, self.bias, stride=2, padding=1)
        return _add_bias(op(x, kernel, None, stride=2, padding=1) * scale, self.bias, 1)

    def forward_upsampled(self, x: torch.Tensor) -> torch.Tensor:
        """``self(F.interpolate(x, scale_factor=2))`` (nearest), without the upsampled x."""
        return self._folded_op(x, "upsample", fold_upsample_kernel, F.conv_transpose2d)

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``F.avg_pool2d(self(x), 2)`` in one stride-2 convolution."""
        return self._folded_op(x, "pool", fold_pool_kernel, F.conv2d)


class SNLinear(SpectralNorm, nn.Linear):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        eps: float = 1e-6,
        style: str = "power",
    ):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_sn(out_features, eps, style, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self._output_scale()
        if scale is not None:
            return _add_bias(F.linear(x, self.weight) * scale, self.bias, -1)
        return F.linear(x, self.sn_weight(), self.bias)


class SNEmbedding(SpectralNorm, nn.Embedding):
    """Spectral-normed embedding; ``num_embeddings`` is the 'out' dimension."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, eps: float = 1e-6, style: str = "power"
    ):
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

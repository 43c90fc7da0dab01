"""StyleGAN2 generator and discriminator (config F, skip G, resnet D), written for DGP Studio.

Written from the StyleGAN2 paper (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN") and the facts recorded in
``reference/stylegan2_small/README.md`` (shapes, names, formulas): no code of NVIDIA's or
StudioGAN's was used. State-dict names are those of both projects' checkpoints, so
``load_state_dict(strict=True)`` takes NVIDIA's G/G_ema/D (see
:mod:`dgp_engine.priors.stylegan2_files` for reading the pickles without running them)
and StudioGAN's, whose discriminator names its last layer ``linear1`` where NVIDIA's says
``b4.out`` (``StyleGAN2Config.d_head``).

The pieces, as the paper describes them:

* Mapping: z normalised to unit second moment (and, with labels, the class embedding
  normalised the same way and concatenated), then ``mapping_layers`` fully connected
  layers, leaky ReLU 0.2 × √2, equalised learning rate with multiplier 0.01. The w is
  broadcast to ``num_ws`` = 2·log2(resolution) − 2 copies; truncation pulls them to the
  stored average ``w_avg``.
* Synthesis: a learned 4×4 constant, then per resolution a block of modulated 3×3
  convolutions (the first of each block above 4 px doubles the size) with weight
  demodulation, per-pixel noise scaled by a learned strength, bias, leaky ReLU, and a
  1×1 modulated (not demodulated) toRGB whose output is added to the 2× upsampled image
  of the block below (the "skip" generator). Up/down-sampling uses the separable
  [1, 3, 3, 1] filter.
* Discriminator: residual blocks (3×3, 3×3 ↓2; shortcut 1×1 ↓2 without bias; both
  paths × √0.5), then minibatch standard deviation, a 3×3 convolution, a fully connected
  layer and the output layer; with labels, the output is projected on an embedding of
  the label made by a mapping network (``cmap``).

All of it in fp32 (``num_fp16_res`` is recorded but not used: the CPU has no fast
fp16). ``conv_clamp`` clamps layer outputs as the trained networks saw it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, InputError

#: √2: the gain that keeps a leaky ReLU's output at unit second moment (paper, App. B).
LRELU_GAIN = math.sqrt(2.0)
LRELU_SLOPE = 0.2
#: Residual discriminator blocks sum two paths, each scaled by √0.5.
RESIDUAL_GAIN = math.sqrt(0.5)
#: The 1-D resampling filter; its outer product, normalised to sum 1, is the 2-D filter.
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)
NOISE_MODES = ("const", "random", "none")
G_ARCHITECTURES = ("skip",)
D_ARCHITECTURES = ("resnet",)
#: Where the discriminator's last layer lives in the state dict.
D_HEADS = {"nvidia": "b4.out", "studiogan": "linear1"}
#: Added inside square roots (normalisation, demodulation, minibatch std).
EPS = 1e-8


@dataclass(frozen=True)
class StyleGAN2Config:
    """Architecture of a StyleGAN2 G+D pair, in the constructor terms of both projects.

    ``c_dim`` is the generator's label size (0: unconditional); ``d_c_dim`` the
    discriminator's (None: the same). ``conv_clamp`` and ``mbstd_group_size`` change the
    outputs but are not recorded in StudioGAN checkpoints: readers take them as settings.
    ``mbstd_group_size`` None means one group of the whole batch."""

    resolution: int = 256
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    d_c_dim: int | None = None
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mapping_layers: int = 8
    mapping_lr: float = 0.01
    d_mapping_layers: int = 8
    d_mapping_lr: float = 0.01
    cmap_dim: int | None = None
    conv_clamp: float | None = None
    mbstd_group_size: int | None = 4
    mbstd_channels: int = 1
    g_architecture: str = "skip"
    d_architecture: str = "resnet"
    d_head: str = "nvidia"
    num_fp16_res: int = 0

    def __post_init__(self) -> None:
        res = self.resolution
        if not isinstance(res, int) or res < 4 or res & (res - 1):
            raise CheckpointError(
                f"A StyleGAN2 resolution must be a power of two of at least 4 px, not {res!r}."
            )
        for name in ("z_dim", "w_dim", "img_channels", "channel_base", "channel_max"):
            if int(getattr(self, name)) <= 0:
                raise CheckpointError(
                    f"StyleGAN2 setting {name} must be a positive integer, "
                    f"not {getattr(self, name)!r}."
                )
        for name in ("c_dim", "mapping_layers", "d_mapping_layers", "num_fp16_res"):
            if int(getattr(self, name)) < 0:
                raise CheckpointError(f"StyleGAN2 setting {name} cannot be negative.")
        if self.d_c_dim is not None and self.d_c_dim < 0:
            raise CheckpointError("StyleGAN2 setting d_c_dim cannot be negative.")
        if self.cmap_dim is not None and self.cmap_dim <= 0:
            raise CheckpointError("StyleGAN2 setting cmap_dim must be a positive integer.")
        if not self.mapping_lr > 0 or not self.d_mapping_lr > 0:
            raise CheckpointError("StyleGAN2 mapping learning-rate multipliers must be > 0.")
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise CheckpointError(f"conv_clamp must be positive or None, not {self.conv_clamp!r}.")
        if self.mbstd_group_size is not None and self.mbstd_group_size < 1:
            raise CheckpointError(
                "The minibatch-std group size must be at least 1 (or None for the whole batch)."
            )
        if self.mbstd_channels < 1 or self.channels(4) % self.mbstd_channels:
            raise CheckpointError(
                f"mbstd_channels {self.mbstd_channels} must divide the "
                f"{self.channels(4)} channels at 4 px."
            )
        if self.g_architecture not in G_ARCHITECTURES:
            raise CheckpointError(
                f"StyleGAN2 generators with the {self.g_architecture!r} "
                "architecture are not supported; DGP Studio reads the "
                "'skip' generator (config F)."
            )
        if self.d_architecture not in D_ARCHITECTURES:
            raise CheckpointError(
                f"StyleGAN2 discriminators with the {self.d_architecture!r} "
                "architecture are not supported; DGP Studio reads the "
                "'resnet' discriminator (config F)."
            )
        if self.d_head not in D_HEADS:
            raise CheckpointError(
                f"d_head must be one of {', '.join(D_HEADS)}, not {self.d_head!r}."
            )

    # --- derived --------------------------------------------------------------------
    def channels(self, res: int) -> int:
        """Feature maps at a resolution: channel_base / res, at most channel_max."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def log2_resolution(self) -> int:
        return self.resolution.bit_length() - 1

    @property
    def block_resolutions(self) -> list[int]:
        """Synthesis blocks, shallowest first: 4, 8, …, resolution."""
        return [2**i for i in range(2, self.log2_resolution + 1)]

    @property
    def num_ws(self) -> int:
        """w vectors the synthesis takes: one per convolution plus the last toRGB."""
        return 2 * self.log2_resolution - 2

    @property
    def d_label_dim(self) -> int:
        return self.c_dim if self.d_c_dim is None else self.d_c_dim

    @property
    def projection_dim(self) -> int:
        """Width of the discriminator's label embedding (cmap); 0 when unconditional."""
        if self.d_label_dim == 0:
            return 0
        return self.cmap_dim if self.cmap_dim is not None else self.channels(4)

    def describe(self) -> str:
        cond = f"{self.c_dim} classes" if self.c_dim else "unconditional"
        return (
            f"StyleGAN2 {self.resolution}px, {cond}, z {self.z_dim}, w {self.w_dim}, "
            f"channels {self.channel_base}/{self.channel_max}, mapping "
            f"{self.mapping_layers}, mbstd {self.mbstd_group_size}, conv_clamp "
            f"{self.conv_clamp}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StyleGAN2Config:
        """From :meth:`to_dict`'s output (e.g. a config.json); unknown keys and values of
        the wrong type are refused with their name."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise CheckpointError(
                f"The StyleGAN2 config has unknown settings: {', '.join(unknown)}."
            )
        kwargs: dict[str, Any] = {}
        for name, value in d.items():
            default = getattr(cls, name)
            if name in _OPTIONAL_NUMBERS:
                ok = value is None or (
                    isinstance(value, (int, float)) and not isinstance(value, bool)
                )
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                value = float(value) if ok else value
            else:
                ok = isinstance(value, type(default)) and not isinstance(value, bool)
            if not ok:
                raise CheckpointError(f"StyleGAN2 setting {name} has the wrong type: {value!r}.")
            kwargs[name] = value
        return cls(**kwargs)


#: Settings that may be None (the rest have the type of their default).
_OPTIONAL_NUMBERS = ("d_c_dim", "cmap_dim", "conv_clamp", "mbstd_group_size")

# --------------------------------------------------------------------------- operations


def _resample_kernel() -> torch.Tensor:
    # made from Python numbers: on the meta device, tensor maths would load torch's
    # Python reference kernels (seconds, once)
    total = sum(RESAMPLE_TAPS) ** 2
    return torch.tensor([[a * b / total for b in RESAMPLE_TAPS] for a in RESAMPLE_TAPS])


def _randn(*shape: int, std: float = 1.0) -> torch.Tensor:
    # initial values (every checkpoint replaces them); none on the meta device, where
    # random fills load torch's Python reference kernels (seconds, once)
    t = torch.empty(shape)
    return t if t.is_meta else t.normal_(0.0, std)


def normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    """x / √(mean(x²) + 1e-8) per sample (over dimension 1)."""
    return x * (x.square().mean(dim=1, keepdim=True) + EPS).rsqrt()


def _depthwise(kernel: torch.Tensor, channels: int, gain: float) -> torch.Tensor:
    # FIR filtering is a convolution: flip the taps for conv2d's correlation
    k = torch.flip(kernel, [0, 1]) * gain
    return k.to(dtype=torch.float32)[None, None].expand(channels, 1, *k.shape)


def blur(x: torch.Tensor, kernel: torch.Tensor, pad: int, gain: float = 1.0) -> torch.Tensor:
    """Filter every channel with ``kernel``, zero padding ``pad`` on each side."""
    c = x.shape[1]
    w = _depthwise(kernel, c, gain).to(x.dtype)
    return F.conv2d(F.pad(x, [pad] * 4), w, groups=c)


def upsample2x(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """2× upsampling: zeros between the pixels, then the 4-tap filter (gain 4, so the
    mean is kept). Input pixel i spreads over outputs 2i−1 … 2i+2, centred on 2i + ½."""
    c = x.shape[1]
    w = _depthwise(kernel, c, 4.0).to(x.dtype)
    return F.conv_transpose2d(x, w, stride=2, padding=1, groups=c)


def downsample2x(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """2× downsampling: the 4-tap filter, keeping every other pixel. Output j averages
    inputs 2j−1 … 2j+2, centred on 2j + ½."""
    c = x.shape[1]
    w = _depthwise(kernel, c, 1.0).to(x.dtype)
    return F.conv2d(x, w, stride=2, padding=1, groups=c)


#: Feature maps of at least this many values (32 MB in float32: a 1024 px model's 512 and
#: 1024 px maps) take :class:`_FusedBiasAct` when gradients are recorded; smaller ones
#: the separate operations, which autograd runs faster (a 256 px iteration was measured
#: slower with every map fused).
FUSED_FROM = 2**23


class _FusedBiasAct(torch.autograd.Function):
    """Bias, leaky ReLU × gain and clamp in one step that keeps only its output for the
    backward pass: the output's sign is the input's (the gain is positive) and a
    clamped value sits on the limit, so the two masks come from it.  Run one by one,
    autograd would keep the input of the leaky ReLU and of the clamp as well, and make a
    new feature map at every step — at 1024 px, two more 128 MB maps kept per
    convolution and four made (bench/stylegan2_speed.py)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        bias: torch.Tensor | None,
        act: bool,
        scale: float,
        limit: float | None,
    ) -> torch.Tensor:
        # the same operations, in the same order, as the plain path: bit-identical values
        y = x + bias if bias is not None else x.clone()
        if act:
            F.leaky_relu_(y, LRELU_SLOPE)
        if scale != 1.0:
            y.mul_(scale)
        if limit is not None:
            y.clamp_(-limit, limit)
        ctx.act, ctx.scale, ctx.limit = act, scale, limit
        ctx.bias_shape = None if bias is None else bias.shape
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, None, None, None]:
        (y,) = ctx.saved_tensors
        g = grad
        if ctx.limit is not None:
            g = torch.where(y.abs() < ctx.limit, g, g.new_zeros(()))
        if ctx.scale != 1.0:
            g = g * ctx.scale
        if ctx.act:  # the sign of the output is the input's: one fused pass
            g = torch.ops.aten.leaky_relu_backward(g, y, LRELU_SLOPE, True)
        gb = g.sum_to_size(ctx.bias_shape) if ctx.needs_input_grad[1] else None
        return g, gb, None, None, None


def _bias_act(
    x: torch.Tensor, bias: torch.Tensor | None, act: bool, gain: float, clamp: float | None
) -> torch.Tensor:
    """bias, then leaky ReLU × √2 (if ``act``), then × gain, then clamp to ±clamp·gain."""
    b = None if bias is None else bias.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))
    if (act or clamp is not None) and torch.is_grad_enabled() and x.numel() >= FUSED_FROM:
        if x.requires_grad or (b is not None and b.requires_grad):
            scale = LRELU_GAIN * gain if act else gain
            limit = None if clamp is None else clamp * gain
            out: torch.Tensor = _FusedBiasAct.apply(x, b, act, scale, limit)  # type: ignore[no-untyped-call]
            return out
    if b is not None:
        x = x + b
    if act:
        x = F.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
    elif gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp * gain, clamp * gain)
    return x


def as_labels(c: torch.Tensor | None, c_dim: int, n: int, who: str) -> torch.Tensor | None:
    """A label batch as float [n, c_dim]: integer class ids [n] become one-hot vectors.
    None for an unconditional network (whatever was passed)."""
    if c_dim == 0:
        return None
    if c is None:
        raise InputError(f"The {who} is conditional ({c_dim} classes): give it class labels.")
    if not c.is_floating_point():
        if c.dim() != 1 or c.shape[0] != n:
            raise InputError(
                f"The {who} needs one class id per sample ({n}), not a tensor "
                f"of shape {tuple(c.shape)}."
            )
        if bool(((c < 0) | (c >= c_dim)).any()):
            raise InputError(f"Class ids must lie in 0…{c_dim - 1} for the {who}.")
        return F.one_hot(c.long(), c_dim).float()
    if c.shape != (n, c_dim):
        raise InputError(f"The {who} takes labels of shape ({n}, {c_dim}), not {tuple(c.shape)}.")
    return c


# --------------------------------------------------------------------------- layers


class FullyConnected(nn.Module):
    """Linear layer with equalised learning rate: the stored weight is scaled by
    lr_multiplier / √fan_in and the stored bias by lr_multiplier at every use."""

    bias: nn.Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        act: bool = False,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.weight = nn.Parameter(_randn(out_features, in_features, std=1 / lr_multiplier))
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.act = act
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        y = F.linear(x, w, b)
        return F.leaky_relu(y, LRELU_SLOPE) * LRELU_GAIN if self.act else y


class MappingNetwork(nn.Module):
    """z (and labels) → w. ``num_ws`` None returns [N, w_dim] (the discriminator's label
    embedding); otherwise [N, num_ws, w_dim], with a ``w_avg`` buffer for truncation."""

    w_avg: torch.Tensor

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int,
        lr_multiplier: float,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        if c_dim > 0:
            self.embed = FullyConnected(c_dim, w_dim)
        features = z_dim + (w_dim if c_dim > 0 else 0)
        for i in range(num_layers):
            self.add_module(
                f"fc{i}", FullyConnected(features, w_dim, act=True, lr_multiplier=lr_multiplier)
            )
            features = w_dim
        if num_ws is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            if z is None or z.dim() != 2 or z.shape[1] != self.z_dim:
                raise InputError(
                    f"The mapping network takes z of shape (N, {self.z_dim}), "
                    f"not {None if z is None else tuple(z.shape)}."
                )
            parts.append(normalize_2nd_moment(z.float()))
        if self.c_dim > 0:
            assert c is not None
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        for i in range(self.num_layers):
            x = cast(FullyConnected, getattr(self, f"fc{i}"))(x)
        if self.num_ws is None:
            return x
        ws = x.unsqueeze(1).expand(-1, self.num_ws, -1)
        return self.truncate(ws, truncation_psi, truncation_cutoff)

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi·(w − w_avg) on the first ``cutoff`` ws (all when None)."""
        if psi == 1.0:
            return ws
        avg = self.w_avg.to(ws.dtype)
        if cutoff is None:
            return torch.lerp(avg.expand_as(ws), ws, psi)
        head = torch.lerp(avg.expand_as(ws[:, :cutoff]), ws[:, :cutoff], psi)
        return torch.cat([head, ws[:, cutoff:]], dim=1)


class ModulatedConv(nn.Module):
    """One synthesis convolution: weights modulated by the style of w (and demodulated),
    optional 2× upsampling, noise, bias, leaky ReLU, clamp. State: ``weight``,
    ``bias``, ``noise_strength``, ``affine.*``, buffers ``noise_const``,
    ``resample_filter``."""

    resample_filter: torch.Tensor
    noise_const: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: bool,
        conv_clamp: float | None,
        kernel_size: int = 3,
    ):
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(_randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", _resample_kernel())
        self.register_buffer("noise_const", _randn(resolution, resolution))
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.clamp_limit = conv_clamp  # output gain 1

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        n, cin, h, wd = x.shape
        styles = self.affine(w)  # [N, Cin]
        weight = self.weight.to(x.dtype)[None] * styles[:, None, :, None, None]
        weight = weight * (weight.square().sum(dim=[2, 3, 4]) + EPS).rsqrt()[:, :, None, None, None]
        cout, k = weight.shape[1], weight.shape[-1]
        grouped = x.reshape(1, n * cin, h, wd)
        if self.up:
            # the paper's upsampling convolution: a stride-2 transposed convolution with
            # the 3×3 kernel (2H+1 wide), then the 4-tap filter with one pixel of padding
            # (2H wide); input pixel i ends up centred on output 2i + ½
            tw = weight.transpose(1, 2).reshape(n * cin, cout, k, k)
            y = F.conv_transpose2d(grouped, tw, stride=2, groups=n)
            y = blur(y, self.resample_filter, pad=1, gain=4.0)
        else:
            y = F.conv2d(grouped, weight.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
        y = y.reshape(n, cout, y.shape[-2], y.shape[-1])
        # in place: nothing keeps the convolution's output for the backward pass, and a
        # 1024 px feature map is 128 MB
        if noise_mode == "const":
            y = y.add_(self.noise_const.to(y.dtype) * self.noise_strength.to(y.dtype))
        elif noise_mode == "random":
            noise = torch.randn(
                n, 1, self.resolution, self.resolution, device=y.device, dtype=y.dtype
            )
            y = y.add_(noise * self.noise_strength.to(y.dtype))
        elif noise_mode != "none":
            raise InputError(
                f"noise_mode must be one of {', '.join(NOISE_MODES)}, not {noise_mode!r}."
            )
        return _bias_act(y, self.bias, True, 1.0, self.conv_clamp)


class ToRGB(nn.Module):
    """1×1 modulated convolution to RGB, without demodulation; bias; clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None):
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(_randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)
        self.conv_clamp = conv_clamp
        self.clamp_limit = conv_clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, cin, h, wd = x.shape
        styles = self.affine(w) * self.weight_gain
        weight = self.weight.to(x.dtype)[None] * styles[:, None, :, None, None]
        cout = weight.shape[1]
        y = F.conv2d(x.reshape(1, n * cin, h, wd), weight.reshape(n * cout, cin, 1, 1), groups=n)
        return _bias_act(y.reshape(n, cout, h, wd), self.bias, False, 1.0, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (conv0 ↑2), conv1, toRGB; returns the
    features and the image so far."""

    resample_filter: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, cfg: StyleGAN2Config, resolution: int):
        super().__init__()
        self.resolution = resolution
        self.register_buffer("resample_filter", _resample_kernel())
        if in_channels == 0:
            self.const = nn.Parameter(_randn(out_channels, resolution, resolution))
        else:
            self.conv0 = ModulatedConv(
                in_channels, out_channels, cfg.w_dim, resolution, up=True, conv_clamp=cfg.conv_clamp
            )
        self.conv1 = ModulatedConv(
            out_channels, out_channels, cfg.w_dim, resolution, up=False, conv_clamp=cfg.conv_clamp
        )
        self.torgb = ToRGB(out_channels, cfg.img_channels, cfg.w_dim, cfg.conv_clamp)
        self.first = in_channels == 0
        self.num_conv = 1 if self.first else 2
        self.num_torgb = 1

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "const",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws``: [N, num_conv + 1, w_dim], this block's slice."""
        i = 0
        if self.first:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            assert x is not None
            x = self.conv0(x, ws[:, 0], noise_mode)
            i = 1
        x = self.conv1(x, ws[:, i], noise_mode)
        y = self.torgb(x, ws[:, i + 1])
        img = y if img is None else upsample2x(img, self.resample_filter) + y
        return x, img


def recomputed(module: nn.Module, *args: Any) -> Any:
    """``module(*args)``, keeping only its inputs for the backward pass and running the
    forward again there (activation checkpointing) when gradients are being recorded:
    a 1024 px DGP iteration otherwise keeps about 2.5 GB of feature maps, most of them
    in the 512 and 1024 px blocks of G and D (bench/stylegan2_speed.py)."""
    if not torch.is_grad_enabled():
        return module(*args)
    from torch.utils.checkpoint import checkpoint

    return checkpoint(module, *args, use_reentrant=False)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] → image [N, 3, R, R] (unbounded; ≈ [−1, 1])."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        self.block_resolutions = cfg.block_resolutions
        self.num_ws = cfg.num_ws
        for res in self.block_resolutions:
            cin = 0 if res == 4 else cfg.channels(res // 2)
            self.add_module(f"b{res}", SynthesisBlock(cin, cfg.channels(res), cfg, res))

    def block(self, res: int) -> SynthesisBlock:
        return cast(SynthesisBlock, getattr(self, f"b{res}"))

    @property
    def blocks(self) -> list[SynthesisBlock]:
        return [self.block(r) for r in self.block_resolutions]

    def split_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Each block's slice of ws: block k takes its convolutions' ws and the next one,
        shared between its toRGB and the next block's first convolution."""
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise InputError(
                f"The synthesis network takes ws of shape (N, {self.num_ws}, "
                f"{self.cfg.w_dim}), not {tuple(ws.shape)}."
            )
        out, start = [], 0
        for blk in self.blocks:
            out.append(ws[:, start : start + blk.num_conv + blk.num_torgb])
            start += blk.num_conv
        return out

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        intermediates: list[tuple[str, torch.Tensor]] | None = None,
        *,
        recompute_from: int | None = None,
    ) -> torch.Tensor:
        """``intermediates``, if given, receives ("b<R>.x", features) and ("b<R>.img",
        image so far) of every block, shallowest first.  ``recompute_from``: blocks of
        that resolution and up keep only their inputs for a backward pass and run their
        forward again in it (:func:`recomputed`), when gradients are being recorded."""
        x: torch.Tensor | None = None
        img: torch.Tensor | None = None
        for blk, block_ws in zip(self.blocks, self.split_ws(ws), strict=True):
            if recompute_from is not None and blk.resolution >= recompute_from:
                if noise_mode == "random":
                    raise InputError("Random noise cannot be recomputed: use constant noise.")
                x, img = recomputed(blk, x, img, block_ws, noise_mode)
            else:
                x, img = blk(x, img, block_ws, noise_mode)
            if intermediates is not None:
                intermediates.append((f"b{blk.resolution}.x", x))
                intermediates.append((f"b{blk.resolution}.img", img))
        assert img is not None
        return img


class Generator(nn.Module):
    """G(z, c) = synthesis(mapping(z, c)). Labels: one-hot [N, c_dim] or class ids [N]."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.num_ws = cfg.num_ws
        self.synthesis = SynthesisNetwork(cfg)
        self.mapping = MappingNetwork(
            cfg.z_dim, cfg.c_dim, cfg.w_dim, cfg.num_ws, cfg.mapping_layers, cfg.mapping_lr
        )

    def map(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] of z and labels."""
        labels = as_labels(c, self.c_dim, z.shape[0], "generator")
        ws: torch.Tensor = self.mapping(z, labels, truncation_psi, truncation_cutoff)
        return ws

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        intermediates: list[tuple[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        ws = self.map(z, c, truncation_psi, truncation_cutoff)
        img: torch.Tensor = self.synthesis(ws, noise_mode, intermediates)
        return img

    # DGP parameter groups: 0 = mapping network (its label embedding on request), 1..N =
    # synthesis blocks from 4 px up (each with its toRGB). There is no separate output
    # layer: group N+1 is empty.
    @property
    def num_groups(self) -> int:
        return len(self.cfg.block_resolutions) + 1

    def group_modules(self, index: int) -> list[nn.Module]:
        blocks = self.synthesis.blocks
        if index == 0:
            return [self.mapping]
        if 1 <= index <= len(blocks):
            return [blocks[index - 1]]
        if index == len(blocks) + 1:
            return []
        raise IndexError(f"generator parameter group {index} does not exist")

    def group_params(self, index: int, update_embed: bool = False) -> list[nn.Parameter]:
        """Parameters of a group; group 0 leaves out the label embedding unless
        ``update_embed`` (as BigGAN's group 0 leaves out its shared class embedding)."""
        params = [p for m in self.group_modules(index) for p in m.parameters()]
        if index == 0 and not update_embed and self.c_dim > 0:
            embed = {id(p) for p in self.mapping.embed.parameters()}
            params = [p for p in params if id(p) not in embed]
        return params


# --------------------------------------------------------------------------- discriminator


class Conv2dLayer(nn.Module):
    """Discriminator convolution with equalised learning rate (weight / √fan_in),
    optional 2× downsampling (filter first), bias, leaky ReLU, gain, clamp."""

    resample_filter: torch.Tensor
    bias: nn.Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        act: bool = True,
        down: bool = False,
        gain: float = 1.0,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(_randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", _resample_kernel())
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act, self.down, self.gain = act, down, gain
        self.conv_clamp = conv_clamp
        self.clamp_limit = None if conv_clamp is None else conv_clamp * gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        k = w.shape[-1]
        if self.down and k == 1:
            x = F.conv2d(downsample2x(x, self.resample_filter), w)
        elif self.down:
            # the 4-tap filter with 2 px of padding, then a stride-2 valid convolution:
            # output j is centred on input 2j + ½, like the shortcut's
            x = F.conv2d(blur(x, self.resample_filter, pad=2), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=k // 2)
        return _bias_act(x, self.bias, self.act, self.gain, self.conv_clamp)


class DiscriminatorBlock(nn.Module):
    """Residual block: out = skip(x)·√0.5 + conv1(conv0(x))·√0.5, halving the size. The
    first block reads the image through ``fromrgb``."""

    resample_filter: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        cfg: StyleGAN2Config,
        resolution: int,
    ):
        super().__init__()
        self.resolution = resolution
        self.first = in_channels == 0
        self.register_buffer("resample_filter", _resample_kernel())
        clamp = cfg.conv_clamp
        if self.first:
            self.fromrgb = Conv2dLayer(cfg.img_channels, tmp_channels, 1, conv_clamp=clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, conv_clamp=clamp)
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, 3, down=True, gain=RESIDUAL_GAIN, conv_clamp=clamp
        )
        self.skip = Conv2dLayer(
            tmp_channels, out_channels, 1, bias=False, act=False, down=True, gain=RESIDUAL_GAIN
        )

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = self.fromrgb(img)
        assert x is not None
        y: torch.Tensor = self.skip(x)
        x = self.conv1(self.conv0(x))
        return y + x


class MinibatchStd(nn.Module):
    """Appends the standard deviation across a group of samples, averaged over channels
    (in ``num_channels`` slices) and pixels. Groups are strided: sample i is in group
    i mod (N / G), G = min(group_size, N). A batch of 1 gets √1e-8 = 1e-4 everywhere."""

    def __init__(self, group_size: int | None, num_channels: int):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor, group_size: int | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        size = group_size or self.group_size
        g = n if size is None else min(size, n)
        if n % g:
            raise InputError(
                f"The discriminator scores batches in groups of {g} (minibatch "
                f"std): a batch of {n} does not divide into them."
            )
        f = self.num_channels
        y = x.float().reshape(g, n // g, f, c // f, h, w)
        std = (y.var(dim=0, unbiased=False) + EPS).sqrt()  # [N/G, F, C/F, H, W]
        std = std.mean(dim=[2, 3, 4])  # [N/G, F]
        std = std.to(x.dtype)[:, :, None, None].repeat(g, 1, h, w)  # sample i ← group i mod N/G
        return torch.cat([x, std], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4×4 head: minibatch std, 3×3 conv, fully connected (→ h). The output layer
    (``out``) is registered here for NVIDIA's names, on the discriminator for StudioGAN's."""

    def __init__(self, channels: int, cfg: StyleGAN2Config):
        super().__init__()
        self.mbstd = MinibatchStd(cfg.mbstd_group_size, cfg.mbstd_channels)
        self.conv = Conv2dLayer(
            channels + cfg.mbstd_channels, channels, 3, conv_clamp=cfg.conv_clamp
        )
        self.fc = FullyConnected(channels * 16, channels, act=True)

    def forward(
        self,
        x: torch.Tensor,
        independent: bool = False,
        record: list[tuple[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        x = self.mbstd(x, 1 if independent else None)
        if record is not None:
            record.append(("b4.mbstd", x))
        x = self.conv(x)
        if record is not None:
            record.append(("b4.conv", x))
        h: torch.Tensor = self.fc(x.flatten(1))
        if record is not None:
            record.append(("b4.fc", h))
        return h


class Discriminator(nn.Module):
    """D(img, c) → (logits [N, 1], features). Features: every residual block's output
    (highest resolution first), then the epilogue's fully connected output h, for the
    DGP feature distance. Labels: one-hot [N, c_dim] or class ids [N]."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        self.c_dim = cfg.d_label_dim
        self.cmap_dim = cfg.projection_dim
        self.block_resolutions = [2**i for i in range(cfg.log2_resolution, 2, -1)]
        for res in self.block_resolutions:
            cin = 0 if res == cfg.resolution else cfg.channels(res)
            self.add_module(
                f"b{res}",
                DiscriminatorBlock(cin, cfg.channels(res), cfg.channels(res // 2), cfg, res),
            )
        if self.c_dim > 0:
            self.mapping = MappingNetwork(
                0, self.c_dim, self.cmap_dim, None, cfg.d_mapping_layers, cfg.d_mapping_lr
            )
        c4 = cfg.channels(4)
        self.b4 = DiscriminatorEpilogue(c4, cfg)
        head = FullyConnected(c4, self.cmap_dim if self.c_dim > 0 else 1)
        if cfg.d_head == "studiogan":
            self.linear1 = head
        else:
            self.b4.add_module("out", head)

    @property
    def head(self) -> FullyConnected:
        """The output layer (NVIDIA's ``b4.out``, StudioGAN's ``linear1``)."""
        return cast(FullyConnected, self.linear1 if self.cfg.d_head == "studiogan" else self.b4.out)

    @property
    def num_features(self) -> int:
        return len(self.block_resolutions) + 1

    def block(self, res: int) -> DiscriminatorBlock:
        return cast(DiscriminatorBlock, getattr(self, f"b{res}"))

    def forward(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        independent: bool = False,
        block_outputs: list[tuple[str, torch.Tensor]] | None = None,
        recompute_from: int | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``independent``: score every sample as if it were alone (minibatch-std group
        of 1, as a batch of 1 is scored), so a sample's output does not depend on its
        batch mates. ``block_outputs``, if given, receives (name, tensor) of every block
        ("b<R>"), the epilogue's steps ("b4.mbstd", "b4.conv", "b4.fc"), the output
        layer before the projection ("b4.out" or "linear1") and the label embedding
        ("cmap"). ``recompute_from``: blocks of that resolution and up run their forward
        again in the backward pass instead of keeping their feature maps (:func:`recomputed`)."""
        n = img.shape[0]
        labels = as_labels(c, self.c_dim, n, "discriminator")
        feats: list[torch.Tensor] = []
        x: torch.Tensor | None = None
        for res in self.block_resolutions:
            if recompute_from is not None and res >= recompute_from:
                x = recomputed(self.block(res), x, img)
            else:
                x = self.block(res)(x, img)
            assert x is not None
            feats.append(x)
            if block_outputs is not None:
                block_outputs.append((f"b{res}", x))
        assert x is not None
        h = self.b4(x, independent, block_outputs)
        feats.append(h)
        out = self.head(h)
        if block_outputs is not None:
            block_outputs.append((D_HEADS[self.cfg.d_head], out))
        if labels is not None:
            cmap: torch.Tensor = self.mapping(None, labels)
            if block_outputs is not None:
                block_outputs.append(("cmap", cmap))
            out = (out * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return out, feats


def build(
    cfg: StyleGAN2Config,
    device: torch.device | str | None = None,
) -> tuple[Generator, Discriminator]:
    """A G and D of ``cfg`` in eval mode (``device="meta"`` builds them without memory,
    e.g. to check a checkpoint's keys and shapes)."""
    with torch.device(device or "cpu"):
        G, D = Generator(cfg), Discriminator(cfg)
    return G.eval(), D.eval()

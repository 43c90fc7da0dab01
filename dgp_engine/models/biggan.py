"""BigGAN generator and discriminator, written for DGP Studio.

State dicts match the public BigGAN-PyTorch checkpoints (plus the DGP
instance-norm additions ``blocks.*.0.in1/in2``), so ``load_state_dict(strict=True)``
works on the released G_ema/D files.  Calling convention is the reference one:
``G(z, G.shared(y))`` → image in [-1, 1]; ``D(x)`` → (logit, feature list).
"""

from __future__ import annotations

from typing import TypedDict, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import BigGANConfig
from .spectral import SNConv2d, SNEmbedding, SNLinear

# Folded resampling (models/spectral.py; a fast kernel) is used for convolutions whose
# output is at least this many pixels wide: measured on 2 CPU cores (fp32, oneDNN), a
# transposed 4×4 kernel beat upsample+3×3 from 32 px outputs up (forward+input-gradient
# 37→21 ms at 16→32 px, 768→384 channels) but lost below (42→55 ms at 8→16 px,
# 1536→768 channels), where the layers are bound by their weights' size, not their
# arithmetic.
FOLD_MIN_SIZE = 32


class _SNArgs(TypedDict):
    """Keyword arguments shared by a group of spectrally normalised layers."""

    eps: float
    style: str


class ConditionalBatchNorm(nn.Module):
    """BN with stored statistics, gain/bias predicted from [class embedding ‖ z chunk]."""

    stored_mean: torch.Tensor  # buffers, registered in __init__
    stored_var: torch.Tensor

    def __init__(
        self, channels: int, cond_dim: int, eps: float, sn_eps: float, sn_style: str = "power"
    ):
        super().__init__()
        self.gain = SNLinear(cond_dim, channels, bias=False, eps=sn_eps, style=sn_style)
        self.bias = SNLinear(cond_dim, channels, bias=False, eps=sn_eps, style=sn_style)
        self.eps = eps
        self.momentum = 0.1
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain: torch.Tensor = (1 + self.gain(cond)).view(cond.size(0), -1, 1, 1)
        bias: torch.Tensor = self.bias(cond).view(cond.size(0), -1, 1, 1)
        out = F.batch_norm(
            x, self.stored_mean, self.stored_var, None, None, self.training, self.momentum, self.eps
        )
        if gain.dtype != out.dtype:  # bfloat16 activations stay bfloat16
            gain, bias = gain.to(out.dtype), bias.to(out.dtype)
        return out * gain + bias


class OutputBatchNorm(nn.Module):
    """Plain BN of the output layer (parameters named gain/bias as in BigGAN)."""

    stored_mean: torch.Tensor  # buffers, registered in __init__
    stored_var: torch.Tensor

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.momentum = 0.1
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x,
            self.stored_mean,
            self.stored_var,
            self.gain,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )


class SelfAttention(nn.Module):
    """SA-GAN non-local block (theta/phi ch/8, g ch/2, 2x2 max-pooled keys)."""

    def __init__(self, ch: int, sn_eps: float, sn_style: str = "power"):
        super().__init__()
        self.ch = ch
        sn: _SNArgs = {"eps": sn_eps, "style": sn_style}
        self.theta = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, **sn)
        self.phi = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, **sn)
        self.g = SNConv2d(ch, ch // 2, 1, padding=0, bias=False, **sn)
        self.o = SNConv2d(ch // 2, ch, 1, padding=0, bias=False, **sn)
        self.gamma = nn.Parameter(torch.tensor(0.0))
        self.fast_kernels = False  # see use_fast_kernels()

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, use_in: bool = False
    ) -> torch.Tensor:
        n, _, h, w = x.shape
        theta = self.theta(x).view(n, self.ch // 8, h * w)
        phi = F.max_pool2d(self.phi(x), [2, 2]).view(n, self.ch // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), [2, 2]).view(n, self.ch // 2, h * w // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
        if self.fast_kernels:  # the same products with β untransposed: no [hw, hw/4] copies
            att = torch.bmm(beta, g.transpose(1, 2)).transpose(1, 2)
        else:
            att = torch.bmm(g, beta.transpose(1, 2))
        o: torch.Tensor = self.o(att.reshape(n, self.ch // 2, h, w))
        return self.gamma * o + x


class GeneratorBlock(nn.Module):
    """Up-sampling residual block with conditional BN (or DGP's instance-norm swap)."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, cfg: BigGANConfig):
        super().__init__()
        eps, style = cfg.SN_eps, cfg.sn_style
        self.conv1 = SNConv2d(in_ch, out_ch, 3, padding=1, eps=eps, style=style)
        self.conv2 = SNConv2d(out_ch, out_ch, 3, padding=1, eps=eps, style=style)
        self.conv_sc = SNConv2d(in_ch, out_ch, 1, padding=0, eps=eps, style=style)
        self.bn1 = ConditionalBatchNorm(in_ch, cond_dim, cfg.BN_eps, eps, style)
        self.bn2 = ConditionalBatchNorm(out_ch, cond_dim, cfg.BN_eps, eps, style)
        # DGP: instance norm that can replace BN during fine-tuning (``use_in``).
        # Its affine terms are set from the BN output, never trained.
        self.in1 = nn.InstanceNorm2d(in_ch, affine=True)
        self.in2 = nn.InstanceNorm2d(out_ch, affine=True)
        for p in (*self.in1.parameters(), *self.in2.parameters()):
            p.requires_grad_(False)
        self.in_initialized = False
        self.fast_kernels = False  # see use_fast_kernels()

    @staticmethod
    def _init_in(
        bn: ConditionalBatchNorm, inorm: nn.InstanceNorm2d, x: torch.Tensor, cond: torch.Tensor
    ) -> None:
        # Match the BN output's per-channel statistics so the swap keeps the image.
        with torch.no_grad():
            h = bn(x, cond)
            inorm.weight.copy_(torch.std(h.flatten(2), 2).squeeze(0))
            inorm.bias.copy_(torch.mean(h, (2, 3)).squeeze(0))

    def reset_in_init(self) -> None:
        self.in_initialized = False

    def forward(self, x: torch.Tensor, cond: torch.Tensor, use_in: bool = False) -> torch.Tensor:
        h: torch.Tensor
        if use_in:
            if not self.in_initialized:
                self._init_in(self.bn1, self.in1, x, cond)
            h = self.in1(x)
        else:
            h = self.bn1(x, cond)
            self.in_initialized = False
        h = F.relu(h)
        shortcut: torch.Tensor
        if self.fast_kernels:
            # a 1×1 convolution commutes with nearest upsampling: 1/4 of the work
            shortcut = F.interpolate(self.conv_sc(x), scale_factor=2)
            if 2 * h.shape[-1] >= FOLD_MIN_SIZE:
                h = self.conv1.forward_upsampled(h)
            else:
                h = self.conv1(F.interpolate(h, scale_factor=2))
        else:
            h = self.conv1(F.interpolate(h, scale_factor=2))
            shortcut = self.conv_sc(F.interpolate(x, scale_factor=2))
        if use_in:
            if not self.in_initialized:
                self._init_in(self.bn2, self.in2, h, cond)
                self.in_initialized = True
            h = self.in2(h)
        else:
            h = self.bn2(h, cond)
        h = self.conv2(F.relu(h))
        return h + shortcut


class Generator(nn.Module):
    def __init__(self, cfg: BigGANConfig):
        super().__init__()
        self.cfg = cfg
        arch = cfg.g_arch
        self.dim_z = cfg.effective_dim_z
        self.z_chunk_size = cfg.z_chunk_size
        self.bottom_width = cfg.bottom_width
        self.shared = nn.Embedding(cfg.n_classes, cfg.shared_dim)
        cond_dim = cfg.shared_dim + cfg.z_chunk_size
        z_in = self.dim_z // cfg.num_slots
        self.linear = SNLinear(
            z_in, arch["in_channels"][0] * cfg.bottom_width**2, eps=cfg.SN_eps, style=cfg.sn_style
        )
        blocks = []
        channels = zip(arch["in_channels"], arch["out_channels"], strict=True)
        for i, (cin, cout) in enumerate(channels):
            group: list[nn.Module] = [GeneratorBlock(cin, cout, cond_dim, cfg)]
            if arch["attention"][i]:
                group.append(SelfAttention(cout, cfg.SN_eps, cfg.sn_style))
            blocks.append(nn.ModuleList(group))
        self.blocks = nn.ModuleList(blocks)
        ch_last = arch["out_channels"][-1]
        self.output_layer = nn.Sequential(
            OutputBatchNorm(ch_last, cfg.BN_eps),
            nn.ReLU(),
            SNConv2d(ch_last, 3, 3, padding=1, eps=cfg.SN_eps, style=cfg.sn_style),
        )

    # DGP parameter groups: 0 = input linear (+ shared embedding if asked),
    # 1..N = residual blocks shallow→deep, N+1 = output layer (never trained by DGP).
    @property
    def num_groups(self) -> int:
        return len(self.blocks) + 1

    def group_modules(self, index: int) -> list[nn.Module]:
        if index == 0:
            return [self.linear]
        if index <= len(self.blocks):
            return [self.blocks[index - 1]]
        if index == len(self.blocks) + 1:
            return [self.output_layer]
        raise IndexError(f"generator parameter group {index} does not exist")

    def group_params(self, index: int, update_embed: bool = False) -> list[nn.Parameter]:
        params = [p for m in self.group_modules(index) for p in m.parameters()]
        if index == 0 and update_embed:
            params += list(self.shared.parameters())
        return params

    def reset_in_init(self) -> None:
        for m in self.modules():
            if isinstance(m, GeneratorBlock):
                m.reset_in_init()

    def split_z(
        self, z: torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.cfg.hier:
            zs = torch.split(z, self.z_chunk_size, 1)
            return zs[0], [torch.cat([cond, item], 1) for item in zs[1:]]
        return z, [cond] * len(self.blocks)

    def forward(
        self,
        z: torch.Tensor,
        cond: torch.Tensor,
        use_in: bool = False,
        intermediates: list[tuple[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        z0, conds = self.split_z(z, cond)
        h: torch.Tensor = self.linear(z0)
        if intermediates is not None:
            intermediates.append(("linear", h))
        h = h.view(h.size(0), -1, self.bottom_width, self.bottom_width)
        for index, group in enumerate(self.blocks):
            for j, block in enumerate(cast(nn.ModuleList, group)):
                h = block(h, conds[index], use_in)
                if intermediates is not None:
                    intermediates.append((f"blocks.{index}.{j}", h))
        return torch.tanh(self.output_layer(h))


class DiscriminatorBlock(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, cfg: BigGANConfig, preactivation: bool, downsample: bool
    ):
        super().__init__()
        hidden = out_ch if cfg.D_wide else in_ch
        sn: _SNArgs = {"eps": cfg.SN_eps, "style": cfg.sn_style}
        self.conv1 = SNConv2d(in_ch, hidden, 3, padding=1, **sn)
        self.conv2 = SNConv2d(hidden, out_ch, 3, padding=1, **sn)
        self.learnable_sc = in_ch != out_ch or downsample
        if self.learnable_sc:
            self.conv_sc = SNConv2d(in_ch, out_ch, 1, padding=0, **sn)
        self.preactivation = preactivation
        self.downsample = downsample
        # StudioGAN's block applies an in-place ReLU to its input before the residual
        # branch, so its shortcut sees relu(x) too; BigGAN-PyTorch's shortcut sees x.
        self.relu_shortcut = preactivation and cfg.family == "studiogan"
        self.fast_kernels = False  # see use_fast_kernels()

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.preactivation and not self.fast_kernels:
            if self.learnable_sc:
                x = self.conv_sc(x)
            if self.downsample:
                x = F.avg_pool2d(x, 2)
        else:
            if self.downsample:
                x = F.avg_pool2d(x, 2)
            if self.learnable_sc:
                x = self.conv_sc(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        if self.relu_shortcut:
            x = h
        h = F.relu(self.conv1(h))
        if self.downsample and self.fast_kernels and h.shape[-1] >= FOLD_MIN_SIZE:
            h = self.conv2.forward_pooled(h)
        else:
            h = self.conv2(h)
            if self.downsample:
                h = F.avg_pool2d(h, 2)
        # folded: a 1×1 convolution commutes with average pooling, so the shortcut pools
        # first (1/4 of the work) whichever order the architecture writes
        return h + self.shortcut(x)


class Discriminator(nn.Module):
    def __init__(self, cfg: BigGANConfig):
        super().__init__()
        self.cfg = cfg
        arch = cfg.d_arch
        blocks = []
        channels = zip(arch["in_channels"], arch["out_channels"], strict=True)
        for i, (cin, cout) in enumerate(channels):
            group: list[nn.Module] = [
                DiscriminatorBlock(
                    cin, cout, cfg, preactivation=i > 0, downsample=arch["downsample"][i]
                )
            ]
            if arch["attention"][i]:
                group.append(SelfAttention(cout, cfg.SN_eps, cfg.sn_style))
            blocks.append(nn.ModuleList(group))
        self.blocks = nn.ModuleList(blocks)
        ch_last = arch["out_channels"][-1]
        self.linear = SNLinear(ch_last, 1, eps=cfg.SN_eps, style=cfg.sn_style)
        self.embed = SNEmbedding(cfg.n_classes, ch_last, eps=cfg.SN_eps, style=cfg.sn_style)

    @property
    def num_features(self) -> int:
        return sum(len(cast(nn.ModuleList, g)) for g in self.blocks) + 1

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        block_outputs: list[tuple[str, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns (logit [N,1], features): every block/attention output, then the
        sum-pooled vector.  The last block's entry is post-ReLU, as in the reference
        (its in-place ReLU before pooling modifies the listed tensor).
        ``block_outputs``, if given, receives (name, output) of every block as computed,
        the last one before that ReLU (for parity checks)."""
        feats: list[torch.Tensor] = []
        h = x
        for index, group in enumerate(self.blocks):
            for j, block in enumerate(cast(nn.ModuleList, group)):
                h = block(h)
                feats.append(h)
                if block_outputs is not None:
                    block_outputs.append((f"blocks.{index}.{j}", h))
        h = F.relu(h)
        feats[-1] = h
        pooled = torch.sum(h, [2, 3])
        feats.append(pooled)
        out: torch.Tensor = self.linear(pooled)
        if y is not None:
            out = out + torch.sum(self.embed(y) * pooled, 1, keepdim=True)
        return out, feats


def use_fast_kernels(net: nn.Module, on: bool) -> None:
    """The same functions with fewer operations or copies: up/down-sampling convolutions
    with folded kernels, the smallest convolutions as matrix products on the CPU (see
    models/spectral.py), attention products in the order that needs no transposed copy.
    Off for the reference-exact mode, whose float rounding follows the reference code."""
    for m in net.modules():
        if isinstance(m, (GeneratorBlock, DiscriminatorBlock, SelfAttention, SNConv2d)):
            m.fast_kernels = on

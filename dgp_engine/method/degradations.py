"""Degradations φ (docs/method.md#degradations): differentiable maps applied to the
generator's output.

Every degradation maps a [N,3,H,W] image in [-1, 1] to the observation space at
the same size.  ``observe`` makes a synthetic observation from a clean image
(for evaluation and tests); real observations are passed to the engine as the
target directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .taskspec import DOWNSAMPLE, GRAY, MASK, TASK_SPECS, TaskSpec, find_task

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


class Degradation:
    name = "identity"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def observe(self, clean: torch.Tensor) -> torch.Tensor:
        """A synthetic observation of a clean image (default: φ itself)."""
        with torch.no_grad():
            return self(clean)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def to(self, device: torch.device | str) -> Degradation:
        return self


class Identity(Degradation):
    """Plain reconstruction and adversarial-noise removal."""


@dataclass
class Grayscale(Degradation):
    name = "gray"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        gray = GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b
        n, _, h, w = x.shape
        return gray.view(n, 1, h, w).expand(n, 3, h, w)


@dataclass
class Mask(Degradation):
    """x ⊙ m with m = 1 on known pixels, 0 in the hole."""

    mask: torch.Tensor = field(repr=False)
    name = "mask"

    def __post_init__(self) -> None:
        m = torch.as_tensor(self.mask, dtype=torch.float32)
        while m.dim() < 4:
            m = m.unsqueeze(0)
        if m.shape[0] != 1 or m.shape[1] != 1:
            raise InputError("A mask must be a single-channel image (1 = keep, 0 = fill).")
        if not torch.isfinite(m).all():
            raise InputError("The mask holds non-finite values.")
        m = (m > 0.5).float()
        if m.min() == 1:
            raise InputError("The mask has no hole: paint the area to fill first.")
        if m.max() == 0:
            raise InputError(
                "The mask covers the whole image: nothing is known to restore "
                "from. Leave some of the picture unmasked."
            )
        self.mask = m

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.mask.shape[-2:]:
            raise InputError(
                f"Mask size {tuple(self.mask.shape[-2:])} does not match the "
                f"image size {tuple(x.shape[-2:])}."
            )
        return x * self.mask

    def to(self, device: torch.device | str) -> Mask:
        self.mask = self.mask.to(device)
        return self

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "hole_fraction": float(1 - self.mask.mean())}

    @classmethod
    def centre_hole(cls, size: int) -> Mask:
        """The paper's centred square hole of side size // 3."""
        hole = size // 3
        begin = (size - hole) // 2
        m = torch.ones(1, 1, size, size)
        m[..., begin : size - begin, begin : size - begin] = 0
        return cls(m)


def lanczos2_kernel(factor: int) -> np.ndarray:
    """Separable-product Lanczos (a = 2) kernel of width 4·factor, phase 0.5, sum 1."""
    width = 4 * factor + 1
    size = width - 1
    centre = (width + 1) / 2.0
    support = 2
    k = np.zeros((size, size), dtype=np.float64)
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            val = 1.0
            for d in (abs(i + 0.5 - centre) / factor, abs(j + 0.5 - centre) / factor):
                if d != 0:
                    val *= support * math.sin(math.pi * d) * math.sin(math.pi * d / support)
                    val /= math.pi * math.pi * d * d
            k[i - 1, j - 1] = val
    kernel: np.ndarray = k / k.sum()
    return kernel


@dataclass
class Downsample(Degradation):
    """×factor super-resolution observation: Lanczos-2 down (stride f, replicate
    padding), then bilinear back up to the model resolution."""

    factor: int = 4
    name = "downsample"

    def __post_init__(self) -> None:
        if self.factor not in (2, 4, 8):
            raise InputError(f"Super-resolution factor must be 2, 4 or 8, not {self.factor}.")
        k = torch.from_numpy(lanczos2_kernel(self.factor)).float()
        self.kernel = k.expand(3, 1, *k.shape).contiguous()
        self.pad = (k.shape[0] - self.factor) // 2

    def down(self, x: torch.Tensor) -> torch.Tensor:
        x01 = (x + 1) / 2
        x01 = F.pad(x01, [self.pad] * 4, mode="replicate")
        lr = F.conv2d(x01, self.kernel.to(x.device, x.dtype), stride=self.factor, groups=3)
        return lr * 2 - 1

    def up(self, lr: torch.Tensor) -> torch.Tensor:
        return F.interpolate(lr, scale_factor=self.factor, mode="bilinear")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))

    def observe(self, clean: torch.Tensor) -> torch.Tensor:
        """PIL Lanczos down-scaling of the clean image, bilinear back up (as the paper)."""
        from PIL import Image

        arr = ((clean[0].detach().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
        img = Image.fromarray(arr.permute(1, 2, 0).numpy())
        lr = img.resize(
            (img.width // self.factor, img.height // self.factor), Image.Resampling.LANCZOS
        )
        t = torch.from_numpy(np.asarray(lr, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
        return self.up(t.unsqueeze(0).to(clean.device))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "factor": self.factor}


@dataclass
class Compose(Degradation):
    """Applies its parts in order (e.g. downsample ×2 → gray → mask)."""

    parts: list[Degradation] = field(default_factory=list)
    name = "compose"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for p in self.parts:
            x = p(x)
        return x

    def observe(self, clean: torch.Tensor) -> torch.Tensor:
        x = clean
        for p in self.parts:
            x = p.observe(x)
        return x

    def to(self, device: torch.device | str) -> Compose:
        for p in self.parts:
            p.to(device)
        return self

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "parts": [p.describe() for p in self.parts]}


def make_degradation(
    task: str | TaskSpec | Degradation,
    *,
    mask: torch.Tensor | None = None,
    factor: int | None = None,
    resolution: int | None = None,
) -> Degradation:
    """φ for a task (its :class:`~.taskspec.TaskSpec` or its name), built from the task's
    parts in :mod:`.taskspec`: the one mapping from tasks to degradations.  Tasks with a
    mask take ``mask`` (default: the paper's centre hole at ``resolution``; hybrid runs
    without one when neither is given); super-resolution takes ``factor`` (default: the
    task's, 4 for superres, 2 for hybrid)."""
    if isinstance(task, Degradation):
        return task
    spec = task if isinstance(task, TaskSpec) else find_task(task)
    if spec is None:
        raise InputError(
            f"Unknown task {task!r}. Choose one of: "
            f"{', '.join(sorted(s.name for s in TASK_SPECS))}."
        )

    def the_mask() -> Mask:
        if mask is not None:
            return Mask(mask)
        if resolution is None:
            raise InputError("Inpainting needs a mask (or a resolution for the centre hole).")
        return Mask.centre_hole(resolution)

    parts: list[Degradation] = []
    for kind in spec.degradation:
        if kind == DOWNSAMPLE:
            parts.append(Downsample(factor or spec.default_factor or 4))
        elif kind == GRAY:
            parts.append(Grayscale())
        elif kind == MASK and (spec.needs_mask or mask is not None or resolution is not None):
            parts.append(the_mask())
    if not parts:
        return Identity()
    return parts[0] if len(parts) == 1 else Compose(parts)

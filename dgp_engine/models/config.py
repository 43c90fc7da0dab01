"""BigGAN architecture settings under BigGAN-PyTorch's flag names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypedDict

from ..errors import CheckpointError

SUPPORTED_RESOLUTIONS = (32, 64, 128, 256)
#: Where a network's weights come from, which fixes two details of the same BigGAN:
#: "biggan-pytorch" (the authors' BigGAN-PyTorch checkpoints: spectral norm by one power
#: step from the stored u) and "studiogan" (PyTorch-StudioGAN's ``big_resnet``: PyTorch's
#: spectral norm, sigma = u^T W v from the stored u and v; a 64 px generator one block
#: narrower at the bottom).
FAMILIES = ("biggan-pytorch", "studiogan")
#: Generator channel multipliers (block inputs, block outputs) per family and resolution.
_G_MULT = {
    "biggan-pytorch": {
        256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1]),
        128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
        64: ([16, 16, 8, 4], [16, 8, 4, 2]),
        32: ([4, 4, 4], [4, 4, 4]),
    },
    "studiogan": {
        256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1]),
        128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
        64: ([16, 8, 4, 2], [8, 4, 2, 1]),
    },
}


class GeneratorArch(TypedDict):
    """Per generator block: channels in/out, output resolution, self-attention after it."""

    in_channels: list[int]
    out_channels: list[int]
    resolution: list[int]
    attention: list[bool]


class DiscriminatorArch(TypedDict):
    """Per discriminator block: channels in/out, down-sampling, resolution, attention."""

    in_channels: list[int]
    out_channels: list[int]
    downsample: list[bool]
    resolution: list[int]
    attention: list[bool]


@dataclass(frozen=True)
class BigGANConfig:
    resolution: int = 128
    G_ch: int = 96
    D_ch: int = 96
    dim_z: int = 120
    shared_dim: int = 128
    hier: bool = True
    n_classes: int = 1000
    G_attn: str = "64"
    D_attn: str = "64"
    SN_eps: float = 1e-6
    BN_eps: float = 1e-5
    D_wide: bool = True
    bottom_width: int = 4
    family: str = "biggan-pytorch"

    def __post_init__(self) -> None:
        if self.resolution not in SUPPORTED_RESOLUTIONS:
            raise CheckpointError(
                f"Unsupported resolution {self.resolution}; BigGAN models here are "
                f"{', '.join(map(str, SUPPORTED_RESOLUTIONS))} px."
            )
        if self.family not in FAMILIES:
            raise CheckpointError(
                f"config.json: family must be one of {', '.join(FAMILIES)}, not {self.family!r}"
            )
        if self.resolution not in _G_MULT[self.family]:
            raise CheckpointError(
                f"{self.family} BigGANs are supported at "
                f"{', '.join(map(str, sorted(_G_MULT[self.family])))} px, not "
                f"{self.resolution} px."
            )
        for name in ("G_ch", "D_ch", "dim_z", "shared_dim", "n_classes"):
            if int(getattr(self, name)) <= 0:
                raise CheckpointError(f"config.json: {name} must be a positive integer")
        if self.G_ch % 8 or self.D_ch % 8:
            raise CheckpointError(
                "config.json: G_ch and D_ch must be multiples of 8 (attention uses ch/8 channels)"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BigGANConfig:
        """Build from a BigGAN-PyTorch style dict; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: d[k] for k in names if k in d}
        try:
            for f in dataclasses.fields(cls):
                if f.name in kwargs:
                    kwargs[f.name] = _coerce(kwargs[f.name], type(f.default))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"config.json has a value of the wrong type: {exc}") from exc
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # --- derived architecture -------------------------------------------------
    @property
    def g_arch(self) -> GeneratorArch:
        ch = self.G_ch
        mult = _G_MULT[self.family][self.resolution]
        n = len(mult[0])
        res = [8 * 2**i for i in range(n)]
        attn = _attn_set(self.G_attn)
        return {
            "in_channels": [ch * m for m in mult[0]],
            "out_channels": [ch * m for m in mult[1]],
            "resolution": res,
            "attention": [r in attn for r in res],
        }

    @property
    def d_arch(self) -> DiscriminatorArch:
        ch = self.D_ch
        spec = {
            256: (
                [1, 2, 4, 8, 8, 16],
                [1, 2, 4, 8, 8, 16, 16],
                [True] * 6 + [False],
                [128, 64, 32, 16, 8, 4, 4],
            ),
            128: (
                [1, 2, 4, 8, 16],
                [1, 2, 4, 8, 16, 16],
                [True] * 5 + [False],
                [64, 32, 16, 8, 4, 4],
            ),
            64: ([1, 2, 4, 8], [1, 2, 4, 8, 16], [True] * 4 + [False], [32, 16, 8, 4, 4]),
            32: ([4, 4, 4], [4, 4, 4, 4], [True, True, False, False], [16, 16, 16, 16]),
        }[self.resolution]
        attn = _attn_set(self.D_attn)
        return {
            "in_channels": [3] + [ch * m for m in spec[0]],
            "out_channels": [ch * m for m in spec[1]],
            "downsample": spec[2],
            "resolution": spec[3],
            "attention": [r in attn for r in spec[3]],
        }

    @property
    def num_slots(self) -> int:
        return len(self.g_arch["in_channels"]) + 1 if self.hier else 1

    @property
    def z_chunk_size(self) -> int:
        return self.dim_z // self.num_slots if self.hier else 0

    @property
    def effective_dim_z(self) -> int:
        """hier rounds dim_z down to a multiple of the number of slots (120→119 at 256)."""
        return self.z_chunk_size * self.num_slots if self.hier else self.dim_z

    @property
    def sn_style(self) -> str:
        """ "power": one power step from u0 per forward; "fixed": sigma = u0^T W v0."""
        return "fixed" if self.family == "studiogan" else "power"

    def describe(self) -> str:
        origin = " (StudioGAN)" if self.family == "studiogan" else ""
        return (
            f"BigGAN{origin} {self.resolution}px, G_ch {self.G_ch}, D_ch {self.D_ch}, "
            f"dim_z {self.dim_z}, shared_dim {self.shared_dim}, "
            f"{self.n_classes} classes, hier={self.hier}"
        )


def _attn_set(spec: str | int) -> set[int]:
    items = [s for s in str(spec).split("_") if s.strip()]
    try:
        return {int(s) for s in items if int(s) > 0}
    except ValueError as exc:
        raise CheckpointError(f"attention setting {spec!r} must look like '64' or '32_64'") from exc


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool and isinstance(value, str):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} is not an integer")
    return kind(value)

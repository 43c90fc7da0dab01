"""Does a state dict fit a BigGAN architecture? One sentence saying what to do if not.

Keys and shapes are compared with our Generator/Discriminator built on the meta device
(no weights allocated); a mismatch is explained by what the file is (role, resolution,
width, classes) and which registered model it would fit.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..models import BigGANConfig, Discriminator, Generator
from . import registry
from .checkpoint import OPTIONAL_G_KEYS, load_strict

ROLE_NAME = {"G": "generator", "D": "discriminator"}
ROLE_FLAG = {"G": "--g", "D": "--d"}


@functools.lru_cache(maxsize=8)
def _meta_nets(config: BigGANConfig) -> tuple[Generator, Discriminator]:
    """Generator/discriminator on the meta device: their state-dict names and shapes,
    without allocating or initialising any weights."""
    with torch.device("meta"):
        return Generator(config), Discriminator(config)


@dataclass(frozen=True)
class CheckpointShape:
    """What a state dict looks like: which network, resolution, width, classes."""

    role: str | None  # "G", "D" or None when neither
    resolution: int | None = None
    ch: int | None = None
    n_classes: int | None = None

    def describe(self) -> str:
        if self.role is None:
            return "not a BigGAN generator or discriminator"
        parts = [
            f"a BigGAN {self.resolution} px {ROLE_NAME[self.role]}"
            if self.resolution
            else f"a BigGAN {ROLE_NAME[self.role]}"
        ]
        if self.ch:
            parts.append(f"with {self.role}_ch {self.ch}")
        return " ".join(parts)


def inspect_state_dict(sd: dict[str, Any]) -> CheckpointShape:
    """Guess role, resolution and channel width of a BigGAN-PyTorch state dict
    (tensors or anything with ``.shape``)."""

    def shape(key: str) -> tuple[int, ...] | None:
        v = sd.get(key)
        return tuple(v.shape) if v is not None and hasattr(v, "shape") else None

    blocks = {k.split(".")[1] for k in sd if k.startswith("blocks.") and k.count(".") > 1}
    n = len(blocks)
    output_shape = shape("output_layer.2.weight")
    if output_shape is not None:
        res = {3: 32, 4: 64, 5: 128, 6: 256}.get(n)
        # The first block's input is 16·G_ch at 64-256 px (4·G_ch at 32 px) in both
        # families; the output layer's input is not (2·G_ch at 64 px, G_ch above).
        first_in = shape("blocks.0.0.conv1.weight")
        ch: int | None
        if first_in is not None and len(first_in) > 1:
            ch = first_in[1] // (4 if res == 32 else 16)
        else:
            out_in = output_shape[1]
            ch = out_in // {32: 4, 64: 2}.get(res or 0, 1)
        classes = shape("shared.weight")
        return CheckpointShape("G", res, ch, classes[0] if classes else None)
    if shape("embed.weight") is not None or shape("blocks.0.0.conv1.weight") is not None:
        res = {4: 32, 5: 64, 6: 128, 7: 256}.get(n)
        first = shape("blocks.0.0.conv1.weight")
        ch = (first[0] // 4 if res == 32 else first[0]) if first else None
        classes = shape("embed.weight")
        return CheckpointShape("D", res, ch, classes[0] if classes else None)
    return CheckpointShape(None)


def _registry_match(shape: CheckpointShape, exclude: str) -> str | None:
    for entry in registry.entries().values():
        cfg = entry.config
        if entry.name == exclude or cfg is None or entry.kind != "download":
            continue
        ch = cfg.G_ch if shape.role == "G" else cfg.D_ch
        if (cfg.resolution, ch) == (shape.resolution, shape.ch) and shape.n_classes in (
            None,
            cfg.n_classes,
        ):
            return entry.name
    return None


def check_state_dict(
    sd: dict[str, Any],
    role: str,
    config: BigGANConfig,
    *,
    label: str,
    model: str,
    other_label: str | None = None,
    has_config_file: bool = False,
    source_hint: str | None = None,
) -> None:
    """Raise CheckpointError with one sentence saying what to do, unless ``sd`` has exactly
    the keys and shapes of the ``role`` network of ``config`` (DGP's optional
    InstanceNorm keys may be absent)."""
    net = _meta_nets(config)[0 if role == "G" else 1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "copying into a meta parameter is a no-op"
            load_strict(
                net, sd, Path(label), config, optional=OPTIONAL_G_KEYS if role == "G" else None
            )
        return
    except CheckpointError as exc:
        strict_error = exc
    found = inspect_state_dict(sd)
    want_ch = config.G_ch if role == "G" else config.D_ch
    expected = f"{config.resolution} px with {role}_ch {want_ch}, {config.n_classes} classes"
    if source_hint:  # pulled: the mirror serves something else than the registry says
        fix_config = f"point {model}'s source at the right files ({source_hint})"
    elif has_config_file:
        fix_config = "fix the config you gave"
    else:
        fix_config = "import it under a new name with --config describing it"
    if found.role is None:
        raise CheckpointError(
            f"{label} is not a BigGAN-PyTorch {ROLE_NAME[role]} state dict "
            f"({strict_error}); pass the {'G_ema.pth' if role == 'G' else 'D.pth'} file with "
            f"{ROLE_FLAG[role]}."
        ) from strict_error
    if found.role != role:
        raise CheckpointError(
            f"{label} holds a {ROLE_NAME[found.role]}, not a {ROLE_NAME[role]}: pass the "
            "generator (G_ema.pth) with --g and the discriminator (D.pth) with --d."
        ) from strict_error
    same_arch = (found.resolution, found.ch) == (config.resolution, want_ch)
    if role == "D" and other_label and not same_arch:
        raise CheckpointError(
            f"{label} does not belong to {other_label}: it is {found.describe()}, but the "
            f"generator is a {config.resolution} px model (G_ch {config.G_ch}) and needs a D "
            f"with D_ch {config.D_ch}; pass the D.pth saved together with that G_ema.pth."
        ) from strict_error
    if not same_arch:
        better = None if source_hint else _registry_match(found, exclude=model)
        advice = (
            f"import it as {better} instead"
            if better
            else f"{fix_config} (resolution {found.resolution}, {role}_ch {found.ch})"
            if not source_hint
            else fix_config
        )
        raise CheckpointError(
            f"{label} is {found.describe()}, but {model} expects {expected}: {advice}."
        ) from strict_error
    if found.n_classes and found.n_classes != config.n_classes:
        raise CheckpointError(
            f"{label} has {found.n_classes} classes, but {model} expects {config.n_classes}: "
            f"{fix_config} (n_classes {found.n_classes})."
        ) from strict_error
    raise strict_error


def check_safetensors_header(file: Path, role: str, config: BigGANConfig) -> None:
    """Keys and shapes of a safetensors file, read from its header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as fh:
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{file.name} is damaged ({exc}).") from exc
    _check_shapes(shapes, role, config, file.name)


def _check_shapes(
    shapes: dict[str, tuple[int, ...]], role: str, config: BigGANConfig, label: str
) -> None:
    expected = {
        k: tuple(v.shape)
        for k, v in _meta_nets(config)[0 if role == "G" else 1].state_dict().items()
    }
    missing = [
        k for k in expected if k not in shapes and not (role == "G" and OPTIONAL_G_KEYS.match(k))
    ]
    unexpected = [k for k in shapes if k not in expected]
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{label} does not fit {config.describe()} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} wrongly shaped tensors)."
        )

"""StyleGAN2 priors: what a file holds, whether it fits an architecture, and loading an
installed StyleGAN2 back as networks.

The files themselves are read by the safe readers of ``stylegan2_files`` (NVIDIA network
pickles through a restricted unpickler that never runs the source text they embed;
StudioGAN checkpoints with ``torch.load(weights_only=True)``). This module adds what the
priors room needs on top: reading StudioGAN's generator and discriminator one file at a
time (a pull checks the small G before it downloads D), the architecture of a StudioGAN
pair (its tensors, the run's YAML, and the two settings the files do not record:
``conv_clamp`` and the minibatch-std group size), one-sentence refusals that say what a
file is and what to do, and the networks of an installed folder.

An installed StyleGAN2 looks like an installed BigGAN: ``config.json`` (the
:class:`~dgp_engine.models.stylegan2.StyleGAN2Config` with ``"family": "stylegan2"``),
``G_ema.safetensors`` and ``D.safetensors`` under the networks' own state-dict names
(NVIDIA's and StudioGAN's: ``StyleGAN2Config.d_head`` says which name the last D layer
has), weight tensors as float16, and ``model.json``.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..models import stylegan2 as sg2
from ..models.stylegan2 import StyleGAN2Config

# The safe readers; the one line to change when they move to the priors room.
from . import stylegan2_files as sg2_files
from .checkpoint import numpy_floats_allowed, read_state_dict
from .family import STYLEGAN2, config_from_dict

FAMILY = STYLEGAN2
#: What an install records as the terms of use of NVIDIA's pickles (their code and the
#: official networks are under this licence; the pickles embed the code).
LICENCE_NVIDIA = "NVIDIA Source Code License-NC (non-commercial: research or evaluation use only)"
#: StudioGAN's StyleGAN2 weights: trained with NVIDIA-licensed code; whether that licence
#: reaches the weights is not settled, so they are treated as research use.
LICENCE_STUDIOGAN = "research use (trained with NVIDIA-licensed code)"
#: How StudioGAN names its StyleGAN2 checkpoint files (also for refusals).
G_FILE_HINT = "model=G_ema-…pth"
D_FILE_HINT = "model=D-…pth"

StyleGAN2Weights = sg2_files.StyleGAN2Weights
read_network_pickle = sg2_files.read_network_pickle
ROLE_NAME = {"G": "generator", "D": "discriminator"}


# --------------------------------------------------------------------------- recognising


def is_stylegan2_keys(keys: set[str] | list[str]) -> bool:
    """Whether state-dict names are a StyleGAN2 (or 3) generator's or discriminator's."""
    names = {k.removeprefix("module.") for k in keys}
    return any(
        k.startswith("synthesis.b4.") or k.startswith("synthesis.input.") for k in names
    ) or ("b4.conv.weight" in names and any(re.match(r"b\d+\.fromrgb\.weight$", k) for k in names))


def probe_keys(file: Path) -> set[str] | None:
    """The tensor names of a checkpoint, read without converting any tensor (None when
    the file cannot be read this way; the full read then says why)."""
    try:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as fh:
                return set(fh.keys())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with numpy_floats_allowed():
                data = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - any failure: let the full read give the sentence
        return None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    return {str(k) for k in data} if isinstance(data, dict) else None


def _role_of(keys: set[str]) -> str | None:
    if any(k.startswith("synthesis.") for k in keys):
        return "G"
    if "b4.conv.weight" in keys:
        return "D"
    return None


def _is_stylegan3(keys: set[str]) -> bool:
    return any(
        k.startswith("synthesis.input.") or re.match(r"synthesis\.L\d+_\d+_\d+\.", k) for k in keys
    )


def read_studiogan_role(file: Path, role: str) -> dict[str, torch.Tensor]:
    """The tensors of one StudioGAN StyleGAN2 checkpoint (``model=G_ema-…pth``,
    ``model=G-…`` or ``model=D-…``), float32, refusing with a sentence a file that is not
    the ``role`` network of a StyleGAN2."""
    sd = read_state_dict(file)  # weights_only; StudioGAN's numpy best_fid allowed
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    keys = set(sd)
    if _is_stylegan3(keys):
        raise CheckpointError(
            f"{file.name} is a StyleGAN3 network; DGP Studio reads "
            "StyleGAN2 generators and discriminators."
        )
    found = _role_of(keys) if is_stylegan2_keys(keys) else None
    if found is None:
        raise CheckpointError(
            f"{file.name} is not a StyleGAN2 {ROLE_NAME[role]} (none of its tensors has a "
            f"StyleGAN2 name): pass StudioGAN's {G_FILE_HINT if role == 'G' else D_FILE_HINT} "
            f"file with {'--g' if role == 'G' else '--d'}."
        )
    if found != role:
        raise CheckpointError(
            f"{file.name} holds a StyleGAN2 {ROLE_NAME[found]}, not a {ROLE_NAME[role]}: "
            f"pass the generator ({G_FILE_HINT}) with --g and the discriminator "
            f"({D_FILE_HINT}) with --d."
        )
    return sd


# --------------------------------------------------------------------------- architecture


def describe_state(sd: dict[str, Any], role: str) -> str:
    """What a StyleGAN2 state dict is, from its names and shapes (for refusals)."""

    def shape(key: str) -> tuple[int, ...] | None:
        value = sd.get(key)
        return tuple(value.shape) if value is not None and hasattr(value, "shape") else None

    prefix = "synthesis.b" if role == "G" else "b"
    sizes = [int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))]
    res = max(sizes) if sizes else None
    embed = shape("mapping.embed.weight")
    classes = f"{embed[1]} classes" if embed and len(embed) == 2 else "unconditional"
    parts = [f"{res} px" if res else "", classes]
    fc0 = shape("mapping.fc0.weight")
    if role == "G" and fc0 and len(fc0) == 2:
        w = fc0[0]
        parts.append(f"z {fc0[1] - (w if embed else 0)}, w {w}")
    return f"a StyleGAN2 {ROLE_NAME[role]} ({', '.join(p for p in parts if p)})"


def describe_config(config: StyleGAN2Config, role: str) -> str:
    classes = (
        f"{config.c_dim if role == 'G' else config.d_label_dim} classes"
        if (config.c_dim if role == "G" else config.d_label_dim)
        else "unconditional"
    )
    extra = f", z {config.z_dim}, w {config.w_dim}" if role == "G" else ""
    return f"a {config.resolution} px {ROLE_NAME[role]} ({classes}{extra})"


@functools.lru_cache(maxsize=8)
def meta_networks(config: StyleGAN2Config) -> tuple[sg2.Generator, sg2.Discriminator]:
    """G and D of ``config`` on the meta device: names and shapes, no memory."""
    return sg2.build(config, "meta")


def _expected_shapes(config: StyleGAN2Config, role: str) -> dict[str, tuple[int, ...]]:
    net = meta_networks(config)[0 if role == "G" else 1]
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _mismatch(shapes: dict[str, tuple[int, ...]], config: StyleGAN2Config, role: str) -> str:
    """'' when the names and shapes are exactly the ``role`` network's, else a summary."""
    expected = _expected_shapes(config, role)
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    wrong = [
        f"{k}: file {shapes[k]} vs model {expected[k]}"
        for k in expected
        if k in shapes and shapes[k] != expected[k]
    ]
    return "; ".join(
        filter(
            None,
            [
                f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "",
                f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})"
                if unexpected
                else "",
                f"{len(wrong)} of the wrong shape (e.g. {'; '.join(wrong[:2])})" if wrong else "",
            ],
        )
    )


def check_role(
    sd: dict[str, torch.Tensor],
    role: str,
    config: StyleGAN2Config,
    *,
    label: str,
    model: str,
    other_label: str | None = None,
    fix: str = "",
) -> None:
    """Refuse, with one sentence saying what to do, a state dict that is not exactly the
    ``role`` network of ``config`` (names and shapes). ``other_label``: the generator a
    discriminator was given with; ``fix``: what to do when the file is another model."""
    problem = _mismatch({k: tuple(v.shape) for k, v in sd.items()}, config, role)
    if not problem:
        return
    found = describe_state(sd, role)
    if role == "D" and other_label:
        raise CheckpointError(
            f"{label} does not belong to {other_label}: it is {found}, but the generator "
            f"needs {describe_config(config, 'D')}; pass the {D_FILE_HINT} saved together "
            f"with that generator ({problem})."
        )
    advice = fix or "import it under a new name"
    raise CheckpointError(
        f"{label} is {found}, but {model} expects "
        f"{describe_config(config, role)}: {advice} ({problem})."
    )


def check_safetensors_header(file: Path, role: str, config: StyleGAN2Config) -> None:
    """Names and shapes of an installed weights file, from its header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as fh:
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{file.name} is damaged ({exc}).") from exc
    problem = _mismatch(shapes, config, role)
    if problem:
        raise CheckpointError(f"{file.name} does not fit {config.describe()} ({problem}).")


def conv_clamp_setting(value: float | str | None) -> float | None:
    """``--conv-clamp`` as given: "256" → 256.0, "none" (or None) → None."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    try:
        clamp = float(value)
    except (TypeError, ValueError):
        raise CheckpointError(
            f"conv_clamp must be a number (256 for runs trained with "
            f"mixed precision) or none, not {value!r}."
        ) from None
    if not (clamp > 0 and math.isfinite(clamp)):
        raise CheckpointError(f"conv_clamp must be a positive number or none, not {value!r}.")
    return clamp


def studiogan_config(
    g_sd: dict[str, torch.Tensor],
    d_sd: dict[str, torch.Tensor],
    *,
    conv_clamp: float | None,
    mbstd_group_size: int | None,
    yaml_settings: dict[str, Any] | None = None,
    yaml_name: str = "",
    label: str = "the StudioGAN checkpoint",
) -> StyleGAN2Config:
    """The architecture of a StudioGAN StyleGAN2 pair: read from the tensors (via the
    reader), with the two settings the files do not record, and checked against the run's
    YAML settings (``stylegan2_files.read_studiogan_yaml``) when there are any."""
    try:
        config = sg2_files.infer_studiogan_config(
            g_sd, d_sd, conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size, label=label
        )
    except (IndexError, ValueError, TypeError, ZeroDivisionError) as exc:
        raise CheckpointError(
            f"{label}: the tensors do not have the shapes of a StyleGAN2 "
            f"({type(exc).__name__}: {exc})."
        ) from None
    sg2_files.check_yaml_settings(config, yaml_settings or {}, yaml_name)
    return config


def read_yaml_settings(file: Path) -> dict[str, Any]:
    """A StudioGAN StyleGAN2 run's YAML: the settings our config can check or use."""
    return sg2_files.read_studiogan_yaml(file)


def same_architecture(a: StyleGAN2Config, b: StyleGAN2Config) -> bool:
    """Equal but for ``num_fp16_res`` (speed only, never used here)."""
    return a.to_dict() | {"num_fp16_res": 0} == b.to_dict() | {"num_fp16_res": 0}


# --------------------------------------------------------------------------- installed


def read_installed_config(data: dict[str, Any], where: str) -> StyleGAN2Config:
    config = config_from_dict(data)
    if not isinstance(config, StyleGAN2Config):
        raise CheckpointError(f"{where} does not describe a StyleGAN2.")
    return config


def build_networks(
    config: StyleGAN2Config,
    g_sd: dict[str, torch.Tensor],
    d_sd: dict[str, torch.Tensor],
    files: tuple[Path, Path],
) -> tuple[sg2.Generator, sg2.Discriminator]:
    """G_ema and D of ``config`` holding these (float32) tensors, in eval mode; a state
    dict that does not fit exactly is refused by name."""
    weights = StyleGAN2Weights(config, g_sd, d_sd, None, "installed", files)
    return sg2_files.build_networks(weights)


def class_names(folder: Path, config: StyleGAN2Config) -> list[str]:
    """The model's own classes.txt, else "class i"; none for an unconditional G."""
    if config.c_dim == 0:
        return []
    own = folder / "classes.txt"
    if own.is_file():
        names = [ln.strip() for ln in own.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(names) == config.c_dim:
            return names
    return [f"class {i}" for i in range(config.c_dim)]

"""PyTorch-StudioGAN's BigGAN checkpoints (``big_resnet``), read into our BigGAN.

StudioGAN publishes G, G_ema and D of its benchmark runs as ``model=G_ema-best-weights-
step=N.pth`` etc.: a dict whose ``state_dict`` holds the weights, next to optimizer state
and plain metadata. Its BigGAN is the network of BigGAN-PyTorch under other parameter
names, with PyTorch's own spectral norm (``weight_orig`` + stored ``weight_u``/``weight_v``;
sigma = uᵀ W v in eval mode), BN eps 1e-4, attention as its own entry of ``blocks``, and
at 64 px a generator one block narrower at the bottom. This module only knows names and
shapes: it tells a StudioGAN BigGAN from everything else, reads the architecture from a
StudioGAN YAML config or from the tensors themselves, and renames the tensors to ours.

Names, ours ← StudioGAN's (``*`` = spectral-norm layer: ``weight``/``u0``/``v0`` ←
``weight_orig``/``weight_u``/``weight_v``; bias kept):

* G: ``linear*`` ← ``linear0*``; ``shared`` ← ``shared``; per residual block k (StudioGAN
  index i, attention entries skipped in the count) ``blocks.k.0.{conv_sc,conv1,conv2}*`` ←
  ``blocks.i.0.{conv2d0,conv2d1,conv2d2}*``, ``bn1/bn2.{gain,bias}*`` ← the same,
  ``bn1/bn2.stored_mean/var`` ← ``bn1/bn2.bn.running_mean/var``; the attention entry after
  block k becomes ``blocks.k.1.{theta,phi,g,o}*`` ← ``conv1x1_{theta,phi,g,attn}*`` and
  ``gamma`` ← ``sigma``; ``output_layer.0.{gain,bias,stored_mean,stored_var}`` ←
  ``bn4.{weight,bias,running_mean,running_var}``; ``output_layer.2*`` ← ``conv2d5*``.
* D: blocks as for G's convolutions and attention; ``linear*`` ← ``linear1*``;
  ``embed*`` ← ``embedding*``.

``num_batches_tracked`` counters are dropped (eval-mode BN never reads them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..models import BigGANConfig
from ..system.fileio import read_small_file

FAMILY = "studiogan"
#: StudioGAN's BN eps in big_resnet (BigGAN-PyTorch uses 1e-5).
BN_EPS = 1e-4
#: File names StudioGAN's trainer writes, best checkpoints first.
G_FILES = (
    "model=G_ema-best-weights-step=*.pth",
    "model=G_ema-current-weights-step=*.pth",
    "model=G-best-weights-step=*.pth",
    "model=G-current-weights-step=*.pth",
)
D_FILES = ("model=D-best-weights-step=*.pth", "model=D-current-weights-step=*.pth")
YAML_NAMES = ("studiogan.yaml", "config.yaml")

_SN = {"weight_orig": "weight", "weight_u": "u0", "weight_v": "v0"}
_CONV = {"conv2d0": "conv_sc", "conv2d1": "conv1", "conv2d2": "conv2"}
_ATTN = {"conv1x1_theta": "theta", "conv1x1_phi": "phi", "conv1x1_g": "g", "conv1x1_attn": "o"}
_OUT_BN = {
    "weight": "gain",
    "bias": "bias",
    "running_mean": "stored_mean",
    "running_var": "stored_var",
}
_BN_STAT = {"running_mean": "stored_mean", "running_var": "stored_var"}
#: StudioGAN backbones by name, for refusals that say what a file is.
_BACKBONES = {
    "big_resnet": "BigGAN",
    "deep_big_resnet": "BigGAN-Deep",
    "resnet": "a ResNet GAN (SNGAN/SAGAN/ContraGAN family)",
    "deep_conv": "DCGAN",
    "stylegan2": "StyleGAN2",
    "stylegan3": "StyleGAN3",
}
_ROLE_NAME = {"G": "generator", "D": "discriminator"}


# --------------------------------------------------------------------------- recognising


def strip_prefix(sd: dict[str, Any]) -> dict[str, Any]:
    """Keys without a ``module.`` prefix (checkpoints saved from DataParallel/DDP)."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def is_studiogan(sd: dict[str, Any]) -> bool:
    """Whether a state dict uses StudioGAN's naming (of any of its architectures)."""
    keys = strip_prefix(sd)
    return (
        any(k.endswith(".weight_orig") or k.startswith(("mapping.", "synthesis.")) for k in keys)
        or "linear0.weight" in keys
        or "conv2d5.weight" in keys
    )


def identify(sd: dict[str, Any]) -> tuple[str | None, str]:
    """(role, what it is) of a StudioGAN state dict: role "G"/"D" only for a BigGAN
    (``big_resnet``) that DGP can use; otherwise None and a description naming the
    architecture, for a refusal."""
    keys = set(strip_prefix(sd))
    if any(k.startswith(("mapping.", "synthesis.")) for k in keys):
        return None, "a StudioGAN StyleGAN2/3 generator"
    if any(k.startswith(("b4.", "b8.", "b16.", "b32.", "b64.", "b128.")) for k in keys):
        return None, "a StudioGAN StyleGAN2/3 discriminator"
    if any(re.match(r"blocks\.\d+\.0\.(conv2d3|bn3|bn4)\.", k) for k in keys):
        return None, "a StudioGAN BigGAN-Deep network (deep_big_resnet)"
    if any(k.startswith(("deconv", "conv2d1.")) for k in keys) and not any(
        k.startswith("blocks.") for k in keys
    ):
        return None, "a StudioGAN DCGAN network (deep_conv)"
    if "linear0.weight_orig" in keys or "conv2d5.weight_orig" in keys:
        if "shared.weight" not in keys or not any(
            re.match(r"blocks\.\d+\.0\.bn1\.gain\.weight_orig$", k) for k in keys
        ):
            return None, (
                "a StudioGAN ResNet generator without BigGAN's shared class "
                "embedding (SNGAN/SAGAN/ContraGAN family)"
            )
        return "G", "a StudioGAN BigGAN generator"
    if "linear1.weight_orig" in keys:
        if "embedding.weight_orig" not in keys:
            return None, (
                "a StudioGAN discriminator without a projection class embedding "
                "(DGP needs d_cond_mtd: PD)"
            )
        return "D", "a StudioGAN BigGAN discriminator"
    if "linear0.weight" in keys or "linear1.weight" in keys:
        return None, "a StudioGAN network trained without spectral norm (apply_*_sn: False)"
    return None, "not a StudioGAN BigGAN network"


# --------------------------------------------------------------------------- architecture


def _blocks(sd: dict[str, Any]) -> list[tuple[int, bool]]:
    """StudioGAN's block indices in order, each with whether it is an attention entry."""
    ids = sorted({int(k.split(".")[1]) for k in sd if re.match(r"blocks\.\d+\.", k)})
    return [(i, f"blocks.{i}.0.sigma" in sd) for i in ids]


def _shape(sd: dict[str, Any], key: str) -> tuple[int, ...]:
    value = sd.get(key)
    if value is None or not hasattr(value, "shape"):
        raise CheckpointError(f"the checkpoint lacks {key}, which a StudioGAN BigGAN has.")
    return tuple(value.shape)


def _attn_resolutions(blocks: list[tuple[int, bool]], resolutions: list[int]) -> str:
    found, group = [], -1
    for _i, attn in blocks:
        if attn:
            if group < 0 or group >= len(resolutions):
                raise CheckpointError(
                    "the checkpoint has an attention block in a place BigGAN never puts one."
                )
            found.append(str(resolutions[group]))
        else:
            group += 1
    return "_".join(found) or "0"


def infer_config(g_sd: dict[str, Any], d_sd: dict[str, Any] | None = None) -> BigGANConfig:
    """Our BigGANConfig of a StudioGAN BigGAN, read from its tensors' names and shapes."""
    g = strip_prefix(g_sd)
    blocks = _blocks(g)
    n = sum(1 for _i, attn in blocks if not attn)
    res = {4: 64, 5: 128, 6: 256}.get(n)
    if res is None:
        raise CheckpointError(
            f"the generator has {n} residual blocks; StudioGAN BigGANs that DGP Studio reads "
            "have 4 (64 px), 5 (128 px) or 6 (256 px)."
        )
    g_ch = _shape(g, "conv2d5.weight_orig")[1]
    n_classes, shared_dim = _shape(g, "shared.weight")
    chunk = _shape(g, "linear0.weight_orig")[1]
    cond = _shape(g, f"blocks.{blocks[0][0]}.0.bn1.gain.weight_orig")[1]
    if cond != shared_dim + chunk:
        raise CheckpointError(
            "the generator's conditional BN does not take [class embedding, "
            "z chunk]: it is not a hierarchical-z BigGAN."
        )
    d_ch, d_attn = g_ch, "0"
    probe = BigGANConfig(resolution=res, G_ch=8, D_ch=8, family=FAMILY)  # for resolutions
    g_attn = _attn_resolutions(blocks, probe.g_arch["resolution"])
    if d_sd is not None:
        d = strip_prefix(d_sd)
        d_ch = _shape(d, "blocks.0.0.conv2d1.weight_orig")[0]
        d_attn = _attn_resolutions(_blocks(d), probe.d_arch["resolution"])
    try:
        return BigGANConfig(
            resolution=res,
            G_ch=g_ch,
            D_ch=d_ch,
            dim_z=chunk * (n + 1),
            shared_dim=shared_dim,
            hier=True,
            n_classes=n_classes,
            G_attn=g_attn,
            D_attn=d_attn,
            BN_eps=BN_EPS,
            family=FAMILY,
        )
    except CheckpointError as exc:
        raise CheckpointError(f"the StudioGAN checkpoint has an unusual shape: {exc}") from exc


def config_from_yaml(file: Path) -> BigGANConfig:
    """Our BigGANConfig from a StudioGAN YAML config (``DATA`` and ``MODEL`` sections).

    Only BigGAN (``backbone: big_resnet``) with conditional BN in G, a projection
    discriminator and spectral norm in both is accepted: that is the network DGP uses."""
    import yaml

    try:
        data = yaml.safe_load(read_small_file(file).decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CheckpointError(f"Could not read the StudioGAN config {file} ({exc}).") from exc
    if not isinstance(data, dict) or not isinstance(data.get("MODEL"), dict):
        raise CheckpointError(
            f"{Path(file).name} is not a StudioGAN config: it has no MODEL section."
        )
    model, dataset = data["MODEL"], data.get("DATA") or {}
    backbone = str(model.get("backbone", "big_resnet"))
    if backbone != "big_resnet":
        what = _BACKBONES.get(backbone, f"backbone {backbone!r}")
        raise CheckpointError(
            f"{Path(file).name} describes {what}, not BigGAN (big_resnet): "
            "DGP needs a BigGAN generator and its discriminator."
        )
    for key, want, why in (
        ("g_cond_mtd", "cBN", "conditional BN in the generator"),
        ("d_cond_mtd", "PD", "a projection discriminator"),
        ("apply_g_sn", True, "spectral norm in the generator"),
        ("apply_d_sn", True, "spectral norm in the discriminator"),
    ):
        if key in model and model[key] != want:
            raise CheckpointError(
                f"{Path(file).name} sets {key}: {model[key]}; DGP Studio "
                f"reads StudioGAN BigGANs with {why} ({key}: {want})."
            )
    missing = [k for k in ("img_size", "num_classes") if k not in dataset] + [
        k for k in ("z_dim", "g_shared_dim", "g_conv_dim", "d_conv_dim") if k not in model
    ]
    if missing:
        raise CheckpointError(
            f"{Path(file).name} does not give {', '.join(missing)}: use the "
            "YAML file of the run (or import without --config to read the "
            "architecture from the checkpoint)."
        )
    res = int(dataset["img_size"])
    if res not in (64, 128, 256):
        raise CheckpointError(
            f"{Path(file).name} is a {res} px model; DGP Studio reads "
            "StudioGAN BigGANs of 64, 128 or 256 px."
        )
    probe = BigGANConfig(resolution=res, G_ch=8, D_ch=8, family=FAMILY)

    def attn(loc_key: str, resolutions: list[int]) -> str:
        if not model.get("apply_attn", False):
            return "0"
        out = []
        for loc in model.get(loc_key) or []:
            if isinstance(loc, int) and 1 <= loc <= len(resolutions):
                out.append(str(resolutions[loc - 1]))
            elif loc != "N/A":
                raise CheckpointError(
                    f"{Path(file).name}: {loc_key} {loc!r} is not a block number of this network."
                )
        return "_".join(out) or "0"

    try:
        return BigGANConfig(
            resolution=res,
            G_ch=int(model["g_conv_dim"]),
            D_ch=int(model["d_conv_dim"]),
            dim_z=int(model["z_dim"]),
            shared_dim=int(model["g_shared_dim"]),
            hier=True,
            n_classes=int(dataset["num_classes"]),
            G_attn=attn("attn_g_loc", probe.g_arch["resolution"]),
            D_attn=attn("attn_d_loc", probe.d_arch["resolution"]),
            BN_eps=BN_EPS,
            family=FAMILY,
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{Path(file).name} has a value of the wrong type ({exc}).") from exc


# --------------------------------------------------------------------------- renaming


def _rename_sn(rest: str) -> str:
    layer, _, leaf = rest.rpartition(".")
    return f"{layer}.{_SN.get(leaf, leaf)}" if layer else _SN.get(leaf, leaf)


def to_ours(sd: dict[str, Any], role: str) -> dict[str, Any]:
    """Rename a StudioGAN BigGAN G or D state dict to ours (tensors reshaped where our
    layout differs: u/v as [1, n], the attention gain as a scalar). Keys it does not know
    are kept as they are, so a strict load names them."""
    sd = strip_prefix(sd)
    where: dict[int, tuple[int, int]] = {}
    group = -1
    for i, attn in _blocks(sd):
        if attn:
            where[i] = (max(group, 0), 1)
        else:
            group += 1
            where[i] = (group, 0)
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if key.endswith("num_batches_tracked"):
            continue
        new = _rename_key(key, role, where)
        if new is None:
            out[key] = value
            continue
        leaf = new.rsplit(".", 1)[-1]
        if leaf in ("u0", "v0") and value.dim() == 1:
            value = value.reshape(1, -1)
        elif leaf == "gamma" and value.dim() == 1 and value.numel() == 1:
            value = value.reshape(())
        out[new] = value
    return out


def _rename_key(key: str, role: str, where: dict[int, tuple[int, int]]) -> str | None:
    m = re.match(r"blocks\.(\d+)\.0\.(.+)$", key)
    if m:
        group, pos = where[int(m.group(1))]
        rest = m.group(2)
        head, _, tail = rest.partition(".")
        if rest == "sigma":
            return f"blocks.{group}.1.gamma"
        if head in _ATTN:
            return f"blocks.{group}.1.{_ATTN[head]}.{_rename_sn(tail)}"
        if head in _CONV:
            return f"blocks.{group}.{pos}.{_CONV[head]}.{_rename_sn(tail)}"
        if head in ("bn1", "bn2") and role == "G":
            sub, _, leaf = tail.partition(".")
            if sub == "bn" and leaf in _BN_STAT:
                return f"blocks.{group}.{pos}.{head}.{_BN_STAT[leaf]}"
            if sub in ("gain", "bias"):
                return f"blocks.{group}.{pos}.{head}.{sub}.{_rename_sn(leaf)}"
        return None
    head, _, tail = key.partition(".")
    if role == "G":
        if head == "linear0":
            return f"linear.{_rename_sn(tail)}"
        if head == "shared":
            return key
        if head == "bn4" and tail in _OUT_BN:
            return f"output_layer.0.{_OUT_BN[tail]}"
        if head == "conv2d5":
            return f"output_layer.2.{_rename_sn(tail)}"
    else:
        if head == "linear1":
            return f"linear.{_rename_sn(tail)}"
        if head == "embedding":
            return f"embed.{_rename_sn(tail)}"
    return None


def describe_role(role: str | None) -> str:
    return _ROLE_NAME.get(role or "", "network")

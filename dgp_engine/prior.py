"""Loading a GAN prior (BigGAN G + D) from a folder of weights or a registry name."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import CheckpointError
from .models import BigGANConfig, Discriminator, Generator, orthogonal_init

log = logging.getLogger(__name__)

# Keys that DGP adds to BigGAN-PyTorch's generator; released checkpoints lack them.
_OPTIONAL_G_KEYS = re.compile(r"^blocks\.\d+\.0\.in[12]\.(weight|bias)$")


@dataclass
class Prior:
    """A loaded generator/discriminator pair, both in eval mode."""

    G: Generator
    D: Discriminator
    config: BigGANConfig
    name: str = "custom"
    class_names: list[str] = field(default_factory=list)
    source: Path | None = None
    checksum: str = ""

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @property
    def resolution(self) -> int:
        return self.config.resolution

    def class_name(self, class_id: int) -> str:
        if 0 <= class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class {class_id}"


def build_prior(config: BigGANConfig, device: str | torch.device = "cpu", name: str = "random",
                seed: int | None = None) -> Prior:
    """A prior with freshly initialised weights (for training, tests and benchmarks)."""
    if seed is not None:
        torch.manual_seed(seed)
    G = Generator(config)
    D = Discriminator(config)
    orthogonal_init(G)
    orthogonal_init(D)
    return Prior(G.to(device).eval(), D.to(device).eval(), config, name=name)


def load_prior(source: str | Path, device: str | torch.device = "cpu") -> Prior:
    """Load a prior from a registry name (e.g. ``"bundled"``) or a folder holding
    ``config.json`` + ``G_ema.pth``/``G.pth`` (optionally ``_<suffix>``) + ``D.pth``,
    or ``.safetensors`` files with the same keys."""
    path = Path(source)
    name = path.name
    if not path.is_dir():
        from . import registry

        path, name = registry.resolve_model_dir(str(source))
    config = read_config(path)
    g_file, d_file = find_weight_files(path)
    G = Generator(config)
    D = Discriminator(config)
    _load_strict(G, read_state_dict(g_file), g_file, config, optional=_OPTIONAL_G_KEYS)
    _load_strict(D, read_state_dict(d_file), d_file, config)
    prior = Prior(G.to(device).eval(), D.to(device).eval(), config, name=name,
                  class_names=read_class_names(path, config), source=path)
    log.info("loaded prior %s from %s (%s)", name, path, config.describe())
    return prior


def read_config(folder: Path) -> BigGANConfig:
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(
            f"{folder} has no config.json. Add one with the BigGAN-PyTorch flags "
            "(resolution, G_ch, D_ch, dim_z, shared_dim, hier, n_classes, G_attn, D_attn, SN_eps)."
        )
    try:
        data = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{cfg_file} must hold a JSON object of BigGAN settings")
    return BigGANConfig.from_dict(data)


def find_weight_files(folder: Path) -> tuple[Path, Path]:
    def pick(stems: list[str]) -> Path | None:
        for stem in stems:
            for ext in (".safetensors", ".pth"):
                exact = folder / f"{stem}{ext}"
                if exact.is_file():
                    return exact
            for ext in (".safetensors", ".pth"):
                suffixed = sorted(folder.glob(f"{stem}_*{ext}"))
                if suffixed:
                    return suffixed[0]
        return None

    g = pick(["G_ema", "G"])
    d = pick(["D"])
    missing = [n for n, f in (("G_ema.pth (or G.pth)", g), ("D.pth", d)) if f is None]
    if missing:
        raise CheckpointError(
            f"{folder} is missing {' and '.join(missing)}. DGP needs both the generator and "
            "its discriminator; put them next to config.json (safetensors also accepted)."
        )
    return g, d  # type: ignore[return-value]


def read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(file))
        else:
            sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many kinds for damaged files
        raise CheckpointError(
            f"Could not read {file.name}: the file is damaged or incomplete ({exc}). "
            "Download or copy it again."
        ) from exc
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{file.name} does not hold a state dict of tensors")
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def _load_strict(net: torch.nn.Module, sd: dict[str, torch.Tensor], file: Path,
                 config: BigGANConfig, optional: re.Pattern | None = None) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in sd and not (optional and optional.match(k))]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}"
             for k in expected if k in sd and sd[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "",
            f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})" if unexpected else "",
            f"{len(wrong)} of the wrong shape (e.g. {'; '.join(wrong[:2])})" if wrong else "",
        ]))
        raise CheckpointError(
            f"{file.name} does not fit the expected config ({config.describe()}): {detail}. "
            "Check config.json (resolution, G_ch/D_ch) against the checkpoint you have."
        )
    net.load_state_dict(sd, strict=False)


def read_class_names(folder: Path, config: BigGANConfig) -> list[str]:
    """The model's own ``classes.txt`` if present, else ImageNet names for 1000 classes."""
    own = folder / "classes.txt"
    if own.is_file():
        names = [ln.strip() for ln in own.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(names) == config.n_classes:
            return names
        log.warning("%s lists %d names for %d classes; ignoring it", own, len(names),
                    config.n_classes)
    if config.n_classes == 1000:
        from .classes import imagenet_class_names

        return imagenet_class_names()
    return [f"class {i}" for i in range(config.n_classes)]

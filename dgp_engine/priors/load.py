"""Loading a GAN prior (BigGAN G + D) from a folder of weights or a registry name."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..models import BigGANConfig, Discriminator, Generator, orthogonal_init
from .checkpoint import (
    OPTIONAL_G_KEYS,
    find_weight_files,
    implausible_value,
    installed_digest,
    load_strict,
    read_class_names,
    read_config,
    read_folder,
    read_state_dict,
    tensors_digest,
    verify_installed_files,
)
from .classes import choose_class

log = logging.getLogger(__name__)

# Folder reading lives in .checkpoint; these names stay importable from here.
__all__ = ["Prior", "build_prior", "find_weight_files", "load_prior", "read_class_names",
           "read_config", "read_state_dict"]


@dataclass
class Prior:
    """A loaded generator/discriminator pair, both in eval mode."""

    G: Generator
    D: Discriminator
    config: BigGANConfig
    name: str = "custom"
    class_names: list[str] = field(default_factory=list)
    source: Path | None = None
    checksum: str = ""  # identity of the weights (set by load_prior); saved in every state

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

    def choose_class(self, spec: str | int | None) -> int | None:
        """The class id a user's id or name stands for (None for ``auto``): the inverse
        of :meth:`class_name`, with suggestions when the name is not one of the model's."""
        names = self.class_names or [f"class {i}" for i in range(self.config.n_classes)]
        return choose_class(spec, names)


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
    """Load a prior from a model folder — ``config.json`` + ``G_ema.pth``/``G.pth``
    (optionally ``_<suffix>``) + ``D.pth`` or ``.safetensors`` files with the same keys, or
    a StudioGAN run's ``model=G_ema-…pth`` + ``model=D-…pth`` (+ its YAML config) as they
    are — or from a registry name (e.g. ``"bundled"``), which the registry resolves to
    its folder."""
    path = Path(source)
    name = path.name
    if not path.is_dir():
        from . import registry

        path, name = registry.resolve_model_dir(str(source))
    verify_installed_files(path, name)  # altered weights are refused, not run
    weights = read_folder(path)
    config = weights.config
    g_file, d_file = weights.files
    for sd, file in ((weights.G, g_file), (weights.D, d_file)):
        problem = implausible_value(sd)  # one pass over the weights: ~0.2 s per 70 M values
        if problem:
            installed = (path / "model.json").is_file()
            raise CheckpointError(
                f"{file.name} of the model {name} is damaged: {problem}; " +
                (f"run `dgp models verify {name}`, then pull or import the model again."
                 if installed else "download or copy the file again."))
    G = Generator(config)
    D = Discriminator(config)
    load_strict(G, weights.G, g_file, config, optional=OPTIONAL_G_KEYS)
    load_strict(D, weights.D, d_file, config)
    checksum = installed_digest(path) or tensors_digest(weights.G, weights.D)
    del weights
    prior = Prior(G.to(device).eval(), D.to(device).eval(), config, name=name,
                  class_names=read_class_names(path, config), source=path,
                  checksum=checksum)
    log.info("loaded prior %s from %s (%s)", name, path, config.describe())
    return prior

"""Loading a GAN prior (generator + discriminator) from a folder of weights or a registry
name: a BigGAN (the DGP method's networks) or a StyleGAN2 (installed from NVIDIA's or
StudioGAN's files; the DGP restoration, jitter and morph run on it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import CheckpointError, PriorFamilyError
from ..models import BigGANConfig, Discriminator, Generator, orthogonal_init
from ..models import stylegan2 as sg2
from ..models.stylegan2 import StyleGAN2Config
from .checkpoint import (
    OPTIONAL_G_KEYS,
    find_weight_files,
    implausible_value,
    installed_digest,
    load_strict,
    read_class_names,
    read_config,
    read_folder,
    read_prior_config,
    read_state_dict,
    tensors_digest,
    verify_installed_files,
)
from .classes import choose_class
from .family import PriorConfig, family_of, recorded_alignment

log = logging.getLogger(__name__)

# Folder reading lives in .checkpoint; these names stay importable from here.
__all__ = [
    "Prior",
    "StyleGAN2Networks",
    "build_prior",
    "find_weight_files",
    "load_prior",
    "read_class_names",
    "read_config",
    "read_state_dict",
]


@dataclass(frozen=True)
class StyleGAN2Networks:
    """A StyleGAN2 prior's networks: G (the averaged generator, G_ema) and D, in eval
    mode, and their architecture."""

    G: sg2.Generator
    D: sg2.Discriminator
    config: StyleGAN2Config


class Prior:
    """A loaded generator/discriminator pair, both in eval mode.

    A prior is of one family (:attr:`family`): a BigGAN (``biggan-pytorch`` or
    ``studiogan``), whose networks are :attr:`G`, :attr:`D` and :attr:`config`, or a
    StyleGAN2 (``stylegan2``), whose networks are :attr:`stylegan2`. The DGP restoration,
    jitter and morph run on both; the rest on BigGAN priors so far: the BigGAN
    accessors refuse a StyleGAN2 prior with a sentence
    (:class:`~dgp_engine.errors.PriorFamilyError`) instead of handing out networks those
    parts cannot run. What every family has —
    :attr:`generator`, :attr:`discriminator`, :attr:`architecture`, :attr:`resolution`,
    :attr:`n_classes`, :attr:`device`, class names — works for both."""

    def __init__(
        self,
        G: Generator | sg2.Generator,
        D: Discriminator | sg2.Discriminator,
        config: PriorConfig,
        name: str = "custom",
        class_names: list[str] | None = None,
        source: Path | None = None,
        checksum: str = "",
        alignment: str = "",
    ):
        big = isinstance(config, BigGANConfig)
        if big != (isinstance(G, Generator) and isinstance(D, Discriminator)) or (
            not big and not (isinstance(G, sg2.Generator) and isinstance(D, sg2.Discriminator))
        ):
            raise TypeError("a prior's G, D and config must be of one family")
        self._G, self._D, self._config = G, D, config
        self.name = name
        self.class_names: list[str] = list(class_names or [])
        self.source = source
        # identity of the weights (set by load_prior); saved in every state
        self.checksum = checksum
        # how the prior's training faces were aligned ("ffhq"), "" when it is no face
        # prior (docs/method.md#aligned-faces); from the install record
        self.alignment = alignment

    def __repr__(self) -> str:
        return (
            f"Prior(name={self.name!r}, family={self.family!r}, "
            f"resolution={self.resolution}, source={self.source!r})"
        )

    # --- every family ---------------------------------------------------------------
    @property
    def family(self) -> str:
        """``biggan-pytorch``, ``studiogan`` (BigGANs) or ``stylegan2``."""
        return family_of(self._config)

    @property
    def is_biggan(self) -> bool:
        return isinstance(self._config, BigGANConfig)

    @property
    def architecture(self) -> PriorConfig:
        return self._config

    @property
    def generator(self) -> nn.Module:
        return self._G

    @property
    def discriminator(self) -> nn.Module:
        return self._D

    @property
    def device(self) -> torch.device:
        return next(self._G.parameters()).device

    @property
    def resolution(self) -> int:
        return self._config.resolution

    @property
    def n_classes(self) -> int:
        """Classes the generator takes (0: an unconditional StyleGAN2)."""
        cfg = self._config
        return cfg.n_classes if isinstance(cfg, BigGANConfig) else cfg.c_dim

    def class_name(self, class_id: int) -> str:
        if 0 <= class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class {class_id}"

    def choose_class(self, spec: str | int | None) -> int | None:
        """The class id a user's id or name stands for (None for ``auto``): the inverse
        of :meth:`class_name`, with suggestions when the name is not one of the model's."""
        names = self.class_names or [f"class {i}" for i in range(self.n_classes)]
        return choose_class(spec, names)

    # --- BigGAN ---------------------------------------------------------------------
    def _not_biggan(self) -> PriorFamilyError:
        return PriorFamilyError(
            f"{self.name} is a StyleGAN2 prior, and this part of DGP Studio (category "
            "transfer, the app's manipulation panel, evaluation, training) runs on BigGAN "
            "priors only for now: choose a BigGAN model (`dgp models list`)."
        )

    @property
    def G(self) -> Generator:
        """The BigGAN generator (PriorFamilyError for a StyleGAN2 prior)."""
        if not isinstance(self._G, Generator):
            raise self._not_biggan()
        return self._G

    @property
    def D(self) -> Discriminator:
        """The BigGAN discriminator (PriorFamilyError for a StyleGAN2 prior)."""
        if not isinstance(self._D, Discriminator):
            raise self._not_biggan()
        return self._D

    @property
    def config(self) -> BigGANConfig:
        """The BigGAN architecture (PriorFamilyError for a StyleGAN2 prior)."""
        if not isinstance(self._config, BigGANConfig):
            raise self._not_biggan()
        return self._config

    # --- StyleGAN2 ------------------------------------------------------------------
    @property
    def stylegan2(self) -> StyleGAN2Networks:
        """A StyleGAN2 prior's networks (PriorFamilyError for a BigGAN prior)."""
        G, D, cfg = self._G, self._D, self._config
        if not (
            isinstance(G, sg2.Generator)
            and isinstance(D, sg2.Discriminator)
            and isinstance(cfg, StyleGAN2Config)
        ):
            raise PriorFamilyError(f"{self.name} is a BigGAN prior, not a StyleGAN2 one.")
        return StyleGAN2Networks(G, D, cfg)


def build_prior(
    config: BigGANConfig,
    device: str | torch.device = "cpu",
    name: str = "random",
    seed: int | None = None,
) -> Prior:
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
    are, or an installed StyleGAN2 (``config.json`` with ``"family": "stylegan2"``) — or
    from a registry name (e.g. ``"bundled"``), which the registry resolves to its
    folder."""
    path = Path(source)
    name = path.name
    if not path.is_dir():
        from . import registry

        path, name = registry.resolve_model_dir(str(source))
    verify_installed_files(path, name)  # altered weights are refused, not run
    if (path / "config.json").is_file():
        arch = read_prior_config(path)
        if isinstance(arch, StyleGAN2Config):
            return _load_stylegan2(path, name, arch, device)
    weights = read_folder(path)
    config = weights.config
    g_file, d_file = weights.files
    for sd, file in ((weights.G, g_file), (weights.D, d_file)):
        _refuse_implausible(sd, file, path, name)
    G = Generator(config)
    D = Discriminator(config)
    load_strict(G, weights.G, g_file, config, optional=OPTIONAL_G_KEYS)
    load_strict(D, weights.D, d_file, config)
    checksum = installed_digest(path) or tensors_digest(weights.G, weights.D)
    del weights
    return _folder_prior(path, name, config, G, D, read_class_names(path, config), checksum, device)


def _folder_prior(
    path: Path,
    name: str,
    config: PriorConfig,
    G: Generator | sg2.Generator,
    D: Discriminator | sg2.Discriminator,
    class_names: list[str],
    checksum: str,
    device: str | torch.device,
) -> Prior:
    """The prior of networks loaded from the folder ``path`` (either family), moved to
    ``device`` in eval mode, with the identity of its weights and its face alignment."""
    prior = Prior(
        G.to(device).eval(),
        D.to(device).eval(),
        config,
        name=name,
        class_names=class_names,
        source=path,
        checksum=checksum,
        alignment=_alignment_of(path),
    )
    log.info("loaded prior %s from %s (%s)", name, path, config.describe())
    return prior


def _alignment_of(folder: Path) -> str:
    """The face alignment the folder's install record (model.json) holds; "" for none,
    for a folder without a record and for an unreadable record (the registry reports
    that one)."""
    import json

    try:
        record = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return recorded_alignment(record) if isinstance(record, dict) else ""


def _refuse_implausible(sd: dict[str, torch.Tensor], file: Path, folder: Path, name: str) -> None:
    problem = implausible_value(sd)  # one pass over the weights: ~0.2 s per 70 M values
    if problem:
        installed = (folder / "model.json").is_file()
        raise CheckpointError(
            f"{file.name} of the model {name} is damaged: {problem}; "
            + (
                f"run `dgp models verify {name}`, then pull or import the model again."
                if installed
                else "download or copy the file again."
            )
        )


def _load_stylegan2(
    path: Path, name: str, config: StyleGAN2Config, device: str | torch.device
) -> Prior:
    """An installed StyleGAN2 folder: G_ema/D safetensors (float16 weights, read back as
    float32) under the networks' own names."""
    from .stylegan2_prior import build_networks, class_names

    g_file, d_file = find_weight_files(path)
    g_sd, d_sd = read_state_dict(g_file), read_state_dict(d_file)
    for sd, file in ((g_sd, g_file), (d_sd, d_file)):
        _refuse_implausible(sd, file, path, name)
    try:
        G, D = build_networks(config, g_sd, d_sd, (g_file, d_file))
    except CheckpointError as exc:
        raise CheckpointError(
            f"The model {name} ({path}) does not fit its config.json: {exc} "
            f"Run `dgp models verify {name}`, then import it again."
        ) from exc
    checksum = installed_digest(path) or tensors_digest(g_sd, d_sd)
    return _folder_prior(path, name, config, G, D, class_names(path, config), checksum, device)

"""DGP engine: Deep Generative Prior restoration and manipulation in pure PyTorch.

One sub-package (room) per job, top to bottom: ``cli``, ``batch``, ``tasks`` and
``training``, ``files``, ``method``, ``priors``, ``models`` and ``system``, then
``errors``; a room imports only from the rooms below it (the import-linter contract in
pyproject.toml). No Qt here (enforced by tests/test_engine_has_no_qt.py).

The names below are imported on first use (PEP 562), so ``import dgp_engine.cli`` or
``dgp_engine.errors`` does not load torch: the ``dgp`` command installs its Ctrl-C handler
before the slow imports start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import CheckpointError, DeviceError, DGPError, InputError, PresetError, StateError
    from .method.degradations import (
        Compose,
        Degradation,
        Downsample,
        Grayscale,
        Identity,
        Mask,
        make_degradation,
    )
    from .method.presets import Preset, load_preset, preset_names
    from .method.reconstruct import ReconstructionRun, Report, reconstruct, render
    from .method.state import ReconstructionState
    from .models import BigGANConfig, Discriminator, Generator
    from .priors.load import Prior, build_prior, load_prior

_WHERE = {
    "Compose": "method.degradations",
    "Degradation": "method.degradations",
    "Downsample": "method.degradations",
    "Grayscale": "method.degradations",
    "Identity": "method.degradations",
    "Mask": "method.degradations",
    "make_degradation": "method.degradations",
    "CheckpointError": "errors",
    "DeviceError": "errors",
    "DGPError": "errors",
    "InputError": "errors",
    "PresetError": "errors",
    "StateError": "errors",
    "BigGANConfig": "models",
    "Discriminator": "models",
    "Generator": "models",
    "Preset": "method.presets",
    "load_preset": "method.presets",
    "preset_names": "method.presets",
    "Prior": "priors.load",
    "build_prior": "priors.load",
    "load_prior": "priors.load",
    "Report": "method.reconstruct",
    "ReconstructionRun": "method.reconstruct",
    "reconstruct": "method.reconstruct",
    "render": "method.reconstruct",
    "ReconstructionState": "method.state",
}

__all__ = [
    "BigGANConfig",
    "CheckpointError",
    "Compose",
    "DGPError",
    "Degradation",
    "DeviceError",
    "Discriminator",
    "Downsample",
    "Generator",
    "Grayscale",
    "Identity",
    "InputError",
    "Mask",
    "Preset",
    "PresetError",
    "Prior",
    "ReconstructionRun",
    "ReconstructionState",
    "Report",
    "StateError",
    "build_prior",
    "load_preset",
    "load_prior",
    "make_degradation",
    "preset_names",
    "reconstruct",
    "render",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'dgp_engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

"""DGP engine: Deep Generative Prior restoration and manipulation in pure PyTorch.

No Qt here (enforced by tests/test_engine_has_no_qt.py).

The names below are imported on first use (PEP 562), so ``import dgp_engine.cli`` or
``dgp_engine.errors`` does not load torch: the ``dgp`` command installs its Ctrl-C handler
before the slow imports start.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .degradations import (
        Compose,
        Degradation,
        Downsample,
        Grayscale,
        Identity,
        Mask,
        make_degradation,
    )
    from .errors import CheckpointError, DeviceError, DGPError, InputError, PresetError, StateError
    from .models import BigGANConfig, Discriminator, Generator
    from .presets import Preset, load_preset, preset_names
    from .priors.load import Prior, build_prior, load_prior
    from .reconstruct import ReconstructionRun, Report, reconstruct, render
    from .state import ReconstructionState

_WHERE = {
    "Compose": "degradations", "Degradation": "degradations", "Downsample": "degradations",
    "Grayscale": "degradations", "Identity": "degradations", "Mask": "degradations",
    "make_degradation": "degradations",
    "CheckpointError": "errors", "DeviceError": "errors", "DGPError": "errors",
    "InputError": "errors", "PresetError": "errors", "StateError": "errors",
    "BigGANConfig": "models", "Discriminator": "models", "Generator": "models",
    "Preset": "presets", "load_preset": "presets", "preset_names": "presets",
    "Prior": "priors.load", "build_prior": "priors.load", "load_prior": "priors.load",
    "Report": "reconstruct", "ReconstructionRun": "reconstruct", "reconstruct": "reconstruct",
    "render": "reconstruct",
    "ReconstructionState": "state",
}

__all__ = [
    "BigGANConfig", "CheckpointError", "Compose", "DGPError", "Degradation", "DeviceError",
    "Discriminator", "Downsample", "Generator", "Grayscale", "Identity", "InputError", "Mask",
    "Preset", "PresetError", "Prior", "ReconstructionRun", "ReconstructionState", "Report",
    "StateError", "build_prior", "load_preset", "load_prior", "make_degradation",
    "preset_names", "reconstruct", "render",
]


class _Package(types.ModuleType):
    """``dgp_engine.reconstruct`` is the function, as when the package imported it eagerly:
    importing the submodule of the same name (anywhere, any time) would otherwise replace
    the package attribute with the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (isinstance(value, types.ModuleType) and _WHERE.get(name) == name
                and value.__name__ == f"{__name__}.{name}"):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'dgp_engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

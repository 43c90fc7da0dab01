"""DGP engine: Deep Generative Prior restoration and manipulation in pure PyTorch.

No Qt here (enforced by tests/test_engine_has_no_qt.py).
"""

from .degradations import Compose, Degradation, Downsample, Grayscale, Identity, Mask, \
    make_degradation
from .errors import CheckpointError, DeviceError, DGPError, InputError, PresetError, StateError
from .models import BigGANConfig, Discriminator, Generator
from .presets import Preset, load_preset, preset_names
from .prior import Prior, build_prior, load_prior
from .reconstruct import Report, ReconstructionRun, reconstruct, render
from .state import ReconstructionState

__all__ = [
    "BigGANConfig", "CheckpointError", "Compose", "DGPError", "Degradation", "DeviceError",
    "Discriminator", "Downsample", "Generator", "Grayscale", "Identity", "InputError", "Mask",
    "Preset", "PresetError", "Prior", "ReconstructionRun", "ReconstructionState", "Report",
    "StateError", "build_prior", "load_preset", "load_prior", "make_degradation",
    "preset_names", "reconstruct", "render",
]

"""Model registry: maps model names (e.g. ``bundled``) to folders of weights."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import CheckpointError


def bundled_model_dir() -> Path:
    return Path(str(resources.files("dgp_resources").joinpath("models", "bundled")))


def resolve_model_dir(name: str) -> tuple[Path, str]:
    """Folder of a registered model; raises CheckpointError if unknown or not installed."""
    if name == "bundled":
        folder = bundled_model_dir()
        if (folder / "config.json").is_file():
            return folder, name
        raise CheckpointError("The bundled model is not installed with this copy of DGP Studio.")
    raise CheckpointError(f"{name!r} is neither a folder nor a known model name. "
                          "Known: bundled.")

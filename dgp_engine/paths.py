"""Per-user folders (config, cache, logs), in one place.

``DGP_STUDIO_HOME`` overrides all of them (tests and portable installs use it).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "dgp-studio"


def _root_override() -> Path | None:
    home = os.environ.get("DGP_STUDIO_HOME")
    return Path(home) if home else None


def config_dir() -> Path:
    root = _root_override()
    return root / "config" if root else Path(platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    root = _root_override()
    return root / "cache" if root else Path(platformdirs.user_cache_dir(APP_NAME))


def log_dir() -> Path:
    root = _root_override()
    return root / "logs" if root else Path(platformdirs.user_log_dir(APP_NAME))


def models_dir() -> Path:
    """Where pulled/imported models are kept (safetensors + config.json per model)."""
    return cache_dir() / "models"

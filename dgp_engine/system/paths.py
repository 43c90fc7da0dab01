"""Per-user folders (config, cache, logs), in one place.

``DGP_STUDIO_HOME`` overrides all of them (tests and portable installs use it). The cache
folder (downloaded and imported models, autosaves) can be moved on its own: by the app's
setting (``set_cache_dir``) or, for the command line, ``DGP_STUDIO_CACHE_DIR``.
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


_cache_dir_override: Path | None = None


def set_cache_dir(folder: str | Path | None) -> None:
    """Use ``folder`` as the cache folder from now on (None or "": the default)."""
    global _cache_dir_override
    _cache_dir_override = Path(folder).expanduser() if folder else None


def cache_dir() -> Path:
    return _cache_dir_override if _cache_dir_override is not None else default_cache_dir()


def default_cache_dir() -> Path:
    """The cache folder when none is set in the app."""
    env = os.environ.get("DGP_STUDIO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    root = _root_override()
    return root / "cache" if root else Path(platformdirs.user_cache_dir(APP_NAME))


def log_dir() -> Path:
    root = _root_override()
    return root / "logs" if root else Path(platformdirs.user_log_dir(APP_NAME))


def models_dir() -> Path:
    """Where pulled/imported models are kept (safetensors + config.json per model)."""
    return cache_dir() / "models"


def training_dir() -> Path:
    """Where ``dgp train`` keeps each run's resume state unless told ``--state-dir``."""
    return cache_dir() / "training"

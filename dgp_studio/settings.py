"""The one typed settings object, stored as TOML under the user config dir.

QSettings is used only for window geometry (see main_window.py)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from dgp_engine.system import paths
from dgp_engine.system.fileio import atomic_write

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

FILE_NAME = "settings.toml"


def default_engine_threads() -> int:
    """One core left for the UI: 2 intra-op threads on 2 cores stalled GUI timers."""
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass
class Settings:
    device: str = "auto"  # auto | cpu | cuda | mps
    engine_threads: int = field(default_factory=default_engine_threads)
    precision: str = "auto"  # dgp_engine.method.compute.PRECISIONS
    cache_dir: str = ""  # empty: the platform cache dir
    # model name → Hub repository id; empty: the registry's own defaults
    hub_repos: dict[str, str] = field(default_factory=dict)
    mask_opacity: float = 0.45
    brush_size: int = 40
    brush_hardness: float = 0.8
    recent_files: list[str] = field(default_factory=list)
    max_megapixels: int = 150  # refuse larger images with a clear message
    preview_fps: float = 10.0
    region_explained: bool = False  # the working-region hint was dismissed

    @staticmethod
    def path() -> Path:
        return paths.config_dir() / FILE_NAME

    @classmethod
    def load(cls) -> Settings:
        """Read the TOML file; unknown keys are ignored, bad values fall back to defaults."""
        path = cls.path()
        s = cls()
        if not path.is_file():
            return s
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            log.warning("Settings file %s is unreadable (%s); using defaults", path, exc)
            return s
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value, default = data[f.name], getattr(s, f.name)
            if (
                isinstance(default, bool)
                or type(value) is type(default)
                or (isinstance(default, float) and isinstance(value, int))
            ):
                setattr(
                    s,
                    f.name,
                    type(default)(value) if not isinstance(default, (list, dict)) else value,
                )
            else:
                log.warning("Setting %s=%r has the wrong type; using %r", f.name, value, default)
        s.engine_threads = max(1, int(s.engine_threads))
        from dgp_engine.method.compute import PRECISIONS

        if s.precision not in PRECISIONS:
            log.warning(
                "Setting precision=%r is not one of %s; using auto",
                s.precision,
                ", ".join(PRECISIONS),
            )
            s.precision = "auto"
        s.mask_opacity = min(1.0, max(0.0, s.mask_opacity))
        return s

    def save(self) -> Path:
        """Write atomically so a crash never leaves half a settings file."""
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = dataclasses.asdict(self)
        atomic_write(path, lambda fh: tomli_w.dump(data, fh), suffix=".tmp")
        return path

    def add_recent(self, file: str | Path, limit: int = 10) -> None:
        f = str(Path(file).resolve())
        self.recent_files = [f] + [r for r in self.recent_files if r != f][: limit - 1]

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else paths.default_cache_dir()


def apply_hub_repos(repos: dict[str, str]) -> None:
    """Point registered models at the Hub repositories named in the settings."""
    try:
        from dgp_engine import DGPError
        from dgp_engine.priors import registry

        for name, repo in repos.items():
            try:
                if registry.source_settings(name).repo_id != repo:
                    registry.set_source(name, repo_id=repo)
            except DGPError as exc:
                log.warning("Hub repository for %s not applied: %s", name, exc)
    except (ImportError, AttributeError) as exc:  # an older registry without sources
        log.warning("Hub repositories not applied: %s", exc)

"""Models the app can use, by name: the bundled one, installed ones, and (in tests)
any prior factory registered at run time.  Loading happens in the worker thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from dgp_engine import Prior, load_prior

log = logging.getLogger(__name__)

Loader = Callable[[str], Prior]  # device → Prior


class ModelCatalog:
    def __init__(self) -> None:
        self._loaders: dict[str, Loader] = {}
        self._add_known()

    def _add_known(self) -> None:
        try:
            from dgp_engine import registry

            list_models = getattr(registry, "list_models", None)
            if callable(list_models):  # the model manager's registry
                for status in list_models():
                    if status.usable:
                        self.add(status.name,
                                 lambda dev, n=status.name: load_prior(n, device=dev))
            elif (registry.bundled_model_dir() / "config.json").is_file():
                self.add("bundled", lambda dev: load_prior("bundled", device=dev))
        except Exception as exc:  # noqa: BLE001 — a broken registry must not stop the app
            log.warning("Could not list installed models: %s", exc)

    def refresh(self) -> None:
        """Pick up models installed since start (keeps test/runtime additions)."""
        self._add_known()

    def add(self, name: str, loader: Loader) -> None:
        self._loaders[name] = loader

    def add_folder(self, folder: str | Path) -> str:
        folder = Path(folder)
        name = folder.name
        self.add(name, lambda dev: load_prior(folder, device=dev))
        return name

    def names(self) -> list[str]:
        return list(self._loaders)

    def load(self, name: str, device: str) -> Prior:
        if name not in self._loaders:
            from dgp_engine import CheckpointError

            raise CheckpointError(f"No model named {name!r} is installed. Use Models → "
                                  "Download or import… first.")
        return self._loaders[name](device)

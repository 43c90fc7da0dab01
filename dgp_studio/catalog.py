"""Models the app can use, by name: the bundled one, installed ones, and (in tests)
any prior factory registered at run time.  Loading happens in the worker thread."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from dgp_engine import Prior, load_prior

log = logging.getLogger(__name__)


def _load_installed(name: str, device: str) -> Prior:
    """The installed model ``name`` (a catalog entry's loader)."""
    return load_prior(name, device=device)


Loader = Callable[[str], Prior]  # device → Prior

#: The prior families this version restores with (dgp_engine.priors.family); a model of
#: another family (installed by a newer version) is listed but not offered for tasks.
RUNNABLE_FAMILIES = frozenset({"biggan-pytorch", "studiogan", "stylegan2"})


def unusable_reason(family: str) -> str | None:
    """Why a prior of ``family`` cannot run tasks in this version (None: it can; an
    unrecorded family is an older BigGAN install)."""
    if not family or family in RUNNABLE_FAMILIES:
        return None
    return (
        f"A {family} prior: this version of DGP Studio cannot run it; update DGP Studio to use it."
    )


class ModelCatalog:
    def __init__(self) -> None:
        self._loaders: dict[str, Loader] = {}
        self._installed: set[str] = set()
        self._families: dict[str, str] = {}  # installed models' families
        self._add_known()

    def _add_known(self) -> None:
        try:
            from dgp_engine.priors import registry

            usable = [status for status in registry.list_models() if status.usable]
        except Exception as exc:  # noqa: BLE001 — a broken registry must not stop the app
            log.warning("Could not list installed models: %s", exc)
            return
        found = [status.name for status in usable]
        self._families = {status.name: status.family for status in usable}
        for name in self._installed - set(found):  # removed, or the cache folder moved
            self._loaders.pop(name, None)
        for name in found:
            self.add(name, functools.partial(_load_installed, name))
        self._installed = set(found)

    def refresh(self) -> None:
        """Pick up models installed or removed since start (keeps test/runtime additions)."""
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

    def unusable(self) -> dict[str, str]:
        """Installed models that cannot run tasks yet, with why (StyleGAN2 priors)."""
        out = {}
        for name in self._loaders:
            why = unusable_reason(self._families.get(name, ""))
            if why is not None:
                out[name] = why
        return out

    def load(self, name: str, device: str) -> Prior:
        if name not in self._loaders:
            from dgp_engine import CheckpointError

            raise CheckpointError(
                f"No model named {name!r} is installed. Use Models → Download or import… first."
            )
        return self._loaders[name](device)

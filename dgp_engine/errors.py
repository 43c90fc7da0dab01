"""Typed errors of the engine, all of them here. Each message says what went wrong and
what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DGPError(Exception):
    """Base class of every error the engine raises on purpose."""


class CheckpointError(DGPError):
    """Model files are missing, truncated, or do not match the expected architecture."""


class InputError(DGPError, ValueError):
    """An image, mask, latent or class id handed to the engine is unusable."""


class FaceNotFoundError(InputError):
    """A face prior was given a photo in which no face was found (or no detector is
    installed) and no face points: the front end asks for the eyes and mouth."""


class PresetError(DGPError, ValueError):
    """A preset is empty, inconsistent or names an unknown field value."""


class StateError(DGPError):
    """A saved reconstruction state cannot be read or does not fit the model."""


class ModelMismatchError(StateError):
    """A state was restored with other weights than those of the model loaded to render it
    (the same shapes would render without error, and wrongly)."""


class DeviceError(DGPError):
    """The requested compute device is not available."""


class DeviceMemoryError(DeviceError):
    """The compute device ran out of memory during a run."""


class PriorFamilyError(DGPError):
    """A prior of one network family (StyleGAN2) was given to a part of the engine that
    works with another (BigGAN) only."""


class DownloadError(DGPError):
    """Fetching model files failed: no network, unknown repository or file, checksum mismatch."""


class OperationCancelled(DGPError):
    """A long operation (download, import) was cancelled; nothing half-done was kept."""


class RegistryError(DGPError):
    """A model name is unknown, or the registry / the user's model settings are invalid."""


class OutputError(DGPError):
    """The result could not be written (disk full, no permission, would overwrite)."""


class ExportError(DGPError):
    """An animation could not be written (unwritable folder, encoder failure…)."""


class ExportCancelled(ExportError):
    """The export was cancelled; no file was written."""


class CompositionError(InputError):
    """Outputs cannot be composed into a photo: a state records no place in one, or
    keyframes come from different photos, places or tasks.  The generator's own square
    can still be exported."""


class ExportTooLarge(InputError):
    """Frames would be larger than an export allows and no size was chosen: ``size``
    (width, height) and ``limit`` (px on the long side) let a caller offer the choices."""

    def __init__(self, message: str, size: tuple[int, int], limit: int):
        super().__init__(message)
        self.size = size
        self.limit = limit


class ProjectError(DGPError):
    """A project file cannot be written or read."""


class ProjectDamagedError(ProjectError):
    """The file is damaged; ``recovered`` (a ``dgp_engine.files.project.Project``) holds what
    could be read, ``lost`` names the rest."""

    def __init__(self, message: str, path: Path, recovered: Any, lost: list[str]):
        super().__init__(message)
        self.path = path
        self.recovered = recovered
        self.lost = lost


class TrainingError(DGPError):
    """Training cannot start or continue."""


class DatasetError(TrainingError, InputError):
    """The training data file is missing or not in the expected layout."""


class ResumeError(TrainingError, CheckpointError):
    """A training checkpoint is unreadable or does not fit the requested run."""


class DivergenceError(TrainingError):
    """Losses or weights became NaN/inf; the last good checkpoint is kept."""

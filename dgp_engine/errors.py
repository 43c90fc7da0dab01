"""Typed errors of the engine. Each message says what went wrong and what to do."""

from __future__ import annotations


class DGPError(Exception):
    """Base class of every error the engine raises on purpose."""


class CheckpointError(DGPError):
    """Model files are missing, truncated, or do not match the expected architecture."""


class InputError(DGPError, ValueError):
    """An image, mask, latent or class id handed to the engine is unusable."""


class PresetError(DGPError, ValueError):
    """A preset is empty, inconsistent or names an unknown field value."""


class StateError(DGPError):
    """A saved reconstruction state cannot be read or does not fit the model."""


class DeviceError(DGPError):
    """The requested compute device is not available."""


class DownloadError(DGPError):
    """Fetching model files failed: no network, unknown repository or file, checksum mismatch."""


class OperationCancelled(DGPError):
    """A long operation (download, import) was cancelled; nothing half-done was kept."""


class RegistryError(DGPError):
    """A model name is unknown, or the registry / the user's model settings are invalid."""

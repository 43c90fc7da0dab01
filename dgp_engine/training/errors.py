"""Errors raised by training; each says what went wrong and what to do next."""

from __future__ import annotations

from ..errors import CheckpointError, DGPError, InputError


class TrainingError(DGPError):
    """Training cannot start or continue."""


class DatasetError(TrainingError, InputError):
    """The training data file is missing or not in the expected layout."""


class ResumeError(TrainingError, CheckpointError):
    """A training checkpoint is unreadable or does not fit the requested run."""


class DivergenceError(TrainingError):
    """Losses or weights became NaN/inf; the last good checkpoint is kept."""

"""Errors raised by training (defined with every other error in dgp_engine.errors)."""

from __future__ import annotations

from ..errors import DatasetError, DivergenceError, ResumeError, TrainingError

__all__ = ["DatasetError", "DivergenceError", "ResumeError", "TrainingError"]

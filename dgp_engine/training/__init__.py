"""Training of the BigGAN family on an image archive (the bundled prior is made with it)."""

from .augment import diff_augment, parse_policy
from .data import EpochSampler, ImageDataset, load_npz
from .ema import GeneratorEMA, standing_stats
from .errors import DatasetError, DivergenceError, ResumeError, TrainingError
from .export import export_prior
from .trainer import (
    CHECKPOINT_NAME,
    Trainer,
    TrainReport,
    TrainSettings,
    default_state_dir,
    sample_grid,
)

__all__ = [
    "CHECKPOINT_NAME",
    "DatasetError",
    "DivergenceError",
    "EpochSampler",
    "GeneratorEMA",
    "ImageDataset",
    "ResumeError",
    "TrainReport",
    "Trainer",
    "TrainSettings",
    "TrainingError",
    "default_state_dir",
    "diff_augment",
    "export_prior",
    "load_npz",
    "parse_policy",
    "sample_grid",
    "standing_stats",
]

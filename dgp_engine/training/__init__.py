"""Training of the BigGAN family on an image archive (the bundled prior is made with it)."""

from .augment import diff_augment, parse_policy
from .data import EpochSampler, ImageDataset, load_npz
from .ema import GeneratorEMA, standing_stats
from .errors import DatasetError, DivergenceError, ResumeError, TrainingError
from .export import export_prior
from .scoreboard import Evaluator, Scoreboard, best_row, read_scoreboard, shipped_generator
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
    "Evaluator",
    "GeneratorEMA",
    "ImageDataset",
    "ResumeError",
    "Scoreboard",
    "TrainReport",
    "Trainer",
    "TrainSettings",
    "TrainingError",
    "best_row",
    "default_state_dir",
    "diff_augment",
    "export_prior",
    "load_npz",
    "parse_policy",
    "read_scoreboard",
    "sample_grid",
    "shipped_generator",
    "standing_stats",
]

"""The scoreboard of a training run: every checkpoint scored as it would be shipped.

Each checkpoint's EMA generator gets the export's treatment (standing BN statistics,
float16 round trip: :func:`shipped_generator`) and is scored with the evaluation
classifier (``classifier.py``): class accuracy of ``samples`` generated images, and
FID/KID on the classifier's penultimate features against

* the **held-out** real images (``*_val``): images neither the GAN nor the classifier was
  trained on, so a generator cannot score by reproducing its training images; the
  selection of the checkpoint to ship uses these;
* the GAN's **training** images (``*_train``): comparable with the numbers of earlier
  model cards (measured against the training split).

The rows are kept in ``scoreboard.json`` (the record), with ``scoreboard.csv`` and a
Markdown view ``scoreboard.md`` beside it; all written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models import BigGANConfig, Generator
from ..system.fileio import atomic_write_text
from .classifier import SmallClassifier
from .data import ImageDataset
from .ema import standing_stats
from .errors import TrainingError
from .metrics import features_and_predictions, fid, generate, kid

SNAPSHOT_FORMAT = "dgp-studio-biggan-snapshot/1"
SCOREBOARD_NAME = "scoreboard.json"
# How each metric ranks checkpoints (the export's --select).
SELECT = {
    "fid_val": min,
    "kid_val": min,
    "fid_train": min,
    "kid_train": min,
    "accuracy": max,
}
DEFAULT_SELECT = "fid_val"
# Columns of the Markdown view and the CSV (the JSON keeps every key).
COLUMNS = (
    "step",
    "images_seen",
    "epochs",
    "cpu_hours",
    "accuracy",
    "fid_val",
    "kid_val",
    "fid_train",
    "kid_train",
    "ada_p",
    "grid",
)
# Columns that measure time, not the model: they differ between a resumed and a
# straight run.
TIMING = ("train_hours", "cpu_hours", "eval_seconds")


def shipped_generator(snapshot: dict[str, Any], device: torch.device | None = None) -> Generator:
    """The EMA G of a snapshot or checkpoint as an export ships it: standing BN statistics
    (the run's ``standing_batches`` × ``standing_batch`` samples, seed 0), float16 weights
    (cast back to float32, as ``load_prior`` does), eval mode."""
    settings = snapshot.get("settings", {})
    G = Generator(BigGANConfig.from_dict(snapshot["model_config"]))
    G.load_state_dict(snapshot["G_ema"])
    if device is not None:
        G.to(device)
    G = standing_stats(
        G,
        int(settings.get("standing_batches", 64)),
        int(settings.get("standing_batch", 32)),
        torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        for t in [*G.parameters(), *G.buffers()]:
            if t.is_floating_point():
                t.copy_(t.half().float())
    return G.eval()


@dataclass
class Evaluator:
    """Scores a generator with a fixed classifier against fixed real features."""

    classifier: SmallClassifier
    val_features: np.ndarray
    train_features: np.ndarray | None = None
    samples: int = 5000
    seed: int = 0

    @classmethod
    def build(
        cls,
        classifier: SmallClassifier,
        val: ImageDataset,
        train: ImageDataset | None = None,
        samples: int = 5000,
    ) -> Evaluator:
        if len(val) < 2:
            raise TrainingError("the scoreboard needs at least 2 held-out real images")

        def feats(data: ImageDataset) -> np.ndarray:
            parts = []
            for i in range(0, len(data), 512):
                x, _ = data.batch(torch.arange(i, min(i + 512, len(data))))
                parts.append(features_and_predictions(classifier, x)[0])
            return np.concatenate(parts)

        return cls(
            classifier, feats(val), feats(train) if train is not None else None, samples=samples
        )

    def evaluate(self, G: Generator) -> dict[str, float]:
        n_classes = G.cfg.n_classes
        per_class = max(1, math.ceil(self.samples / n_classes))
        x, y = generate(G, per_class, seed=self.seed)
        f_gen, pred = features_and_predictions(self.classifier, x)
        row = {
            "samples": int(len(y)),
            "accuracy": round(float((torch.from_numpy(pred) == y).float().mean()), 4),
            "fid_val": round(fid(f_gen, self.val_features), 4),
            "kid_val": round(kid(f_gen, self.val_features)[0], 5),
        }
        if self.train_features is not None:
            row["fid_train"] = round(fid(f_gen, self.train_features), 4)
            row["kid_train"] = round(kid(f_gen, self.train_features)[0], 5)
        return row


class Scoreboard:
    """The rows of one run, one per checkpoint step, in step order."""

    def __init__(self, folder: str | Path, copy_to: str | Path | None = None):
        self.folder = Path(folder)
        self.copy_to = Path(copy_to) if copy_to is not None else None
        self.path = self.folder / SCOREBOARD_NAME
        self.rows: list[dict[str, Any]] = read_scoreboard(self.path) if self.path.is_file() else []

    def add(self, row: dict[str, Any]) -> None:
        """Add (or replace) the row of its step and rewrite the files."""
        self.rows = sorted(
            [r for r in self.rows if r["step"] != row["step"]] + [row], key=lambda r: r["step"]
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"rows": self.rows}, indent=1) + "\n")
        atomic_write_text(self.path.with_suffix(".csv"), to_csv(self.rows))
        view = to_markdown(self.rows)
        atomic_write_text(self.path.with_suffix(".md"), view)
        if self.copy_to is not None and self.copy_to.resolve() != self.folder.resolve():
            self.copy_to.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.copy_to / "scoreboard.md", view)


def read_scoreboard(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(
            f"could not read the scoreboard {path} ({exc}); it is damaged or not a "
            "DGP Studio scoreboard"
        ) from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "step" in r for r in rows):
        raise TrainingError(f"{path} is not a DGP Studio scoreboard (rows without steps)")
    return rows


def best_row(rows: list[dict[str, Any]], select: str = DEFAULT_SELECT) -> dict[str, Any]:
    """The checkpoint to ship: the best row by ``select`` (ties: the earlier step)."""
    if select not in SELECT:
        raise TrainingError(
            f"unknown scoreboard metric {select!r}; choose from {', '.join(SELECT)}"
        )
    scored = [r for r in rows if isinstance(r.get(select), (int, float))]
    if not scored:
        raise TrainingError(f"the scoreboard has no checkpoint scored by {select}")
    pick = SELECT[select]
    best = pick(r[select] for r in scored)
    return min((r for r in scored if r[select] == best), key=lambda r: r["step"])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(rows: list[dict[str, Any]], select: str = DEFAULT_SELECT) -> str:
    best = best_row(rows, select)["step"] if rows else None
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    lines = [
        "| "
        + " | ".join(
            (f"**{_cell(r.get(c))}**" if c == "step" and r["step"] == best else _cell(r.get(c)))
            for c in COLUMNS
        )
        + " |"
        for r in rows
    ]
    note = f"\nBest by {select} (bold): step {best}.\n" if best is not None else ""
    return "# Scoreboard\n\n" + head + "\n".join(lines) + "\n" + note


def to_csv(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


__all__ = [
    "DEFAULT_SELECT",
    "SCOREBOARD_NAME",
    "SELECT",
    "SNAPSHOT_FORMAT",
    "TIMING",
    "Evaluator",
    "Scoreboard",
    "best_row",
    "read_scoreboard",
    "shipped_generator",
]

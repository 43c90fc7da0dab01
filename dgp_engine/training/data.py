"""Training data: a NumPy ``.npz`` with ``images`` (uint8 N×H×W×3) and ``labels`` (int N)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DatasetError

LAYOUT = (
    "expected a .npz with 'images' (uint8, N×H×W×3, RGB) and 'labels' "
    "(integers 0..n_classes-1, length N)"
)


@dataclass
class ImageDataset:
    images: torch.Tensor  # uint8 N×3×R×R
    labels: torch.Tensor  # int64 N
    n_classes: int
    source: str = ""

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: torch.Tensor, note: str = "") -> ImageDataset:
        """The images at ``index`` (in that order); ``note`` is added to the source."""
        source = f"{self.source} ({note})" if note else self.source
        return ImageDataset(self.images[index], self.labels[index], self.n_classes, source)

    def split(self, held_out: list[int]) -> tuple[ImageDataset, ImageDataset]:
        """(training part, held-out part): the held-out indices are never trained on."""
        n = len(self)
        bad = [i for i in held_out if not 0 <= int(i) < n]
        if bad or len(set(held_out)) != len(held_out):
            raise DatasetError(
                f"the held-out list does not fit this dataset of {n} images "
                f"({'index ' + str(bad[0]) + ' is out of range' if bad else 'repeated indices'})"
            )
        mask = torch.ones(n, dtype=torch.bool)
        held = torch.tensor(sorted(int(i) for i in held_out), dtype=torch.long)
        mask[held] = False
        train = self.subset(torch.nonzero(mask).flatten(), f"without {len(held)} held-out images")
        return train, self.subset(held, f"{len(held)} held-out images")

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [-1, 1] (float32 N×3×R×R) and their labels."""
        x = self.images[index].float().div_(127.5).sub_(1.0)
        return x, self.labels[index]


def load_npz(
    path: str | Path, resolution: int | None = None, n_classes: int | None = None
) -> ImageDataset:
    """Read and check a training archive; optionally downscale to ``resolution``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} not found; {LAYOUT}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            missing = [k for k in ("images", "labels") if k not in keys]
            if missing:
                raise DatasetError(
                    f"{path.name} has no {' or '.join(missing)} array "
                    f"(it holds: {', '.join(sorted(keys)) or 'nothing'}); {LAYOUT}"
                )
            images = archive["images"]
            labels = archive["labels"]
    except DatasetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(
            f"{path} is not a readable NumPy .npz archive ({exc}); {LAYOUT}"
        ) from exc

    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise DatasetError(f"{path.name}: 'images' is {images.dtype} {images.shape}; {LAYOUT}")
    if images.shape[1] != images.shape[2]:
        raise DatasetError(f"{path.name}: images must be square, got {images.shape[1:3]}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"{path.name}: 'labels' has shape {labels.shape} for {images.shape[0]} images; {LAYOUT}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path.name}: 'labels' must be integers, got {labels.dtype}")
    if images.shape[0] == 0:
        raise DatasetError(f"{path.name} holds no images")
    lo, hi = int(labels.min()), int(labels.max())
    if n_classes is None:
        n_classes = hi + 1
    if lo < 0 or hi >= n_classes:
        raise DatasetError(f"{path.name}: labels run {lo}..{hi}, outside 0..{n_classes - 1}")

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    size = x.shape[-1]
    if resolution is not None and resolution != size:
        if resolution > size or size % resolution:
            raise DatasetError(
                f"{path.name} has {size}px images; training at {resolution}px "
                f"needs a size that divides {size}"
            )
        f = size // resolution
        x = F.avg_pool2d(x.float(), f).round_().clamp_(0, 255).to(torch.uint8)
    return ImageDataset(x, torch.from_numpy(labels.astype(np.int64)), int(n_classes), str(path))


class EpochSampler:
    """Shuffled indices, epoch after epoch, with a state that can be saved and restored."""

    def __init__(self, n: int, gen: torch.Generator):
        self.n = n
        self.gen = gen
        self.order = torch.randperm(n, generator=gen)
        self.cursor = 0

    def next(self, batch: int) -> torch.Tensor:
        parts = []
        need = batch
        while need:
            if self.cursor == self.n:
                self.order = torch.randperm(self.n, generator=self.gen)
                self.cursor = 0
            take = min(need, self.n - self.cursor)
            parts.append(self.order[self.cursor : self.cursor + take])
            self.cursor += take
            need -= take
        return torch.cat(parts)

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order.clone(), "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["order"].numel()) != self.n:
            raise DatasetError(
                f"the checkpoint was trained on {state['order'].numel()} images; "
                f"this dataset has {self.n}. Resume with the same data file."
            )
        self.order = state["order"].clone()
        self.cursor = int(state["cursor"])

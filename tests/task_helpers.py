"""Files for the task / CLI / evaluation tests: a tiny model folder, a tiny preset,
small photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from dgp_engine import Preset

from .helpers import TINY, tiny_prior

TINY_PRESET = {
    "iterations": [2, 2],
    "ft_num": [1, 2],
    "lr_ratio": 1.0,
    "G_lrs": 1e-3,
    "z_lrs": 1e-2,
    "w_D_loss": [1, 0.5],
    "w_mse": [1, 10],
    "use_in": [False, True],
    "ftr_num": 8,
    "select_num": 2,
    "sample_std": 0.5,
    "name": "tiny",
}


def tiny_preset(**changes) -> Preset:
    return Preset.from_dict({**TINY_PRESET, **changes})


def tiny_model_folder(dest: Path, seed: int = 0) -> Path:
    """config.json + G_ema.safetensors + D.safetensors of the seeded tiny prior."""
    from safetensors.torch import save_file

    prior = tiny_prior(seed)
    dest.mkdir(parents=True, exist_ok=True)
    for name, net in (("G_ema", prior.G), ("D", prior.D)):
        sd = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
        save_file(sd, str(dest / f"{name}.safetensors"))
    (dest / "config.json").write_text(json.dumps(TINY.to_dict()))
    (dest / "classes.txt").write_text(
        "tench\ngoldfish\ngreat white shark\ntiger shark\nhammerhead\n"
    )
    return dest


def tiny_preset_file(dest: Path, **changes) -> Path:
    import tomli_w

    data = {
        k: list(v) if isinstance(v, tuple) else v for k, v in {**TINY_PRESET, **changes}.items()
    }
    dest.write_text(tomli_w.dumps(data))
    return dest


def photo_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful uint8 picture (gradients + a blob)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(xx / max(w, 1) * 3 + rng.random())
    g = 0.5 + 0.4 * np.cos(yy / max(h, 1) * 2 + rng.random())
    b = 0.5 + 0.3 * np.sin((xx + yy) / max(w + h, 1) * 4)
    arr = np.stack([r, g, b], -1)
    return (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)


def save_png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    (Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)).save(path)
    return path


def out_of_memory_after(monkeypatch, steps: int) -> list:
    """Make every run started through ``dgp_engine.tasks.restore`` (the CLI, the batch and the
    app all go that way) run for real until its optimisation step ``steps``, then run out
    of device memory there: torch's error is thrown into the engine's own iterator, so
    the engine's conversion into DeviceMemoryError is what the caller sees.  Returns the
    list of reports each run yielded before it failed."""
    import torch

    from dgp_engine.tasks import restore

    real = restore.reconstruct
    yielded: list = []

    class FailingRun:
        def __init__(self, run):
            self.run = run

        def __getattr__(self, name):
            return getattr(self.run, name)

        def __iter__(self):
            inner = iter(self.run)
            for report in inner:
                yielded.append(report)
                yield report
                if report.phase == "optimize" and report.step >= steps:
                    inner.throw(
                        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                    )

    monkeypatch.setattr(restore, "reconstruct", lambda *a, **k: FailingRun(real(*a, **k)))
    return yielded

"""Reconstruction states and model folders for the manipulation, export and project tests."""

from __future__ import annotations

import json
from pathlib import Path

from dgp_engine import Preset, reconstruct
from dgp_engine.method.state import ReconstructionState

from .helpers import smooth_target

QUICK = {"iterations": [2], "G_lrs": [1e-3], "z_lrs": [1e-2], "select_num": 2}


def quick_state(prior, class_id: int = 1, seed: int = 0, **preset) -> ReconstructionState:
    """A real (very short) reconstruction: z, embedding and a non-zero weight delta."""
    return reconstruct(
        prior,
        smooth_target(prior.resolution, seed),
        "reconstruct",
        class_id=class_id,
        seed=seed,
        preset=Preset.from_dict({**QUICK, **preset}),
    ).run_to_end()


def save_model_folder(prior, dest: Path) -> Path:
    """A model folder (config.json + G/D safetensors) that ``load_prior`` accepts."""
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(prior.config.to_dict()))
    save_file(
        {k: v.contiguous() for k, v in prior.G.state_dict().items()}, str(dest / "G.safetensors")
    )
    save_file(
        {k: v.contiguous() for k, v in prior.D.state_dict().items()}, str(dest / "D.safetensors")
    )
    return dest

"""Turn a training checkpoint into a prior folder that ``load_prior`` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..models import BigGANConfig, Discriminator
from .scoreboard import shipped_generator
from .trainer import read_checkpoint


def export_prior(
    checkpoint: str | Path,
    folder: str | Path,
    class_names: list[str] | None = None,
    dtype: torch.dtype = torch.float16,
) -> dict[str, Any]:
    """Write config.json, G_ema.safetensors (EMA G with standing BN statistics: the G that
    the run's scoreboard scored), D.safetensors and classes.txt, from a resume state or a
    snapshot of one checkpoint.  Returns a summary (step, images seen, hours)."""
    from safetensors.torch import save_file

    ckpt = read_checkpoint(Path(checkpoint), snapshot=True)
    cfg = BigGANConfig.from_dict(ckpt["model_config"])
    G = shipped_generator(ckpt)
    D = Discriminator(cfg)
    D.load_state_dict(ckpt["D"])
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)

    def cast(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in sd.items()
        }

    meta = {"step": str(ckpt["step"]), "images_seen": str(ckpt["images_seen"])}
    save_file(cast(G.state_dict()), str(out / "G_ema.safetensors"), metadata=meta)
    save_file(cast(D.state_dict()), str(out / "D.safetensors"), metadata=meta)
    config = cfg.to_dict()
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if class_names is not None:
        if len(class_names) != cfg.n_classes:
            raise ValueError(f"{len(class_names)} class names for {cfg.n_classes} classes")
        (out / "classes.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    return {
        "step": int(ckpt["step"]),
        "images_seen": int(ckpt["images_seen"]),
        "n_images": int(ckpt["data"]["n_images"]),
        "hours": float(ckpt["elapsed_s"]) / 3600.0,
        "cpu_hours": float(ckpt.get("cpu_s", ckpt["elapsed_s"])) / 3600.0,
        "settings": ckpt["settings"],
        "config": config,
    }

"""The shipped bundled prior (resources/models/bundled), made by scripts/export_bundled.py."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open

from dgp_engine.priors.load import load_prior
from dgp_engine.priors.registry import bundled_model_dir

IMAGENETTE = [
    "tench",
    "English springer",
    "cassette player",
    "chain saw",
    "church",
    "French horn",
    "garbage truck",
    "gas pump",
    "golf ball",
    "parachute",
]


def test_bundled_prior_loads_and_renders_every_class():
    prior = load_prior("bundled")
    assert prior.resolution == 64 and prior.config.n_classes == 10
    assert prior.class_names == IMAGENETTE
    G = prior.G
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = torch.randn(10, G.dim_z, generator=gen)
        img = G(z, G.shared(torch.arange(10)))
        logit, _ = prior.D(img, torch.arange(10))
    assert img.shape == (10, 3, 64, 64) and torch.isfinite(img).all()
    assert img.std() > 0.1  # not a constant image
    assert torch.isfinite(logit).all()


def test_bundled_files_are_fp16_small_and_documented():
    folder = bundled_model_dir()
    for name in ("G_ema.safetensors", "D.safetensors"):
        with safe_open(str(folder / name), "pt") as fh:
            dtypes = {fh.get_slice(k).get_dtype() for k in fh.keys()}
        assert dtypes == {"F16"}
    total = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    assert total < 50e6
    cfg = json.loads((folder / "config.json").read_text())
    assert {
        "resolution",
        "G_ch",
        "D_ch",
        "dim_z",
        "shared_dim",
        "hier",
        "n_classes",
        "G_attn",
        "D_attn",
        "SN_eps",
    } <= cfg.keys()
    card = (folder / "MODEL_CARD.md").read_text()
    assert "non-commercial" in card and "Imagenette" in card
    table = [line for line in card.splitlines() if line.startswith("|")]
    assert len(table) >= 7 and not any("not measured" in line for line in table)

"""Evaluation tools of a trained prior: classifier, KID/FID, sample generation."""

from __future__ import annotations

import numpy as np
import torch

from dgp_engine.models import BigGANConfig, Generator, orthogonal_init
from dgp_engine.training import ImageDataset
from dgp_engine.training.classifier import (
    SmallClassifier,
    accuracy,
    load_classifier,
    save_classifier,
    train_classifier,
)
from dgp_engine.training.metrics import features_and_predictions, fid, generate, kid


def test_kid_and_fid_separate_distributions():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    b = rng.normal(size=(400, 8))
    c = rng.normal(loc=0.7, size=(400, 8))
    same, _ = kid(a, b, subsets=10, subset_size=200)
    diff, _ = kid(a, c, subsets=10, subset_size=200)
    assert abs(same) < 0.05 and diff > 0.2
    assert fid(a, a) < 1e-6
    assert abs(fid(a, c) - 8 * 0.49) < 1.0  # ≈ |Δμ|² for equal covariances


def test_classifier_learns_colour_classes_and_round_trips(tmp_path):
    # Two classes that differ by colour only: a few epochs must separate them.
    g = torch.Generator().manual_seed(0)
    n = 64
    labels = torch.arange(n) % 2
    base = torch.randint(0, 60, (n, 3, 64, 64), generator=g, dtype=torch.uint8)
    base[labels == 1, 0] += 150
    data = ImageDataset(base, labels, 2)
    model, info = train_classifier(data, epochs=6, batch=8, width=8, holdout=0.25)
    assert info["holdout_images"] == 16
    assert info["holdout_accuracy"] >= 0.9
    save_classifier(model, tmp_path / "c.safetensors")
    again = load_classifier(tmp_path / "c.safetensors")
    assert again.width == 8 and again.n_classes == 2
    idx = torch.arange(n)
    assert accuracy(again, data, idx) == accuracy(model, data, idx)  # fp16 keeps decisions
    x, _ = data.batch(idx[:4])
    feats, preds = features_and_predictions(again, x)
    assert feats.shape == (4, again.feature_dim) and preds.shape == (4,)


def test_generate_covers_every_class():
    cfg = BigGANConfig(
        resolution=32, G_ch=8, D_ch=8, dim_z=20, shared_dim=8, n_classes=3, G_attn="0", D_attn="0"
    )
    torch.manual_seed(0)
    G = Generator(cfg)
    orthogonal_init(G)
    x, y = generate(G, per_class=2, batch=4, truncation=0.5)
    assert x.shape == (6, 3, 32, 32) and y.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.isfinite(x).all() and x.abs().max() <= 1
    x2, _ = generate(G, per_class=2, batch=4, truncation=0.5)
    assert torch.equal(x, x2)
    assert isinstance(SmallClassifier(3, 8)(x), torch.Tensor)

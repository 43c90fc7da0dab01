"""What a checkpoint is, guessed from its tensors (issue 13: the 64 px generator imported
as biggan-128 was said to have G_ch 32; it has 16)."""

from __future__ import annotations

import pytest
import torch

from dgp_engine.errors import CheckpointError
from dgp_engine.models import BigGANConfig, Discriminator, Generator
from dgp_engine.priors.check import CheckpointShape, check_state_dict, inspect_state_dict
from dgp_engine.priors.load import load_prior


@pytest.mark.parametrize(
    "family, res, ch",
    [
        ("biggan-pytorch", 32, 8),
        ("biggan-pytorch", 64, 16),
        ("biggan-pytorch", 64, 32),
        ("biggan-pytorch", 128, 32),
        ("biggan-pytorch", 256, 16),
        ("studiogan", 64, 16),
        ("studiogan", 128, 24),
    ],
)
def test_width_and_resolution_are_read_right_for_every_layout(family, res, ch):
    extra = {"BN_eps": 1e-4} if family == "studiogan" else {}
    cfg = BigGANConfig(resolution=res, G_ch=ch, D_ch=ch, n_classes=7, family=family, **extra)
    with torch.device("meta"):
        G, D = Generator(cfg), Discriminator(cfg)
    assert inspect_state_dict(G.state_dict()) == CheckpointShape("G", res, ch, 7)
    assert inspect_state_dict(D.state_dict()) == CheckpointShape("D", res, ch, 7)


def test_the_bundled_64px_generator_as_a_128px_model_suggests_g_ch_16():
    prior = load_prior("bundled")
    sd = prior.G.state_dict()
    wrong = BigGANConfig(resolution=128, G_ch=96, D_ch=96, n_classes=1000)
    with pytest.raises(CheckpointError) as info:
        check_state_dict(sd, "G", wrong, label="G_ema.pth", model="biggan-128")
    msg = str(info.value)
    assert f"G_ch {prior.config.G_ch}" in msg and "64 px" in msg
    assert "G_ch 32" not in msg

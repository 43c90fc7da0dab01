"""Our BigGAN reproduces the reference modules' forwards on the parity weights."""

from __future__ import annotations

import json

import pytest
import torch

from dgp_engine import BigGANConfig, Discriminator, Generator, load_prior

from .conftest import PARITY, REFERENCE
from .helpers import parity_folder

ATOL, RTOL = 1e-5, 1e-4


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    return load_prior(parity_folder(tmp_path_factory.mktemp("parity")))


@pytest.fixture(scope="module")
def forward():
    return torch.load(PARITY / "forward.pt", weights_only=False)


def test_generator_single_and_intermediates(prior, forward):
    s = forward["single"]
    with torch.no_grad():
        emb = prior.G.shared(s["y"])
        torch.testing.assert_close(emb, s["shared_embedding"], atol=0, rtol=0)
        inter = []
        x = prior.G(s["z"], emb, intermediates=inter)
    assert [n for n, _ in inter] == [n for n, _ in s["G_intermediates"]]
    for (_, got), (name, want) in zip(inter, s["G_intermediates"], strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL, msg=name)
    torch.testing.assert_close(x, s["x"], atol=ATOL, rtol=RTOL)


def test_discriminator_features_and_logits(prior, forward):
    for key in ("single", "batch4"):
        s = forward[key]
        with torch.no_grad():
            logit, feats = prior.D(s["x"])
            logit_y, _ = prior.D(s["x"], s["y"])
        assert len(feats) == 8
        for got, want in zip(feats, s["D_features"], strict=True):
            torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(logit, s["D_logit_no_y"], atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(logit_y, s["D_logit_with_y"], atol=ATOL, rtol=RTOL)
    # the post-ReLU quirk: the last block's entry is non-negative
    assert float(feats[6].min()) >= 0


def test_generator_batch_rows_independent(prior, forward):
    b = forward["batch4"]
    with torch.no_grad():
        x = prior.G(b["z"], prior.G.shared(b["y"]))
    torch.testing.assert_close(x, b["x"], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize(
    "manifest,res,ch",
    [
        ("biggan_keys_128_ch96.json", 128, 96),
        ("biggan_keys_256_ch96.json", 256, 96),
        ("biggan_keys_256_ch64.json", 256, 64),
    ],
)
def test_state_dict_layout_matches_official_checkpoints(manifest, res, ch):
    m = json.loads((REFERENCE / manifest).read_text())
    cfg = BigGANConfig(resolution=res, G_ch=ch, D_ch=ch)
    with torch.device("meta"):
        nets = {"G": Generator(cfg), "D": Discriminator(cfg)}
    for name, net in nets.items():
        params = {n for n, _ in net.named_parameters()}
        got = [
            (k, list(v.shape), "parameter" if k in params else "buffer")
            for k, v in net.state_dict().items()
        ]
        want = [(k["key"], k["shape"], k["kind"]) for k in m[name]["keys"]]
        assert got == want, f"{manifest} {name}"
    assert nets["G"].dim_z == m["config"]["effective_dim_z"]


@pytest.mark.parametrize("res", [32, 64])
def test_small_resolutions_build_and_run(res):
    cfg = BigGANConfig(
        resolution=res,
        G_ch=8,
        D_ch=8,
        dim_z=20,
        shared_dim=8,
        n_classes=3,
        G_attn=str(res // 2),
        D_attn=str(res // 2),
    )
    G, D = Generator(cfg).eval(), Discriminator(cfg).eval()
    with torch.no_grad():
        x = G(torch.randn(2, G.dim_z), G.shared(torch.tensor([0, 2])))
        logit, feats = D(x)
    assert x.shape == (2, 3, res, res)
    assert float(x.abs().max()) <= 1
    assert logit.shape == (2, 1)
    assert feats[-1].shape == (2, cfg.d_arch["out_channels"][-1])
    assert len(feats) == D.num_features


def test_frozen_spectral_norm_gives_the_same_forward(prior, forward):
    """Cached 1/σ with output scaling (rendering, D during DGP) matches W/σ."""
    from dgp_engine.models import freeze_sn, unfreeze_sn

    s = forward["single"]
    freeze_sn(prior.G)
    freeze_sn(prior.D)
    try:
        with torch.no_grad():
            x = prior.G(s["z"], prior.G.shared(s["y"]))
            logit, feats = prior.D(s["x"], s["y"])
    finally:
        unfreeze_sn(prior.G)
        unfreeze_sn(prior.D)
    torch.testing.assert_close(x, s["x"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(logit, s["D_logit_with_y"], atol=ATOL, rtol=RTOL)
    for got, want in zip(feats, s["D_features"], strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)

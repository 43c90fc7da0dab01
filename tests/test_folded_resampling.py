"""Folded resampling (models/spectral.py): the fast path's upsampling and pooling
convolutions compute the same function as upsample→conv and conv→pool."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import dgp_engine as dgp
from dgp_engine.models import freeze_sn
from dgp_engine.models.biggan import use_fast_kernels
from dgp_engine.models.spectral import SNConv2d, scale_outputs

# float32 sums in another order: a few ulps of outputs of magnitude ~1
TOL = 2e-5


def _layer(cin: int, cout: int, seed: int, style: str = "power") -> SNConv2d:
    torch.manual_seed(seed)
    conv = SNConv2d(cin, cout, 3, padding=1, style=style)
    with torch.no_grad():
        conv.bias.normal_()
    return conv


def _reference(conv: SNConv2d, x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "upsample":
        return conv(F.interpolate(x, scale_factor=2))
    return F.avg_pool2d(conv(x), 2)


def _folded(conv: SNConv2d, x: torch.Tensor, kind: str) -> torch.Tensor:
    return conv.forward_upsampled(x) if kind == "upsample" else conv.forward_pooled(x)


@pytest.mark.parametrize("kind", ["upsample", "pool"])
@pytest.mark.parametrize("how", ["sn_weight", "scaled_output", "frozen"])
@pytest.mark.parametrize("style", ["power", "fixed"])
def test_folded_convolution_is_the_same_function_with_the_same_gradients(kind, how, style):
    conv = _layer(6, 5, seed=3, style=style).eval()
    if how == "scaled_output":
        scale_outputs(conv, True)
    if how == "frozen":
        conv.freeze_sn()
        conv.weight.requires_grad_(False)
        conv.bias.requires_grad_(False)
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    grads = []
    outs = []
    for fn in (_reference, _folded):
        out = fn(conv, x, kind)
        w = torch.linspace(-1, 1, out.numel()).view_as(out)
        (out * w).sum().backward()
        outs.append(out.detach())
        params = [p.grad.clone() for p in (conv.weight, conv.bias) if p.requires_grad]
        grads.append([x.grad.clone(), *params])
        x.grad = None
        conv.zero_grad(set_to_none=True)
    expected_size = 16 if kind == "upsample" else 4
    assert outs[0].shape == outs[1].shape == (2, 5, expected_size, expected_size)
    assert torch.allclose(outs[0], outs[1], atol=TOL, rtol=0)
    assert len(grads[0]) == (1 if how == "frozen" else 3)
    for a, b in zip(grads[0], grads[1], strict=True):
        assert torch.allclose(a, b, atol=TOL * 10, rtol=1e-4)


def test_a_frozen_layer_makes_its_kernel_once_and_forgets_it_when_unfrozen():
    conv = _layer(4, 4, seed=1).eval()
    conv.freeze_sn()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        first = conv.forward_upsampled(x)
        kernel = conv._folded["upsample"]
        assert torch.equal(conv.forward_upsampled(x), first)
        assert conv._folded["upsample"] is kernel  # cached, not re-made
        conv.unfreeze_sn()
        conv.weight.mul_(2.0)  # σ doubles too: W/σ unchanged …
        conv.bias.add_(1.0)  # … so only the bias shows in the output
        conv.freeze_sn()
        again = conv.forward_upsampled(x)
    assert conv._folded["upsample"] is not kernel
    assert torch.allclose(again, first + 1.0, atol=TOL)
    assert torch.allclose(again, conv(F.interpolate(x, scale_factor=2)), atol=TOL)


def test_folding_refuses_a_layer_it_does_not_describe():
    conv = SNConv2d(4, 4, 1, padding=0)
    with pytest.raises(ValueError, match="3×3"):
        conv.forward_pooled(torch.randn(1, 4, 8, 8))


@pytest.mark.parametrize("family", ["biggan-pytorch", "studiogan"])
def test_fast_kernel_networks_compute_what_the_plain_ones_do(family):
    """G at 128 px folds its 32–128 px upsampling convolutions, D its 128–32 px pooling
    ones and every shortcut, and both reorder their 64 px attention products; outputs
    and D features agree, before and after freezing."""
    extra = {"family": "studiogan", "BN_eps": 1e-4} if family == "studiogan" else {}
    prior = dgp.build_prior(dgp.BigGANConfig(resolution=128, G_ch=8, D_ch=8, **extra), seed=0)
    G, D = prior.G.eval(), prior.D.eval()
    z = torch.randn(2, G.dim_z, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1])
    with torch.no_grad():
        plain = G(z, G.shared(y))
        plain_feats = D(plain)[1]
        for frozen in (False, True):
            if frozen:
                freeze_sn(G)
                freeze_sn(D)
            use_fast_kernels(G, True)
            use_fast_kernels(D, True)
            try:
                image = G(z, G.shared(y))
                feats = D(plain)[1]
            finally:
                use_fast_kernels(G, False)
                use_fast_kernels(D, False)
            assert torch.allclose(image, plain, atol=TOL, rtol=0)
            for a, b in zip(feats, plain_feats, strict=True):
                assert torch.allclose(a, b, atol=TOL * max(1.0, float(b.abs().max())), rtol=0)
    # the folded kernels were really used: the 1×1 shortcut runs at the input size
    seen: list[tuple[int, ...]] = []
    block = G.blocks[-1][0]
    handle = block.conv_sc.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    use_fast_kernels(G, True)
    with torch.no_grad():
        G(z, G.shared(y))
    handle.remove()
    assert seen == [(2, block.conv_sc.out_channels, 64, 64)]

"""A trained spectrally normalised convolution (the fast path's scaled-output form, with
σ's rank-1 gradient added in place) has the gradients of conv2d(x, W/σ(W))."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgp_engine.models import spectral
from dgp_engine.models.spectral import SNConv2d, scale_outputs


@pytest.mark.parametrize("style", ["power", "fixed"])
@pytest.mark.parametrize("kernel", [3, 1])
def test_scaled_output_layer_has_the_gradients_of_the_normalised_weight(style, kernel, monkeypatch):
    torch.manual_seed(0)
    conv = SNConv2d(6, 5, kernel, padding=kernel // 2, style=style).eval()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 6, 7, 7, requires_grad=True)
    w_out = torch.randn(2, 5, 7, 7)

    # reference: the weight divided by σ, σ differentiated by autograd
    ref = F.conv2d(x, conv.sn_weight(), conv.bias, 1, conv.padding)
    gx_ref, gw_ref, gb_ref = torch.autograd.grad((ref * w_out).sum(), [x, conv.weight, conv.bias])
    scale_outputs(conv, True)
    out = _counted(conv, x, monkeypatch)
    gx, gw, gb = torch.autograd.grad((out * w_out).sum(), [x, conv.weight, conv.bias])
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(gx, gx_ref, atol=1e-5)
    assert torch.allclose(gb, gb_ref, atol=1e-5)
    # σ's term matters: without it the weight gradient is off by far more than this
    assert torch.allclose(gw, gw_ref, atol=1e-5, rtol=1e-4)
    no_sigma_term = torch.autograd.grad(
        (F.conv2d(x, conv.weight, None, 1, conv.padding) / conv.sigma().detach() * w_out).sum(),
        conv.weight,
    )[0]
    assert not torch.allclose(no_sigma_term, gw_ref, atol=1e-3)


def _counted(conv: SNConv2d, x: torch.Tensor, monkeypatch) -> torch.Tensor:
    """conv(x), asserting it went through the in-place σ-gradient path."""
    calls = []
    apply = spectral._ScaledConv.apply
    monkeypatch.setattr(
        spectral._ScaledConv, "apply", lambda *args: calls.append(1) or apply(*args)
    )
    out = conv(x)
    monkeypatch.undo()
    assert calls == [1]
    return out


def test_an_input_without_gradient_gets_none_and_the_weight_its_gradient(monkeypatch):
    torch.manual_seed(1)
    conv = SNConv2d(4, 4, 3).eval()
    x = torch.randn(1, 4, 5, 5)
    (gw_ref,) = torch.autograd.grad(
        F.conv2d(x, conv.sn_weight(), conv.bias, 1, 1).square().sum(), [conv.weight]
    )
    scale_outputs(conv, True)
    (gw,) = torch.autograd.grad(_counted(conv, x, monkeypatch).square().sum(), [conv.weight])
    assert torch.allclose(gw, gw_ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kernel", [3, 1])
@pytest.mark.parametrize("trained", [False, True])
def test_small_convolutions_as_matrix_products_match_the_convolution(kernel, trained, monkeypatch):
    """The fast path's ≤ 8×8 px convolutions (a matrix product over the unfolded input,
    the whole batch at once): same outputs and gradients, frozen or trained."""
    torch.manual_seed(2)
    conv = SNConv2d(6, 5, kernel, padding=kernel // 2).eval()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(3, 6, 8, 8, requires_grad=True)
    w_out = torch.randn(3, 5, 8, 8)
    wanted = [x, conv.weight, conv.bias] if trained else [x]
    if not trained:
        conv.weight.requires_grad_(False)
        conv.bias.requires_grad_(False)
    ref = F.conv2d(x, conv.sn_weight(), conv.bias, 1, conv.padding)
    ref_grads = torch.autograd.grad((ref * w_out).sum(), wanted)
    if trained:
        scale_outputs(conv, True)
    else:
        conv.freeze_sn()
    conv.fast_kernels = True
    used = []
    for name in ("_gemm_conv", "_gemm_conv_backward"):
        real = getattr(spectral, name)
        monkeypatch.setattr(
            spectral, name, lambda *a, _real=real, _name=name: used.append(_name) or _real(*a)
        )
    out = conv(x)
    grads = torch.autograd.grad((out * w_out).sum(), wanted)
    assert used == ["_gemm_conv", "_gemm_conv_backward"]
    assert torch.allclose(out, ref, atol=1e-5)
    for a, b in zip(grads, ref_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_larger_convolutions_stay_convolutions():
    conv = SNConv2d(4, 4, 3).eval()
    conv.freeze_sn()
    conv.fast_kernels = True
    assert conv._use_gemm(torch.zeros(1, 4, 8, 8))
    assert not conv._use_gemm(torch.zeros(1, 4, 16, 16))
    conv.fast_kernels = False
    assert not conv._use_gemm(torch.zeros(1, 4, 8, 8))

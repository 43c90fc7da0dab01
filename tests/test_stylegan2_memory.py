"""What keeps a 1024 px StyleGAN2 DGP iteration within ~4 GB (bench/stylegan2_speed.py):
the fused bias/activation/clamp keeps only its output for the backward pass, the largest
blocks of G and D recompute their forward there, and freed heap pages go back to the
system every few iterations.  None of it may change a value or a gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dgp_engine.models import stylegan2 as sg2
from dgp_engine.system import runtime


def plain_bias_act(x, bias, act, gain, clamp):
    """What autograd keeps when the operations run one by one."""
    x = x + bias.reshape(1, -1, 1, 1)
    if act:
        x = F.leaky_relu(x, sg2.LRELU_SLOPE) * (sg2.LRELU_GAIN * gain)
    else:
        x = x * gain
    return x if clamp is None else x.clamp(-clamp * gain, clamp * gain)


def test_fused_bias_act_has_the_values_and_gradients_of_the_plain_operations(monkeypatch):
    monkeypatch.setattr(sg2, "FUSED_FROM", 0)  # these small maps too
    torch.manual_seed(0)
    for act, gain, clamp in ((True, 1.0, 0.8), (True, 0.7, None), (False, 1.0, 0.5)):
        x = (torch.randn(2, 5, 6, 6) * 2).requires_grad_(True)
        b = torch.randn(5).requires_grad_(True)
        up = torch.randn(2, 5, 6, 6)
        got = sg2._bias_act(x, b, act, gain, clamp)
        gx, gb = torch.autograd.grad((got * up).sum(), (x, b))
        x2, b2 = x.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
        want = plain_bias_act(x2, b2, act, gain, clamp)
        wx, wb = torch.autograd.grad((want * up).sum(), (x2, b2))
        assert torch.equal(got, want)
        if clamp is not None:  # the clamp is really hit, on both sides
            limit = clamp * gain
            assert (want == limit).any() and (want == -limit).any()
        torch.testing.assert_close(gx, wx, rtol=0, atol=1e-6)
        torch.testing.assert_close(gb, wb, rtol=1e-5, atol=1e-5)


def test_recomputed_blocks_give_the_same_loss_and_gradients():
    torch.manual_seed(1)
    cfg = sg2.StyleGAN2Config(
        resolution=32, z_dim=8, w_dim=8, channel_base=64, channel_max=16, conv_clamp=1.0
    )
    G, D = sg2.build(cfg)
    for p in D.parameters():
        p.requires_grad_(False)
    ws0 = torch.randn(1, cfg.num_ws, cfg.w_dim)

    def grads(recompute_from):
        G.zero_grad(set_to_none=True)
        ws = ws0.clone().requires_grad_(True)
        x = G.synthesis(ws, "const", recompute_from=recompute_from)
        _, feats = D(x, None, independent=True, recompute_from=recompute_from)
        loss = sum(f.abs().mean() for f in feats)
        loss.backward()
        return (
            loss.detach(),
            ws.grad,
            {n: p.grad.clone() for n, p in G.synthesis.named_parameters()},
        )

    loss, gws, gparams = grads(None)
    loss_r, gws_r, gparams_r = grads(16)  # the 16 and 32 px blocks recompute
    assert torch.equal(loss, loss_r)
    torch.testing.assert_close(gws_r, gws, rtol=1e-6, atol=1e-7)
    assert gparams_r.keys() == gparams.keys()
    for name in gparams:
        torch.testing.assert_close(gparams_r[name], gparams[name], rtol=1e-6, atol=1e-7)


class FakeLibc:
    def __init__(self):
        self.calls = []

    def malloc_trim(self, pad):
        self.calls.append(pad)
        return 1


def test_free_heap_pages_are_given_back_only_when_the_allocator_keeps_them(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(runtime, "_libc", libc)  # tuned: freed memory stays in the heap
    assert runtime.release_free_memory() and libc.calls == [0]
    monkeypatch.setattr(runtime, "_libc", None)  # not tuned: glibc trims by itself
    assert not runtime.release_free_memory() and libc.calls == [0]

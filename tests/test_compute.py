"""How a reconstruction computes (dgp_engine.method.compute): the in-backward Adam against
torch's Adam, the precision choice, and a bfloat16 run on a tiny seeded model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dgp_engine import InputError, Preset, reconstruct, render
from dgp_engine.errors import DeviceError
from dgp_engine.method.compute import InBackwardAdam, resolve_precision

from .helpers import smooth_target, tiny_prior

BETA2, EPS = 0.999, 1e-8
# per step, one learning rate per group; group 2 stays at 0 (a frozen group)
LRS = [
    (1e-2, 3e-3, 0.0),
    (5e-3, 1e-2, 0.0),
    (2e-2, 1e-3, 0.0),
    (1e-3, 4e-3, 0.0),
    (7e-3, 7e-3, 0.0),
]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.lin1 = nn.Linear(4 * 5 * 5, 8)
        self.lin2 = nn.Linear(8, 3)

    def groups(self) -> list[list[nn.Parameter]]:
        return [
            [self.conv.weight, self.conv.bias],
            [self.lin1.weight, self.lin1.bias],
            [self.lin2.weight, self.lin2.bias],
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(torch.tanh(self.lin1(torch.tanh(self.conv(x)).flatten(1))))


def make_net() -> Net:
    torch.manual_seed(0)
    net = Net()
    net.lin1.bias.requires_grad_(False)  # not trained: no gradient, never stepped
    return net


def loss_of(net: Net, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + step)  # a different batch each step
    x = torch.randn(3, 2, 5, 5, generator=g)
    return (net(x) - torch.randn(3, 3, generator=g)).pow(2).mean()


def torch_adam_run(net: Net) -> None:
    opt = torch.optim.Adam(
        [{"params": ps} for ps in net.groups()], lr=0.0, betas=(0.0, BETA2), eps=EPS, weight_decay=0
    )
    for step, lrs in enumerate(LRS):
        for pg, lr in zip(opt.param_groups, lrs, strict=True):
            pg["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss_of(net, step).backward()
        opt.step()


def in_backward_run(net: Net, fused: bool = True) -> InBackwardAdam:
    opt = InBackwardAdam(net.groups(), beta2=BETA2, eps=EPS)
    if not fused:
        opt._fused = False  # the formula used where torch has no fused kernel
    for step, lrs in enumerate(LRS):
        opt.set_lrs(lrs)
        loss_of(net, step).backward()
        assert all(p.grad is None for p in net.parameters()), "gradients are freed"
    return opt


@pytest.mark.parametrize("fused", [True, False])
def test_in_backward_adam_matches_torch_adam(fused):
    ref, ours = make_net(), make_net()
    before = copy.deepcopy(ours.state_dict())
    torch_adam_run(ref)
    opt = in_backward_run(ours, fused)
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
    # the untrained bias and the lr-0 group are untouched
    assert torch.equal(ours.lin1.bias, before["lin1.bias"])
    assert torch.equal(ours.lin2.weight, before["lin2.weight"])
    assert not torch.equal(ours.conv.weight, before["conv.weight"])
    # only a second moment, one float32 tensor per stepped parameter (no first moment,
    # nothing for the untrained bias or the lr-0 group)
    stepped = [ours.conv.weight, ours.conv.bias, ours.lin1.weight]
    assert opt.state_bytes() == sum(p.numel() * 4 for p in stepped)
    opt.close()
    assert opt.state_bytes() == 0


def test_close_removes_the_hooks():
    net = make_net()
    opt = in_backward_run(net)
    opt.close()
    after = copy.deepcopy(net.state_dict())
    opt.set_lrs((1e-2, 1e-2, 1e-2))
    loss_of(net, 0).backward()
    assert net.conv.weight.grad is not None and net.lin2.weight.grad is not None
    for name, v in net.state_dict().items():
        assert torch.equal(v, after[name]), name


def test_frozen_flag_is_kept_and_a_later_unfreeze_steps():
    """The fast path turns requires_grad on per stage: a parameter hooked while frozen
    steps once it is unfrozen."""
    net = make_net()
    opt = InBackwardAdam(net.groups())
    assert not net.lin1.bias.requires_grad
    net.lin1.bias.requires_grad_(True)
    before = net.lin1.bias.detach().clone()
    opt.set_lrs((0.0, 1e-2, 0.0))
    loss_of(net, 0).backward()
    assert net.lin1.bias.grad is None and not torch.equal(net.lin1.bias, before)
    opt.close()


# --- precision ----------------------------------------------------------------
CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


def test_resolve_precision():
    assert resolve_precision(None, CPU, exact=False) == "fp32"
    assert resolve_precision("auto", CPU, exact=False) == "fp32"
    assert resolve_precision("auto", CUDA, exact=False) == "tf32"  # no GPU needed
    assert resolve_precision(" BF16 ", CPU, exact=False) == "bf16"
    assert resolve_precision("tf32", CUDA, exact=False) == "tf32"
    assert resolve_precision("auto", CUDA, exact=True) == "fp32"
    assert resolve_precision("fp32", MPS, exact=False) == "fp32"
    with pytest.raises(DeviceError, match="fp32"):
        resolve_precision("tf32", CPU, exact=False)
    with pytest.raises(DeviceError, match="MPS"):
        resolve_precision("bf16", MPS, exact=False)
    with pytest.raises(InputError, match="exact"):
        resolve_precision("bf16", CPU, exact=True)
    with pytest.raises(InputError, match="auto, fp32, tf32, bf16"):
        resolve_precision("fp16", CPU, exact=False)


# --- a bfloat16 run -------------------------------------------------------------
def small_preset() -> Preset:
    # G learning rates of the published schedules' order (5e-5): Adam with β1 = 0 moves a
    # parameter by about lr whatever its gradient's size, so larger rates on this tiny G
    # mostly measure how bfloat16 noise flips the sign of near-zero gradients
    return Preset.from_dict(
        {
            "iterations": [4, 4],
            "ft_num": [2, "all"],
            "G_lrs": [5e-5, 5e-5],
            "z_lrs": [1e-2, 1e-2],
            "w_D_loss": [1, 1],
            "w_mse": [1, 1],
            "ftr_num": [8, 8],
            "select_num": 4,
        }
    )


def test_bf16_fast_run_is_close_to_fp32():
    prior = tiny_prior()
    target = smooth_target(32, seed=2)
    out, final = {}, {}
    for precision in ("fp32", "bf16"):
        run = reconstruct(
            prior,
            target,
            "colorize",
            class_id=1,
            preset=small_preset(),
            seed=3,
            precision=precision,
        )
        assert run.precision == precision
        steps = [r for r in run if r.phase == "optimize" and not r.done]
        assert len(steps) == 8
        assert all(torch.isfinite(torch.tensor(list(r.losses.values()))).all() for r in steps)
        final[precision] = steps[-1].losses["total"]
        out[precision] = render(prior, run.state)
    assert out["bf16"].dtype == torch.float32
    # Measured here (images in [-1, 1]): max |Δ| 0.003, mean |Δ| 0.0007 for this seed; over
    # 12 prior/run seeds up to 0.07 / 0.025 (bfloat16's 8-bit mantissa flips the sign of
    # some near-zero gradients, and Adam's first steps move those weights by ±lr).  Other
    # CPUs' bfloat16 kernels round differently, so the bounds cover that worst case with
    # margin; renders of an unrelated z differ by about 0.1 on average.
    d = (out["bf16"] - out["fp32"]).abs()
    assert float(d.max()) < 0.15
    assert float(d.mean()) < 0.04
    assert final["bf16"] == pytest.approx(final["fp32"], rel=0.1)


def test_exact_mode_refuses_bf16():
    with pytest.raises(InputError, match="exact"):
        reconstruct(
            tiny_prior(),
            smooth_target(32),
            "colorize",
            class_id=1,
            preset=small_preset(),
            exact=True,
            precision="bf16",
        )


def test_a_setting_is_checked_without_a_device():
    """Batch settings are checked before any worker (and its device) exists: the name and
    the exact mode are, what a device can compute in is the worker's to refuse."""
    from dgp_engine.method.compute import check_precision

    assert check_precision(None, exact=False) == "auto"
    assert check_precision(" TF32 ", exact=False) == "tf32"  # fine until a CPU worker runs it
    assert check_precision("fp32", exact=True) == "fp32"
    with pytest.raises(InputError, match="exact"):
        check_precision("bf16", exact=True)
    with pytest.raises(InputError, match="auto, fp32, tf32, bf16"):
        check_precision("fp16", exact=False)

"""The bfloat16 fast path on the CPU (models/spectral.py, method/compute.py): its layers
against float32, one step's gradients, and precision "auto" with a faked CPU."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from dgp_engine import BigGANConfig, build_prior
from dgp_engine.method import compute
from dgp_engine.method.compute import resolve_precision
from dgp_engine.method.copies import frozen_view, private_generator
from dgp_engine.method.reconstruct import FeatureDistance, _trainable
from dgp_engine.models import freeze_sn, unfreeze_sn
from dgp_engine.models.biggan import use_fast_kernels
from dgp_engine.models.spectral import SNConv2d, scale_outputs

from .helpers import smooth_target

CPU = torch.device("cpu")
BF16 = torch.autocast("cpu", dtype=torch.bfloat16)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


# --- layers -----------------------------------------------------------------------------


def test_sigma_stays_float32_under_bf16_autocast():
    torch.manual_seed(0)
    conv = SNConv2d(16, 32, 3).eval()
    plain = conv.sigma()
    with BF16:
        inside = conv.sigma()
        a, b, s = conv.sigma_vectors()
    assert inside.dtype == s.dtype == a.dtype == torch.float32
    assert torch.equal(inside, plain)  # not merely close: the same float32 arithmetic


@pytest.mark.parametrize("size", [8, 32])  # a matrix-product and a oneDNN convolution
def test_trained_bf16_conv_is_close_to_fp32_with_float32_weight_gradient(size):
    torch.manual_seed(1)
    conv = SNConv2d(24, 40, 3).eval()
    conv.fast_kernels = True
    scale_outputs(conv, True)
    x0 = torch.randn(1, 24, size, size)
    out, grads = {}, {}
    for precision in ("fp32", "bf16"):
        x = x0.clone().requires_grad_(True)
        conv.weight.grad = None
        ctx = BF16 if precision == "bf16" else torch.autocast("cpu", enabled=False)
        with ctx:
            y = conv(x)
        (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        out[precision] = y
        grads[precision] = (x.grad, conv.weight.grad, conv.bias.grad)
    assert out["bf16"].dtype == torch.bfloat16
    gx, gw, gb = grads["bf16"]
    assert gw.dtype == gb.dtype == torch.float32  # the masters' gradients, for Adam
    # bfloat16 keeps 8 significant bits (relative rounding ≤ 2⁻⁹ ≈ 0.2 % per value) and
    # the products accumulate in float32, so the output and gradients carry ~0.3–0.5 %
    # relative error (measured 0.3–0.4 %); 2 % leaves room for other CPUs' kernels.
    assert rel_err(out["bf16"], out["fp32"]) < 0.02
    for got, want in zip(grads["bf16"], grads["fp32"], strict=True):
        assert rel_err(got, want) < 0.02


def test_a_frozen_layer_converts_its_weight_once():
    torch.manual_seed(2)
    conv = SNConv2d(8, 8, 3).eval()
    conv.fast_kernels = True
    conv.freeze_sn()
    x = torch.randn(1, 8, 32, 32)
    with torch.no_grad(), BF16:
        conv(x)
        copies = dict(conv._folded)
        y = conv(x)
    assert len(copies) == 1
    (made,) = copies.values()
    assert made.dtype == torch.bfloat16
    assert all(conv._folded[k] is v for k, v in copies.items())  # reused, not made again
    assert rel_err(y, conv(x)) < 0.02
    conv.unfreeze_sn()
    assert conv._folded == {}  # a changed weight is never read from the copy


# --- one step of the fast path ----------------------------------------------------------

SMALL = BigGANConfig(
    resolution=64, G_ch=16, D_ch=16, dim_z=40, shared_dim=16, n_classes=5, G_attn="32", D_attn="32"
)


def one_step(prior, precision: str, trained_groups: int = 3):
    """The fast path's loss and gradients for one step (as _prepare_fast_stage sets the
    networks up), without the optimiser, so the gradients can be compared."""
    G, D = private_generator(prior.G), frozen_view(prior.D)
    use_fast_kernels(G, True)
    use_fast_kernels(D, True)
    freeze_sn(D)
    freeze_sn(G)
    params = []
    for g in range(trained_groups):
        for m in G.group_modules(g):
            unfreeze_sn(m)
            scale_outputs(m, True)
            for p in m.parameters():
                if _trainable(G, p):
                    p.requires_grad_(True)
                    params.append(p)
    target = smooth_target(64, seed=4).mean(1, keepdim=True).expand(1, 3, 64, 64)
    z = torch.randn(1, G.dim_z, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    y = torch.tensor([1])
    ctx = compute.autocast(precision, CPU)
    with ctx:
        feat = FeatureDistance(D, target)
        x = G(z, G.shared(y)).float()
        x_map = x.mean(1, keepdim=True).expand_as(x)
        ftr = feat(x_map, 8)
    loss = ftr + F.mse_loss(x_map, target)
    loss.backward()
    return x.detach(), loss.detach(), [z.grad] + [p.grad for p in params]


def test_bf16_step_is_close_to_fp32_outputs_and_gradients():
    prior = build_prior(SMALL, seed=0, name="small")
    x32, loss32, g32 = one_step(prior, "fp32")
    x16, loss16, g16 = one_step(prior, "bf16")
    assert x16.dtype == torch.float32
    # Measured over 3 prior seeds: output max |Δ| 0.014–0.019 (images in [-1, 1]), loss
    # ≤ 0.75 % apart, each gradient ≤ 3.2 % relative error (z's ~1.3 %: it passes through
    # every layer's bfloat16 rounding), all gradients together 1.1–1.3 %.  The bounds
    # leave ~3× margin; a wrong scale or a dropped σ term gives errors ≥ 30 %.
    assert float((x16 - x32).abs().max()) < 0.06
    assert float(loss16) == pytest.approx(float(loss32), rel=0.03)
    assert len(g16) == len(g32) > 10
    for a, b in zip(g16, g32, strict=True):
        assert a.dtype == torch.float32
        assert rel_err(a, b) < 0.1
    total = torch.cat([g.flatten() for g in g32])
    assert rel_err(torch.cat([g.flatten() for g in g16]), total) < 0.04


def test_bf16_activations_stay_bf16_between_layers():
    """A float32 bias or BN gain must not turn the activations back into float32 (each
    layer would then convert them again)."""
    prior = build_prior(SMALL, seed=0, name="small")
    G = private_generator(prior.G)
    use_fast_kernels(G, True)
    freeze_sn(G)
    seen: list[torch.dtype] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        for m in G.modules()
        if isinstance(m, SNConv2d)
    ]
    with torch.no_grad(), BF16:
        G(torch.zeros(1, G.dim_z), G.shared(torch.tensor([1])))
    for h in hooks:
        h.remove()
    assert seen and all(d == torch.bfloat16 for d in seen)


# --- precision "auto" ---------------------------------------------------------------


@pytest.fixture
def fake_cpu(monkeypatch, tmp_path):
    """A CPU whose bfloat16 support and measured speed-up the test sets; counts
    measurements."""
    monkeypatch.delenv(compute.AUTO_BF16_ENV, raising=False)
    state = {"native": "AMX", "speedup": 2.0, "measured": 0}

    def measure() -> float:
        state["measured"] += 1
        return state["speedup"]

    monkeypatch.setattr(compute, "_probe_cpu_bf16", lambda: state["native"])
    monkeypatch.setattr(compute, "_onednn_bf16", lambda: True)
    monkeypatch.setattr(compute, "measure_bf16_speedup", measure)
    monkeypatch.setattr(compute, "cpu_model", lambda: "Test CPU 9000")
    compute.reset_auto_precision()
    yield state
    compute.reset_auto_precision()


def test_auto_picks_bf16_where_native_and_measured_faster(fake_cpu, caplog):
    caplog.set_level(logging.INFO, logger="dgp_engine.method.compute")
    assert resolve_precision("auto", CPU, exact=False) == "bf16"
    assert resolve_precision(None, CPU, exact=False) == "bf16"
    assert resolve_precision("auto", CPU, exact=True) == "fp32"  # exact: always float32
    assert "AMX" in compute.auto_cpu_precision().reason
    said = [r.getMessage() for r in caplog.records if "Precision auto" in r.getMessage()]
    assert len(said) == 1 and "bfloat16" in said[0]  # said once
    assert fake_cpu["measured"] == 1


def test_auto_falls_back_when_measured_slower(fake_cpu, caplog):
    caplog.set_level(logging.INFO, logger="dgp_engine.method.compute")
    fake_cpu["speedup"] = 1.05
    assert resolve_precision("auto", CPU, exact=False) == "fp32"
    assert resolve_precision("auto", CPU, exact=False) == "fp32"
    said = [r.getMessage() for r in caplog.records if "Precision auto" in r.getMessage()]
    assert said == [
        "Precision auto: float32: this CPU has AMX, but bfloat16 measured only 1.05× as "
        "fast as float32 here."
    ]


def test_auto_keeps_a_small_generator_in_fp32(fake_cpu, caplog):
    """The bundled 64 px ch16 prior (2.3 M weights) ran slower in bfloat16: "auto" keeps
    such a model in float32 even where bfloat16 measured faster; a large one gets it."""
    caplog.set_level(logging.INFO, logger="dgp_engine.method.compute")
    small, large = compute.BF16_MIN_WEIGHTS - 1, compute.BF16_MIN_WEIGHTS
    assert resolve_precision("auto", CPU, exact=False, weights=small) == "fp32"
    assert resolve_precision("auto", CPU, exact=False, weights=large) == "bf16"
    assert resolve_precision("bf16", CPU, exact=False, weights=small) == "bf16"  # asked
    said = [r.getMessage() for r in caplog.records if "Precision auto" in r.getMessage()]
    assert any("float32 for this model" in m for m in said)


def test_a_run_and_a_request_pass_the_generator_size(fake_cpu, tmp_path):
    """The loop and a resolved request decide "auto" with the model at hand: the tiny
    test prior stays in float32 where a large model would get bfloat16."""
    from dgp_engine.method.taskspec import task_spec
    from dgp_engine.tasks.request import RestoreRequest, resolve_request, run_precision

    from .task_helpers import tiny_model_folder

    assert run_precision("auto", CPU, False) == ("auto", None)
    assert fake_cpu["measured"] == 0  # nothing measured before the model is known
    folder = tiny_model_folder(tmp_path / "tiny")
    ready = resolve_request(
        RestoreRequest(task_spec("colorize"), model=str(folder), device="cpu", threads=1)
    )
    assert compute.generator_weights(ready.prior.G) < compute.BF16_MIN_WEIGHTS
    assert ready.compute_precision == "fp32"
    assert resolve_precision("auto", CPU, exact=False) == "bf16"  # no size given


@pytest.mark.parametrize(
    ("native", "onednn", "why"),
    [(None, True, "no native bfloat16"), ("AVX512-BF16", False, "cannot compute bfloat16")],
)
def test_auto_is_fp32_without_native_bf16_and_never_measures(
    fake_cpu, monkeypatch, native, onednn, why
):
    fake_cpu["native"] = native
    monkeypatch.setattr(compute, "_onednn_bf16", lambda: onednn)
    assert resolve_precision("auto", CPU, exact=False) == "fp32"
    assert why in compute.auto_cpu_precision().reason
    assert fake_cpu["measured"] == 0


def test_explicit_bf16_without_native_support_warns_once(fake_cpu, caplog):
    fake_cpu["native"] = None
    for _ in range(3):
        assert resolve_precision("bf16", CPU, exact=False) == "bf16"
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert "no native bfloat16" in warned[0].getMessage()
    assert "slower than float32" in warned[0].getMessage()
    caplog.clear()
    fake_cpu["native"] = "AMX"
    compute.reset_auto_precision()
    resolve_precision("bf16", CPU, exact=False)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_measurement_is_cached_per_cpu_and_torch_version(fake_cpu, monkeypatch):
    assert resolve_precision("auto", CPU, exact=False) == "bf16"
    assert compute._measure_cache().is_file()
    compute.reset_auto_precision()  # a new process: reads the cache
    fake_cpu["speedup"] = 0.5  # a new measurement would choose fp32
    assert resolve_precision("auto", CPU, exact=False) == "bf16"
    assert fake_cpu["measured"] == 1
    monkeypatch.setattr(torch, "__version__", "99.0.0+cpu")  # torch upgraded: measure again
    compute.reset_auto_precision()
    assert resolve_precision("auto", CPU, exact=False) == "fp32"
    assert fake_cpu["measured"] == 2
    monkeypatch.setattr(compute, "cpu_model", lambda: "Another CPU")  # another CPU model
    compute.reset_auto_precision()
    fake_cpu["speedup"] = 1.9
    assert resolve_precision("auto", CPU, exact=False) == "bf16"
    assert fake_cpu["measured"] == 3


def test_a_broken_cache_file_is_measured_again(fake_cpu):
    path = compute._measure_cache()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert resolve_precision("auto", CPU, exact=False) == "bf16"
    assert fake_cpu["measured"] == 1


def test_the_settings_sentence_never_measures(fake_cpu):
    first = compute.describe_auto_precision(CPU)
    assert "first run measures" in first and fake_cpu["measured"] == 0
    resolve_precision("auto", CPU, exact=False)
    compute.reset_auto_precision()
    assert compute.describe_auto_precision(CPU).startswith("auto: bfloat16, as this CPU has AMX")
    assert "Models under 5 M weights (the bundled one) stay in float32" in (
        compute.describe_auto_precision(CPU)
    )
    assert fake_cpu["measured"] == 1
    assert compute.describe_auto_precision(torch.device("cuda")) == "auto: TF32 on this NVIDIA GPU."


def test_the_switch_keeps_auto_in_fp32(fake_cpu, monkeypatch):
    monkeypatch.setenv(compute.AUTO_BF16_ENV, "off")
    assert resolve_precision("auto", CPU, exact=False) == "fp32"
    assert fake_cpu["measured"] == 0


def test_the_real_measurement_returns_a_ratio():
    compute.reset_auto_precision()
    ratio = compute.measure_bf16_speedup(repeats=1)
    assert 0.01 < ratio < 100

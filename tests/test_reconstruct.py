"""Behaviour of the DGP loop on a tiny seeded model."""

from __future__ import annotations

import threading

import pytest
import torch

from dgp_engine import (
    InputError,
    Preset,
    PresetError,
    ReconstructionState,
    StateError,
    reconstruct,
    render,
)
from dgp_engine.method.degradations import Mask

from .helpers import smooth_target, tiny_prior


def preset(**kw) -> Preset:
    base = {
        "iterations": [3, 3],
        "ft_num": [1, "all"],
        "G_lrs": [1e-3, 1e-3],
        "z_lrs": [1e-2, 1e-2],
        "w_D_loss": [1, 1],
        "w_mse": [1, 1],
        "ftr_num": [8, 8],
        "select_num": 4,
    }
    return Preset.from_dict({**base, **kw})


@pytest.fixture
def prior():
    return tiny_prior()


def test_reports_then_state_and_base_weights_restored(prior):
    before = {k: v.clone() for k, v in prior.G.state_dict().items()}
    run = reconstruct(prior, smooth_target(32), "reconstruct", class_id=2, preset=preset())
    reports = list(run)
    select = [r for r in reports if r.phase == "select"]
    steps = [r for r in reports if r.phase == "optimize" and not r.done]
    assert [r.iteration for r in select] == [1, 2, 3, 4]
    assert [(r.stage, r.iteration, r.step) for r in steps] == [
        (0, 1, 1),
        (0, 2, 2),
        (0, 3, 3),
        (1, 1, 4),
        (1, 2, 5),
        (1, 3, 6),
    ]
    assert all(r.total == 6 and r.image.shape == (1, 3, 32, 32) for r in steps)
    assert reports[-1].done and reports[-1].state is run.state
    st = run.state
    assert st.class_id == 2 and not st.cancelled and st.progress["step"] == 6
    assert st.weight_delta, "the generator was fine-tuned"
    for k, v in prior.G.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} not restored"
    # stage 0 trains only group 0 (the input linear layer) in fast mode
    assert any(k.startswith("linear.") for k in st.weight_delta)


def test_fine_tuning_lowers_the_loss(prior):
    p = preset(iterations=[15, 15], select_num=2)
    run = reconstruct(prior, smooth_target(32), "reconstruct", class_id=0, preset=p)
    steps = [r for r in run if r.phase == "optimize" and not r.done]
    assert steps[-1].losses["mse"] < 0.5 * steps[0].losses["mse"]


@pytest.mark.parametrize("exact", [False, True])
def test_state_renders_what_the_next_iteration_would_see(prior, exact, tmp_path):
    """render(state after N steps) == G output at step N+1 of the same seeded run."""
    target = smooth_target(32, seed=3)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:20, 10:24] = 0
    kw = dict(class_id=1, seed=5, exact=exact)
    p = preset(iterations=[2, 3], use_in=[False, True], update_embed=True)
    run_a = reconstruct(prior, target, Mask(mask), preset=p, **kw)
    state = run_a.run_to_end()
    p_longer = p.replace(iterations=[2, 4])
    run_b = reconstruct(prior, target, Mask(mask), preset=p_longer, **kw)
    images = [r.image for r in run_b if r.phase == "optimize" and not r.done]
    torch.testing.assert_close(render(prior, state), images[-1], atol=1e-5, rtol=0)
    # ... and a saved/loaded state renders the same
    path = state.save(tmp_path / "r.dgp")
    loaded = ReconstructionState.load(path)
    assert loaded.class_id == 1 and loaded.use_in and loaded.preset == p.to_dict()
    torch.testing.assert_close(render(prior, loaded), images[-1], atol=1e-5, rtol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_cancel_mid_run_leaves_usable_state(prior):
    cancel = threading.Event()
    run = reconstruct(
        prior,
        smooth_target(32),
        "colorize",
        class_id=0,
        preset=preset(iterations=[50, 50]),
        cancel=cancel,
    )
    seen = 0
    last = None
    for r in run:
        last = r
        if r.phase == "optimize" and not r.done:
            seen += 1
            if seen == 4:
                cancel.set()
    assert last.done and last.cancelled
    assert run.state.cancelled and run.state.progress["step"] == 4
    assert render(prior, run.state).shape == (1, 3, 32, 32)


def test_cancel_during_z_selection(prior):
    cancel = threading.Event()
    run = reconstruct(
        prior,
        smooth_target(32),
        "reconstruct",
        class_id=0,
        preset=preset(select_num=100),
        cancel=cancel,
    )
    reports = []
    for r in run:
        reports.append(r)
        if r.phase == "select" and r.iteration == 3:
            cancel.set()
    assert max(r.iteration for r in reports if r.phase == "select") == 3
    assert run.state.cancelled and run.state.progress["step"] == 0


def test_z_selection_keeps_the_best_candidate_and_can_pick_the_class(prior):
    run = reconstruct(
        prior,
        smooth_target(32),
        "reconstruct",
        class_id=None,
        preset=preset(select_num=6, iterations=[1, 0]),
        seed=11,
    )
    losses = [r.losses["select_loss"] for r in run if r.phase == "select"]
    assert losses == sorted(losses, reverse=True)  # best so far, never worse
    assert 0 <= run.state.class_id < 5
    # the same seed chooses the same latent
    run2 = reconstruct(
        prior,
        smooth_target(32),
        "reconstruct",
        class_id=None,
        preset=preset(select_num=6, iterations=[1, 0]),
        seed=11,
    )
    run2.run_to_end()
    assert run2.state.class_id == run.state.class_id


def test_stop_mse_ends_stage_early(prior):
    p = preset(iterations=[20, 20], stop_mse=10.0)  # any MSE is below 10
    run = reconstruct(prior, smooth_target(32), "defend", class_id=0, preset=p)
    steps = [r for r in run if r.phase == "optimize" and not r.done]
    assert [r.stage for r in steps] == [0, 1]


def test_z_only_keeps_generator(prior):
    run = reconstruct(
        prior, smooth_target(32), "reconstruct", class_id=0, preset=preset(update_G=False)
    )
    assert run.run_to_end().weight_delta == {}


@pytest.mark.parametrize(
    "target,match",
    [
        (torch.full((1, 3, 32, 32), float("nan")), "non-finite"),
        (torch.zeros(1, 3, 16, 16), "resize or crop"),
        (torch.zeros(1, 1, 32, 32), r"\[1, 3, H, W\]"),
        (torch.full((1, 3, 32, 32), 3.0), r"\[-1, 1\]"),
    ],
)
def test_bad_targets(prior, target, match):
    with pytest.raises(InputError, match=match):
        reconstruct(prior, target, "reconstruct", class_id=0, preset=preset())


def test_bad_class_task_preset_and_latent(prior):
    t = smooth_target(32)
    with pytest.raises(InputError, match="out of range"):
        reconstruct(prior, t, "reconstruct", class_id=5, preset=preset())
    with pytest.raises(InputError, match="Unknown task"):
        reconstruct(prior, t, "sharpen", class_id=0, preset=preset())
    with pytest.raises(PresetError):
        reconstruct(prior, t, "reconstruct", class_id=0, preset={"iterations": [1]})
    with pytest.raises(InputError, match="latent"):
        reconstruct(prior, t, "reconstruct", class_id=0, preset=preset(), z_init=torch.zeros(3))
    with pytest.raises(InputError, match="no hole"):
        Mask(torch.ones(1, 1, 32, 32))


@pytest.mark.parametrize("seed", [1 << 64, -(1 << 63) - 1, 10**30, 1.5, True, "7"])
def test_a_seed_torch_cannot_take_is_refused_in_a_sentence(prior, seed):
    # a 30-digit --seed ended in torch's "Overflow when unpacking long long" traceback
    with pytest.raises(InputError, match="seed .* is out of range"):
        reconstruct(prior, smooth_target(32), "reconstruct", class_id=0, preset=preset(), seed=seed)


@pytest.mark.parametrize("seed", [0, -1, (1 << 64) - 1, -(1 << 63)])
def test_every_64_bit_seed_runs(prior, seed):
    run = reconstruct(
        prior,
        smooth_target(32),
        "reconstruct",
        class_id=0,
        preset=preset(iterations=[1, 0], select_num=1),
        seed=seed,
    )
    assert run.run_to_end().seed == seed


def test_state_errors(prior, tmp_path):
    bad = tmp_path / "x.dgp"
    bad.write_bytes(b"not a state")
    with pytest.raises(StateError, match="not a readable"):
        ReconstructionState.load(bad)
    with pytest.raises(StateError, match="does not exist"):
        ReconstructionState.load(tmp_path / "missing.dgp")
    state = reconstruct(
        prior, smooth_target(32), "reconstruct", class_id=0, preset=preset()
    ).run_to_end()
    wider = type(prior.config)(**{**prior.config.to_dict(), "G_ch": 16})
    other = type(prior)(type(prior.G)(wider), tiny_prior().D, wider)
    with pytest.raises(StateError, match="does not fit"):
        render(other, state)


def test_z_selection_without_a_finite_loss_says_so(prior):
    """Every candidate scoring NaN (weights with NaN) is a clear InputError, not a crash."""
    with torch.no_grad():
        prior.G.linear.weight.fill_(float("nan"))
    run = reconstruct(prior, smooth_target(32), "reconstruct", class_id=1, preset=preset())
    with pytest.raises(InputError, match="No starting point gave a finite loss"):
        list(run)


@pytest.mark.parametrize("class_id", [2, None])
def test_z_selection_picks_the_same_start_whatever_the_batch_size(class_id):
    """A seed names one set of candidates: the CPU's batch of 1 and a GPU's batch of 16
    pick the same z and class (dim_z 120, as BigGAN-128's, not a multiple of torch's
    16-wide normal sampler)."""
    from dgp_engine import BigGANConfig, build_prior

    prior = build_prior(
        BigGANConfig(
            resolution=32,
            G_ch=8,
            D_ch=8,
            dim_z=120,
            shared_dim=8,
            n_classes=5,
            G_attn="0",
            D_attn="0",
        ),
        seed=0,
    )
    picks = []
    for batch in (1, 3, 16):
        run = reconstruct(
            prior,
            smooth_target(32),
            "reconstruct",
            class_id=class_id,
            preset=preset(select_num=7, iterations=[1, 0]),
            select_batch=batch,
        )
        first = next(r for r in run if r.phase == "optimize")  # G(z₀) of the chosen start
        state = run.run_to_end()
        picks.append((first.image, state.class_id))
    for image, y in picks[1:]:
        assert torch.equal(image, picks[0][0]) and y == picks[0][1]

"""A reconstruction never modifies the prior (issue 16): it trains its own copy of G
and reads D through a view, so runs may share one prior, even from several threads."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from dgp_engine import Preset, reconstruct, render
from dgp_engine.method.copies import frozen_view, private_generator
from dgp_engine.method.degradations import Degradation, Mask
from dgp_engine.models import freeze_sn

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
        "use_in": [False, True],
        "update_embed": True,
        "select_num": 3,
    }
    return Preset.from_dict({**base, **kw})


def fingerprint(net: torch.nn.Module) -> dict:
    """Everything a run could leave behind on a network: the bytes of every parameter
    and buffer, gradients, gradient flags, train/eval modes and the per-layer caches
    and switches (spectral-norm 1/σ, output scaling, instance-norm initialisation)."""
    out: dict = {}
    for k, v in net.state_dict(keep_vars=True).items():
        out[k] = (
            v.dtype,
            tuple(v.shape),
            v.detach().cpu().numpy().tobytes(),
            v.requires_grad,
            v.grad is None,
        )
    for name, m in net.named_modules():
        inv = getattr(m, "_inv_sigma", None)
        out[f"module {name}"] = (
            m.training,
            None if inv is None else inv.cpu().numpy().tobytes(),
            getattr(m, "sn_scale_output", None),
            getattr(m, "in_initialized", None),
        )
    return out


def assert_untouched(prior, before) -> None:
    after = (fingerprint(prior.G), fingerprint(prior.D))
    for net, b, a in zip("GD", before, after, strict=True):
        changed = [k for k in b if a.get(k) != b[k]]
        assert not changed and a.keys() == b.keys(), f"{net} changed: {changed[:5]}"


@pytest.fixture
def prior():
    return tiny_prior()


def hole() -> Mask:
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:20, 10:24] = 0
    return Mask(mask)


def test_a_run_leaves_the_prior_bit_identical(prior):
    before = (fingerprint(prior.G), fingerprint(prior.D))
    for exact in (False, True):
        state = reconstruct(
            prior, smooth_target(32), hole(), class_id=1, preset=preset(), exact=exact
        ).run_to_end()
        assert state.weight_delta and state.use_in
        assert_untouched(prior, before)
        render(prior, state)  # rendering reads the prior too
        render(prior, state)
        assert_untouched(prior, before)


def test_a_cancelled_run_leaves_the_prior_bit_identical(prior):
    before = (fingerprint(prior.G), fingerprint(prior.D))
    cancel = threading.Event()
    run = reconstruct(
        prior,
        smooth_target(32),
        "colorize",
        class_id=0,
        preset=preset(iterations=[20, 20]),
        cancel=cancel,
    )
    for n, _ in enumerate(run):
        if n == 5:
            cancel.set()
    assert run.state.cancelled
    assert_untouched(prior, before)


class FailsAt(Degradation):
    """φ = identity that raises on its ``n``-th call (a run that stops on an error)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("boom")
        return x


@pytest.mark.parametrize("fail_at", [2, 6])  # during z selection / during optimisation
def test_a_run_that_raises_leaves_the_prior_bit_identical(prior, fail_at):
    before = (fingerprint(prior.G), fingerprint(prior.D))
    run = reconstruct(prior, smooth_target(32), FailsAt(fail_at), class_id=0, preset=preset())
    with pytest.raises(RuntimeError, match="boom"):
        run.run_to_end()
    assert_untouched(prior, before)


def test_a_diverging_run_leaves_the_prior_bit_identical(prior):
    before = (fingerprint(prior.G), fingerprint(prior.D))
    p = preset(G_lrs=[1e30, 1e30], z_lrs=[1e30, 1e30], ft_num=["all", "all"])
    with pytest.raises(Exception, match="diverged"):
        reconstruct(prior, smooth_target(32), "reconstruct", class_id=0, preset=p).run_to_end()
    assert_untouched(prior, before)


def test_runs_do_not_leak_into_each_other(prior):
    """No cache (spectral norms of D or G, instance-norm set-up) carries over: a run
    gives the same result before and after other runs."""

    def run(seed: int, task="reconstruct"):
        return reconstruct(
            prior, smooth_target(32, seed=seed), task, class_id=seed % 5, preset=preset(), seed=seed
        ).run_to_end()

    first = run(1)
    run(2, hole())
    run(3, "colorize")
    again = run(1)
    assert torch.equal(first.z, again.z)
    assert first.weight_delta.keys() == again.weight_delta.keys()
    assert all(torch.equal(v, again.weight_delta[k]) for k, v in first.weight_delta.items())


def test_concurrent_runs_on_one_prior(prior):
    """Two threads restore at the same time from one prior: each gets what it gets
    alone, and the prior is untouched."""
    targets = {seed: smooth_target(32, seed=seed) for seed in (4, 5)}

    def start(seed, degradation):
        return reconstruct(
            prior,
            targets[seed],
            degradation,
            class_id=seed - 3,
            preset=preset(iterations=[4, 4]),
            seed=seed,
        )

    alone = {seed: start(seed, "reconstruct").run_to_end() for seed in targets}
    before = (fingerprint(prior.G), fingerprint(prior.D))

    both_running = threading.Barrier(2, timeout=60)

    class MeetOnce(Degradation):
        """Identity; the first optimisation step of each run waits for the other."""

        def __init__(self):
            self.calls = 0

        def __call__(self, x):
            self.calls += 1
            if self.calls == 5:  # after the 3 selection samples and the target features
                both_running.wait()
            return x

    states, errors = {}, []

    def work(seed):
        try:
            states[seed] = start(seed, MeetOnce()).run_to_end()
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    for seed, state in states.items():
        assert torch.equal(state.z, alone[seed].z)
        for k, v in alone[seed].weight_delta.items():
            assert torch.equal(state.weight_delta[k], v), k
    assert_untouched(prior, before)


def test_the_run_hands_its_generator_to_the_first_render(prior):
    """The fine-tuned G travels with the fresh state (not saved, not copied into derived
    states) and renders exactly what base + delta renders."""
    state = reconstruct(prior, smooth_target(32), hole(), class_id=1, preset=preset()).run_to_end()
    derived = dataclasses.replace(state, z=state.z + 0.1)
    from_run = state.materialize(prior.G)
    rebuilt = state.materialize(prior.G)
    assert rebuilt is not from_run  # handed over once
    assert not any(p.requires_grad or p.grad is not None for p in from_run.parameters())
    assert torch.equal(from_run.shared.weight, prior.G.shared.weight)
    for a, b in zip(from_run.state_dict().values(), rebuilt.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(
        render(prior, state, generator=from_run), render(prior, state, generator=rebuilt)
    )
    assert derived.materialize(prior.G) is not from_run
    # another base (a model of the same shape) never gets the run's generator
    other = tiny_prior(seed=1)
    fresh = reconstruct(
        prior, smooth_target(32), "reconstruct", class_id=1, preset=preset()
    ).run_to_end()
    G_other = fresh.materialize(other.G)
    torch.testing.assert_close(
        G_other.linear.weight - other.G.linear.weight,
        fresh.weight_delta["linear.weight"],
        atol=1e-6,
        rtol=0,
    )


def test_frozen_view_shares_weights_and_keeps_its_own_flags(prior):
    D = prior.D
    before = fingerprint(D)
    view = frozen_view(D)
    freeze_sn(view)
    view.train()
    assert all(not p.requires_grad for p in view.parameters())
    pairs = zip(view.parameters(), D.parameters(), strict=True)
    assert all(p.data_ptr() == q.data_ptr() for p, q in pairs)
    assert fingerprint(D) == before
    G = private_generator(prior.G)
    pairs = zip(G.parameters(), prior.G.parameters(), strict=True)
    assert all(p.data_ptr() != q.data_ptr() for p, q in pairs)

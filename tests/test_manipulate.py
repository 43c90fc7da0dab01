"""Jitter, category transfer and morph (docs/method.md#manipulation) on a tiny seeded BigGAN."""

from __future__ import annotations

import dataclasses
import threading
from itertools import pairwise

import pytest
import torch

from dgp_engine import InputError, StateError, render
from dgp_engine.method.manipulate import (
    EASINGS,
    Morph,
    MorphTimeline,
    Renderer,
    check_morphable,
    ease,
    morph_frames,
)
from dgp_engine.method.pictures import signed_to_uint8

from .helpers import TINY, tiny_prior
from .manipulation_helpers import quick_state


@pytest.fixture(scope="module")
def prior():
    return tiny_prior()


@pytest.fixture(scope="module")
def states(prior):
    return (
        quick_state(prior, 1, seed=0),
        quick_state(prior, 3, seed=1),
        quick_state(prior, 2, seed=2),
    )


# --------------------------------------------------------------------------- easing


@pytest.mark.parametrize("name", list(EASINGS))
def test_easing_curves_are_monotone_with_fixed_ends(name):
    assert ease(name, 0.0) == 0.0 and ease(name, 1.0) == 1.0
    values = [ease(name, i / 200) for i in range(201)]
    assert all(b >= a for a, b in pairwise(values))
    assert all(0.0 <= v <= 1.0 for v in values)
    assert ease(name, -3) == 0.0 and ease(name, 7) == 1.0  # clamped


def test_easing_shapes_and_unknown_name():
    assert ease("linear", 0.3) == pytest.approx(0.3)
    assert ease("ease-in-out", 0.5) == pytest.approx(0.5)
    assert ease("ease-in-out", 0.1) < 0.1 and ease("ease-in-out", 0.9) > 0.9
    assert ease("cubic", 0.1) < ease("ease-in-out", 0.1)
    with pytest.raises(InputError, match="Unknown easing 'bouncy'"):
        ease("bouncy", 0.5)


# --------------------------------------------------------------------------- timeline


def test_timeline_holds_and_pingpong():
    tl = MorphTimeline(frames=5, fps=10, easing="linear", hold_start=2, hold_end=1, pingpong=True)
    assert tl.path() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert tl.times() == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 0.75, 0.5, 0.25]
    assert tl.frame_count == 11 and tl.duration == pytest.approx(1.1)
    plain = MorphTimeline(frames=4)
    assert plain.times() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert MorphTimeline.from_dict(tl.to_dict()) == tl
    with pytest.raises(InputError):
        MorphTimeline(frames=1)
    with pytest.raises(InputError):
        MorphTimeline(fps=0)
    with pytest.raises(InputError):
        MorphTimeline(easing="nope")


# --------------------------------------------------------------------------- morph


def test_morph_endpoints_reproduce_each_state(prior, states):
    a, b, _ = states
    morph = Morph(prior, [a, b], easing="ease-in-out")
    assert torch.equal(morph.at(0.0), render(prior, a))
    assert torch.equal(morph.at(1.0), render(prior, b))
    mid = morph.at(0.5)
    assert (mid - render(prior, a)).abs().max() > 1e-3
    assert (mid - render(prior, b)).abs().max() > 1e-3


def test_morph_through_three_keyframes_hits_each(prior, states):
    a, b, c = states
    morph = Morph(prior, [a, b, c], easing="cubic")
    assert torch.equal(morph.at(0.0), render(prior, a))
    assert torch.equal(morph.at(0.5), render(prior, b))
    assert torch.equal(morph.at(1.0), render(prior, c))
    assert morph.locate(0.25) == (0, 0.5) and morph.locate(0.75) == (1, 0.5)


def test_morph_interpolates_every_weight_and_buffer(prior, states):
    a, b, _ = states
    morph = Morph(prior, [a, b], easing="linear")
    Ga, Gb = a.materialize(prior.G).state_dict(), b.materialize(prior.G).state_dict()
    morph.at(0.25)
    work = morph._work.state_dict()
    differing = 0
    for k, v in work.items():
        if not v.is_floating_point() or k == "shared.weight":
            continue
        torch.testing.assert_close(v, 0.75 * Ga[k] + 0.25 * Gb[k], rtol=1e-5, atol=1e-6)
        differing += not torch.equal(Ga[k], Gb[k])
    assert differing > 10  # weights, BN statistics… really differ between the two states
    z, e = morph.latent_at(0.25)
    torch.testing.assert_close(z, 0.75 * a.z + 0.25 * b.z)
    torch.testing.assert_close(e, 0.75 * a.embedding + 0.25 * b.embedding)
    # The blended state renders the same frame as the morph.
    mid_state = morph.state_at(0.25)
    torch.testing.assert_close(render(prior, mid_state), morph.at(0.25), atol=1e-5, rtol=0)


def test_morph_job_renders_timeline_and_reuses_repeated_frames(prior, states):
    a, b, _ = states
    tl = MorphTimeline(frames=4, easing="linear", hold_start=1, hold_end=1, pingpong=True)
    job = morph_frames(prior, [a, b], tl)
    seen = []
    images = job.run_to_end(seen.append)
    assert images.shape == (tl.frame_count, 3, TINY.resolution, TINY.resolution)
    assert [f.index for f in seen] == list(range(tl.frame_count))
    assert all(f.total == tl.frame_count for f in seen)
    times = tl.times()
    assert [f.params["t"] for f in seen] == times
    assert torch.equal(images[0], images[1])  # hold
    assert torch.equal(images[2], images[-1])  # ping-pong way back: same frame at t=1/3
    assert torch.equal(images[0], render(prior, a)[0])
    assert not job.cancelled and job.done == tl.frame_count
    streamed = Morph(prior, [a, b], easing="linear").render(times, keep=False)
    assert torch.equal(torch.stack([f.image for f in streamed]), images)
    assert streamed.frames == [] and streamed.done == len(times)


def test_morph_refuses_states_of_different_models(prior, states):
    a, b, _ = states
    other = dataclasses.replace(b, model={**b.model, "name": "biggan-128"})
    with pytest.raises(StateError, match="'tiny'.*'biggan-128'.*same base model"):
        Morph(prior, [a, other])
    cfg = dict(b.model["config"], resolution=64)
    with pytest.raises(StateError, match="different settings.*resolution"):
        check_morphable([a, dataclasses.replace(b, model={**b.model, "config": cfg})])
    with pytest.raises(StateError, match="different weights"):
        check_morphable(
            [
                dataclasses.replace(a, model={**a.model, "checksum": "aa"}),
                dataclasses.replace(b, model={**b.model, "checksum": "bb"}),
            ]
        )
    with pytest.raises(StateError, match="instance normalisation"):
        Morph(prior, [a, dataclasses.replace(b, use_in=True)], names=["day.dgp", "night.dgp"])
    with pytest.raises(InputError, match="at least two"):
        Morph(prior, [a])


def test_morph_refuses_a_state_that_does_not_fit_the_model(prior, states):
    a, b, _ = states
    short = [dataclasses.replace(s, z=torch.zeros(1, 7)) for s in (a, b)]
    with pytest.raises(StateError, match="^A: .*does not fit the loaded model"):
        Morph(prior, short)


def test_render_job_cancel(prior, states):
    a, b, _ = states
    cancel = threading.Event()
    job = Morph(prior, [a, b]).render([0, 0.2, 0.4, 0.6, 0.8, 1.0], cancel)
    for frame in job:
        if frame.index == 1:
            cancel.set()
    assert job.cancelled and len(job.frames) == 2
    assert job.images().shape[0] == 2
    pre = threading.Event()
    pre.set()
    job = Renderer(prior, a).jitter(4, 0.5, cancel=pre)
    assert list(job) == [] and job.cancelled


# --------------------------------------------------------------------------- jitter


def test_jitter_is_seeded_per_variation_and_batched(prior, states):
    a = states[0]
    r = Renderer(prior, a, batch_size=3)
    z8 = r.jitter_latents(8, 0.5, seed=7)
    z3 = r.jitter_latents(3, 0.5, seed=7, start=5)
    torch.testing.assert_close(z8[5:], z3)  # variation i does not depend on n
    assert not torch.equal(r.jitter_latents(2, 0.5, seed=8), z8[:2])
    job = r.jitter(5, 0.5, seed=7)
    images = job.run_to_end()
    assert images.shape == (5, 3, 32, 32) and len(job.frames) == 5
    single = render(prior, a, z=z8[3:4])
    torch.testing.assert_close(images[3:4], single, atol=1e-5, rtol=0)
    assert job.frames[3].params["variation"] == 3
    # σ = 0 gives the state's own rendering
    torch.testing.assert_close(
        r.jitter(2, 0.0).run_to_end(), render(prior, a).expand(2, -1, -1, -1), atol=1e-5, rtol=0
    )


def test_jitter_per_chunk_sigma(prior, states):
    a = states[0]
    r = Renderer(prior, a)
    chunks = r.z_chunks()
    assert [n for n, _ in chunks] == ["input", "block 1", "block 2", "block 3"]
    z = r.jitter_latents(4, [0.0, 0.0, 0.0, 0.7], seed=1)
    moved = (z - a.z).abs() > 0
    assert not moved[:, :12].any() and moved[:, 12:].all()
    with pytest.raises(InputError, match="one σ per latent chunk"):
        r.jitter_latents(2, [0.1, 0.2])
    with pytest.raises(InputError):
        r.jitter_latents(2, -1.0)


def test_jitter_walk_is_smooth_and_loops(prior, states):
    a = states[0]
    r = Renderer(prior, a)
    keys = r.jitter_latents(3, 0.5, seed=5)
    z = r.walk_latents(12, 0.5, seed=5, keys=3)
    assert z.shape == (12, 16)
    torch.testing.assert_close(z[0], keys[0])
    torch.testing.assert_close(z[4], keys[1])
    torch.testing.assert_close(z[8], keys[2])
    steps = (z - torch.roll(z, 1, 0)).norm(dim=1)  # includes the wrap-around step
    assert steps.max() < (keys[0] - keys[1]).norm()
    job = r.jitter_walk(6, 0.5, seed=5, keys=2, loop=False)
    assert job.run_to_end().shape == (6, 3, 32, 32)
    torch.testing.assert_close(job.frames[-1].params["z"], keys[1:2])


def test_adopting_a_variation(prior, states):
    a = states[0]
    r = Renderer(prior, a)
    frame = list(r.jitter(3, 0.5, seed=4))[2]
    adopted = r.state_with(z=frame.params["z"], note="jitter σ=0.5")
    assert adopted.weight_delta is a.weight_delta and adopted.task["manipulation"]
    torch.testing.assert_close(render(prior, adopted)[0], frame.image, atol=1e-5, rtol=0)
    assert signed_to_uint8(frame.image).shape == (32, 32, 3)


# --------------------------------------------------------------------------- transfer


def test_category_transfer(prior, states):
    a = states[0]
    r = Renderer(prior, a)
    table = prior.G.shared.weight.detach()
    images = r.transfer([1, 4, {2: 1, 4: 1}], [0.0, 1.0, 1.0]).run_to_end()
    torch.testing.assert_close(images[0:1], render(prior, a), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        images[1:2], render(prior, a, embedding=table[4:5]), atol=1e-5, rtol=0
    )
    blend = (table[2:3] + table[4:5]) / 2
    torch.testing.assert_close(images[2:3], render(prior, a, embedding=blend), atol=1e-5, rtol=0)
    half = r.transfer_embedding(4, 0.5)
    torch.testing.assert_close(half, (a.embedding + table[4:5]) / 2)
    assert not torch.equal(images[1], images[0])
    with pytest.raises(InputError, match="out of range"):
        r.class_embedding(5)
    with pytest.raises(InputError, match="not all zero"):
        r.class_embedding({1: 0.0})
    moved = r.state_with(embedding=table[4:5], class_id=4)
    assert moved.class_id == 4

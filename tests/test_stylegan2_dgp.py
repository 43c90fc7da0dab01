"""DGP on a StyleGAN2 prior (issue 23, item 2): w+ chosen by the D-feature distance,
synthesis blocks tuned coarse to fine, states with w+ and the tuned blocks' deltas, every
task through the same degradations, the command line end to end.

The priors are the small reference models of ``reference/stylegan2_small`` imported with
``dgp models import`` into the test's own cache (as tests/test_stylegan2_priors.py does)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine import Preset, load_preset, reconstruct, render
from dgp_engine.cli import main
from dgp_engine.errors import InputError, PresetError, PriorFamilyError, StateError
from dgp_engine.method.degradations import make_degradation
from dgp_engine.method.pictures import signed_to_uint8
from dgp_engine.method.state import ReconstructionState
from dgp_engine.method.taskspec import TASKS, default_preset_name, task_spec
from dgp_engine.priors.load import load_prior
from dgp_engine.tasks.restore import restore_image

from .conftest import REFERENCE
from .helpers import smooth_target, tiny_prior

SMALL = REFERENCE / "stylegan2_small"
PKL = "network-snapshot-000100.pkl"


def import_small(capsys, name: str = "sg", model: str = "nvidia_cond"):
    """``dgp models import NAME --pkl`` of a small reference model, loaded back."""
    code = main(["models", "import", name, "--pkl", str(SMALL / model / PKL)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return load_prior(name)


def short(**changes) -> Preset:
    base = {
        "name": "short",
        "family": "stylegan2",
        "w_init": "select",
        "truncation_psi": 0.7,
        "iterations": [4, 4, 4],
        "ft_num": [1, 2, "all"],
        "lr_ratio": 1.0,
        "G_lrs": 1e-3,
        "z_lrs": 1e-2,
        "w_D_loss": 1.0,
        "w_mse": 1.0,
        "ftr_num": 8,
        "select_num": 4,
        "sample_std": 1.0,
    }
    return Preset.from_dict({**base, **changes})


def target_of(prior, seed: int = 0) -> torch.Tensor:
    return smooth_target(prior.resolution, seed)


def gray(x: torch.Tensor) -> torch.Tensor:
    g = 0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]
    return g.unsqueeze(1).repeat(1, 3, 1, 1)


# --------------------------------------------------------------------------- the loop


def test_the_loss_decreases_over_a_short_run(capsys):
    prior = import_small(capsys)
    preset = short(
        iterations=[6, 6], ft_num=[1, "all"], w_mse=[0, 0], G_lrs=[1e-3, 5e-4], z_lrs=[1e-2, 5e-3]
    )
    losses = [
        r.losses["ftr"]
        for r in reconstruct(prior, target_of(prior), "colorize", class_id=None, preset=preset)
        if r.phase == "optimize" and r.state is None
    ]
    assert len(losses) == 12
    assert losses[-1] < 0.8 * losses[0]
    assert all(np.isfinite(losses))


def test_w_selection_picks_the_candidate_closest_in_D_features(capsys):
    """The start is the candidate whose gray image is closest to the target over D's last
    3 features, each scored alone; computed here from the networks, one at a time."""
    prior = import_small(capsys)
    G, D = prior.stylegan2.G, prior.stylegan2.D
    target = target_of(prior, seed=3)
    n, seed, psi = 7, 11, 0.7
    frozen = short(
        iterations=[1], ft_num=[0], G_lrs=[0.0], z_lrs=[0.0], select_num=n, truncation_psi=psi
    )
    # batches of 3: batch mates must not change a candidate's score (minibatch std)
    run = reconstruct(
        prior, target, "colorize", class_id=None, preset=frozen, seed=seed, select_batch=3
    )
    reports = list(run)
    state = run.state
    assert state is not None and state.family == "stylegan2"
    gen = torch.Generator().manual_seed(seed)
    scores, starts = [], []
    with torch.no_grad():
        _, want = D(target, torch.tensor([0]))
        for _ in range(n):
            z = torch.randn(1, G.z_dim, generator=gen)
            y = torch.randint(G.c_dim, (1,), generator=gen)
            ws = G.mapping.w_avg + psi * (G.map(z, y)[:, :1] - G.mapping.w_avg)
            ws = ws.repeat(1, G.num_ws, 1)
            _, got = D(gray(G.synthesis(ws, "const")), y)
            scores.append(sum(float((got[-i] - want[-i]).abs().mean()) for i in (1, 2, 3)))
            starts.append((ws, int(y), z))
    best = int(np.argmin(scores))
    assert len(set(np.round(scores, 6))) == n  # the candidates really differ
    torch.testing.assert_close(state.ws, starts[best][0], rtol=0, atol=1e-5)
    assert state.class_id == starts[best][1]
    # the z it was mapped from is kept (category transfer maps it again)
    assert state.mapped_z is not None and torch.equal(state.mapped_z, starts[best][2])
    select = [r for r in reports if r.phase == "select"]
    assert len(select) == n
    assert select[-1].losses["select_loss"] == pytest.approx(min(scores), rel=1e-4)
    assert state.weight_delta == {}  # learning rates 0: nothing moved


@pytest.mark.parametrize("seed", [10**30, -(1 << 63) - 1, 1.5, True])
def test_a_seed_torch_cannot_take_is_refused_in_a_sentence(capsys, seed):
    # a StyleGAN2 run once passed it on unchecked: torch's "Overflow when unpacking long
    # long" instead of the BigGAN run's sentence
    prior = import_small(capsys)
    with pytest.raises(InputError, match="seed .* is out of range"):
        reconstruct(prior, target_of(prior), "reconstruct", class_id=0, preset=short(), seed=seed)


def test_w_avg_start_is_a_preset_option(capsys):
    prior = import_small(capsys, model="nvidia_uncond")
    preset = short(iterations=[1], ft_num=[0], G_lrs=[0.0], z_lrs=[0.0], w_init="avg")
    run = reconstruct(prior, target_of(prior), "reconstruct", class_id=None, preset=preset)
    reports = list(run)
    assert not [r for r in reports if r.phase == "select"]
    state = run.state
    assert state is not None and state.class_id == -1
    assert state.mapped_z is None  # not mapped from a z
    w_avg = prior.stylegan2.G.mapping.w_avg
    assert torch.equal(state.ws, w_avg.reshape(1, 1, -1).repeat(1, state.ws.shape[1], 1))


def _blocks_tuned(state: ReconstructionState) -> set[str]:
    return {k.split(".")[1] for k in state.weight_delta}


def test_stage_k_trains_exactly_the_blocks_up_to_k(capsys):
    """Cancelled at the end of stage k, the result has changed exactly synthesis blocks
    1…k (each of them, nothing else: mapping, w_avg and finer blocks bit-identical)."""
    prior = import_small(capsys)
    resolutions = prior.stylegan2.config.block_resolutions
    preset = short(
        iterations=[2, 2, 2, 2], ft_num=[1, 2, 3, "all"], G_lrs=1e-3, z_lrs=1e-2, w_mse=1
    )
    for k in (1, 2, 3):
        run = reconstruct(prior, target_of(prior), "colorize", class_id=1, preset=preset)
        for report in run:
            if (
                report.phase == "optimize"
                and report.stage == k - 1
                and report.iteration == report.stage_iterations
            ):
                run.cancel()
        state = run.state
        assert state is not None and state.cancelled and state.progress["step"] == 2 * k
        assert all(key.startswith("synthesis.") for key in state.weight_delta)
        assert _blocks_tuned(state) == {f"b{r}" for r in resolutions[:k]}
    full = reconstruct(prior, target_of(prior), "colorize", class_id=1, preset=preset)
    state = full.run_to_end()
    assert _blocks_tuned(state) == {f"b{r}" for r in resolutions}


def test_the_prior_is_not_modified(capsys):
    prior = import_small(capsys)
    before = {k: v.clone() for k, v in prior.stylegan2.G.state_dict().items()}
    d_before = {k: v.clone() for k, v in prior.stylegan2.D.state_dict().items()}
    reconstruct(prior, target_of(prior), "colorize", class_id=0, preset=short()).run_to_end()
    assert all(torch.equal(v, before[k]) for k, v in prior.stylegan2.G.state_dict().items())
    assert all(torch.equal(v, d_before[k]) for k, v in prior.stylegan2.D.state_dict().items())
    assert not any(p.grad is not None for p in prior.stylegan2.D.parameters())


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_runs_through_its_degradation(capsys, task):
    prior = import_small(capsys)
    phi = make_degradation(task, resolution=prior.resolution)
    preset = short(iterations=[2], ft_num=[1], w_mse=[1], select_num=2)
    run = reconstruct(prior, target_of(prior), phi, class_id=None, preset=preset)
    state = run.run_to_end()
    assert state.task == phi.describe()
    image = render(prior, state)
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()


def test_presets_are_data_and_refuse_what_stylegan2_cannot_do(capsys):
    for task in sorted(TASKS):
        name = default_preset_name(task, "sg", "stylegan2")
        assert name.startswith("stylegan2_")
        assert default_preset_name(task, "sg", "biggan-pytorch") == task_spec(task).published_preset
    prior = import_small(capsys)
    for bad, why in (
        ({"use_in": True}, "no BatchNorm"),
        ({"w_init": "zero"}, "w_init must be one of"),
        ({"truncation_psi": 2}, "truncation_psi"),
        ({"family": "biggan"}, "is for biggan priors"),
    ):
        with pytest.raises(PresetError, match=why):
            reconstruct(prior, target_of(prior), "colorize", class_id=None, preset=short(**bad))
    with pytest.raises(PresetError, match="names no family"):
        reconstruct(
            prior, target_of(prior), "colorize", class_id=None, preset=load_preset("colorization")
        )
    with pytest.raises(PresetError, match="is for stylegan2 priors, and tiny is a BigGAN"):
        reconstruct(
            tiny_prior(),
            smooth_target(32),
            "colorize",
            class_id=None,
            preset=load_preset("stylegan2_colorization"),
        )


# --------------------------------------------------------------------------- states


def test_a_state_round_trips_and_renders_the_same_image(capsys, tmp_path):
    prior = import_small(capsys)
    run = reconstruct(prior, target_of(prior), "colorize", class_id=None, preset=short())
    state = run.run_to_end()
    first = render(prior, state)
    path = state.save(tmp_path / "r.dgp")
    back = ReconstructionState.load(path)
    assert back.family == "stylegan2" and back.is_stylegan2
    assert torch.equal(back.ws, state.ws) and back.ws.shape == (1, 10, 24)
    assert back.weight_delta.keys() == state.weight_delta.keys()
    assert back.preset["w_init"] == "select" and back.preset["truncation_psi"] == 0.7
    assert back.model["name"] == "sg" and back.model["config"]["w_dim"] == 24
    assert back.mapped_z is not None and torch.equal(back.mapped_z, state.mapped_z)
    assert torch.equal(render(prior, back), first)
    # the image the tuned blocks make, not the prior's own for the same w+
    with torch.no_grad():
        untuned = prior.stylegan2.G.synthesis(state.ws, "const")
    assert (untuned - first).abs().max() > 1e-3
    # from bytes too (a project member)
    assert torch.equal(render(prior, ReconstructionState.from_bytes(state.to_bytes())), first)


def test_states_of_one_family_do_not_render_with_the_other(capsys, tmp_path):
    prior = import_small(capsys)
    sg_state = reconstruct(
        prior, target_of(prior), "colorize", class_id=None, preset=short(iterations=[1], ft_num=[1])
    ).run_to_end()
    big = tiny_prior()
    with pytest.raises(
        StateError, match="restored with the StyleGAN2 prior sg, and tiny is a BigGAN"
    ):
        render(big, sg_state)
    big_state = reconstruct(
        big,
        smooth_target(32),
        "colorize",
        class_id=1,
        preset=Preset(
            iterations=(1,),
            ft_num=(1,),
            lr_ratio=(1.0,),
            G_lrs=(1e-4,),
            z_lrs=(1e-3,),
            w_D_loss=(1.0,),
            w_mse=(0.0,),
            use_in=(False,),
            ftr_num=(8,),
            select_num=1,
        ),
    ).run_to_end()
    path = big_state.save(tmp_path / "big.dgp")
    old = ReconstructionState.load(path)  # a BigGAN state: no family recorded, as before
    assert old.family == "biggan" and "family" not in old.metadata()
    with pytest.raises(StateError, match="restored with the BigGAN prior tiny"):
        render(prior, old)


def test_a_damaged_stylegan2_state_is_refused_with_a_sentence(capsys, tmp_path):
    from safetensors.torch import save_file

    prior = import_small(capsys)
    state = reconstruct(
        prior, target_of(prior), "colorize", class_id=None, preset=short(iterations=[1], ft_num=[1])
    ).run_to_end()
    tensors = state.tensors()
    meta = state.file_metadata(tensors)
    del meta["dgp_sha256"]
    flat = dict(tensors, ws=tensors["ws"].reshape(1, -1))
    save_file(flat, str(tmp_path / "flat.dgp"), metadata=meta)
    with pytest.raises(StateError, match="w\\+ latent has shape"):
        ReconstructionState.load(tmp_path / "flat.dgp")
    save_file(
        {k: v for k, v in tensors.items() if k != "ws"}, str(tmp_path / "no.dgp"), metadata=meta
    )
    with pytest.raises(StateError, match="lacks its w\\+ latent"):
        ReconstructionState.load(tmp_path / "no.dgp")


def test_the_command_line_jitters_walks_transfers_and_morphs_a_stylegan2_result(capsys, tmp_path):
    """``dgp jitter`` (a grid, σ per block, ``--walk``), ``dgp transfer`` and ``dgp morph``
    of StyleGAN2 states; what cannot be done is refused with a sentence, writing nothing."""
    from dgp_engine.method.manipulate import Renderer
    from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Renderer

    prior = import_small(capsys)
    a, b = _two_results(prior)
    pa, pb = a.save(tmp_path / "a.dgp"), b.save(tmp_path / "b.dgp")

    def dgp(*argv: str) -> str:
        code = main([*argv, "--model", "sg", "--raw", "-q"])
        err = capsys.readouterr().err
        assert code == 0, err
        return err

    grid = tmp_path / "j.png"
    dgp("jitter", str(pa), "-n", "4", "--sigma", "0.5", "-o", str(grid))
    with Image.open(grid) as img:
        assert img.size == (130, 130)  # 2×2 grid of 64 px images, 2 px apart
    # one σ per synthesis block (5 at 64 px): only the finest block's layers move
    fine = tmp_path / "fine.png"
    dgp("jitter", str(pa), "-n", "1", "--sigma", "0,0,0,0,0.8", "--seed", "3", "-o", str(fine))
    r = StyleGAN2Renderer(prior, a)
    want = r.render(r.jitter_latents(1, [0, 0, 0, 0, 0.8], seed=3))
    with Image.open(fine) as img:
        got = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(got - signed_to_uint8(want[0]).astype(int)).max() <= 1
    # the jitter walk: an animation through n variations, looping
    walk = tmp_path / "walk.gif"
    dgp("jitter", str(pa), "-n", "3", "--walk", "6", "-o", str(walk))
    with Image.open(walk) as img:
        assert img.n_frames == 6
    # category transfer of a conditional result: w+ moved to class 1
    moved = tmp_path / "t.png"
    dgp("transfer", str(pa), "--class", "1", "-o", str(moved))
    want = r.render(r.transfer_ws(1))
    with Image.open(moved) as img:
        got = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(got - signed_to_uint8(want[0]).astype(int)).max() <= 1
    assert np.abs(got - signed_to_uint8(r.render()[0]).astype(int)).max() > 8
    anim = tmp_path / "m.gif"
    dgp("morph", str(pa), str(pb), "--frames", "3", "-o", str(anim))
    with Image.open(anim) as img:
        assert img.n_frames == 3
    for argv, why in (
        (["jitter", str(pa), "--sigma", "0.1,0.2"], "Give one σ per latent chunk (5: 4 px, 8 px"),
        (["transfer", str(pa), "--class", "7"], "Class id 7 is out of range"),
    ):
        out = tmp_path / "x.png"
        code = main([*argv, "--model", "sg", "-o", str(out), "--raw", "-q"])
        err = capsys.readouterr().err
        assert code == 1 and why in err.strip().splitlines()[-1], err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not out.exists()
    with pytest.raises(
        PriorFamilyError, match="sg is a StyleGAN2 prior, and this part of DGP Studio"
    ):
        Renderer(prior, a)


def test_category_transfer_of_an_unconditional_result_is_refused(capsys, tmp_path):
    from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Renderer

    prior = import_small(capsys, "sgu", model="nvidia_uncond")
    state = reconstruct(
        prior, target_of(prior), "colorize", class_id=None, preset=short(iterations=[1], ft_num=[1])
    ).run_to_end()
    path = state.save(tmp_path / "u.dgp")
    before = path.read_bytes()
    out = tmp_path / "t.png"
    code = main(["transfer", str(path), "--class", "0", "--model", "sgu", "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists() and path.read_bytes() == before
    (line,) = err.strip().splitlines()
    assert "sgu is an unconditional model: it has no classes to transfer u.dgp to" in line
    with pytest.raises(InputError, match="unconditional model"):
        StyleGAN2Renderer(prior, state).transfer([0])


# --------------------------------------------------------------------------- photos and CLI


def test_the_command_line_colorizes_a_portrait_photo(capsys, tmp_path):
    """``dgp colorize --model <installed StyleGAN2>`` on a 48×80 photo writes a 48×80
    picture (and its state), with a preset given as a file."""
    import_small(capsys, model="nvidia_uncond")
    rng = np.random.default_rng(0)
    photo = tmp_path / "in.png"
    Image.fromarray((rng.random((80, 48, 3)) * 255).astype(np.uint8)).save(photo)
    preset = tmp_path / "quick.toml"
    preset.write_text(
        'family = "stylegan2"\ntruncation_psi = 0.7\niterations = [2, 2]\n'
        "ft_num = [1, 2]\nG_lrs = [1e-3, 1e-3]\nz_lrs = [1e-2, 1e-2]\n"
        "w_D_loss = [1, 1]\nselect_num = 3\nsample_std = 1.0\n"
    )
    out, saved = tmp_path / "out.png", tmp_path / "out.dgp"
    code = main(
        [
            "colorize",
            str(photo),
            "-o",
            str(out),
            "--model",
            "sg",
            "--preset",
            str(preset),
            "--save-state",
            str(saved),
            "-q",
        ]
    )
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "(48×80), class none (unconditional model)" in text
    with Image.open(out) as img:
        assert img.size == (48, 80)
    state = ReconstructionState.load(saved)
    assert state.family == "stylegan2" and state.progress["step"] == 4


def test_restore_image_uses_the_stylegan2_default_preset(capsys):
    prior = import_small(capsys)
    photo = (np.random.default_rng(1).random((40, 40, 3))).astype(np.float32)
    hole = np.zeros((40, 40), bool)
    hole[10:20, 10:20] = True
    job = restore_image(prior, photo, "inpaint", mask=hole, preset=None)
    assert job.preset.name == "stylegan2_inpainting"
    job = restore_image(
        prior, photo, "inpaint", mask=hole, preset=job.preset.scaled(0.02).replace(select_num=2)
    )
    assert job.select_total == 2 and job.total == 2 + job.preset.total_iterations
    result = job.run_to_end()
    assert result.photo.size == (40, 40) and result.state.is_stylegan2
    # from w_avg: no candidates to score, none counted
    job = restore_image(
        prior, photo, "inpaint", mask=hole, preset=short(iterations=[1], ft_num=[1], w_init="avg")
    )
    assert job.select_total == 0 and job.total == 1
    assert [r.phase for r in job] == ["optimize", "optimize"]


# --------------------------------------------------------------------------- manipulation


def _two_results(prior):
    a = reconstruct(
        prior,
        target_of(prior, 1),
        "reconstruct",
        class_id=0,
        preset=short(iterations=[3], ft_num=[2]),
    ).run_to_end()
    b = reconstruct(
        prior,
        target_of(prior, 2),
        "reconstruct",
        class_id=2,
        preset=short(iterations=[3], ft_num=["all"]),
        seed=5,
    ).run_to_end()
    return a, b


def test_jitter_in_w_space(capsys):
    from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Renderer

    prior = import_small(capsys)
    state, _ = _two_results(prior)
    renderer = StyleGAN2Renderer(prior, state, batch_size=2)
    assert torch.equal(renderer.render(), render(prior, state))
    still = renderer.jitter(3, 0.0).run_to_end()  # batched: equal up to rounding
    torch.testing.assert_close(still, render(prior, state).expand(3, -1, -1, -1), rtol=0, atol=1e-5)
    moved = renderer.jitter(3, 0.5, seed=4).run_to_end()
    assert moved.shape == (3, 3, 64, 64)
    assert all((img - still[0]).abs().max() > 1e-3 for img in moved)
    # one ε per variation, the same on every layer, independent of n and batching
    ws = renderer.jitter_latents(3, 0.5, seed=4)
    step = ws - state.ws
    assert torch.allclose(step, step[:, :1].expand_as(step), atol=1e-6)
    assert torch.equal(renderer.jitter_latents(1, 0.5, seed=4, start=2), ws[2:])
    torch.testing.assert_close(
        StyleGAN2Renderer(prior, state, batch_size=3).jitter(3, 0.5, seed=4).run_to_end(),
        moved,
        rtol=0,
        atol=1e-5,
    )
    adopted = renderer.state_with(ws[1:2], note="jitter 1")
    torch.testing.assert_close(render(prior, adopted), moved[1:2], rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="σ must be"):
        renderer.jitter_latents(2, -1.0)


def test_morph_blends_w_plus_and_weights(capsys):
    from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Morph

    prior = import_small(capsys)
    a, b = _two_results(prior)
    morph = StyleGAN2Morph(prior, [a, b])
    assert torch.equal(morph.at(0.0), render(prior, a))
    assert torch.equal(morph.at(1.0), render(prior, b))
    mid = morph.at(0.5)
    # the blend's weights are the keyframes' midpoints: one tuned block differs
    key = next(k for k in b.weight_delta if k not in a.weight_delta)
    base = prior.stylegan2.G.state_dict()[key]
    torch.testing.assert_close(morph._work.state_dict()[key], base + 0.5 * b.weight_delta[key])
    torch.testing.assert_close(morph.ws_at(0.5), (a.ws + b.ws) / 2)
    assert (mid - morph.at(0.0)).abs().max() > 1e-3 and (mid - morph.at(1.0)).abs().max() > 1e-3
    frames = morph.render([0.0, 0.5, 1.0]).run_to_end()
    assert torch.equal(frames[1], mid[0])
    blended = morph.state_at(0.5)
    torch.testing.assert_close(render(prior, blended), mid, rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="at least two keyframes"):
        StyleGAN2Morph(prior, [a])


def test_a_batch_runs_on_a_stylegan2_model_with_its_presets(capsys, tmp_path):
    """``dgp batch colorize --model <StyleGAN2>`` without --preset takes the model
    family's preset (a BigGAN schedule would be refused by the loop)."""
    import_small(capsys, model="nvidia_uncond")
    album = tmp_path / "album"
    album.mkdir()
    rng = np.random.default_rng(2)
    for i in range(2):
        Image.fromarray((rng.random((40, 56)) * 255).astype(np.uint8)).save(album / f"p{i}.png")
    out = tmp_path / "out"
    code = main(
        [
            "batch",
            "colorize",
            str(album),
            "-o",
            str(out),
            "--model",
            "sg",
            "--iterations-scale",
            "0.02",
            "--workers",
            "1",
            "--threads",
            "1",
            "--save-state",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    for i in range(2):
        with Image.open(out / f"p{i}.png") as img:
            assert img.size == (56, 40)
    states = sorted(out.rglob("*.dgp"))
    assert len(states) == 2
    state = ReconstructionState.load(states[0])
    assert state.is_stylegan2 and state.preset["name"] == "stylegan2_colorization"
    # the journal records the preset the workers ran (a resume compares it)
    db = sqlite3.connect(out / ".dgp-batch" / "journal.sqlite")
    try:
        (value,) = db.execute("SELECT value FROM job WHERE key='settings'").fetchone()
    finally:
        db.close()
    assert json.loads(value)["preset"]["name"] == "stylegan2_colorization"


def test_jitter_per_block_and_the_jitter_walk(capsys):
    from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Renderer

    prior = import_small(capsys)
    state, _ = _two_results(prior)
    r = StyleGAN2Renderer(prior, state)
    chunks = r.z_chunks()
    # every layer of w+ belongs to exactly one block, coarse to fine
    assert [name for name, _ in chunks] == ["4 px", "8 px", "16 px", "32 px", "64 px"]
    layers = [i for _, sl in chunks for i in range(sl.start, sl.stop)]
    assert layers == list(range(state.ws.shape[1]))
    ws = r.jitter_latents(2, [0.0, 0.7, 0.0, 0.0, 0.0], seed=1)
    moved = (ws - state.ws).abs().amax(dim=(0, 2))
    _, sl = chunks[1]
    assert moved[sl].min() > 0 and moved[: sl.start].max() == 0 and moved[sl.stop :].max() == 0
    # the same ε as a single σ, scaled per block
    torch.testing.assert_close(
        ws[:, sl] - state.ws[:, sl], (r.jitter_latents(2, 0.7, seed=1) - state.ws)[:, sl]
    )
    # the walk passes through the n variations and loops back to the first
    anchors = r.jitter_latents(3, 0.5, seed=2)
    path = r.walk_latents(6, 0.5, seed=2, keys=3, easing="linear")
    assert path.shape == (6, *state.ws.shape[1:])
    for i in range(3):
        torch.testing.assert_close(path[2 * i], anchors[i])
    torch.testing.assert_close(path[1], (anchors[0] + anchors[1]) / 2)
    frames = r.jitter_walk(6, 0.5, seed=2, keys=3, easing="linear").run_to_end()
    torch.testing.assert_close(frames[2:3], r.render(anchors[1:2]), rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="at least one frame"):
        r.walk_latents(0, 0.5)


def test_category_transfer_maps_the_start_again_and_keeps_the_layer_offsets(capsys, tmp_path):
    """w+′ = w+* + ref(y′) − ref(y), ref(y) the truncated mapping of the result's starting
    z with class y (computed here with G.map); amount 0 is the result itself."""
    from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Renderer

    prior = import_small(capsys)
    G = prior.stylegan2.G
    state, _ = _two_results(prior)
    assert state.class_id == 0 and state.mapped_z is not None
    psi = state.preset["truncation_psi"]
    r = StyleGAN2Renderer(prior, state)

    def ref(y: int) -> torch.Tensor:
        with torch.no_grad():
            return G.map(state.mapped_z, torch.tensor([y]), truncation_psi=psi)

    moved = r.transfer_ws(2)
    torch.testing.assert_close(moved, state.ws + ref(2) - ref(0), rtol=0, atol=1e-5)
    # the tuned w+'s offsets between layers are kept
    torch.testing.assert_close(moved - moved[:, :1], state.ws - state.ws[:, :1], rtol=0, atol=1e-5)
    assert torch.equal(r.transfer_ws(2, 0.0), state.ws)
    assert torch.equal(r.transfer_ws(0), state.ws)  # its own class: unchanged
    # half way: the labels blended, mapped again
    half = r.transfer_ws(2, 0.5)
    with torch.no_grad():
        label = torch.tensor([[0.5, 0.0, 0.5]])
        mid = G.mapping.truncate(G.mapping(state.mapped_z, label), psi)
    torch.testing.assert_close(half, state.ws + mid - ref(0), rtol=0, atol=1e-5)
    images = r.transfer([1, 2]).run_to_end()
    assert images.shape == (2, 3, 64, 64)
    torch.testing.assert_close(images[1:], r.render(moved), rtol=0, atol=1e-5)
    assert (images[1] - r.render()[0]).abs().max() > 1e-2
    adopted = r.transfer_state(2)
    assert adopted.class_id == 2 and torch.equal(adopted.ws, moved)
    assert adopted.task["manipulation"] == "class 2 ×1.00"
    # the adopted state moves back to where it came from
    back = StyleGAN2Renderer(prior, adopted).transfer_ws(0)
    torch.testing.assert_close(back, state.ws, rtol=0, atol=1e-5)
    # saved and read back: the same transfer
    again = ReconstructionState.load(state.save(tmp_path / "s.dgp"))
    torch.testing.assert_close(StyleGAN2Renderer(prior, again).transfer_ws(2), moved)
    with pytest.raises(InputError, match="out of range"):
        r.transfer_ws(3)


def test_category_transfer_without_a_starting_z_uses_class_means(capsys):
    """A result that started from w_avg has no z to map again: the class's mean w over
    fixed z samples stands in (the same on every call); the layer offsets are kept."""
    from dgp_engine.method.manipulate_stylegan2 import StyleGAN2Renderer

    prior = import_small(capsys)
    preset = short(iterations=[2], ft_num=[1], w_init="avg")
    state = reconstruct(prior, target_of(prior), "colorize", class_id=1, preset=preset)
    state = state.run_to_end()
    assert state.mapped_z is None and state.class_id == 1
    r = StyleGAN2Renderer(prior, state)
    moved = r.transfer_ws(0)
    step = moved - state.ws
    assert step.abs().max() > 1e-3
    torch.testing.assert_close(step, step[:, :1].expand_as(step), rtol=0, atol=1e-5)
    torch.testing.assert_close(StyleGAN2Renderer(prior, state).transfer_ws(0), moved)


def test_a_result_renders_and_morphs_only_with_its_own_family(capsys):
    """The family-neutral entry points (the CLI's and the app's) refuse a StyleGAN2 state
    with a BigGAN prior, a BigGAN state with a StyleGAN2 prior, and a morph of both."""
    from dgp_engine.method.manipulators import morph_for, renderer_for

    from .manipulation_helpers import quick_state

    prior = import_small(capsys)
    big = tiny_prior()
    sg_state, sg_other = _two_results(prior)
    big_state = quick_state(big, class_id=1)
    assert type(renderer_for(prior, sg_state)).__name__ == "StyleGAN2Renderer"
    assert type(renderer_for(big, big_state)).__name__ == "Renderer"
    with pytest.raises(StateError, match="restored with the StyleGAN2 prior sg, and tiny is a"):
        renderer_for(big, sg_state)
    with pytest.raises(StateError, match="restored with the BigGAN prior tiny, and sg is a"):
        renderer_for(prior, big_state)
    with pytest.raises(StateError, match="Cannot morph A and B: B was restored with a StyleGAN2"):
        morph_for(big, [big_state, sg_state])
    with pytest.raises(StateError, match="Keyframe A: This result was restored with the BigGAN"):
        morph_for(prior, [big_state, big_state])
    assert type(morph_for(prior, [sg_state, sg_other])).__name__ == "StyleGAN2Morph"


def test_the_command_line_refuses_states_of_the_other_family_in_one_sentence(capsys, tmp_path):
    """A StyleGAN2 state with a BigGAN model, a BigGAN state with a StyleGAN2 model, and
    a morph of both: one sentence each, naming the model to pass; nothing written."""
    from .manipulation_helpers import quick_state, save_model_folder

    prior = import_small(capsys)
    big = tiny_prior()
    folder = save_model_folder(big, tmp_path / "tiny")
    sg_path = _two_results(prior)[0].save(tmp_path / "sg.dgp")
    big_path = quick_state(big, class_id=1).save(tmp_path / "big.dgp")
    cases = (
        (["jitter", str(sg_path), "--model", str(folder)], "sg.dgp was restored with the model"),
        (["transfer", str(big_path), "--class", "0", "--model", "sg"], "pass --model"),
        (["morph", str(sg_path), str(big_path), "--model", "sg"], "big.dgp was restored"),
    )
    for argv, why in cases:
        out = tmp_path / ("x.gif" if argv[0] == "morph" else "x.png")
        code = main([*argv, "-o", str(out), "--raw", "-q"])
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and why in lines[0], err
        assert "Traceback" not in err and not out.exists()

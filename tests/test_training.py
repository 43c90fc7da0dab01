"""Training of the BigGAN prior: exact resume, divergence, bad input, export."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine.cli import main as cli_main
from dgp_engine.priors.load import load_prior
from dgp_engine.system import paths
from dgp_engine.training import (
    CHECKPOINT_NAME,
    DatasetError,
    DivergenceError,
    GeneratorEMA,
    ResumeError,
    Trainer,
    TrainSettings,
    default_state_dir,
    export_prior,
    load_npz,
    standing_stats,
)
from dgp_engine.training.augment import cutout, diff_augment, translation

TINY = TrainSettings(
    resolution=32,
    ch=8,
    batch=4,
    steps=4,
    dim_z=20,
    shared_dim=8,
    checkpoint_every_s=float("inf"),
    standing_batches=2,
    standing_batch=4,
    grid_columns=2,
)


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(
        path,
        images=rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8),
        labels=rng.integers(0, 3, 12).astype(np.int64),
    )
    return path


@pytest.fixture(scope="module")
def dataset(npz_path):
    return load_npz(npz_path, resolution=32, n_classes=3)


def _all_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    flat = {}
    for name, sd in (
        ("G", trainer.G.state_dict()),
        ("D", trainer.D.state_dict()),
        ("E", trainer.ema.model.state_dict()),
    ):
        flat.update({f"{name}.{k}": v for k, v in sd.items()})
    for name, opt in (("oG", trainer.opt_G), ("oD", trainer.opt_D)):
        for i, st in opt.state_dict()["state"].items():
            flat.update({f"{name}.{i}.{k}": v for k, v in st.items()})
    return flat


def test_resume_is_bit_exact(dataset, tmp_path):
    straight = Trainer(dataset, TINY, tmp_path / "a")
    list(straight.run())
    assert straight.step == 4 and straight.images_seen == 16

    half = Trainer(dataset, TINY.replace(steps=2), tmp_path / "b")
    list(half.run())
    assert (tmp_path / "b" / CHECKPOINT_NAME).is_file()
    resumed = Trainer(dataset, TINY, tmp_path / "b", resume=True)
    assert resumed.step == 2
    list(resumed.run())
    assert resumed.step == 4 and resumed.images_seen == 16

    a, b = _all_state(straight), _all_state(resumed)
    assert a.keys() == b.keys() and len(a) > 50
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert differing == []
    # ... and training really changed the weights.
    fresh = Trainer(dataset, TINY, tmp_path / "c")
    assert not torch.equal(fresh.G.linear.weight, straight.G.linear.weight)


def test_resume_with_a_new_learning_rate_uses_it(dataset, tmp_path):
    # the optimisers' saved state carries the old learning rates: resuming with lower ones
    # (to calm a plateau) must train with them, keeping Adam's moments
    half = Trainer(dataset, TINY.replace(steps=2), tmp_path)
    list(half.run())
    moments = half.opt_G.state_dict()["state"][0]["exp_avg_sq"].clone()
    lower = TINY.replace(lr_g=TINY.lr_g / 4, lr_d=TINY.lr_d / 4)
    resumed = Trainer(dataset, lower, tmp_path, resume=True)
    assert {g["lr"] for g in resumed.opt_G.param_groups} == {lower.lr_g}
    assert {g["lr"] for g in resumed.opt_D.param_groups} == {lower.lr_d}
    assert torch.equal(resumed.opt_G.state_dict()["state"][0]["exp_avg_sq"], moments)


def test_run_writes_checkpoint_and_sample_grid(dataset, tmp_path):
    trainer = Trainer(dataset, TINY.replace(checkpoint_every=2), tmp_path)
    reports = list(trainer.run())
    assert [r.step for r in reports] == [1, 2, 3, 4]
    assert [r.checkpoint is not None for r in reports] == [False, True, False, True]
    assert all(np.isfinite([r.loss_d_real, r.loss_d_fake, r.loss_g]).all() for r in reports)
    assert reports[-1].eta_s == 0 and reports[0].eta_s > 0
    grid = np.asarray(Image.open(reports[-1].grid))
    assert grid.shape == (2 * 32, 3 * 32, 3)  # one row per fixed latent, a column per class
    assert grid.std() > 0


def test_nan_stops_training_and_keeps_last_good_checkpoint(dataset, tmp_path):
    trainer = Trainer(dataset, TINY.replace(checkpoint_every=2, steps=6), tmp_path)
    run = trainer.run()
    for report in run:
        if report.step == 2:
            break
    saved = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    with torch.no_grad():
        trainer.D.linear.weight.fill_(float("nan"))
    with pytest.raises(DivergenceError, match=r"step 3.*last good checkpoint \(step 2\)"):
        next(run)
    after = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert after["step"] == 2
    assert torch.equal(after["D"]["linear.weight"], saved["D"]["linear.weight"])
    assert all(torch.isfinite(v).all() for v in after["G"].values() if v.is_floating_point())


def test_cancel_saves_a_checkpoint(dataset, tmp_path):
    trainer = Trainer(dataset, TINY.replace(steps=100), tmp_path)
    for report in trainer.run():
        if report.step == 3:
            trainer.cancel.set()
    assert trainer.step == 3  # checked between steps: no further step runs
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["step"] == 3


def test_resume_rejects_mismatched_checkpoint(dataset, npz_path, tmp_path):
    list(Trainer(dataset, TINY.replace(steps=1), tmp_path).run())
    with pytest.raises(ResumeError, match="ch: checkpoint 8 vs requested 16"):
        Trainer(dataset, TINY.replace(ch=16), tmp_path, resume=True)
    other = load_npz(npz_path, resolution=32, n_classes=5)
    with pytest.raises(ResumeError, match="n_classes"):
        Trainer(other, TINY, tmp_path, resume=True)
    with pytest.raises(ResumeError, match="no training checkpoint"):
        Trainer(dataset, TINY, tmp_path / "empty", resume=True)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ResumeError, match="could not read"):
        Trainer(dataset, TINY, tmp_path / "bad", resume=True)


def test_bad_datasets_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_npz(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DatasetError, match="not a readable NumPy .npz"):
        load_npz(tmp_path / "text.npz")
    imgs = np.zeros((4, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "nolabels.npz", images=imgs)
    with pytest.raises(DatasetError, match="no labels array"):
        load_npz(tmp_path / "nolabels.npz")
    np.savez(tmp_path / "float.npz", images=imgs.astype(np.float32), labels=np.zeros(4, int))
    with pytest.raises(DatasetError, match="float32"):
        load_npz(tmp_path / "float.npz")
    np.savez(tmp_path / "short.npz", images=imgs, labels=np.zeros(3, int))
    with pytest.raises(DatasetError, match="shape"):
        load_npz(tmp_path / "short.npz")
    np.savez(tmp_path / "range.npz", images=imgs, labels=np.array([0, 1, 2, 7]))
    with pytest.raises(DatasetError, match="outside 0..4"):
        load_npz(tmp_path / "range.npz", n_classes=5)
    np.savez(tmp_path / "ok.npz", images=imgs, labels=np.array([0, 1, 2, 1]))
    with pytest.raises(DatasetError, match="divides"):
        load_npz(tmp_path / "ok.npz", resolution=3)
    assert load_npz(tmp_path / "ok.npz").n_classes == 3


def test_downscaling_averages_pixel_blocks(tmp_path):
    img = np.zeros((1, 4, 4, 3), np.uint8)
    img[0, :2, :2] = 200  # top-left 2×2 block
    img[0, 0, 0] = 100
    np.savez(tmp_path / "d.npz", images=img, labels=np.zeros(1, int))
    ds = load_npz(tmp_path / "d.npz", resolution=2)
    assert ds.images.shape == (1, 3, 2, 2)
    assert ds.images[0, 0, 0, 0].item() == 175 and ds.images[0, 0, 1, 1].item() == 0


def test_augmentations_are_differentiable_and_seeded():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    policy = ("color", "translation", "cutout")
    a = diff_augment(x, policy, torch.Generator().manual_seed(1))
    b = diff_augment(x, policy, torch.Generator().manual_seed(1))
    c = diff_augment(x, policy, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_and_cutout_blanks_a_square():
    x = torch.arange(64.0).view(1, 1, 8, 8) + 1
    gen = torch.Generator().manual_seed(0)
    shifted = translation(x, gen, ratio=0.25)
    # Every non-zero output pixel is the input pixel at one common offset.
    ys, xs = torch.nonzero(shifted[0, 0], as_tuple=True)
    src = shifted[0, 0, ys, xs] - 1
    dy, dx = set((ys - src.long() // 8).tolist()), set((xs - src.long() % 8).tolist())
    assert len(dy) == 1 and len(dx) == 1 and abs(dy.pop()) <= 2 and abs(dx.pop()) <= 2
    blank = cutout(torch.ones(3, 2, 8, 8), torch.Generator().manual_seed(0), ratio=0.5)
    zeros = (blank == 0).all(1).sum((1, 2))
    assert ((zeros > 0) & (zeros <= 16)).all()  # a 4×4 square, clipped at the border


def test_ema_and_standing_stats(dataset, tmp_path):
    trainer = Trainer(dataset, TINY.replace(steps=1), tmp_path)
    ema = GeneratorEMA(trainer.G, decay=0.5)
    before = ema.model.linear.weight.clone()
    with torch.no_grad():
        trainer.G.linear.weight.add_(1.0)
    ema.update(trainer.G, step=100)  # decay 0.5 at this step
    assert torch.allclose(ema.model.linear.weight, before + 0.5)
    assert ema.effective_decay(0) == pytest.approx(0.1)

    G = trainer.G
    out_bn = G.output_layer[0]
    means = []
    hook = out_bn.register_forward_pre_hook(lambda m, inp: means.append(inp[0].mean((0, 2, 3))))
    u_before = G.linear.u0.clone()
    G2 = standing_stats(G, batches=3, batch_size=4, gen=torch.Generator().manual_seed(0))
    hook.remove()
    G2.output_layer[0]._forward_pre_hooks.clear()
    assert len(means) == 3
    assert torch.allclose(G2.output_layer[0].stored_mean, torch.stack(means).mean(0), atol=1e-5)
    assert torch.equal(G.linear.u0, u_before) and torch.equal(G2.linear.u0, u_before)
    assert not torch.equal(G.output_layer[0].stored_mean, G2.output_layer[0].stored_mean)


def test_export_loads_with_load_prior(dataset, tmp_path):
    trainer = Trainer(dataset, TINY.replace(steps=2), tmp_path / "run")
    list(trainer.run())
    info = export_prior(
        tmp_path / "run" / CHECKPOINT_NAME,
        tmp_path / "model",
        class_names=["a", "b", "c"],
    )  # standing statistics as the run's settings say (TINY: 2 × 4 samples)
    assert info["step"] == 2 and info["images_seen"] == 8
    cfg = json.loads((tmp_path / "model" / "config.json").read_text())
    assert cfg["resolution"] == 32 and cfg["G_ch"] == 8 and cfg["n_classes"] == 3
    from safetensors.torch import load_file

    assert (
        load_file(str(tmp_path / "model" / "D.safetensors"))["linear.weight"].dtype == torch.float16
    )
    prior = load_prior(tmp_path / "model")
    assert prior.class_names == ["a", "b", "c"]
    with torch.no_grad():
        img = prior.G(torch.randn(1, prior.G.dim_z), prior.G.shared(torch.tensor([1])))
    assert img.shape == (1, 3, 32, 32) and torch.isfinite(img).all()
    ema_w = trainer.ema.model.linear.weight
    assert torch.allclose(prior.G.linear.weight, ema_w, atol=1e-3, rtol=1e-3)


def test_cli_train_and_resume(npz_path, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(npz_path),
        "--out",
        str(out),
        "--res",
        "32",
        "--ch",
        "8",
        "--batch",
        "2",
        "--steps",
        "2",
        "--threads",
        "1",
        "--log-every",
        "1",
    ]
    assert cli_main(args) == 0
    text = capsys.readouterr().out
    assert "step 2/2" in text and "ETA" in text and "img/s" in text
    state = default_state_dir(out) / CHECKPOINT_NAME
    assert state.is_file() and (out / "train.log").is_file()
    assert list((out / "samples").glob("*.png"))
    assert (
        cli_main(
            [
                "train",
                "--data",
                str(npz_path),
                "--out",
                str(out),
                "--steps",
                "3",
                "--resume",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert torch.load(state, weights_only=True)["step"] == 3
    assert (
        cli_main(
            [
                "train",
                "--data",
                str(npz_path),
                "--out",
                str(out),
                "--ch",
                "16",
                "--resume",
                "--threads",
                "1",
            ]
        )
        == 1
    )
    assert "does not match" in capsys.readouterr().err
    assert cli_main(["train", "--data", str(tmp_path / "none.npz"), "--out", str(out)]) == 1
    assert "not found" in capsys.readouterr().err


def test_cli_resume_state_lives_in_the_user_cache_unless_a_state_dir_is_given(
    npz_path, tmp_path, capsys
):
    """The resume state (tens of MB) is never written into the run folder (a repository
    once carried one): by default it goes to the user cache, one folder per --out, where
    --resume finds it again; --state-dir puts it elsewhere."""
    out = tmp_path / "runs" / "prior"
    args = [
        "train",
        "--data",
        str(npz_path),
        "--out",
        str(out),
        "--res",
        "32",
        "--ch",
        "8",
        "--batch",
        "2",
        "--threads",
        "1",
    ]
    assert cli_main([*args, "--steps", "1"]) == 0
    state_dir = default_state_dir(out)
    assert state_dir.parent == paths.cache_dir() / "training"
    assert state_dir.is_relative_to(os.environ["DGP_STUDIO_HOME"])  # the tests' user dirs
    assert (state_dir / CHECKPOINT_NAME).is_file()
    assert not list(out.rglob("*.pt")) and (out / "train.log").is_file()
    assert str(state_dir) in capsys.readouterr().out  # said where it is
    assert cli_main([*args, "--steps", "2", "--resume"]) == 0
    assert torch.load(state_dir / CHECKPOINT_NAME, weights_only=True)["step"] == 2
    # another run folder has a state of its own: nothing to resume there
    assert cli_main([*args[:4], str(tmp_path / "other"), *args[5:], "--resume"]) == 1
    assert "no training checkpoint" in capsys.readouterr().err
    # --state-dir: written there, and --resume needs it to find the state again
    mine = tmp_path / "state"
    assert (
        cli_main(
            [*args, "--steps", "1", "--out", str(tmp_path / "third"), "--state-dir", str(mine)]
        )
        == 0
    )
    assert (mine / CHECKPOINT_NAME).is_file()
    assert not (default_state_dir(tmp_path / "third") / CHECKPOINT_NAME).exists()
    assert (
        cli_main(
            [
                *args,
                "--steps",
                "2",
                "--out",
                str(tmp_path / "third"),
                "--state-dir",
                str(mine),
                "--resume",
            ]
        )
        == 0
    )
    assert torch.load(mine / CHECKPOINT_NAME, weights_only=True)["step"] == 2


def test_cli_train_ctrl_c_saves_a_checkpoint_to_resume_from(
    npz_path, tmp_path, capsys, monkeypatch
):
    import signal

    from dgp_engine.training import trainer as trainer_module

    out = tmp_path / "run"
    real_step = trainer_module.Trainer.train_step
    calls = {"n": 0}

    def step(self, *a, **k):
        result = real_step(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGTERM)  # as from `kill`; Ctrl-C acts the same
        return result

    monkeypatch.setattr(trainer_module.Trainer, "train_step", step)
    args = [
        "train",
        "--data",
        str(npz_path),
        "--out",
        str(out),
        "--res",
        "32",
        "--ch",
        "8",
        "--batch",
        "2",
        "--steps",
        "50",
        "--threads",
        "1",
        "--checkpoint-minutes",
        "60",
    ]
    assert cli_main(args) == 130
    text = capsys.readouterr().out
    assert "Stopping after this step" in text and "continue with --resume" in text
    state = default_state_dir(out) / CHECKPOINT_NAME
    saved = torch.load(state, weights_only=True)["step"]
    assert 2 <= saved < 50
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    monkeypatch.setattr(trainer_module.Trainer, "train_step", real_step)
    assert (
        cli_main(
            [
                "train",
                "--data",
                str(npz_path),
                "--out",
                str(out),
                "--steps",
                str(saved + 1),
                "--threads",
                "1",
                "--resume",
            ]
        )
        == 0
    )
    assert torch.load(state, weights_only=True)["step"] == saved + 1

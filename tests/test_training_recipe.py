"""The bundled prior's training recipe (LeCam, adaptive augmentation, accumulation, D steps)
and its scoreboard (kill-safe rows, resume, best-checkpoint export)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine.cli import main as cli_main
from dgp_engine.errors import DGPError
from dgp_engine.priors.load import load_prior
from dgp_engine.training import (
    Evaluator,
    Trainer,
    TrainSettings,
    best_row,
    load_npz,
    read_scoreboard,
    shipped_generator,
)
from dgp_engine.training.augment import ada_adjust, adaptive_augment
from dgp_engine.training.classifier import SmallClassifier, save_classifier
from dgp_engine.training.scoreboard import TIMING
from dgp_engine.training.trainer import SNAPSHOT_DIR, ema_anchor, lecam_term, read_checkpoint

TINY = TrainSettings(
    resolution=32,
    ch=8,
    batch=8,
    steps=4,
    dim_z=20,
    shared_dim=8,
    checkpoint_every_s=float("inf"),
    standing_batches=2,
    standing_batch=4,
    grid_columns=2,
)
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "export_bundled.py"


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(
        path,
        images=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
        labels=(np.arange(20) % 3).astype(np.int64),
    )
    return path


@pytest.fixture(scope="module")
def dataset(npz_path):
    return load_npz(npz_path, n_classes=3)


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    """A small random classifier with a held-out list, as scripts/eval_prior.py saves one."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("clf") / "clf.safetensors"
    save_classifier(SmallClassifier(3, width=4).eval(), path)
    path.with_suffix(".json").write_text(json.dumps({"holdout_indices": [0, 5, 10, 15]}))
    return path


def _evaluator(dataset, samples=12):
    torch.manual_seed(0)
    clf = SmallClassifier(3, width=4).eval()
    train, val = dataset.split([0, 5, 10, 15])
    return train, Evaluator.build(clf, val, train, samples=samples)


# --- LeCam ------------------------------------------------------------------------------
def test_lecam_term_pulls_outputs_towards_the_other_anchor():
    out_real = torch.tensor([1.0, 3.0], requires_grad=True)
    out_fake = torch.tensor([-2.0], requires_grad=True)
    # anchors: real 0.5, fake -1; batch size 4 (the micro-batch is part of a batch of 4)
    term = lecam_term(out_real, out_fake, anchor_real=0.5, anchor_fake=-1.0, n=4)
    assert term.item() == pytest.approx(((1 + 1) ** 2 + (3 + 1) ** 2 + (-2 - 0.5) ** 2) / 4)
    term.backward()
    # gradient descent moves real outputs down towards the fake anchor, fake ones up
    assert out_real.grad.tolist() == pytest.approx([2 * 2 / 4, 2 * 4 / 4])
    assert out_fake.grad.tolist() == pytest.approx([2 * -2.5 / 4])
    assert ema_anchor(None, 2.0, 0.9) == 2.0  # the first value starts the anchor
    assert ema_anchor(2.0, 1.0, 0.9) == pytest.approx(1.9)


def test_lecam_anchors_follow_the_discriminator_outputs(dataset):
    trainer = Trainer(dataset, TINY.replace(lecam=0.5, lecam_decay=0.9), "unused")
    seen = []

    def keep(module, inputs, output):
        seen.append(output[0].detach().flatten().clone())

    hook = trainer.D.register_forward_hook(keep)
    trainer.d_step()
    first = seen[0]  # real outputs, then fake ones
    assert trainer.anchor_real == pytest.approx(first[:8].mean().item(), abs=1e-6)
    assert trainer.anchor_fake == pytest.approx(first[8:].mean().item(), abs=1e-6)
    a_real, a_fake = trainer.anchor_real, trainer.anchor_fake
    seen.clear()
    trainer.d_step()
    hook.remove()
    out = seen[0]
    assert trainer.anchor_real == pytest.approx(
        0.9 * a_real + 0.1 * out[:8].mean().item(), abs=1e-6
    )
    assert trainer.anchor_fake == pytest.approx(
        0.9 * a_fake + 0.1 * out[8:].mean().item(), abs=1e-6
    )


def test_lecam_changes_d_gradients_only_once_anchors_exist(dataset):
    def grads_after(lecam, steps):
        t = Trainer(dataset, TINY.replace(lecam=lecam), "unused")
        for _ in range(steps):
            t.d_step()
        return torch.cat([p.grad.flatten() for p in t.D.parameters() if p.grad is not None])

    assert torch.equal(grads_after(0.0, 1), grads_after(1.0, 1))  # no anchor in step 1
    assert not torch.allclose(grads_after(0.0, 2), grads_after(1.0, 2))


# --- adaptive augmentation -----------------------------------------------------------------
def test_ada_strength_moves_towards_the_target():
    assert ada_adjust(0.2, sign_mean=0.9, target=0.6, images=1000, speed_images=10_000) == (
        pytest.approx(0.3)
    )
    assert ada_adjust(0.2, sign_mean=0.1, target=0.6, images=1000, speed_images=10_000) == (
        pytest.approx(0.1)
    )
    assert ada_adjust(0.0, sign_mean=-1.0, target=0.6, images=1000, speed_images=10) == 0.0
    assert ada_adjust(0.95, sign_mean=1.0, target=0.6, images=1000, speed_images=10) == 1.0


def test_adaptive_augment_applies_each_transform_with_probability_p():
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    same = adaptive_augment(x, ("color", "cutout"), 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(same, x)
    all_changed = adaptive_augment(x, ("cutout",), 1.0, torch.Generator().manual_seed(0))
    assert all(not torch.equal(a, b) for a, b in zip(all_changed, x, strict=True))
    some = adaptive_augment(x, ("cutout",), 0.5, torch.Generator().manual_seed(0))
    changed = sum(not torch.equal(a, b) for a, b in zip(some, x, strict=True))
    assert 16 < changed < 48


@pytest.mark.parametrize(("shift", "p0", "direction"), [(50.0, 0.2, 1), (-50.0, 0.5, -1)])
def test_trainer_raises_p_when_d_is_sure_of_real_images(dataset, shift, p0, direction):
    """D's outputs shifted far positive (sure of everything: the overfitting sign) raise
    p; far negative lower it, by batch/speed per adjustment."""
    settings = TINY.replace(ada_target=0.6, ada_speed=80, ada_interval=1, ada_p0=p0)
    trainer = Trainer(dataset, settings, "unused")
    trainer.D.register_forward_hook(lambda m, i, out: (out[0] + shift, out[1]))
    trainer.d_step()
    assert trainer.ada_p == pytest.approx(p0 + direction * 8 / 80)
    trainer.d_step()
    assert trainer.ada_p == pytest.approx(p0 + direction * 16 / 80)


# --- accumulation and D steps ----------------------------------------------------------------
def _grads(trainer):
    return {
        f"{name}.{k}": p.grad.clone()
        for name, net in (("D", trainer.D), ("G", trainer.G))
        for k, p in net.named_parameters()
        if p.grad is not None
    }


@pytest.mark.parametrize("options", [{}, {"lecam": 0.5, "ada_target": 0.6, "ada_p0": 0.5}])
def test_accumulation_gives_the_gradients_of_the_large_batch(dataset, options):
    def one_step(**changes):
        t = Trainer(dataset, TINY.replace(**options, **changes), "unused")
        t.anchor_real, t.anchor_fake = 0.3, -0.2  # LeCam active from the first step
        t.train_step()
        return t

    large, split = one_step(), one_step(accumulate=4)  # 4 micro-batches of 2
    g_large, g_split = _grads(large), _grads(split)
    assert g_large.keys() == g_split.keys() and len(g_large) > 20
    for k in g_large:
        # float32 sums in another order: equal to ~1e-5 of the network's gradient scale
        # (not each tensor's: a conv bias before batch norm has a zero gradient, noise)
        scale = max(v.abs().max().item() for n, v in g_large.items() if n[0] == k[0])
        torch.testing.assert_close(g_split[k], g_large[k], rtol=1e-4, atol=1e-4 * scale, msg=k)
    for (k, a), b in zip(large.D.named_buffers(), split.D.buffers(), strict=True):
        torch.testing.assert_close(b, a, msg=k)  # one spectral-norm power step, not four
    assert split.anchor_real == pytest.approx(large.anchor_real, abs=1e-6)
    # ... and a different batch really gives other gradients (the comparison can fail)
    smaller = one_step(batch=2)
    assert not torch.allclose(_grads(smaller)["D.linear.weight"], g_large["D.linear.weight"])


def test_accumulation_must_divide_the_batch(dataset):
    with pytest.raises(DGPError, match="does not split into 3 equal"):
        Trainer(dataset, TINY.replace(accumulate=3), "unused")


def test_d_steps_per_g_step(dataset):
    trainer = Trainer(dataset, TINY.replace(d_steps=3), "unused")
    calls = []
    trainer.opt_D.register_step_post_hook(lambda *a: calls.append("D"))
    trainer.opt_G.register_step_post_hook(lambda *a: calls.append("G"))
    trainer.train_step()
    assert calls == ["D", "D", "D", "G"]
    assert trainer.images_seen == 3 * 8 and trainer.step == 1


# --- EMA and standing BN as shipped ---------------------------------------------------------
def test_scoreboard_scores_exactly_the_exported_generator(dataset, tmp_path):
    trainer = Trainer(dataset, TINY.replace(steps=2), tmp_path / "run")
    list(trainer.run())
    snap = read_checkpoint(trainer.snapshot_path(2), snapshot=True)
    G = shipped_generator(snap)
    # the EMA G, not G; its BN statistics recomputed over fresh samples
    assert not torch.equal(trainer.ema.model.linear.weight, trainer.G.linear.weight)
    assert torch.equal(G.linear.weight, trainer.ema.model.linear.weight.half().float())
    bn = G.output_layer[0]
    assert not torch.equal(bn.stored_mean, trainer.ema.model.output_layer[0].stored_mean)
    from dgp_engine.training import export_prior

    export_prior(trainer.snapshot_path(2), tmp_path / "model")
    prior = load_prior(tmp_path / "model")
    z = torch.randn(3, G.dim_z, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = torch.arange(3)
        assert torch.equal(prior.G(z, prior.G.shared(y)), G(z, G.shared(y)))


# --- scoreboard, kill and resume ------------------------------------------------------------
def _rows_without_timing(state):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_scoreboard(state)]


def test_scoreboard_rows_and_grid(dataset, tmp_path):
    train, evaluator = _evaluator(dataset)
    trainer = Trainer(
        train,
        TINY.replace(checkpoint_every=2),
        tmp_path / "out",
        evaluator=evaluator,
        state_dir=tmp_path / "state",
    )
    reports = list(trainer.run())
    rows = read_scoreboard(tmp_path / "state" / "scoreboard.json")
    assert [r["step"] for r in rows] == [2, 4] and reports[1].score == rows[0]
    for key in ("accuracy", "fid_val", "kid_val", "fid_train", "kid_train", "cpu_hours"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert rows[1]["images_seen"] == 32 and rows[1]["samples"] == 12
    assert rows[1]["cpu_hours"] > 0
    grid = np.asarray(Image.open(tmp_path / "out" / rows[1]["grid"]))
    assert grid.shape == (2 * 32, 3 * 32, 3)  # a row per fixed latent, a column per class
    assert "| **" in (tmp_path / "out" / "scoreboard.md").read_text()
    assert (tmp_path / "state" / "scoreboard.csv").read_text().startswith("step,")
    assert len(list((tmp_path / "state" / SNAPSHOT_DIR).glob("step_*.pt"))) == 2


def test_resume_after_kill_reproduces_the_scoreboard(dataset, tmp_path):
    train, evaluator = _evaluator(dataset)
    settings = TINY.replace(checkpoint_every=2, steps=6, lecam=0.3, accumulate=2, d_steps=2)
    settings = settings.replace(ada_target=0.6, ada_speed=100, ada_interval=3, ada_p0=0.5)

    def trainer(name, resume=False, ev=evaluator):
        return Trainer(
            train,
            settings,
            tmp_path / name,
            resume=resume,
            evaluator=ev,
            state_dir=tmp_path / name / "state",
        )

    list(trainer("straight").run())
    straight = _rows_without_timing(tmp_path / "straight" / "state" / "scoreboard.json")
    assert [r["step"] for r in straight] == [2, 4, 6]
    assert len({r["ada_p"] for r in straight}) == 3  # p moved: its state must resume too

    # killed mid-interval (step 3, nothing saved since step 2): resuming redoes step 3
    run = trainer("killed").run()
    for report in run:
        if report.step == 3:
            break
    run.close()

    # killed again, between the checkpoint of step 4 and its scoreboard row
    class Killed(BaseException):
        pass

    class DiesScoring:
        def evaluate(self, G):
            raise Killed

    with pytest.raises(Killed):
        list(trainer("killed", resume=True, ev=DiesScoring()).run())
    state = tmp_path / "killed" / "state"
    assert read_checkpoint(state / "checkpoint.pt")["step"] == 4
    assert [r["step"] for r in read_scoreboard(state / "scoreboard.json")] == [2]
    list(trainer("killed", resume=True).run())
    assert _rows_without_timing(state / "scoreboard.json") == straight


def test_cpu_budget_stops_with_a_checkpoint(dataset, tmp_path):
    trainer = Trainer(dataset, TINY.replace(steps=100, max_cpu_hours=1e-9), tmp_path)
    reports = list(trainer.run())
    assert [r.step for r in reports] == [1] and reports[0].checkpoint is not None
    assert trainer.budget_spent() and read_checkpoint(reports[0].checkpoint)["cpu_s"] > 0
    again = Trainer(dataset, TINY.replace(steps=100, max_cpu_hours=1e-9), tmp_path, resume=True)
    assert list(again.run()) == []  # spent: resuming does nothing until the budget grows


def test_cpu_budget_counts_this_process_cpu_time_not_wall_time(dataset, tmp_path, monkeypatch):
    """On a shared machine a step that waits (here: sleeps) costs wall time but almost no
    CPU time; only the process's own CPU time is charged to --max-cpu-hours."""
    import time

    trainer = Trainer(dataset, TINY.replace(steps=2, max_cpu_hours=1.0), tmp_path)

    def waiting_step() -> tuple[float, float, float]:
        time.sleep(0.3)
        trainer.step += 1
        return 0.5, 0.5, 0.0

    monkeypatch.setattr(trainer, "train_step", waiting_step)
    list(trainer.run())
    assert trainer.step == 2 and trainer.elapsed_s >= 0.6
    assert trainer.cpu_s < 0.2  # wall × threads would be ≥ 0.6


def test_best_row_picks_by_metric_not_by_order():
    rows = [
        {"step": 2, "fid_val": 9.0, "accuracy": 0.2},
        {"step": 4, "fid_val": 5.0, "accuracy": 0.3},
        {"step": 6, "fid_val": 7.0, "accuracy": 0.4},
        {"step": 8, "fid_val": 5.0, "accuracy": 0.1},
    ]
    assert best_row(rows)["step"] == 4  # lowest held-out FID; a tie goes to the earlier
    assert best_row(rows, "accuracy")["step"] == 6
    with pytest.raises(DGPError, match="unknown scoreboard metric"):
        best_row(rows, "loss")
    with pytest.raises(DGPError, match="no checkpoint scored by kid_val"):
        best_row(rows, "kid_val")


def _script():
    spec = importlib.util.spec_from_file_location("export_bundled", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_best_ships_the_best_checkpoint_not_the_last(dataset, tmp_path):
    train, evaluator = _evaluator(dataset)
    state = tmp_path / "state"
    list(
        Trainer(
            train,
            TINY.replace(checkpoint_every=2),
            tmp_path / "out",
            evaluator=evaluator,
            state_dir=state,
        ).run()
    )
    board = json.loads((state / "scoreboard.json").read_text())
    board["rows"][0]["fid_val"], board["rows"][1]["fid_val"] = 1.0, 2.0  # step 2 is best
    (state / "scoreboard.json").write_text(json.dumps(board))
    (tmp_path / "classes.tsv").write_text("label\tname\n0\ta\n1\tb\n2\tc\n")
    (tmp_path / "recipe.md").write_text("| variant | FID |\n|---|---|\n| lecam | 1.0 |\n")
    out = tmp_path / "model"
    args = ["--best", str(state), "--out", str(out), "--classes-tsv", str(tmp_path / "classes.tsv")]
    assert _script().main([*args, "--recipe-notes", str(tmp_path / "recipe.md")]) == 0
    prior = load_prior(out)
    best = shipped_generator(read_checkpoint(state / SNAPSHOT_DIR / "step_0000002.pt", True))
    last = shipped_generator(read_checkpoint(state / SNAPSHOT_DIR / "step_0000004.pt", True))
    assert torch.equal(prior.G.linear.weight, best.linear.weight)
    assert not torch.equal(prior.G.linear.weight, last.linear.weight)
    card = (out / "MODEL_CARD.md").read_text()
    assert "Shipped: step 2, the best by fid_val" in card and "| lecam | 1.0 |" in card
    assert "Steps: **2**" in card and "16 of its 9,469 images" in card
    assert _script().main([*args, "--select", "accuracy"]) == 0  # another metric may pick 4


# --- the command line --------------------------------------------------------------------
def test_cli_recipe_options_and_scoreboard(npz_path, classifier_file, tmp_path, capsys):
    out, state = tmp_path / "run", tmp_path / "state"
    common = ["train", "--data", str(npz_path), "--out", str(out), "--state-dir", str(state)]
    common += [
        "--res",
        "32",
        "--threads",
        "1",
        "--eval-classifier",
        str(classifier_file),
        "--eval-samples",
        "6",
    ]
    first = [
        *common,
        *("--ch", "8", "--batch", "4", "--steps", "2"),
        *("--accumulate", "2", "--d-steps", "2", "--lecam", "0.3", "--ada-target", "0.6"),
        *("--ada-kimg", "0.05", "--lr-g", "1e-4", "--lr-d", "3e-4"),
    ]
    assert cli_main(first) == 0
    text = capsys.readouterr().out
    assert "scoreboard step 2: accuracy" in text
    ckpt = read_checkpoint(state / "checkpoint.pt")
    s = ckpt["settings"]
    assert (s["accumulate"], s["d_steps"], s["lecam"], s["ada_target"]) == (2, 2, 0.3, 0.6)
    assert s["ada_speed"] == 50 and (s["lr_g"], s["lr_d"]) == (1e-4, 3e-4)
    assert ckpt["data"]["n_images"] == 16  # the classifier's 4 held-out images left out
    assert ckpt["images_seen"] == 2 * 2 * 4
    assert cli_main([*common, "--steps", "3", "--resume"]) == 0  # settings come back
    assert [r["step"] for r in read_scoreboard(state / "scoreboard.json")] == [2, 3]
    assert (out / "scoreboard.md").is_file()
    capsys.readouterr()
    assert cli_main([*common, "--steps", "5"]) == 1  # a new run never replaces this one
    assert "already holds a run" in capsys.readouterr().err
    assert [r["step"] for r in read_scoreboard(state / "scoreboard.json")] == [2, 3]
    other = [*common[:4], str(tmp_path / "run2"), common[5], str(tmp_path / "state2")]
    other += common[7:]
    assert cli_main([*other, "--accumulate", "3", "--batch", "4", "--steps", "1"]) == 1
    assert "does not split into 3" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    args = [*other[:-4], "--eval-classifier", str(bad), "--steps", "1"]
    assert cli_main(args) == 1
    assert "could not read the evaluation classifier" in capsys.readouterr().err

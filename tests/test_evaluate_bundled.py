"""scripts/evaluate_bundled.py (issue 24's evidence for a candidate bundled prior) and
bench/tune_bundled_presets.py: the held-out images, the goal checks, the grids, and one
tiny end-to-end run of the real `dgp` commands on the shipped bundled prior."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgp_engine.errors import DatasetError, InputError
from dgp_engine.tasks.evaluate import load_dataset, weights_digest

from .conftest import SHARED
from .task_helpers import tiny_model_folder

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "resources" / "models" / "bundled"
ARCHIVE = SHARED / "datasets" / "imagenette" / "train.npz"


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


eb = _load("evaluate_bundled", REPO / "scripts" / "evaluate_bundled.py")
tune = _load("tune_bundled_presets", REPO / "bench" / "tune_bundled_presets.py")


# --- the held-out images ------------------------------------------------------------------
@pytest.fixture
def archive(tmp_path):
    """A class-sorted archive of 30 8-px images: rows 0-9 class 0, 10-19 class 1, 20-29 class 2,
    each image filled with its row number."""
    images = np.repeat(np.arange(30, dtype=np.uint8), 8 * 8 * 3).reshape(30, 8, 8, 3)
    path = tmp_path / "train.npz"
    np.savez(path, images=images, labels=np.repeat(np.arange(3), 10).astype(np.int64))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_held_out_rows_are_written_sorted_with_their_labels_and_rows(archive, tmp_path):
    held = [25, 3, 12, 0, 17]
    sub = eb.extract(archive, held, tmp_path / "w" / "heldout.npz", expected_sha256=_sha(archive))
    assert sub.source_indices.tolist() == [0, 3, 12, 17, 25]
    assert sub.images.shape == (5, 8, 8, 3) and sub.images.dtype == np.uint8
    assert sub.images[:, 0, 0, 0].tolist() == [0, 3, 12, 17, 25]  # each image is its row
    assert sub.labels.tolist() == [0, 0, 1, 1, 2]
    with np.load(sub.path) as f:  # the file holds the same
        assert f["images"].tolist() == sub.images.tolist()
        assert f["labels"].tolist() == [0, 0, 1, 1, 2]
        assert f["source_indices"].tolist() == [0, 3, 12, 17, 25]
    data = load_dataset(sub.path)  # and `dgp eval --data` reads it
    assert data.labels == [0, 0, 1, 1, 2] and len(data.images) == 5
    assert eb.first_of_each_class(sub.labels, 3) == [0, 2, 4]


def test_training_part_is_the_other_rows_spread(archive, tmp_path):
    held = [25, 3, 12, 0, 17]
    sub = eb.extract(
        archive, held, tmp_path / "t.npz", part="training", pick=5, expected_sha256=None
    )
    rest = [i for i in range(30) if i not in held]
    assert len(sub.labels) == 5 and not set(sub.source_indices.tolist()) & set(held)
    assert sub.source_indices.tolist() == [rest[i] for i in (0, 6, 12, 18, 24)]
    assert sub.images[:, 0, 0, 0].tolist() == sub.source_indices.tolist()
    assert sorted(set(sub.labels.tolist())) == [0, 1, 2]  # spread covers every class


def test_missing_or_other_archive_is_refused_in_one_sentence(archive, tmp_path):
    with pytest.raises(DatasetError, match="is missing.*--data"):
        eb.extract(tmp_path / "nope.npz", [0], tmp_path / "h.npz")
    with pytest.raises(DatasetError, match="not the Imagenette archive.*--data-sha256 any"):
        eb.extract(archive, [0], tmp_path / "h.npz")  # the real archive's digest expected
    assert not (tmp_path / "h.npz").exists()
    with pytest.raises(DatasetError, match="out of range"):
        eb.extract(archive, [0, 30], tmp_path / "h.npz", expected_sha256=None)
    np.savez(tmp_path / "bad.npz", pictures=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match="no images or labels"):
        eb.extract(tmp_path / "bad.npz", [0], tmp_path / "h.npz", expected_sha256=None)
    with pytest.raises(DatasetError, match="no image of class 2"):
        eb.first_of_each_class(np.array([0, 1, 1, 0]), 3)


def test_shipped_held_out_list_and_archive():
    held = eb.read_holdout_indices()
    assert len(held) == 947 == len(set(held)) and held == sorted(held)
    assert 0 <= held[0] and held[-1] < 9469
    eb.check_archive(ARCHIVE)  # the shared archive is the one the list indexes


# --- the goals ----------------------------------------------------------------------------
def _r(task: str, method: str, psnr: float | None) -> dict:
    return {"task": task, "method": method, "mean": {"psnr": psnr}, "count": 16}


def _results(rec_dgp, rec_z, inp_dgp, inp_z, inp_dip) -> list[dict]:
    return [
        _r("reconstruct", "dgp", rec_dgp),
        _r("reconstruct", "z-only", rec_z),
        _r("reconstruct", "dip", 30.0),
        _r("inpaint", "dgp", inp_dgp),
        _r("inpaint", "z-only", inp_z),
        _r("inpaint", "dip", inp_dip),
        _r("colorize", "dgp", 40.0),
    ]


def test_goals_met():
    rec, inp = eb.goal_checks(_results(24.0, 17.5, 15.0, 12.0, 13.0))
    assert rec["passed"] is True and rec["value"] == pytest.approx(6.5)
    assert "+6.50 dB" in rec["line"] and rec["line"].endswith("— met")
    assert inp["passed"] is True and "DGP 15.00 dB, z-only 12.00 dB, DIP 13.00 dB" in inp["line"]
    # exactly +6 dB meets the goal
    assert eb.goal_checks(_results(23.0, 17.0, 15.0, 12.0, 13.0))[0]["passed"] is True


def test_goals_not_met():
    rec, inp = eb.goal_checks(_results(22.9, 17.0, 12.5, 12.0, 13.0))
    assert rec["passed"] is False and rec["line"].endswith("NOT met")
    assert inp["passed"] is False  # above z-only but below DIP
    assert eb.goal_checks(_results(22.9, 17.0, 13.5, 14.0, 13.0))[1]["passed"] is False
    assert eb.goal_checks(_results(22.9, 17.0, 13.0, 13.0, 12.0))[1]["passed"] is False  # a tie


def test_goals_need_their_results():
    rec, inp = eb.goal_checks([_r("reconstruct", "dgp", 20.0), _r("inpaint", "dgp", 15.0)])
    assert rec["passed"] is None and inp["passed"] is None
    assert "not measured" in rec["line"]
    with pytest.raises(InputError, match="two results of inpaint dgp"):
        eb.goal_checks([_r("inpaint", "dgp", 15.0), _r("inpaint", "dgp", 16.0)])


def test_timing_goals():
    colour, fill = eb.timing_checks(
        {"colorize": {"seconds": 14.0, "threads": 2}, "inpaint": {"seconds": 31.0, "threads": 2}}
    )
    assert colour["passed"] is True and fill["passed"] is False
    assert "measured on" not in colour["line"]
    (colour, fill) = eb.timing_checks({"colorize": {"seconds": 16.0, "threads": 1}})
    assert colour["passed"] is False and "measured on 1 thread(s), not 2" in colour["line"]
    assert fill["passed"] is None


def test_a_result_is_kept_only_for_the_same_weights_preset_and_images(tmp_path):
    run = eb.EvalRun(
        "inpaint",
        "z-only",
        "bundled_inpainting",
        tmp_path / "r.json",
        data=tmp_path / "heldout.npz",
        model=BUNDLED,
        threads=1,
        limit=2,
    )
    result = {
        "complete": True,
        "count": 2,
        "model": {"checksum": "abc"},
        "data": {"source": str(tmp_path / "heldout.npz")},
        "preset": eb.expected_preset("bundled_inpainting", "inpaint", "z-only", None),
    }
    assert result["preset"]["update_G"] is False  # z-only's preset, as `dgp eval` records
    assert not run.done("abc", 2)  # no file yet
    run.json.write_text(json.dumps(result))
    assert run.done("abc", 2)
    assert not run.done("abd", 2) and not run.done("abc", 3)
    run.json.write_text(json.dumps({**result, "complete": False}))
    assert not run.done("abc", 2)
    other = {**result, "preset": eb.expected_preset("bundled_inpainting", "inpaint", "dgp", 0.5)}
    run.json.write_text(json.dumps(other))
    assert not run.done("abc", 2)


def test_presets_of_the_registry_then_a_folder_then_overrides(tmp_path):
    (tmp_path / "bundled_inpainting.toml").write_text("iterations = [1]\n")
    over = eb.parse_overrides(["colorize=colorization"], ["colorize", "inpaint"])
    assert eb.preset_for("inpaint", None, {}) == "bundled_inpainting"
    assert eb.preset_for("reconstruct", tmp_path, {}) == "bundled_restore"
    assert eb.preset_for("inpaint", tmp_path, over) == str(tmp_path / "bundled_inpainting.toml")
    assert eb.preset_for("colorize", tmp_path, over) == "colorization"
    with pytest.raises(InputError, match="TASK=NAME"):
        eb.parse_overrides(["colorise=x"], ["colorize"])


# --- the grids ----------------------------------------------------------------------------
def _cell(value: int, size: int = 4) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_labelled_grid_places_every_cell_enlarged_at_the_bottom_right():
    cells = [[_cell(10 * i + j) for j in range(5)] for i in range(3)]
    grid = eb.labelled_grid(cells, list("abcde"), ["one", "two", "three"], scale=3)
    h, w = grid.shape[:2]
    assert grid.dtype == np.uint8 and h > 3 * 12 and w > 5 * 12  # room for the labels
    block = grid[h - 36 :, w - 60 :]
    big = [[np.kron(c, np.ones((3, 3, 1), np.uint8)) for c in r] for r in cells]
    expected = np.concatenate([np.concatenate(r, axis=1) for r in big])
    assert np.array_equal(block, expected)
    # without row labels there is no margin
    assert eb.labelled_grid(cells, list("abcde"), ["", "", ""]).shape[1] == 5 * 4


def test_labelled_grid_refuses_wrong_label_counts():
    cells = [[_cell(0) for _ in range(10)] for _ in range(3)]
    with pytest.raises(ValueError, match="10 column labels and 3 row labels, got 9 and 3"):
        eb.labelled_grid(cells, ["x"] * 9, ["a", "b", "c"])
    with pytest.raises(ValueError, match="got 10 and 2"):
        eb.labelled_grid(cells, ["x"] * 10, ["a", "b"])


def test_colorize_grid_rows_are_grey_results_original(tmp_path):
    folders = [tmp_path / "after", tmp_path / "before"]
    for f, shade in zip(folders, (100, 200), strict=True):
        f.mkdir()
        for k in range(10):
            for tag, v in (("input", 1), ("result", shade), ("clean", 50)):
                Image.fromarray(_cell(v + k, 8)).save(f / f"{k:03d}_{tag}.png")
    classes = [f"class {k}" for k in range(10)]
    grid = eb.colorize_grid(folders, ["after", "before"], classes, scale=2)
    h, w = grid.shape[:2]
    rows = grid[h - 4 * 16 :, w - 10 * 16 :]
    assert rows.shape == (64, 160, 3)
    for i, base in enumerate((1, 100, 200, 50)):  # grey, after, before, original
        assert [int(rows[i * 16 + 5, k * 16 + 5, 0]) for k in range(10)] == [
            base + k for k in range(10)
        ]


def test_samples_side_by_side_at_the_same_latents(tmp_path):
    a = tiny_model_folder(tmp_path / "a", seed=0)
    b = tiny_model_folder(tmp_path / "b", seed=1)
    both, classes = eb.samples_grid([("before", a), ("after", b)], columns=3)
    one, _ = eb.samples_grid([("after", b)], columns=3)
    assert len(classes) == 5 and classes[0] == "tench"
    assert one.shape[1] == 5 * 32 and both.shape[1] == 2 * 5 * 32 + 16
    assert np.array_equal(both[:, -one.shape[1] :], one)  # the right panel is the candidate
    assert not np.array_equal(both[:, : one.shape[1]], one)


def test_tuning_grid_candidates_and_their_presets(tmp_path):
    args = argparse.Namespace(
        task=["colorize", "inpaint"],
        base=[],
        scale=[0.5, 2],
        g_lr=[1.0],
        z_lr=[1.0, 2.0],
        select_num=[50],
    )
    cands = tune.grid_candidates(args)
    assert len(cands) == 8 and len({c["name"] for c in cands}) == 8
    c = next(c for c in cands if c["task"] == "inpaint" and c["iterations_scale"] == 2)
    p = tune.make_preset(
        c["base"], iterations_scale=2, G_lr_scale=1, z_lr_scale=2, select_num=50, name=c["name"]
    )
    from dgp_engine.method.presets import load_preset

    shipped = load_preset("bundled_inpainting")
    assert p.iterations == tuple(2 * i for i in shipped.iterations)
    assert p.z_lrs == tuple(2 * v for v in shipped.z_lrs) and p.G_lrs == shipped.G_lrs
    assert p.select_num == 50 and p.w_mse == shipped.w_mse
    rows = [
        {"task": "inpaint", "name": "fast", "psnr": 14.0, "seconds_per_image": 20.0},
        {"task": "inpaint", "name": "slow", "psnr": 15.0, "cli_seconds": 31.0},
    ]
    for r in rows:
        r["within"] = tune.within(r, eb.TIME_GOALS)
    assert [r["within"] for r in rows] == [True, False]
    assert tune.best_within(rows) == {"inpaint": "fast"}


# --- one tiny end-to-end run --------------------------------------------------------------
def test_end_to_end_on_the_shipped_prior(tmp_path, capsys):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "bundled_inpainting.toml").write_text(
        'name = "bundled_inpainting-tiny"\niterations = [1, 1]\nft_num = [1, 2]\n'
        "G_lrs = 1e-4\nz_lrs = 1e-3\nw_mse = [1, 10]\nselect_num = 2\n"
    )
    (presets / "bundled_colorization.toml").write_text(
        'name = "bundled_colorization-tiny"\niterations = [1]\nft_num = [1]\nG_lrs = 1e-4\n'
        "z_lrs = 1e-3\nselect_num = 1\n"
    )
    out = tmp_path / "out"
    code = eb.main(
        [
            "--prior",
            str(BUNDLED),
            "--out",
            str(out),
            "--data",
            str(ARCHIVE),
            "--limit",
            "1",
            "--threads",
            "1",
            "--preset-dir",
            str(presets),
            "--tasks",
            "inpaint",  # the other tasks run the same code; the goals are tested above
        ]
    )
    assert code == 0, capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    held = eb.read_holdout_indices()
    assert s["digest"] == weights_digest(BUNDLED)
    assert s["presets"]["inpaint"] == str(presets / "bundled_inpainting.toml")
    assert s["presets"]["superres"] == "bundled_superres"  # no candidate: the shipped one
    # no machine paths in what gets committed; threads as the results recorded them
    assert s["data"]["classifier_json"] == "resources/models/bundled/eval_classifier.json"
    assert not Path(s["data"]["archive"]).is_absolute() and s["eval_threads"] == [1]
    assert [(r["task"], r["method"]) for r in s["results"]] == [
        ("inpaint", m) for m in ("dgp", "z-only", "dip")
    ]
    for r in s["results"]:
        assert isinstance(r["psnr"], float) and r["seconds_per_image"] > 0 and r["count"] == 1
        assert r["source_indices"][0] in held
        full = json.loads((out / r["file"]).read_text())
        assert full["complete"] and full["seconds_per_image"] == r["seconds_per_image"]
        assert full["data"]["source"] == str(out / "work" / "heldout.npz")
        assert full["preset"]["name"].split("+")[0].endswith("-tiny")
    psnr = {(r["task"], r["method"]): r["psnr"] for r in s["results"]}
    rec, inp = s["goals"]
    assert rec["passed"] is None and "not measured" in rec["line"]  # no reconstruct run
    assert inp["passed"] == (
        psnr["inpaint", "dgp"] > psnr["inpaint", "z-only"]
        and psnr["inpaint", "dgp"] > psnr["inpaint", "dip"]
    )
    for task in ("colorize", "inpaint"):
        t = s["timings"][task]
        assert t["seconds"] > 0 and t["threads"] == 1 and t["preset"].endswith("-tiny")
    assert [g["passed"] is not None for g in s["timing_goals"]] == [True, True]

    # the held-out file: the shipped list's rows, as uint8 64 px images
    with np.load(out / "work" / "heldout.npz") as f:
        assert f["images"].shape == (947, 64, 64, 3) and f["images"].dtype == np.uint8
        assert f["source_indices"].tolist() == held
    assert (out / "work" / ".gitignore").read_text().splitlines()[-1] == "*"

    # the colorize grid: one held-out photo per class, labelled with the class names
    g = s["colorize_grid"]
    assert g["classes"] == (BUNDLED / "classes.txt").read_text().split("\n")[:10]
    with np.load(ARCHIVE) as f:
        labels, images = f["labels"], f["images"]
        assert labels[g["source_indices"]].tolist() == list(range(10))
        assert set(g["source_indices"]) <= set(held)
        last = images[g["source_indices"][-1]]
    png = np.asarray(Image.open(out / "colorize_grid.png").convert("RGB"))
    assert png.shape[1] > 10 * 192 and png.shape[0] > 3 * 192
    # bottom right: the original of the last class, ×3
    assert np.array_equal(png[-192:, -192:], np.kron(last, np.ones((3, 3, 1), np.uint8)))
    assert len(g["psnr"]["after"]) == 10
    assert Image.open(out / "samples.png").size[0] == 10 * 64

    md = (out / "summary.md").read_text()
    assert "`dgp eval` runs on 1 thread(s) each" in md
    assert rec["line"] in md and inp["line"] in md
    assert "![colorized held-out photos](colorize_grid.png)" in md and "](samples.png)" in md
    assert (out / "eval_table.md").read_text().strip() in md


def test_tuning_candidates_from_a_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[[candidate]]\ntask = "colorize"\nname = "long"\niterations_scale = 2\n'
        "[candidate.set]\nw_nll = 0.05\n\n"
        '[[candidate]]\ntask = "inpaint"\nselect_num = 20\n'
    )
    long, short = tune.file_candidates(path, ["colorize", "inpaint"])
    assert long["name"] == "long" and long["base"] == "bundled_colorization"
    assert short["name"] == "bundled_inpainting@x1-g1-z1-n20"
    p = tune.make_preset(
        long["base"], iterations_scale=2, set_fields=long["set"], name=long["name"]
    )
    assert p.w_nll == 0.05 and p.total_iterations == 2 * 43 and p.name == "long"
    path.write_text('[[candidate]]\ntask = "colourise"\n')
    with pytest.raises(InputError, match="candidate 1 needs task"):
        tune.file_candidates(path, ["colorize", "inpaint"])


def test_recorded_paths_are_relative_or_just_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert eb.recorded(tmp_path / "a" / "b") == str(Path("a") / "b")
    assert eb.recorded(Path("a/b")) == str(Path("a") / "b")
    assert eb.recorded(tmp_path.parent / "sibling") == str(Path("..") / "sibling")
    far = Path(tmp_path.anchor, "elsewhere", "old_bundled")  # outside cwd and its parent
    assert eb.recorded(far) == "old_bundled"

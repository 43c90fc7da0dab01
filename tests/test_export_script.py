"""scripts/export_bundled.py: the bundled prior's export, re-run to table restoration
results in the model card only when they scored exactly the exported weights."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from dgp_engine.priors.load import load_prior
from dgp_engine.tasks.evaluate import Dataset, evaluate, weights_digest, write_json
from dgp_engine.training import CHECKPOINT_NAME, Trainer, TrainSettings, load_npz

from .task_helpers import photo_array, tiny_preset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "export_bundled.py"


def _script():
    spec = importlib.util.spec_from_file_location("export_bundled", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    np.savez(
        root / "d.npz",
        images=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
        labels=rng.integers(0, 3, 8).astype(np.int64),
    )
    settings = TrainSettings(
        resolution=32,
        ch=8,
        batch=4,
        steps=2,
        dim_z=20,
        shared_dim=8,
        checkpoint_every_s=float("inf"),
        grid_columns=2,
    )
    list(Trainer(load_npz(root / "d.npz", 32, 3), settings, root / "run").run())
    (root / "classes.tsv").write_text("label\tname\n0\ta\n1\tb\n2\tc\n")
    return root


def _export(ckpt_root: Path, out: Path, *extra: str) -> int:
    return _script().main(
        [
            "--checkpoint",
            str(ckpt_root / "run" / CHECKPOINT_NAME),
            "--out",
            str(out),
            "--classes-tsv",
            str(ckpt_root / "classes.tsv"),
            *extra,
        ]
    )


def test_card_tables_results_of_the_exported_weights(checkpoint, tmp_path):
    out = tmp_path / "model"
    assert _export(checkpoint, out) == 0
    assert "Not measured for this export" in (out / "MODEL_CARD.md").read_text()
    prior = load_prior(out)
    data = Dataset([photo_array(32, 32, seed=1).astype(np.float32) / 255], [0], [0], ["x"], "mem")
    results = []
    for method in ("dgp", "z-only"):
        r = evaluate(prior, "reconstruct", data, method=method, preset=tiny_preset())
        results.append(write_json(r, tmp_path / f"{method}.json"))
    assert json.loads(results[0].read_text())["model"]["checksum"] == weights_digest(out)

    # exporting the same checkpoint again gives the same weights, so the results stay valid
    assert (
        _export(
            checkpoint,
            out,
            "--restoration",
            *map(str, results),
            "--restoration-notes",
            "one test image",
        )
        == 0
    )
    card = (out / "MODEL_CARD.md").read_text()
    assert "one test image" in card and "| reconstruct | dgp |" in card
    assert "| reconstruct | z-only |" in card

    # results scored on other weights are refused
    other = json.loads(results[1].read_text())
    other["model"]["checksum"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="other weights"):
        _export(checkpoint, out, "--restoration", str(tmp_path / "other.json"))


def test_the_card_says_whether_the_shipped_row_was_the_last():
    table = _script().scoreboard_table
    rows = [
        {
            "step": s,
            "images_seen": 32 * s,
            "cpu_hours": s / 10,
            "accuracy": a,
            "fid_val": f,
            "kid_val": 0.1,
            "fid_train": f + 0.5,
        }
        for s, a, f in ((10, 0.2, 9.0), (20, 0.3, 7.0), (30, 0.25, 8.0))
    ]
    middle = table(rows, rows[1], "fid_val")
    assert "| **20** | 640 | 2.00 | 0.300 | 7.00 |" in middle and "| 30 |" in middle
    assert middle.endswith("Shipped: step 20, the best by fid_val (bold), not the last.")
    last = table(rows[:2], rows[1], "fid_val")
    assert last.endswith("Shipped: step 20, the best by fid_val (bold), the run's last row too.")

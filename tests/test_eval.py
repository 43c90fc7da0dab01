"""`dgp eval`: the paper's protocol, baselines and the JSON it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine.cli import main
from dgp_engine.errors import InputError
from dgp_engine.tasks.evaluate import (
    Dataset,
    centre_hole,
    degrade,
    evaluate,
    format_table,
    load_dataset,
    method_preset,
    pick_indices,
)

from .helpers import tiny_prior
from .task_helpers import photo_array, tiny_model_folder, tiny_preset, tiny_preset_file


@pytest.fixture(scope="module")
def prior():
    return tiny_prior()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    images = np.stack([photo_array(40, 40, seed=i) for i in range(4)])
    np.savez(root / "set.npz", images=images, labels=np.array([0, 1, 2, 3]))
    return root / "set.npz"


def dataset(n=2) -> Dataset:
    imgs = [photo_array(32, 32, seed=i).astype(np.float32) / 255 for i in range(n)]
    return Dataset(imgs, list(range(n)), list(range(n)), [f"img{i}" for i in range(n)], "mem")


def test_pick_and_load(archive, tmp_path):
    assert pick_indices(10, 3) == [0, 4, 9] or pick_indices(10, 3) == [0, 5, 9]
    assert pick_indices(10, 3, "first") == [0, 1, 2]
    assert pick_indices(3, None) == [0, 1, 2]
    ds = load_dataset(archive, limit=2)
    assert ds.indices == [0, 3] and ds.labels == [0, 3] and ds.images[0].shape == (40, 40, 3)
    for i in range(3):
        Image.fromarray(photo_array(20, 30, seed=i)).save(tmp_path / f"{i}.png")
    folder = load_dataset(tmp_path, limit=2, pick="first")
    assert folder.names == ["0.png", "1.png"] and folder.labels == [None, None]
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "nope.npz")
    np.savez(tmp_path / "bad.npz", pictures=np.zeros(3))
    with pytest.raises(InputError, match="no 'images'"):
        load_dataset(tmp_path / "bad.npz")


def test_degradations_of_the_protocol():
    clean = photo_array(32, 32).astype(np.float32) / 255
    assert degrade(clean, "colorize").is_gray
    hole = centre_hole(32)
    assert hole.sum() == 10 * 10 and hole[16, 16]
    assert degrade(clean, "inpaint", hole=hole).rgb[hole].max() == 0
    assert degrade(clean, "superres", factor=4).size == (8, 8)
    assert np.array_equal(degrade(clean, "reconstruct").rgb, clean)


def test_method_presets():
    p = tiny_preset()
    assert method_preset(p, "dgp") is p
    assert method_preset(p, "z-only").update_G is False
    dip = method_preset(p, "dip")
    assert dip.select_num == 1 and set(dip.w_D_loss) == {0.0} and set(dip.z_lrs) == {0.0}
    assert set(dip.ft_num) == {"all"} and dip.iterations == p.iterations


@pytest.mark.parametrize("task", ["reconstruct", "colorize", "inpaint", "superres"])
def test_evaluate_tasks(prior, task):
    out = evaluate(prior, task, dataset(), preset=tiny_preset(), method="dgp")
    assert out["count"] == 2 and out["complete"]
    assert set(out["mean"]) >= {"psnr", "ssim", "mse"}
    assert all(r["seconds"] > 0 for r in out["images"])
    json.dumps(out, allow_nan=False)
    if task == "inpaint":
        assert "hole" in out["protocol"]["metrics_on"]


def test_baselines(prior):
    zonly = evaluate(prior, "reconstruct", dataset(1), preset=tiny_preset(), method="z-only")
    assert zonly["preset"]["update_G"] is False
    # GAN inversion uses the pretrained generator as trained: no untrained instance norm
    inpaint = method_preset(tiny_preset(use_in=[True, True]), "z-only")
    assert list(inpaint.use_in) == [False, False] and not inpaint.update_G
    assert list(method_preset(tiny_preset(use_in=[True, True]), "dgp").use_in) == [True, True]
    dip = evaluate(prior, "reconstruct", dataset(1), preset=tiny_preset(), method="dip")
    assert dip["model"]["weights"].startswith("random")
    assert dip["images"][0]["psnr"] != zonly["images"][0]["psnr"]
    table = format_table([dip, zonly]).splitlines()
    assert len(table) == 4 and "| reconstruct | z-only |" in table[2]


def test_eval_command_writes_json(archive, tmp_path, capsys):
    model = tiny_model_folder(tmp_path / "model")
    preset = tiny_preset_file(tmp_path / "p.toml")
    out = tmp_path / "r.json"
    code = main(
        [
            "eval",
            "inpaint",
            "--model",
            str(model),
            "--data",
            str(archive),
            "--limit",
            "2",
            "--method",
            "dip",
            "--json",
            str(out),
            "--preset",
            str(preset),
            "-q",
            "--save-images",
            str(tmp_path / "imgs"),
        ]
    )
    assert code == 0
    res = json.loads(out.read_text())
    assert res["task"] == "inpaint" and res["method"] == "dip" and res["count"] == 2
    assert res["data"]["indices"] == [0, 3] and res["data"]["pick"] == "spread"
    assert {"psnr", "ssim", "mse"} <= set(res["mean"]) and res["seconds_per_image"] > 0
    assert len(res["model"]["checksum"]) == 64  # SHA-256 of the weights scored
    assert len(list((tmp_path / "imgs").glob("*_result.png"))) == 2
    assert "PSNR" in capsys.readouterr().out
    # labels outside a 5-class model are refused with advice
    np.savez(tmp_path / "l.npz", images=np.zeros((1, 8, 8, 3), np.uint8), labels=np.array([7]))
    code = main(
        [
            "eval",
            "reconstruct",
            "--model",
            str(model),
            "--data",
            str(tmp_path / "l.npz"),
            "--json",
            str(tmp_path / "l.json"),
            "--preset",
            str(preset),
            "-q",
        ]
    )
    assert code == 1 and "--class auto" in capsys.readouterr().err
    assert not (tmp_path / "l.json").exists()


def _result(task, method, psnr):
    return {
        "task": task,
        "method": method,
        "count": 3,
        "seconds_per_image": 1.5,
        "mean": {"psnr": psnr, "ssim": 0.5, "mse": 0.01},
    }


def test_eval_table_command(tmp_path, capsys):
    files = []
    for method, psnr in (("z-only", 15.0), ("dgp", 18.0), ("dip", 16.5)):
        files.append(tmp_path / f"rec_{method}.json")
        files[-1].write_text(json.dumps(_result("reconstruct", method, psnr)))
    for method, psnr in (("z-only", 20.0), ("dgp", 19.0), ("dip", 21.0)):
        files.append(tmp_path / f"col_{method}.json")
        files[-1].write_text(json.dumps(_result("colorize", method, psnr)))
    out = tmp_path / "table.md"
    assert main(["eval-table", *map(str, files), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    # rows ordered by task, then dgp / z-only / dip
    assert lines[2].startswith("| reconstruct | dgp | 18.00 |")
    assert lines[3].startswith("| reconstruct | z-only | 15.00 |")
    assert lines[5].startswith("| colorize | dgp | 19.00 |")
    assert "reconstruct: dgp 18.00 > dip 16.50 > z-only 15.00 — paper's ordering holds" in printed
    assert (
        "colorize: dip 21.00 > z-only 20.00 > dgp 19.00 — paper's ordering does not hold" in printed
    )
    assert out.read_text().strip() == printed.strip()
    # refuses to replace the table, and a file that is not a result
    assert main(["eval-table", str(files[0]), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"psnr": 1}')
    assert main(["eval-table", str(bad)]) == 1
    assert "not a `dgp eval` result" in capsys.readouterr().err


def test_weights_digest_follows_the_tensors_not_the_container(tmp_path):
    from safetensors.torch import save_file

    from dgp_engine.tasks.evaluate import weights_digest

    def write(folder, g, d, meta):
        folder.mkdir()
        save_file(g, str(folder / "G_ema.safetensors"), metadata=meta)
        save_file(d, str(folder / "D.safetensors"), metadata=meta)
        return weights_digest(folder)

    g = {"w": torch.arange(6, dtype=torch.float16).reshape(2, 3), "n": torch.tensor(7)}
    d = {"b": torch.ones(3)}
    a = write(tmp_path / "a", g, d, {"x": "1", "y": "2"})
    assert a == write(tmp_path / "b", dict(reversed(list(g.items()))), d, {"y": "2", "x": "1"})
    g2 = dict(g, w=g["w"].clone())
    g2["w"][1, 2] = 0.5  # one value
    assert write(tmp_path / "c", g2, d, {}) != a
    assert write(tmp_path / "d", dict(g, w=g["w"].reshape(3, 2)), d, {}) != a  # one shape


def test_degrade_inpaint_defaults_to_the_centre_hole():
    clean = np.ones((30, 30, 3), np.float32)
    assert np.array_equal(
        degrade(clean, "inpaint").rgb, degrade(clean, "inpaint", hole=centre_hole(30)).rgb
    )
    assert degrade(clean, "inpaint").rgb[centre_hole(30)].max() == 0

"""``dgp models …`` end to end, in process."""

from __future__ import annotations

import json
import os

import huggingface_hub.constants
import pytest

from dgp_engine.cli import main
from dgp_engine.models import BigGANConfig
from dgp_engine.priors import registry
from dgp_engine.system import paths

from .conftest import PARITY
from .fakehub import FakeHub, random_pair
from .helpers import PARITY_CONFIG


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_path_and_help(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "STATE", "RES", "SIZE", "SOURCE"]
    assert any(
        line.startswith("biggan-256-ch64 ") and "not installed" in line for line in out.splitlines()
    )
    code, out, _ = run(capsys, "list", "--json")
    assert {row["name"] for row in json.loads(out)} >= {"bundled", "biggan-128"}
    assert run(capsys, "path")[1].strip() == str(paths.models_dir())
    code, _, err = run(capsys, "path", "biggan-128")
    assert code == 1 and "dgp models pull biggan-128" in err
    assert run(capsys)[0] == 2  # `dgp models` alone prints help


def test_import_verify_remove(capsys, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(PARITY_CONFIG))
    code, out, err = run(
        capsys,
        "import",
        "parity",
        "--g",
        str(PARITY / "G_ema.pth"),
        "--d",
        str(PARITY / "D.pth"),
        "--config",
        str(cfg),
    )
    assert code == 0, err
    assert "parity: imported into" in out and "G_ch 16" in out
    assert run(capsys, "path", "parity")[1].strip() == str(paths.models_dir() / "parity")
    code, out, _ = run(capsys, "verify")
    assert code == 0 and out.strip().splitlines() == ["bundled: OK", "parity: OK"]
    installed = {p.name: p.read_bytes() for p in (paths.models_dir() / "parity").iterdir()}
    again = ["--g", str(PARITY / "G_ema.pth"), "--d", str(PARITY / "D.pth"), "--config", str(cfg)]
    code, _, err = run(capsys, "import", "parity", *again)  # the same name again: asked
    assert code == 1 and "already installed" in err and "--force" in err, err
    assert {p.name: p.read_bytes() for p in (paths.models_dir() / "parity").iterdir()} == installed
    assert run(capsys, "import", "parity", *again, "--force")[0] == 0

    g = paths.models_dir() / "parity" / "G_ema.safetensors"
    g.unlink()
    g.symlink_to("/dev/zero")  # a device behind the link is not "missing"
    code, out, _ = run(capsys, "verify", "parity")
    assert code == 1 and "G_ema.safetensors is not a regular file" in out, out
    g.unlink()
    code, out, _ = run(capsys, "verify", "parity")
    assert code == 1 and "G_ema.safetensors is missing" in out, out
    assert run(capsys, "import", "parity", *again, "--force")[0] == 0
    (paths.models_dir() / "parity" / "D.safetensors").write_bytes(b"x")
    code, out, _ = run(capsys, "verify", "parity")
    assert code == 1 and "D.safetensors has 1 bytes" in out
    code, _, err = run(
        capsys,
        "import",
        "biggan-256",
        "--g",
        str(PARITY / "G_ema.pth"),
        "--d",
        str(PARITY / "D.pth"),
    )
    assert code == 1
    assert err.startswith("dgp: error: G_ema.pth is a BigGAN 128 px generator with G_ch 16")
    code, out, _ = run(capsys, "remove", "parity")
    assert code == 0 and "parity: removed" in out
    code, out, _ = run(capsys, "verify")
    assert code == 0 and out.strip().splitlines() == ["bundled: OK"]  # only what ships


def test_source_and_pull_from_a_fake_hub(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    code, _, err = run(capsys, "pull", "biggan-128")
    assert code == 1 and "has no download source yet" in err
    code, out, _ = run(capsys, "source", "biggan-128", "--repo-id", "me/biggan", "--revision", "v1")
    assert code == 0 and "repo_id   me/biggan" in out and "revision  v1" in out
    code, _, err = run(capsys, "source", "biggan-128", "--g-sha256", "nothex")
    assert code == 1 and "64 hexadecimal digits" in err
    code, out, _ = run(capsys, "source", "biggan-128", "--reset")
    assert "repo_id   (default)" in out

    cfg = BigGANConfig(resolution=32, G_ch=16, D_ch=16, n_classes=10, G_attn="0", D_attn="0")
    g, d = random_pair(cfg)
    from dgp_engine.priors import registry

    with FakeHub() as fake:
        fake.put("me/tiny", "G_ema.pth", g)
        fake.put("me/tiny", "D.pth", d)
        registry.add_model("tiny", cfg, registry.HubSource())
        run(capsys, "source", "tiny", "--repo-id", "me/tiny", "--endpoint", fake.url)
        code, out, err = run(capsys, "pull", "tiny")
        assert code == 0, err
        assert f"tiny: installed in {paths.models_dir() / 'tiny'}" in out
        code, out, _ = run(capsys, "source", "tiny")
        assert "(recorded at first download)" in out
    code, out, _ = run(capsys, "list")
    assert any(
        line.startswith("tiny ") and "installed" in line and "me/tiny@main" in line
        for line in out.splitlines()
    )
    assert run(capsys, "verify")[0] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["pull", "bundled"],
        ["remove", "bundled"],
        ["import", "x", "--g", "nope.pth", "--d", "nope2.pth"],
    ],
)
def test_errors_are_one_line_with_exit_code_1(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.startswith("dgp: error: ") and err.count("\n") == 1


# --- settings files that are not files (hostile test pass after issue 20) ----------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("option", ["--config", "--classes", "--config-yaml"])
def test_a_device_or_fifo_given_as_a_settings_file_is_refused_without_reading_it(
    capsys, tmp_path, option
):
    # --config /dev/zero read until the kernel killed the process at 24 GB; a FIFO blocked
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(PARITY_CONFIG))
    fifo = tmp_path / ("settings.yaml" if option == "--config-yaml" else "settings.txt")
    os.mkfifo(fifo)
    flag = "--config" if option == "--config-yaml" else option
    for bad in (fifo, "/dev/zero"):
        extra = ["--config", str(cfg)] if option == "--classes" else []
        code, _, err = run(
            capsys,
            "import",
            "parity",
            "--g",
            str(PARITY / "G_ema.pth"),
            "--d",
            str(PARITY / "D.pth"),
            *extra,
            flag,
            str(bad),
        )
        assert code == 1 and "not a regular file" in err, err
    assert not (paths.models_dir() / "parity").exists()


def test_a_weights_path_that_is_a_folder_or_device_is_not_called_missing(capsys, tmp_path):
    for bad in (tmp_path, "/dev/zero"):
        code, _, err = run(
            capsys, "import", "parity", "--g", str(bad), "--d", str(PARITY / "D.pth")
        )
        assert code == 1 and "is not a file (a folder, device or pipe)" in err, err


def test_a_damaged_install_record_is_listed_as_damaged(capsys, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(PARITY_CONFIG))
    args = ["--g", str(PARITY / "G_ema.pth"), "--d", str(PARITY / "D.pth"), "--config", str(cfg)]
    assert run(capsys, "import", "parity", *args)[0] == 0
    (paths.models_dir() / "parity" / "model.json").write_text("{garbage")
    code, out, _ = run(capsys, "list")
    line = next(x for x in out.splitlines() if x.startswith("parity "))
    assert "damaged" in line and "?@?" not in out, line
    rows = {row["name"]: row for row in json.loads(run(capsys, "list", "--json")[1])}
    assert rows["parity"]["state"] == "damaged"
    status = {s.name: s for s in registry.list_models()}["parity"]
    assert not status.usable and "import it again" in status.source
    # a damaged install may be imported over without --force (nothing to keep)
    assert run(capsys, "import", "parity", *args)[0] == 0
    assert {s.name: s for s in registry.list_models()}["parity"].state == "installed"

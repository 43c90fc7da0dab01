"""Importing checkpoint files the user has: checks, conversion, verify, remove."""

from __future__ import annotations

import json
import os
import threading

import pytest
import torch
from safetensors.torch import load_file

from dgp_engine.errors import CheckpointError, OperationCancelled, RegistryError
from dgp_engine.models import BigGANConfig, Discriminator
from dgp_engine.priors import hub, registry
from dgp_engine.priors.load import load_prior
from dgp_engine.system import paths

from .conftest import PARITY
from .fakehub import leftovers, random_pair, state_dict_bytes
from .helpers import PARITY_CONFIG

G_PTH, D_PTH = PARITY / "G_ema.pth", PARITY / "D.pth"


@pytest.fixture
def config_file(tmp_path):
    f = tmp_path / "config.json"
    f.write_text(json.dumps(PARITY_CONFIG))
    return f


def _nothing_installed(name: str) -> None:
    assert registry.installed(name) is None
    assert not (paths.models_dir() / name).exists()
    assert leftovers(paths.cache_dir()) == []
    assert all(r.ok for r in hub.verify())


def test_import_parity_small_converts_to_safetensors_and_loads(config_file):
    reports = []
    model = hub.import_files("parity", G_PTH, D_PTH, config=config_file, progress=reports.append)
    assert model.folder == paths.models_dir() / "parity"
    assert sorted(p.name for p in model.folder.iterdir()) == [
        "D.safetensors",
        "G_ema.safetensors",
        "config.json",
        "model.json",
    ]
    # Exactly the authors' tensors, now in safetensors.
    for src, out in ((G_PTH, "G_ema.safetensors"), (D_PTH, "D.safetensors")):
        want = torch.load(src, map_location="cpu", weights_only=True)
        got = load_file(str(model.folder / out))
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want)
    record = json.loads((model.folder / "model.json").read_text())
    assert record["origin"]["kind"] == "import"
    assert record["origin"]["files"]["G"]["sha256"] == hub.sha256_file(G_PTH)
    assert record["files"]["G_ema.safetensors"]["sha256"] == hub.sha256_file(
        model.folder / "G_ema.safetensors"
    )
    assert {r.stage for r in reports} >= {"hash", "read", "write"}
    # The converted model computes what the reference code computed.
    prior = load_prior("parity")
    ref = torch.load(PARITY / "forward.pt", map_location="cpu", weights_only=False)["single"]
    with torch.no_grad():
        x = prior.G(ref["z"], prior.G.shared(ref["y"]))
    torch.testing.assert_close(x, ref["x"], atol=1e-4, rtol=1e-4)
    assert len(prior.class_names) == 1000
    assert [r.summary() for r in hub.verify()] == ["bundled: OK", "parity: OK"]  # bundled ships
    rows = {r.name: r for r in registry.list_models()}
    assert rows["parity"].state == "installed" and rows["parity"].source == "imported files"


def test_import_into_a_registered_name_needs_no_config_and_checks_the_architecture():
    with pytest.raises(CheckpointError) as err:
        hub.import_files("biggan-128", G_PTH, D_PTH)
    msg = str(err.value)
    assert "G_ema.pth is a BigGAN 128 px generator with G_ch 16" in msg
    assert "biggan-128 expects 128 px with G_ch 96" in msg
    assert "import it under a new name with --config" in msg
    _nothing_installed("biggan-128")


def test_wrong_config_is_one_sentence_with_the_fix(tmp_path):
    cfg = tmp_path / "wrong.json"
    cfg.write_text(json.dumps({**PARITY_CONFIG, "G_ch": 32, "D_ch": 32}))
    with pytest.raises(
        CheckpointError,
        match=r"G_ema\.pth is a BigGAN 128 px generator with G_ch 16, but mine "
        r"expects 128 px with G_ch 32, 1000 classes: fix the config you "
        r"gave \(resolution 128, G_ch 16\)\.",
    ):
        hub.import_files("mine", G_PTH, D_PTH, config=cfg)
    _nothing_installed("mine")
    with pytest.raises(RegistryError, match="pass --config"):
        hub.import_files("mine", G_PTH, D_PTH)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match="Could not read the config"):
        hub.import_files("mine", G_PTH, D_PTH, config=bad)


def test_truncated_file_is_reported_and_nothing_is_installed(tmp_path, config_file):
    cut = tmp_path / "G_ema.pth"
    cut.write_bytes(G_PTH.read_bytes()[: G_PTH.stat().st_size // 2])
    with pytest.raises(
        CheckpointError,
        match=r"damaged or incomplete .*download or copy it "
        r"again",
    ):
        hub.import_files("parity", cut, D_PTH, config=config_file)
    _nothing_installed("parity")


def test_wrong_checksum_from_the_settings_is_refused(config_file):
    cfg = BigGANConfig.from_dict(PARITY_CONFIG)
    registry.add_model(
        "parity-hub", cfg, registry.HubSource(repo_id="me/parity", G_sha256="0" * 64)
    )
    with pytest.raises(
        CheckpointError,
        match=r"G_ema\.pth has SHA-256 .*not the configured "
        r"000000000000….*use the right file, or clear",
    ):
        hub.import_files("parity-hub", G_PTH, D_PTH)
    _nothing_installed("parity-hub")
    registry.set_source("parity-hub", G_sha256=hub.sha256_file(G_PTH))
    assert hub.import_files("parity-hub", G_PTH, D_PTH).name == "parity-hub"


def test_a_discriminator_that_does_not_belong_to_the_generator(tmp_path, config_file):
    other = BigGANConfig.from_dict({**PARITY_CONFIG, "D_ch": 32})
    torch.manual_seed(0)
    d = tmp_path / "D.pth"
    d.write_bytes(state_dict_bytes(Discriminator(other)))
    with pytest.raises(
        CheckpointError,
        match=r"D\.pth does not belong to G_ema\.pth: it is a BigGAN 128 px "
        r"discriminator with D_ch 32.*pass the D\.pth saved together",
    ):
        hub.import_files("parity", G_PTH, d, config=config_file)
    _nothing_installed("parity")


def test_a_256_checkpoint_imported_as_128(tmp_path, config_file):
    cfg256 = BigGANConfig.from_dict({**PARITY_CONFIG, "resolution": 256})
    g_bytes, d_bytes = random_pair(cfg256)
    (tmp_path / "G_ema.pth").write_bytes(g_bytes)
    (tmp_path / "D.pth").write_bytes(d_bytes)
    with pytest.raises(
        CheckpointError,
        match=r"is a BigGAN 256 px generator with G_ch 16, but "
        r"parity expects 128 px",
    ):
        hub.import_files("parity", tmp_path / "G_ema.pth", tmp_path / "D.pth", config=config_file)
    # When a registered model fits, the message names it.
    registry.add_model("small-256", cfg256, registry.HubSource())
    with pytest.raises(CheckpointError, match="import it as small-256 instead"):
        hub.import_files("parity", tmp_path / "G_ema.pth", tmp_path / "D.pth", config=config_file)
    _nothing_installed("parity")
    assert (
        hub.import_files("small-256", tmp_path / "G_ema.pth", tmp_path / "D.pth").config.resolution
        == 256
    )


def test_swapped_or_missing_files(tmp_path, config_file):
    with pytest.raises(
        CheckpointError,
        match=r"D\.pth holds a discriminator, not a generator: "
        r"pass the generator \(G_ema\.pth\) with --g",
    ):
        hub.import_files("parity", D_PTH, G_PTH, config=config_file)
    with pytest.raises(CheckpointError, match=r"does not exist: pass the discriminator"):
        hub.import_files("parity", G_PTH, tmp_path / "nope.pth", config=config_file)
    with pytest.raises(CheckpointError, match="name the same file"):
        hub.import_files("parity", G_PTH, G_PTH, config=config_file)
    with pytest.raises(RegistryError, match="bundled model ships with DGP Studio"):
        hub.import_files("bundled", G_PTH, D_PTH, config=config_file)
    _nothing_installed("parity")


def test_class_names_file_for_a_new_model(tmp_path):
    cfg = BigGANConfig(resolution=32, G_ch=16, D_ch=16, n_classes=3, G_attn="0", D_attn="0")
    g, d = random_pair(cfg)
    (tmp_path / "G.pth").write_bytes(g)
    (tmp_path / "D.pth").write_bytes(d)
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\n")
    with pytest.raises(CheckpointError, match="lists 2 class names but the model has 3"):
        hub.import_files(
            "pets", tmp_path / "G.pth", tmp_path / "D.pth", config=cfg.to_dict(), classes=names
        )
    names.write_text("cat\ndog\nbird\n")
    hub.import_files(
        "pets", tmp_path / "G.pth", tmp_path / "D.pth", config=cfg.to_dict(), classes=names
    )
    assert registry.class_names("pets") == ["cat", "dog", "bird"]
    assert registry.get_entry("pets").kind == "imported"
    # Re-importing an imported model reuses its architecture.
    assert hub.import_files("pets", tmp_path / "G.pth", tmp_path / "D.pth").config == cfg


def test_verify_catches_a_changed_file_and_remove_restores_a_clean_cache(config_file):
    model = hub.import_files("parity", G_PTH, D_PTH, config=config_file)
    file = model.folder / "G_ema.safetensors"
    data = bytearray(file.read_bytes())
    data[-10] ^= 0xFF
    file.write_bytes(bytes(data))
    [result] = hub.verify("parity")
    assert not result.ok
    assert "G_ema.safetensors changed since it was installed" in result.summary()
    assert "import it again" in result.summary()
    file.unlink()
    assert "G_ema.safetensors is missing" in hub.verify("parity")[0].summary()
    assert "not installed" in hub.verify("biggan-128")[0].summary()
    hub.remove("parity")
    _nothing_installed("parity")
    with pytest.raises(RegistryError, match="not installed; nothing to remove"):
        hub.remove("parity")
    with pytest.raises(RegistryError, match="cannot be removed"):
        hub.remove("bundled")


def test_reimport_replaces_the_model_atomically(tmp_path, config_file):
    first = hub.import_files("parity", G_PTH, D_PTH, config=config_file)
    stamp = first.record["installed_at"]
    second = hub.import_files("parity", G_PTH, D_PTH, config=config_file)
    assert second.folder == first.folder and second.record["origin"]["kind"] == "import"
    assert json.loads((second.folder / "model.json").read_text())["installed_at"] >= stamp
    assert leftovers(paths.cache_dir()) == []


def test_cancelled_import_leaves_nothing(config_file):
    cancel = threading.Event()

    def progress(p):
        if p.stage == "write" and p.file == "D.safetensors":
            cancel.set()  # G is already converted in the staging folder by now

    with pytest.raises(OperationCancelled, match="nothing was installed"):
        hub.import_files(
            "parity", G_PTH, D_PTH, config=config_file, progress=progress, cancel=cancel
        )
    _nothing_installed("parity")


def test_cleanup_removes_what_a_killed_process_left(config_file):
    hub.import_files("parity", G_PTH, D_PTH, config=config_file)
    root = paths.models_dir()
    dead = 2**22 + 12345  # no such process
    stale = root / f".staging-parity-{dead}-0123abcd"
    (stale / "sub").mkdir(parents=True)
    (stale / "G_ema.safetensors").write_bytes(b"half")
    ours = root / f".staging-other-{os.getpid()}-0123abcd"  # a live process: kept
    ours.mkdir()
    # Killed between the two renames of a replacement: the old model comes back.
    os.replace(root / "parity", root / f".trash-parity-{dead}-89abcdef")
    assert registry.installed("parity") is None
    removed = hub.cleanup()
    assert stale in removed and ours.exists() and not stale.exists()
    assert registry.installed("parity") is not None
    assert hub.verify("parity")[0].ok
    ours.rmdir()


def test_tensors_sharing_storage_in_a_pickle_are_converted(tmp_path, config_file):
    sd = torch.load(D_PTH, map_location="cpu", weights_only=True)
    sd["embed.sv0"] = sd["linear.sv0"]  # one tensor under two keys (torch.save keeps that)
    big = torch.cat([sd["linear.bias"], torch.zeros(7)])
    sd["linear.bias"] = big[:1]  # a view into a larger storage
    torch.save(sd, tmp_path / "D.pth")
    model = hub.import_files("parity", G_PTH, tmp_path / "D.pth", config=config_file)
    got = load_file(str(model.folder / "D.safetensors"))
    assert torch.equal(got["embed.sv0"], sd["linear.sv0"]) and got["linear.bias"].shape == (1,)


def test_verify_reads_keys_and_shapes_from_the_safetensors_header(config_file):
    from safetensors.torch import save_file

    model = hub.import_files("parity", G_PTH, D_PTH, config=config_file)
    file = model.folder / "D.safetensors"
    sd = load_file(str(file))
    sd.pop("linear.bias")
    save_file(sd, str(file))
    # Record the new hash so only the structure check can catch it.
    record = json.loads((model.folder / "model.json").read_text())
    record["files"]["D.safetensors"].update(sha256=hub.sha256_file(file), size=file.stat().st_size)
    (model.folder / "model.json").write_text(json.dumps(record))
    [result] = hub.verify("parity")
    assert not result.ok and "D.safetensors does not fit BigGAN 128px" in result.summary()
    assert "1 missing" in result.summary()

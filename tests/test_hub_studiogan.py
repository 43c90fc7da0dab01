"""StudioGAN priors from a (fake, local) Hub: run folders resolved by pattern, pinned by
commit and SHA-256, converted on install; import of StudioGAN files; the registry entries;
an end-to-end `dgp colorize` on the imported small ImageNet-128 model."""

from __future__ import annotations

import hashlib
import socket
import time

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine.cli import main
from dgp_engine.errors import CheckpointError, DownloadError
from dgp_engine.priors import hub, registry
from dgp_engine.priors.load import load_prior
from dgp_engine.system import paths

from . import studiogan_files
from .conftest import PARITY, REFERENCE
from .fakehub import FakeHub, leftovers

SMALL = REFERENCE / "studiogan_small" / "imagenet128"
REPO = "dgp-test/PyTorch-StudioGAN"
ROOT = "studiogan_official_ckpt/ImageNet_tailored"
NEW_RUN = f"{ROOT}/ImageNet-BigGAN-256-train-2022_05_01_10_00_00"
OLD_RUN = f"{ROOT}/ImageNet-BigGAN-256-train-2022_01_01_10_00_00"
G_PATTERN = f"{ROOT}/ImageNet-BigGAN-256-train-*/model=G_ema-*-weights-step=*.pth"
D_PATTERN = f"{ROOT}/ImageNet-BigGAN-256-train-*/model=D-*-weights-step=*.pth"


def _bytes(name: str) -> bytes:
    return (SMALL / name).read_bytes()


@pytest.fixture(scope="module")
def blobs() -> dict[str, bytes]:
    return {
        "G_ema": _bytes("model=G_ema-best-weights-step=1000.pth"),
        "G": _bytes("model=G-best-weights-step=1000.pth"),
        "D": _bytes("model=D-best-weights-step=1000.pth"),
    }


@pytest.fixture
def fake(blobs):
    with FakeHub(page_size=3) as server:  # pages of 3 entries: the listing follows links
        server.put(REPO, "README.md", b"StudioGAN checkpoints")
        # an older run, and in the newest run 'current' checkpoints and the plain G beside
        # the best ones: the pull must take the newest run's best G_ema and D.
        server.put(REPO, f"{OLD_RUN}/model=G_ema-best-weights-step=500.pth", blobs["G"])
        server.put(REPO, f"{OLD_RUN}/model=D-best-weights-step=500.pth", blobs["D"])
        server.put(REPO, f"{NEW_RUN}/model=G-best-weights-step=1000.pth", blobs["G"])
        server.put(REPO, f"{NEW_RUN}/model=G_ema-current-weights-step=1200.pth", blobs["G"])
        server.put(REPO, f"{NEW_RUN}/model=D-current-weights-step=1200.pth", blobs["D"])
        server.put(REPO, f"{NEW_RUN}/model=G_ema-best-weights-step=1000.pth", blobs["G_ema"])
        server.put(REPO, f"{NEW_RUN}/model=D-best-weights-step=1000.pth", blobs["D"])
        yield server


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def small_model(fake):
    """A registry entry like imagenet-128 (patterns, StudioGAN format) for the small
    reference architecture, served by the fake Hub."""
    from dgp_engine.priors import studiogan

    config = studiogan.config_from_yaml(SMALL / "studiogan.yaml")
    registry.add_model(
        "sg-small",
        config,
        registry.HubSource(
            endpoint=fake.url, repo_id=REPO, G=G_PATTERN, D=D_PATTERN, format="studiogan"
        ),
    )
    return "sg-small"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _close_to_studiogan(prior, tol: float) -> None:
    ref = torch.load(SMALL / "forward.pt", weights_only=False)
    with torch.no_grad():
        x = prior.G(ref["z"], prior.G.shared(ref["y"]))
        logit, _ = prior.D(ref["x_real"], ref["y"])
    assert (x - ref["G_ema_out"]).abs().max().item() <= tol
    assert (logit.flatten() - ref["D_real_adv_output"]).abs().max().item() <= tol * 10


def test_pull_resolves_the_newest_best_run_converts_and_pins(online, fake, small_model, blobs):
    reports = []
    model = hub.pull(small_model, progress=reports.append)
    # size said before any byte moved
    plan = [r for r in reports if r.stage == "plan"]
    first_download = next(i for i, r in enumerate(reports) if r.stage == "download")
    assert plan and reports.index(plan[0]) < first_download
    assert plan[0].total == len(blobs["G_ema"]) + len(blobs["D"])
    origin = model.origin
    assert origin["files"]["G"]["name"] == f"{NEW_RUN}/model=G_ema-best-weights-step=1000.pth"
    assert origin["files"]["D"]["name"] == f"{NEW_RUN}/model=D-best-weights-step=1000.pth"
    assert origin["revision"] == origin["commit"] == fake.commits[REPO]
    assert origin["format"] == "studiogan"
    # pinned: commit, paths, SHA-256 of what was fetched
    pin = registry.pinned(registry.get_entry(small_model).source)
    assert pin["commit"] == fake.commits[REPO]
    assert (pin["G_sha256"], pin["D_sha256"]) == (sha(blobs["G_ema"]), sha(blobs["D"]))
    # converted: our names, float16 weights, no optimizer state; the cache keeps only that
    from safetensors import safe_open

    with safe_open(str(model.folder / "D.safetensors"), "pt") as fh:
        keys = list(fh.keys())
        assert "embed.weight" in keys and not any("optimizer" in k for k in keys)
        assert fh.get_tensor("blocks.0.0.conv1.weight").dtype == torch.float16
        assert fh.get_tensor("blocks.0.0.conv1.u0").dtype == torch.float32
    downloads = registry.downloads_dir()
    assert not downloads.exists() or not list(downloads.rglob("*.pth"))
    assert leftovers(paths.cache_dir()) == []
    prior = load_prior(small_model)
    assert prior.config.family == "studiogan" and len(prior.class_names) == 1000
    _close_to_studiogan(prior, tol=2e-2)  # float16 weights
    assert all(r.ok for r in hub.verify([small_model]))


def test_later_pulls_use_the_pin_without_listing(online, fake, small_model, blobs):
    hub.pull(small_model)
    fake.log.clear()
    hub.pull(small_model)  # installed from the pinned source: nothing to do, no network
    assert fake.log == []
    hub.pull(small_model, force=True)
    kinds = {r.method for r in fake.log}
    assert "LIST" not in kinds and "INFO" not in kinds  # pinned: no listing
    assert all(r.revision == fake.commits[REPO] for r in fake.log)


def test_a_moved_file_after_pinning_says_how_to_look_again(online, fake, small_model):
    hub.pull(small_model)
    fake.remove(REPO, f"{NEW_RUN}/model=D-best-weights-step=1000.pth")
    with pytest.raises(DownloadError, match=r"pull sg-small --update"):
        hub.pull(small_model, force=True)
    hub.pull(small_model, update=True)  # resolves again: the run's current D now
    origin = registry.installed(small_model).origin
    assert origin["files"]["D"]["name"].endswith("model=D-current-weights-step=1200.pth")


def test_a_pattern_that_matches_nothing_names_the_repository_page(online, fake):
    from dgp_engine.priors import studiogan

    config = studiogan.config_from_yaml(SMALL / "studiogan.yaml")
    registry.add_model(
        "sg-missing",
        config,
        registry.HubSource(
            endpoint=fake.url,
            repo_id=REPO,
            format="studiogan",
            G=f"{ROOT}/ImageNet-BigGAN-2048-train-*/model=G_ema-*.pth",
            D=f"{ROOT}/ImageNet-BigGAN-2048-train-*/model=D-*.pth",
        ),
    )
    with pytest.raises(
        DownloadError,
        match=rf"No run of sg-missing was found in {REPO}.*"
        rf"See {fake.url}/{REPO}/tree/main/{ROOT}",
    ):
        hub.pull("sg-missing")
    assert registry.installed("sg-missing") is None
    assert registry.pinned(registry.get_entry("sg-missing").source) is None


def test_no_network_is_a_quick_clear_error(online, small_model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry.set_source(small_model, endpoint=f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"Could not reach .*check your internet"):
        hub.pull(small_model)
    assert time.monotonic() - t0 < 5
    assert registry.installed(small_model) is None


def test_offline_before_the_first_pull(monkeypatch, fake, small_model):
    with pytest.raises(DownloadError, match="not downloaded yet and DGP Studio is offline"):
        hub.pull(small_model, offline=True)
    assert fake.log == []


def test_a_biggan_pytorch_file_served_as_studiogan_installs_nothing(online, fake, small_model):
    fake.put(
        REPO,
        f"{NEW_RUN}/model=G_ema-best-weights-step=1000.pth",
        (PARITY / "G_ema.pth").read_bytes(),
    )
    with pytest.raises(
        CheckpointError,
        match=r"is a BigGAN-PyTorch checkpoint .*expects "
        r"StudioGAN files",
    ):
        hub.pull(small_model)
    assert registry.installed(small_model) is None
    assert registry.pinned(registry.get_entry(small_model).source) is None
    assert leftovers(paths.cache_dir()) == []


NEW_G = f"{NEW_RUN}/model=G_ema-best-weights-step=1000.pth"
NEW_D = f"{NEW_RUN}/model=D-best-weights-step=1000.pth"


def downloaded_blobs() -> list[str]:
    root = registry.downloads_dir()
    return sorted(p.name for p in root.rglob("blobs/*")) if root.exists() else []


def test_a_real_studiogan_discriminator_installs(online, fake, small_model):
    """StudioGAN's trainer stores best_fid as numpy.float64 in every D file (2022's runs
    under numpy 1's names): the pull installs it."""
    fake.put(
        REPO,
        NEW_D,
        studiogan_files.real_d_bytes(
            SMALL / "model=D-best-weights-step=1000.pth", aa_p="numpy", numpy1=True
        ),
    )
    model = hub.pull(small_model)
    assert model.origin["files"]["D"]["name"] == NEW_D
    _close_to_studiogan(load_prior(small_model), tol=2e-2)
    assert downloaded_blobs() == []


def test_a_wrong_generator_is_refused_before_the_discriminator_is_downloaded(
    online, fake, small_model, blobs
):
    papa = REFERENCE / "studiogan_small" / "papa64" / "model=G_ema-best-weights-step=1000.pth"
    fake.put(REPO, NEW_G, papa.read_bytes())
    with pytest.raises(CheckpointError) as info:
        hub.pull(small_model)
    message = str(info.value)
    assert "is a BigGAN 64 px generator" in message and "sg-small expects 128 px" in message
    assert "the discriminator (model=D-best-weights-step=1000.pth) was not downloaded" in message
    assert fake.requests_for(NEW_D) == []  # not even asked about
    assert registry.installed(small_model) is None
    assert registry.pinned(registry.get_entry(small_model).source) is None
    assert downloaded_blobs() == [sha(papa.read_bytes())]
    assert leftovers(paths.cache_dir()) == []


def test_a_failed_conversion_keeps_the_downloads_for_the_next_pull(
    monkeypatch, online, fake, small_model, blobs
):
    d_bytes = studiogan_files.real_d_bytes(SMALL / "model=D-best-weights-step=1000.pth")
    fake.put(REPO, NEW_D, d_bytes)
    from dgp_engine.priors import checkpoint

    with monkeypatch.context() as patch, pytest.raises(CheckpointError) as info:
        # as a DGP Studio that refused numpy floats did
        patch.setattr(checkpoint, "numpy_float_globals", lambda: [])
        hub.pull(small_model)
    message = str(info.value)
    assert "holds pickled Python objects besides tensors" in message
    assert f"stays in {registry.downloads_dir()} for the next pull" in message
    assert registry.installed(small_model) is None
    assert downloaded_blobs() == sorted([sha(blobs["G_ema"]), sha(d_bytes)])
    assert leftovers(paths.cache_dir()) == []
    fake.log.clear()  # the fixed version pulls again
    model = hub.pull(small_model)
    assert fake.requests_for(NEW_G) == fake.requests_for(NEW_D) == []  # nothing fetched again
    assert model.origin["files"]["D"]["sha256"] == sha(d_bytes)
    assert not model.origin["files"]["D"]["downloaded"]
    assert downloaded_blobs() == []  # installed: the cache keeps only the converted model
    assert all(r.ok for r in hub.verify([small_model]))


def test_shipped_entries_point_at_studiogan():
    for name, classes in (("imagenet-128", 1000), ("afhq-256", 3)):
        entry = registry.get_entry(name)
        assert entry.source.repo_id == "Mingguksky/PyTorch-StudioGAN"
        assert entry.source.format == "studiogan" and entry.source.has_patterns
        assert entry.config.family == "studiogan" and entry.config.n_classes == classes
        assert entry.licence.startswith("MIT") and entry.about and entry.download_bytes
    assert registry.get_entry("afhq-256").class_names == ("cat", "dog", "wild")
    # the authors' own entries stay
    assert registry.get_entry("biggan-128").config.family == "biggan-pytorch"


# --------------------------------------------------------------------------- import + CLI


def test_import_detects_studiogan_and_refuses_the_wrong_family(tmp_path):
    g = SMALL / "model=G_ema-best-weights-step=1000.pth"
    d = SMALL / "model=D-best-weights-step=1000.pth"
    with pytest.raises(
        CheckpointError,
        match=r"is a StudioGAN BigGAN checkpoint, but this "
        r"model expects BigGAN-PyTorch files",
    ):
        hub.import_files("biggan-128", g, d)
    with pytest.raises(CheckpointError, match=r"is a BigGAN-PyTorch checkpoint"):
        hub.import_files(
            "mine", PARITY / "G_ema.pth", PARITY / "D.pth", config=SMALL / "studiogan.yaml"
        )
    assert registry.installed("biggan-128") is None and registry.installed("mine") is None
    # no --config needed: the tensors say what the model is
    model = hub.import_files("sg-noconfig", g, d)
    assert model.config.family == "studiogan" and model.config.resolution == 128


def test_cli_import_then_colorize_end_to_end(tmp_path, capsys):
    g = SMALL / "model=G_ema-best-weights-step=1000.pth"
    d = SMALL / "model=D-best-weights-step=1000.pth"
    assert (
        main(
            [
                "models",
                "import",
                "sg128",
                "--g",
                str(g),
                "--d",
                str(d),
                "--config",
                str(SMALL / "studiogan.yaml"),
            ]
        )
        == 0
    )
    assert "StudioGAN" in capsys.readouterr().out
    gray = (np.random.default_rng(0).random((96, 160)) * 255).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "old.png")
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "old.png"),
                "-o",
                str(tmp_path / "color.png"),
                "--model",
                "sg128",
                "--class",
                "church",
                "--iterations-scale",
                "0.002",
                "--threads",
                "1",
                "-q",
                "--save-state",
                str(tmp_path / "c.dgp"),
            ]
        )
        == 0
    )
    out = Image.open(tmp_path / "color.png")
    assert out.size == (160, 96) and out.mode == "RGB"
    from dgp_engine import ReconstructionState

    state = ReconstructionState.load(tmp_path / "c.dgp")
    assert state.class_id == 497  # "church" among the 1000 ImageNet names

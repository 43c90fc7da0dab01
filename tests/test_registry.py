"""The shipped model registry (data) and the user's model settings."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from dgp_engine.errors import CheckpointError, RegistryError
from dgp_engine.models import BigGANConfig, Discriminator, Generator
from dgp_engine.priors import registry
from dgp_engine.priors.classes import imagenet_class_names
from dgp_engine.system import paths

from .conftest import REFERENCE, REPO

MANIFESTS = {
    "biggan-128": "biggan_keys_128_ch96.json",
    "biggan-256": "biggan_keys_256_ch96.json",
    "biggan-256-ch64": "biggan_keys_256_ch64.json",
}


def test_registry_lists_the_bundled_prior_and_the_papers_biggans():
    known = registry.entries()
    assert list(known)[:4] == ["bundled", "biggan-128", "biggan-256", "biggan-256-ch64"]
    bundled = known["bundled"]
    assert bundled.kind == "bundled" and bundled.classes == "classes.txt"
    assert bundled.source is None
    for name, (res, ch) in {
        "biggan-128": (128, 96),
        "biggan-256": (256, 96),
        "biggan-256-ch64": (256, 64),
    }.items():
        entry = known[name]
        assert entry.kind == "download" and entry.classes == "imagenet"
        assert (entry.resolution, entry.config.G_ch, entry.config.D_ch) == (res, ch, ch)
        assert entry.config.n_classes == len(imagenet_class_names()) == 1000
        src = entry.source
        # Hub sources are user settings: nothing vouched for, file names and revision given.
        assert (src.repo_id, src.revision, src.G, src.D) == ("", "main", "G_ema.pth", "D.pth")
        assert src.sha256("G") == src.sha256("D") == ""


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_registry_architectures_match_the_authors_key_manifests(name):
    """Every key and shape of the authors' G and D, from the configs we ship."""
    manifest = json.loads((REFERENCE / MANIFESTS[name]).read_text())
    entry = registry.get_entry(name)
    mc = manifest["config"]
    assert entry.config.resolution == mc["resolution"]
    assert (entry.config.G_ch, entry.config.D_ch) == (mc["G_ch"], mc["D_ch"])
    assert entry.config.effective_dim_z == mc["effective_dim_z"]
    with torch.device("meta"):
        nets = {"G": Generator(entry.config), "D": Discriminator(entry.config)}
    for role, net in nets.items():
        want = {k["key"]: tuple(k["shape"]) for k in manifest[role]["keys"]}
        got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        assert got == want, role
        counts = manifest[role]
        assert entry.expect[f"{role.lower()}_keys"] == counts["num_keys"]
        assert entry.expect[f"{role.lower()}_elements"] == (
            counts["num_parameter_elements"] + counts["num_buffer_elements"]
        )


def test_shipped_registry_is_package_data_and_does_not_point_outside_the_package():
    text = (REPO / "resources" / "models" / "registry.toml").read_text()
    assert "../shared" not in text and "/work/" not in text
    from importlib import resources

    assert resources.files("dgp_resources").joinpath("models", "registry.toml").is_file()


def test_list_models_reports_states_and_download_sizes():
    rows = {r.name: r for r in registry.list_models()}
    assert rows["biggan-128"].state == "not installed" and not rows["biggan-128"].usable
    assert rows["biggan-128"].size_bytes == 4 * (70512416 + 87995562)
    assert rows["biggan-256"].resolution == 256
    assert rows["bundled"].state in ("bundled", "missing")
    assert rows["biggan-128"].source == "no download source set"


def test_resolve_model_dir_says_how_to_get_a_model():
    with pytest.raises(
        CheckpointError,
        match=r"not installed yet: run `dgp models pull "
        r"biggan-128`",
    ):
        registry.resolve_model_dir("biggan-128")
    with pytest.raises(CheckpointError, match="neither a folder nor a known model name"):
        registry.resolve_model_dir("no-such-model")
    # A folder in the cache without its install record (an interrupted install) is not
    # a model.
    half = paths.models_dir() / "biggan-128"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not installed yet"):
        registry.resolve_model_dir("biggan-128")


def test_source_settings_are_stored_per_user_and_validated():
    src = registry.set_source(
        "biggan-128", repo_id="someone/biggan", revision="abc123", G_sha256="A" * 64
    )
    assert (src.repo_id, src.revision, src.G_sha256) == ("someone/biggan", "abc123", "a" * 64)
    assert registry.user_file().is_file()
    assert registry.get_entry("biggan-256").source.repo_id == ""  # others untouched
    # An empty value goes back to the shipped default.
    assert registry.set_source("biggan-128", revision="").revision == "main"
    with pytest.raises(RegistryError, match="64 hexadecimal digits"):
        registry.set_source("biggan-128", D_sha256="1234")
    with pytest.raises(RegistryError, match="unknown source setting"):
        registry.set_source("biggan-128", token="x")
    with pytest.raises(RegistryError, match="no download source"):
        registry.set_source("bundled", repo_id="x/y")
    assert registry.reset_source("biggan-128").repo_id == ""


def test_a_damaged_user_file_names_itself_and_the_fix():
    registry.user_file().parent.mkdir(parents=True, exist_ok=True)
    registry.user_file().write_text("[models.biggan-128.source\nrepo_id = 'x'")
    with pytest.raises(RegistryError, match=r"models\.toml could not be read .*delete it"):
        registry.entries()


def test_a_broken_user_model_is_skipped_in_lists_but_explained_when_asked_for():
    registry.user_file().parent.mkdir(parents=True, exist_ok=True)
    registry.user_file().write_text(
        '[models.mine]\nkind = "download"\n[models.mine.config]\nresolution = 100\n'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        names = [r.name for r in registry.list_models()]
    assert "mine" not in names and "biggan-128" in names
    with pytest.raises(RegistryError, match="Unsupported resolution 100"):
        registry.get_entry("mine")


def test_user_models_and_recorded_checksums():
    cfg = BigGANConfig(resolution=32, G_ch=16, D_ch=16, n_classes=10, G_attn="0", D_attn="0")
    entry = registry.add_model("tiny-hub", cfg, registry.HubSource(repo_id="me/tiny"), title="Tiny")
    assert entry.user_defined and entry.config == cfg and entry.title == "Tiny"
    assert registry.get_entry("tiny-hub").source.repo_id == "me/tiny"
    with pytest.raises(RegistryError, match="built-in model name"):
        registry.add_model("biggan-128", cfg, registry.HubSource(repo_id="me/x"))
    with pytest.raises(RegistryError, match="not a valid model name"):
        registry.add_model("Bad Name", cfg, registry.HubSource(repo_id="me/x"))
    src = entry.source
    assert registry.expected_sha256(src, "G") == ("", "unknown")
    registry.record_sha256(src, "G", "b" * 64)
    assert registry.expected_sha256(src, "G") == ("b" * 64, "recorded at first download")
    # A configured checksum wins over a recorded one; another revision is another file.
    src2 = registry.set_source("tiny-hub", G_sha256="c" * 64)
    assert registry.expected_sha256(src2, "G") == ("c" * 64, "configured")
    src3 = registry.set_source("tiny-hub", G_sha256="", revision="v2")
    assert registry.expected_sha256(src3, "G") == ("", "unknown")
    registry.forget_recorded_sha256(src)
    assert registry.recorded_sha256(src, "G") == ""


def test_cache_folder_from_environment_and_setting(tmp_path, monkeypatch):
    from dgp_engine.system import paths

    default = paths.cache_dir()
    monkeypatch.setenv("DGP_STUDIO_CACHE_DIR", str(tmp_path / "env"))
    assert paths.models_dir() == tmp_path / "env" / "models"
    try:
        paths.set_cache_dir(tmp_path / "app")  # the app's setting wins over the environment
        assert paths.cache_dir() == tmp_path / "app"
        assert paths.default_cache_dir() == tmp_path / "env"
    finally:
        paths.set_cache_dir(None)
    monkeypatch.delenv("DGP_STUDIO_CACHE_DIR")
    assert paths.cache_dir() == default

"""StyleGAN2 priors (issue 23, getting the priors): NVIDIA network pickles and StudioGAN
checkpoints imported, converted to float16 safetensors + config.json, recorded with their
licence, loaded back as a prior whose G_ema reproduces the reference projects' own image;
hostile, foreign and damaged files refused with nothing installed; the AFHQv2 registry
entries; a pull through the fake Hub; plausibility and verify; BigGAN-only paths refusing
a StyleGAN2 prior with a sentence.

Reference: ``reference/stylegan2_small`` (its README): small random-weight models written by
StudioGAN's and NVIDIA's code, with the images their forwards produced (``forward.pt``)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from PIL import Image

from dgp_engine.cli import main
from dgp_engine.errors import CheckpointError, PriorFamilyError, RegistryError
from dgp_engine.models import stylegan2 as sg2
from dgp_engine.models.stylegan2 import StyleGAN2Config
from dgp_engine.priors import hub, listing, registry
from dgp_engine.priors import stylegan2_prior as sg2p
from dgp_engine.priors.checkpoint import numpy_floats_allowed
from dgp_engine.priors.load import load_prior
from dgp_engine.system import paths

from .conftest import REFERENCE
from .fakehub import FakeHub, leftovers
from .helpers import tiny_prior
from .test_stylegan2_parity import _rename_module, _repickle, _Runs, _tree, nvidia_names

__all__ = ["nvidia_names"]  # a fixture, used by name

SMALL = REFERENCE / "stylegan2_small"
PKL = "network-snapshot-000100.pkl"
G_EMA = "model=G_ema-best-weights-step=1000.pth"
G_RAW = "model=G-best-weights-step=1000.pth"
D_FILE = "model=D-best-weights-step=1000.pth"
#: Installed weights are float16 (biases, buffers and other vectors float32): the images
#: then differ from the float32 reference by at most 0.0066 / 0.011 / 0.010 / 0.010
#: (studiogan_afhq256 / studiogan_uncond / nvidia_cond / nvidia_uncond; images reach
#: |x| = 8…13), so 2e-2 is the float16 tolerance; the discriminator's outputs by at most
#: 1.5e-3.
TOL_FP16 = 2e-2
TOL_FP16_D = 5e-3
#: The StudioGAN runs' settings that their files do not record (forward.json has them).
STUDIOGAN_CLAMP = {"studiogan_afhq256": "256", "studiogan_uncond": "none"}
MODELS = ("studiogan_afhq256", "studiogan_uncond", "nvidia_cond", "nvidia_uncond")
NVIDIA_LICENCE = "NVIDIA Source Code License-NC"
RESEARCH = "research use (trained with NVIDIA-licensed code)"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def import_reference(capsys, name: str, model: str) -> tuple[int, str, str]:
    """``dgp models import`` of a reference model as its publisher ships it."""
    folder = SMALL / model
    if model.startswith("nvidia"):
        return run(capsys, "import", name, "--pkl", str(folder / PKL))
    return run(
        capsys,
        "import",
        name,
        "--g",
        str(folder / G_EMA),
        "--d",
        str(folder / D_FILE),
        "--config",
        str(folder / "studiogan.yaml"),
        "--conv-clamp",
        STUDIOGAN_CLAMP[model],
    )


def nothing_installed(name: str) -> None:
    assert registry.installed(name) is None
    assert not (paths.models_dir() / name).exists()
    assert leftovers(paths.cache_dir()) == []


def reference_image(prior, model: str) -> tuple[torch.Tensor, torch.Tensor]:
    ref = torch.load(SMALL / model / "forward.pt", weights_only=True)
    nets = prior.stylegan2
    c = ref["in.c"] if nets.config.c_dim else None
    with torch.no_grad():
        return nets.G(ref["in.z"], c), ref["G_ema.img"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- import → load


@pytest.mark.parametrize("model", MODELS)
def test_reference_models_import_install_and_load_back_to_the_reference_image(capsys, model):
    code, out, err = import_reference(capsys, "sg2", model)
    assert code == 0, err
    assert "sg2: imported into" in out and "StyleGAN2 64px" in out
    installed = registry.installed("sg2")
    assert installed is not None and installed.family == "stylegan2"
    meta = json.loads((SMALL / model / "forward.json").read_text())
    kw = meta["init_kwargs"] if model.startswith("nvidia") else meta["constructor_kwargs"]
    cfg = installed.config
    assert isinstance(cfg, StyleGAN2Config)
    assert cfg.conv_clamp == kw["G"]["synthesis_kwargs"]["conv_clamp"]
    assert cfg.mbstd_group_size == kw["D"]["epilogue_kwargs"]["mbstd_group_size"]
    assert cfg.d_head == ("nvidia" if model.startswith("nvidia") else "studiogan")
    # config.json: the StyleGAN2 settings with the family
    on_disk = json.loads((installed.folder / "config.json").read_text())
    assert on_disk == {"family": "stylegan2", **cfg.to_dict()}
    # float16 weights, float32 vectors and buffers
    from safetensors import safe_open

    with safe_open(str(installed.folder / "G_ema.safetensors"), "pt") as fh:
        assert fh.get_tensor("synthesis.b8.conv0.weight").dtype == torch.float16
        assert fh.get_tensor("mapping.fc0.weight").dtype == torch.float16
        assert fh.get_tensor("mapping.w_avg").dtype == torch.float32
        assert fh.get_tensor("synthesis.b8.conv0.bias").dtype == torch.float32
    prior = load_prior("sg2")
    assert prior.family == "stylegan2" and not prior.is_biggan and prior.resolution == 64
    assert prior.n_classes == cfg.c_dim
    assert len(prior.class_names) == cfg.c_dim  # none for an unconditional generator
    img, want = reference_image(prior, model)
    diff = (img - want).abs().max().item()
    assert 0 < diff <= TOL_FP16  # float16 weights: close, not equal
    # the discriminator too (batch 2, real images)
    ref = torch.load(SMALL / model / "forward.pt", weights_only=True)
    nets = prior.stylegan2
    labels = ref["in.y"] if cfg.d_label_dim else None
    with torch.no_grad():
        logits, _ = nets.D(ref["in.x_real"], labels)
    key = "D.real.logits" if model.startswith("nvidia") else "D.real.adv_output"
    assert (logits.reshape(-1) - ref[key].reshape(-1)).abs().max().item() <= TOL_FP16_D
    assert all(r.ok for r in hub.verify(["sg2"]))


def test_the_image_test_would_notice_other_weights(capsys):
    # the tolerance separates the right weights from another model's
    assert import_reference(capsys, "sg2", "nvidia_cond")[0] == 0
    img, _ = reference_image(load_prior("sg2"), "nvidia_cond")
    other = torch.load(SMALL / "studiogan_afhq256" / "forward.pt", weights_only=True)
    assert (img - other["G_ema.img"]).abs().max().item() > 50 * TOL_FP16


def test_licence_is_recorded_listed_and_shown_by_info(capsys):
    assert import_reference(capsys, "nv", "nvidia_uncond")[0] == 0
    assert import_reference(capsys, "sgan", "studiogan_uncond")[0] == 0
    assert registry.installed("nv").record["licence"].startswith(NVIDIA_LICENCE)
    assert registry.installed("sgan").record["licence"] == RESEARCH
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "RES", "SIZE", "SOURCE"]
    row = next(i for i, line in enumerate(lines) if line.startswith("nv "))
    assert "installed" in lines[row] and "imported files" in lines[row]
    assert lines[row + 1].split() == ["licence:", *sg2p.LICENCE_NVIDIA.split()]
    row = next(i for i, line in enumerate(lines) if line.startswith("sgan "))
    assert lines[row + 1].strip() == f"licence: {RESEARCH}"
    rows = {r["name"]: r for r in json.loads(run(capsys, "list", "--json")[1])}
    assert rows["nv"]["licence"] == sg2p.LICENCE_NVIDIA and rows["nv"]["family"] == "stylegan2"
    assert rows["stylegan2-afhq-256"]["licence"] == RESEARCH
    assert rows["imagenet-128"]["family"] == "studiogan"
    code, out, _ = run(capsys, "info", "nv")
    assert code == 0
    assert f"licence:      {sg2p.LICENCE_NVIDIA}" in out.splitlines()
    assert "family:       stylegan2" in out.splitlines()
    assert "import nvidia-pickle" in out
    facts = json.loads(run(capsys, "info", "stylegan2-afhq-256", "--json")[1])
    assert facts["licence"] == RESEARCH and facts["state"] == "not installed"
    assert facts["classes"] == 3 and facts["download_bytes"] == 417_000_000
    assert facts["size_bytes"] is None and facts["family"] == "stylegan2"
    assert "classes:      none (unconditional)" in run(capsys, "info", "nv")[1]


def test_a_failed_import_keeps_the_installed_model(capsys, tmp_path, nvidia_names):
    assert import_reference(capsys, "keep", "nvidia_cond")[0] == 0
    before = {p.name: p.read_bytes() for p in (paths.models_dir() / "keep").iterdir()}
    tree = _tree()
    del tree["D"]
    bad = tmp_path / "no-d.pkl"
    bad.write_bytes(_repickle(tree, nvidia_names))
    code, _, err = run(capsys, "import", "keep", "--pkl", str(bad), "--force")
    assert code == 1 and "holds no discriminator" in err
    after = {p.name: p.read_bytes() for p in (paths.models_dir() / "keep").iterdir()}
    assert after == before and leftovers(paths.cache_dir()) == []
    img, want = reference_image(load_prior("keep"), "nvidia_cond")
    assert (img - want).abs().max().item() <= TOL_FP16


# --------------------------------------------------------------------------- refused pickles


def _write(tmp_path: Path, data: bytes, name: str = "net.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs_or_installs(capsys, tmp_path):
    import os
    import pickle

    sentinel = tmp_path / "ran.txt"
    path = _write(tmp_path, pickle.dumps({"G": _Runs(os.system, f"touch {sentinel}"), "D": None}))
    code, _, err = run(capsys, "import", "evil", "--pkl", str(path))
    assert code == 1 and err.startswith("dgp: error: net.pkl was refused: it refers to")
    assert "system" in err and len(err.strip().splitlines()) == 1
    assert not sentinel.exists()
    nothing_installed("evil")


def test_embedded_source_is_never_run_on_import(capsys, tmp_path, nvidia_names):
    sentinel = tmp_path / "ran.txt"
    code_text = f"open({str(sentinel)!r}, 'w').close()\n"
    path = _write(tmp_path, _repickle(_tree(), nvidia_names, module_src=code_text))
    code, _, err = run(capsys, "import", "ok", "--pkl", str(path))
    assert code == 0, err
    load_prior("ok")
    assert not sentinel.exists()


def _stylegan3(tree):
    for key in ("G", "G_ema"):
        _rename_module(tree[key].state["_modules"]["synthesis"], "b4", "input", "SynthesisInput")
    return tree


def _foreign_torgb(tree):
    synthesis = tree["G_ema"].state["_modules"]["synthesis"]
    _rename_module(synthesis.state["_modules"]["b8"], "torgb", "torgb", "ToRGBLayerV2")
    return tree


def _no_d(tree):
    del tree["D"]
    return tree


def _d_of_another_resolution(tree):
    tree["D"].state["_init_kwargs"]["img_resolution"] = 128
    return tree


@pytest.mark.parametrize(
    "damage, says",
    [
        (_stylegan3, "StyleGAN3 network.*not StyleGAN2"),
        (_foreign_torgb, "not a StyleGAN2 generator: its synthesis.b8.torgb is a ToRGBLayerV2"),
        (_no_d, "holds no discriminator"),
        (_d_of_another_resolution, "made for different image sizes"),
    ],
    ids=["stylegan3", "foreign-class", "g-without-d", "d-of-another-resolution"],
)
def test_foreign_pickles_are_refused_by_name_and_nothing_is_installed(
    capsys, tmp_path, nvidia_names, damage, says
):
    path = _write(tmp_path, _repickle(damage(_tree()), nvidia_names))
    code, _, err = run(capsys, "import", "foreign", "--pkl", str(path))
    assert code == 1 and err.startswith("dgp: error: net.pkl")
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(says, err), err
    nothing_installed("foreign")


def test_truncated_and_non_pickle_files_are_refused_and_nothing_is_installed(capsys, tmp_path):
    data = (SMALL / "nvidia_uncond" / PKL).read_bytes()
    for cut in (len(data) // 2, len(data) - 1):
        path = _write(tmp_path, data[:cut])
        code, _, err = run(capsys, "import", "cut", "--pkl", str(path))
        assert code == 1 and "damaged or incomplete" in err
        nothing_installed("cut")
    code, _, err = run(capsys, "import", "cut", "--pkl", str(SMALL / "studiogan_uncond" / D_FILE))
    assert code == 1 and "is a zip archive" in err
    nothing_installed("cut")


def test_import_arguments_say_what_is_wrong(capsys, tmp_path):
    pkl = str(SMALL / "nvidia_cond" / PKL)
    code, _, err = run(capsys, "import", "x", "--pkl", pkl, "--g", pkl)
    assert code == 1 and "drop --g" in err
    code, _, err = run(capsys, "import", "x", "--pkl", pkl, "--conv-clamp", "256")
    assert code == 1 and "drop --conv-clamp" in err
    code, _, err = run(capsys, "import", "x", "--g", pkl)
    assert code == 1 and "--d" in err
    code, _, err = run(capsys, "import", "stylegan2-afhq-256", "--pkl", pkl)
    assert code == 1 and "under a new name" in err
    code, _, err = run(capsys, "import", "x", "--pkl", str(tmp_path / "missing.pkl"))
    assert code == 1 and "does not exist" in err
    classes = tmp_path / "classes.txt"
    classes.write_text("a\nb\n")
    code, _, err = run(capsys, "import", "x", "--pkl", pkl, "--classes", str(classes))
    assert code == 1 and "lists 2 class names but the model has 3" in err
    code, _, err = run(
        capsys,
        "import",
        "x",
        "--pkl",
        str(SMALL / "nvidia_uncond" / PKL),
        "--classes",
        str(classes),
    )
    assert code == 1 and "unconditional" in err
    nothing_installed("x")


def test_class_names_of_a_pickle_import(capsys, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\nwild\n")
    code, _, err = run(
        capsys,
        "import",
        "pets",
        "--pkl",
        str(SMALL / "nvidia_cond" / PKL),
        "--classes",
        str(classes),
    )
    assert code == 0, err
    assert registry.class_names("pets") == ["cat", "dog", "wild"]
    prior = load_prior("pets")
    assert prior.class_names == ["cat", "dog", "wild"] and prior.choose_class("dog") == 1


# --------------------------------------------------------------------------- StudioGAN files


def _studiogan(model: str = "studiogan_afhq256") -> tuple[str, str, str]:
    folder = SMALL / model
    return str(folder / G_EMA), str(folder / D_FILE), str(folder / "studiogan.yaml")


def test_studiogan_stylegan2_settings_the_files_do_not_record_are_asked_for(capsys):
    g, d, yaml = _studiogan()
    code, _, err = run(capsys, "import", "sg", "--g", g, "--d", d, "--config", yaml)
    assert code == 1 and "--conv-clamp 256" in err and "--conv-clamp none" in err
    code, _, err = run(capsys, "import", "sg", "--g", g, "--d", d, "--conv-clamp", "256")
    assert code == 1 and "minibatch-std group size" in err and "--config" in err
    code, _, err = run(
        capsys, "import", "sg", "--g", g, "--d", d, "--config", yaml, "--conv-clamp", "lots"
    )
    assert code == 1 and "conv_clamp must be a number" in err
    nothing_installed("sg")


def test_conv_clamp_is_the_setting_given(capsys):
    g, d, yaml = _studiogan()
    assert (
        run(capsys, "import", "sg", "--g", g, "--d", d, "--config", yaml, "--conv-clamp", "none")[0]
        == 0
    )
    assert registry.installed("sg").config.conv_clamp is None
    # the clamp case of the reference (ws × 200) reaches ±256: only the right setting
    # reproduces it
    ref = torch.load(SMALL / "studiogan_afhq256" / "forward.pt", weights_only=True)
    ws = ref["G_ema.ws"] * ref["in.clamp_ws_scale"]
    with torch.no_grad():
        unclamped = load_prior("sg").stylegan2.G.synthesis(ws)
    assert (
        run(
            capsys,
            "import",
            "sg",
            "--g",
            g,
            "--d",
            d,
            "--config",
            yaml,
            "--conv-clamp",
            "256",
            "--force",
        )[0]
        == 0
    )
    assert registry.installed("sg").config.conv_clamp == 256
    with torch.no_grad():
        clamped = load_prior("sg").stylegan2.G.synthesis(ws)
    want = ref["G_ema.clamp.img"]
    # |x| up to 589 here: float16 weights are off by 0.67 at most (0.1 % of that), while
    # not clamping is off by up to 837
    assert (clamped - want).abs().max().item() <= 1.0
    assert (unclamped - want).abs().max().item() > 100.0


def test_studiogan_files_given_the_wrong_way_are_refused_by_what_they_are(capsys, tmp_path):
    g, d, yaml = _studiogan()
    flags = ("--config", yaml, "--conv-clamp", "256")
    code, _, err = run(capsys, "import", "sg", "--g", d, "--d", g, *flags)
    assert code == 1 and "holds a StyleGAN2 discriminator, not a generator" in err
    # a D of another resolution (a 32 px StudioGAN D) with the 64 px G
    cfg32 = StyleGAN2Config(
        resolution=32,
        z_dim=32,
        w_dim=24,
        c_dim=3,
        channel_base=256,
        channel_max=16,
        conv_clamp=256.0,
        mbstd_group_size=8,
        d_head="studiogan",
    )
    torch.manual_seed(0)
    _, d32 = sg2.build(cfg32)
    other = tmp_path / D_FILE
    torch.save({"state_dict": d32.state_dict()}, other)
    code, _, err = run(capsys, "import", "sg", "--g", g, "--d", str(other), *flags)
    assert code == 1 and f"{D_FILE} does not belong to {G_EMA}" in err
    assert "32 px" in err
    # a YAML of another run
    uncond_yaml = str(SMALL / "studiogan_uncond" / "studiogan.yaml")
    code, _, err = run(
        capsys, "import", "sg", "--g", g, "--d", d, "--config", uncond_yaml, "--conv-clamp", "256"
    )
    assert code == 1 and "not this run's config" in err
    # StyleGAN2 files into a BigGAN model, a BigGAN file with --conv-clamp
    code, _, err = run(capsys, "import", "imagenet-128", "--g", g, "--d", d)
    assert code == 1 and "is a BigGAN model: import it under a new name" in err
    big = REFERENCE / "studiogan_small" / "imagenet128"
    code, _, err = run(
        capsys,
        "import",
        "big",
        "--g",
        str(big / G_EMA),
        "--d",
        str(big / D_FILE),
        "--conv-clamp",
        "256",
    )
    assert code == 1 and "--conv-clamp is a StyleGAN2 setting" in err
    for name in ("sg", "imagenet-128", "big"):
        nothing_installed(name)


def test_studiogan_files_import_into_the_registered_model_with_its_settings(capsys):
    # a registered StyleGAN2 model fixes the architecture: the small files do not fit it
    g, d, yaml = _studiogan()
    code, _, err = run(capsys, "import", "stylegan2-afhq-256", "--g", g, "--d", d)
    assert code == 1
    assert (
        f"{G_EMA} is a StyleGAN2 generator (64 px, 3 classes, z 32, w 24), but "
        "stylegan2-afhq-256 expects a 256 px generator (3 classes, z 512, w 512)"
    ) in err
    code, _, err = run(capsys, "import", "stylegan2-afhq-256", "--g", g, "--d", d, "--config", yaml)
    assert code == 1 and "has a fixed architecture" in err
    nothing_installed("stylegan2-afhq-256")


# --------------------------------------------------------------------------- registry


def _manifest(name: str) -> dict:
    return json.loads((REFERENCE / f"stylegan2_keys_{name}.json").read_text())


@pytest.mark.parametrize(
    "name, manifest",
    [
        ("stylegan2-afhq-256", "studiogan_afhq256_cond"),
        ("stylegan2-afhq-512", "studiogan_afhq512_uncond"),
    ],
)
def test_registry_entries_have_exactly_the_published_tensors(name, manifest):
    entry = registry.get_entry(name)
    m = _manifest(manifest)
    cfg = entry.stylegan2
    assert entry.family == "stylegan2" and entry.config is None and cfg is not None
    assert entry.licence == RESEARCH
    assert cfg.resolution == m["config"]["img_size"] == entry.resolution
    assert cfg.mbstd_group_size == m["config"]["d_epilogue_mbstd_group_size"]
    G, D = sg2p.meta_networks(cfg)
    for role, net in (("G", G), ("D", D)):
        want = {k: tuple(v["shape"]) for k, v in m[role].items()}
        got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        assert got == want, role
        assert entry.expect[f"{role.lower()}_keys"] == len(want)
        assert entry.expect[f"{role.lower()}_elements"] == sum(math.prod(s) for s in want.values())
    assert sum(p.numel() for p in G.parameters()) == m["G_params"]
    assert sum(p.numel() for p in D.parameters()) == m["D_params"]
    assert entry.source.format == "studiogan"
    assert entry.source.repo_id == "Mingguksky/PyTorch-StudioGAN"


#: Run folders seen on the Hub (reference/stylegan2_small/README.md).
SEEN_256 = [
    "AFHQv2-StyleGAN2-256Res-train-2022_02_26_17_44_48",
    "AFHQv2-StyleGAN2-256Res-ADA-train-2022_02_28_10_07_21",
    "AFHQv2-StyleGAN2-256Res-DiffAug-train-2022_03_01_10_53_25",
    "AFHQv2-StyleGAN2-256Res-DiffAug-LeCam-train-2022_03_02_03_18_59",
    "AFHQv2-StyleGAN2-256Res-LeCam-train-2022_03_02_03_18_59",
    "AFHQv2-StyleGAN2-256Res-APA-train-2022_03_01_16_52_21",
]
SEEN_512 = [
    "AFHQ_V2_uncond-StyleGAN2-paper-train-2022_03_12_05_10_24",
    "AFHQ_V2_uncond-StyleGAN2-paper-no-ADA-train-2022_03_13_15_47_04",
    "AFHQ_V2_uncond-StyleGAN3-r-paper-train-2022_03_13_15_47_04",
    "AFHQ_V2_uncond-StyleGAN3-t-paper-train-2022_03_16_15_45_11",
]
ROOT = "studiogan_official_ckpt"


@pytest.mark.parametrize(
    "name, folder, runs, want",
    [
        (
            "stylegan2-afhq-256",
            "Efficient-AFHQ-V2-256",
            SEEN_256,
            "AFHQv2-StyleGAN2-256Res-ADA-train-2022_02_28_10_07_21",
        ),
        (
            "stylegan2-afhq-512",
            "AFHQ-V2-512-uncond-tailored",
            SEEN_512,
            "AFHQ_V2_uncond-StyleGAN2-paper-train-2022_03_12_05_10_24",
        ),
    ],
)
def test_registry_patterns_pick_one_run_of_those_seen(name, folder, runs, want):
    src = registry.get_entry(name).source
    assert listing.literal_prefix(src.G) == f"{ROOT}/{folder}"
    files = [
        listing.RemoteFile(f"{ROOT}/{folder}/{run}/model={kind}-best-weights-step=1.pth", 1, "")
        for run in runs
        for kind in ("G_ema", "G", "D")
    ]
    g_hits = {f.path.rsplit("/", 2)[1] for f in files if fnmatch.fnmatchcase(f.path, src.G)}
    d_hits = {f.path.rsplit("/", 2)[1] for f in files if fnmatch.fnmatchcase(f.path, src.D)}
    assert g_hits == d_hits == {want}
    g, d = listing.choose(files, src.G, src.D)
    assert g.path.endswith(f"{want}/model=G_ema-best-weights-step=1.pth")
    assert d.path.endswith(f"{want}/model=D-best-weights-step=1.pth")


# --------------------------------------------------------------------------- fake Hub pulls

REPO = "Mingguksky/PyTorch-StudioGAN"
ADA_RUN = f"{ROOT}/Efficient-AFHQ-V2-256/AFHQv2-StyleGAN2-256Res-ADA-train-2022_02_28_10_07_21"
OTHER_RUN = f"{ROOT}/Efficient-AFHQ-V2-256/AFHQv2-StyleGAN2-256Res-LeCam-train-2022_03_02_03_18_59"
SMALL_256 = SMALL / "studiogan_afhq256"


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def fake(tmp_path):
    """The small StudioGAN StyleGAN2 files as a StudioGAN run on a fake Hub, copied into a
    temp folder first (what the Hub serves is read from there)."""
    folder = tmp_path / "fakehub"
    folder.mkdir()
    for name in (G_EMA, G_RAW, D_FILE):
        (folder / name).write_bytes((SMALL_256 / name).read_bytes())
    with FakeHub(page_size=4) as server:
        server.put(REPO, "README.md", b"StudioGAN checkpoints")
        # the run to take, with the raw G and a 'current' G_ema beside its best files,
        # and a newer run of another method that the pattern must leave alone
        server.put(REPO, f"{ADA_RUN}/{G_RAW}", (folder / G_RAW).read_bytes())
        server.put(
            REPO,
            f"{ADA_RUN}/model=G_ema-current-weights-step=1200.pth",
            (folder / G_RAW).read_bytes(),
        )
        server.put(REPO, f"{ADA_RUN}/{G_EMA}", (folder / G_EMA).read_bytes())
        server.put(REPO, f"{ADA_RUN}/{D_FILE}", (folder / D_FILE).read_bytes())
        server.put(REPO, f"{OTHER_RUN}/{G_EMA}", (folder / G_RAW).read_bytes())
        server.put(REPO, f"{OTHER_RUN}/{D_FILE}", (folder / D_FILE).read_bytes())
        yield server


def _small_entry(fake) -> str:
    """A model like stylegan2-afhq-256 (its patterns, StudioGAN files) for the small
    reference architecture, served by the fake Hub."""
    shipped = registry.get_entry("stylegan2-afhq-256").source
    config = StyleGAN2Config(
        resolution=64,
        z_dim=32,
        w_dim=24,
        c_dim=3,
        channel_base=256,
        channel_max=16,
        conv_clamp=256.0,
        mbstd_group_size=8,
        d_head="studiogan",
    )
    registry.add_model(
        "sg2-small",
        config,
        registry.HubSource(
            endpoint=fake.url, repo_id=REPO, G=shipped.G, D=shipped.D, format="studiogan"
        ),
    )
    return "sg2-small"


def test_pull_resolves_the_run_checks_g_before_d_installs_and_pins(online, fake):
    name = _small_entry(fake)
    reports = []
    model = hub.pull(name, progress=reports.append)
    g_path, d_path = f"{ADA_RUN}/{G_EMA}", f"{ADA_RUN}/{D_FILE}"
    assert model.origin["files"]["G"]["name"] == g_path
    assert model.origin["files"]["D"]["name"] == d_path
    plan = next(r for r in reports if r.stage == "plan")
    assert plan.total == (SMALL_256 / G_EMA).stat().st_size + (SMALL_256 / D_FILE).stat().st_size
    # the generator was downloaded and read before any request for the discriminator
    requests = [(r.method, r.filename) for r in fake.log]
    first_d = next(i for i, r in enumerate(requests) if r[1] == d_path)
    assert ("GET", g_path) in requests[:first_d]
    stages = [(r.stage, r.file) for r in reports]
    read_g = stages.index(("read", G_EMA))
    assert read_g < min(
        i for i, (stage, f) in enumerate(stages) if stage == "download" and D_FILE in f
    )
    pin = registry.pinned(registry.get_entry(name).source)
    assert pin["G"] == g_path and pin["D_sha256"] == sha((SMALL_256 / D_FILE).read_bytes())
    assert model.family == "stylegan2" and model.record["family"] == "stylegan2"
    assert not list(registry.downloads_dir().rglob("*.pth"))
    prior = load_prior(name)
    img, want = reference_image(prior, "studiogan_afhq256")
    assert (img - want).abs().max().item() <= TOL_FP16
    assert all(r.ok for r in hub.verify([name]))
    fake.log.clear()
    assert hub.pull(name).folder == model.folder and fake.log == []  # pinned, installed


def test_pulling_the_registered_model_stops_at_a_wrong_generator_before_fetching_d(online, fake):
    # the shipped entry, pointed at the fake Hub: it resolves the ADA run from the
    # listing, downloads the (small, 64 px) G_ema, finds it is not the 256 px model and
    # never asks for the discriminator
    registry.set_source("stylegan2-afhq-256", endpoint=fake.url)
    with pytest.raises(CheckpointError) as info:
        hub.pull("stylegan2-afhq-256")
    text = str(info.value)
    assert text.startswith(
        f"{G_EMA} is a StyleGAN2 generator (64 px, 3 classes, z 32, w 24), "
        "but stylegan2-afhq-256 expects a 256 px generator"
    )
    assert f"the discriminator ({D_FILE}) was not downloaded" in text
    assert [r for r in fake.log if r.filename.endswith(D_FILE)] == []
    assert any(r.method == "GET" and r.filename == f"{ADA_RUN}/{G_EMA}" for r in fake.log)
    nothing_installed("stylegan2-afhq-256")


# --------------------------------------------------------------------------- plausibility


def _flip_exponent(t: torch.Tensor) -> None:
    """One weight far out of its tensor's range, as a flipped exponent bit makes it (still
    finite in float16, so the outlier rule is what finds it)."""
    t.view(-1)[7] = 5e4


def test_implausible_stylegan2_weights_are_refused_at_import(capsys, tmp_path):
    with numpy_floats_allowed():
        payload = torch.load(SMALL_256 / D_FILE, weights_only=True)
    _flip_exponent(payload["state_dict"]["b32.conv0.weight"])
    bad = tmp_path / D_FILE
    torch.save(payload, bad)
    g, _, yaml = _studiogan()
    code, _, err = run(
        capsys, "import", "sg", "--g", g, "--d", str(bad), "--config", yaml, "--conv-clamp", "256"
    )
    assert code == 1 and f"{D_FILE} is damaged: b32.conv0.weight holds" in err
    nothing_installed("sg")


def _rewrite_installed(name: str, fname: str, change) -> None:
    """Change an installed weights file and record it as installed that way (damage that
    happened before the install record was written)."""
    from safetensors.torch import load_file, save_file

    folder = paths.models_dir() / name
    tensors = load_file(str(folder / fname))
    change(tensors)
    save_file(tensors, str(folder / fname))
    record = json.loads((folder / "model.json").read_text())
    data = (folder / fname).read_bytes()
    record["files"][fname].update(sha256=sha(data), size=len(data))
    (folder / "model.json").write_text(json.dumps(record))


def test_verify_and_load_find_implausible_values_in_a_stylegan2_install(capsys):
    assert import_reference(capsys, "sg", "nvidia_cond")[0] == 0
    code, out, _ = run(capsys, "verify", "sg")
    assert code == 0 and out.strip() == "sg: OK"

    def damage(t):
        w = t["synthesis.b16.conv1.weight"].float()
        w.view(-1)[3] = 3e4  # representable in float16, 10⁴ times its neighbours
        t["synthesis.b16.conv1.weight"] = w.half()

    _rewrite_installed("sg", "G_ema.safetensors", damage)
    code, out, _ = run(capsys, "verify", "sg")
    assert code == 1
    assert "G_ema.safetensors is damaged: synthesis.b16.conv1.weight holds 3e+04" in out
    with pytest.raises(CheckpointError, match="G_ema.safetensors of the model sg is damaged"):
        load_prior("sg")


def test_verify_checks_a_stylegan2_install_against_its_own_architecture(capsys):
    assert import_reference(capsys, "cond", "nvidia_cond")[0] == 0
    assert import_reference(capsys, "uncond", "nvidia_uncond")[0] == 0
    other = (paths.models_dir() / "uncond" / "D.safetensors").read_bytes()

    def swap(t):
        from safetensors.torch import load

        t.clear()
        t.update(load(other))

    _rewrite_installed("cond", "D.safetensors", swap)  # an unconditional D in a cond. model
    code, out, _ = run(capsys, "verify", "cond")
    assert code == 1 and "D.safetensors does not fit StyleGAN2 64px, 3 classes" in out
    assert "missing (e.g. mapping.embed.weight" in out
    with pytest.raises(CheckpointError, match="does not fit its config.json"):
        load_prior("cond")


# --------------------------------------------------------------------------- the family


def test_bigan_only_paths_refuse_a_stylegan2_prior_with_a_sentence(capsys):
    assert import_reference(capsys, "sg", "nvidia_cond")[0] == 0
    prior = load_prior("sg")
    for access in (lambda: prior.G, lambda: prior.D, lambda: prior.config):
        with pytest.raises(
            PriorFamilyError, match="sg is a StyleGAN2 prior, and this part of DGP Studio"
        ):
            access()
    big = tiny_prior()
    assert big.family == "biggan-pytorch" and big.is_biggan and big.G is big.generator
    with pytest.raises(PriorFamilyError, match="is a BigGAN prior"):
        _ = big.stylegan2


def test_the_command_line_restores_with_a_stylegan2_prior(capsys, tmp_path):
    """Restoration runs on StyleGAN2 priors now (tests/test_stylegan2_dgp.py has the
    method's tests); a preset for BigGAN priors is refused with a sentence."""
    assert import_reference(capsys, "sg", "nvidia_uncond")[0] == 0
    photo = tmp_path / "in.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    out = tmp_path / "out.png"
    code = main(
        ["colorize", str(photo), "-o", str(out), "--model", "sg", "-q", "--preset", "colorization"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "dgp: error: The preset 'colorization' is for BigGAN priors (it names no family): "
        'choose a stylegan2_* preset, or add family = "stylegan2" to it.'
    )
    assert not out.exists()


def test_a_stylegan2_folder_is_not_read_as_a_biggan(capsys):
    from dgp_engine.priors.checkpoint import read_config

    assert import_reference(capsys, "sg", "nvidia_uncond")[0] == 0
    with pytest.raises(CheckpointError, match="holds a StyleGAN2 model"):
        read_config(paths.models_dir() / "sg")
    with pytest.raises(RegistryError, match="a StyleGAN2 model is downloaded as StudioGAN's"):
        registry.add_model(
            "x",
            StyleGAN2Config(resolution=64),
            registry.HubSource(repo_id="a/b", G="g.pth", D="d.pth"),
        )


def test_the_app_can_import_a_pickle_off_its_event_loop():
    import asyncio

    from dgp_engine.priors.hub_async import import_pickle_async

    reports = []
    model = asyncio.run(
        import_pickle_async("nv", SMALL / "nvidia_cond" / PKL, progress=reports.append)
    )
    assert model.family == "stylegan2" and registry.installed("nv") is not None
    assert {r.stage for r in reports} >= {"hash", "read", "write"}

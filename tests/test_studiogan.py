"""StudioGAN BigGAN checkpoints: parity with StudioGAN's own forwards, key coverage of the
published configs, refusals of everything else, and the DGP loop on such a prior."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dgp_engine import BigGANConfig, Discriminator, Generator, load_prior, reconstruct
from dgp_engine.errors import CheckpointError
from dgp_engine.method.degradations import make_degradation
from dgp_engine.method.presets import load_preset
from dgp_engine.models.spectral import SNLinear
from dgp_engine.priors import studiogan
from dgp_engine.priors.checkpoint import OPTIONAL_G_KEYS, read_folder

from . import studiogan_files
from .conftest import PARITY, REFERENCE

SMALL = REFERENCE / "studiogan_small"
NAMES = ("imagenet128", "papa64", "afhq256")
TOL = 1e-4
G_EMA = "model=G_ema-best-weights-step=1000.pth"
D_FILE = "model=D-best-weights-step=1000.pth"


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    folder = SMALL / request.param
    return request.param, load_prior(folder), torch.load(folder / "forward.pt", weights_only=False)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def test_generator_matches_studiogan(case):
    name, prior, ref = case
    assert prior.config.family == "studiogan" and prior.config.BN_eps == 1e-4
    with torch.no_grad():
        inter = []
        x = prior.G(ref["z"], prior.G.shared(ref["y"]), intermediates=inter)
    blocks = [(n, t) for n, t in inter if n != "linear"]
    assert len(blocks) == len(ref["G_ema_block_outputs"])
    for (ours, got), (theirs, want) in zip(blocks, ref["G_ema_block_outputs"], strict=True):
        assert _max_diff(got, want) <= TOL, f"{name}: our {ours} vs StudioGAN {theirs}"
    assert _max_diff(x, ref["G_ema_out"]) <= TOL


def test_discriminator_matches_studiogan(case):
    name, prior, ref = case
    with torch.no_grad():
        outputs = []
        logit, feats = prior.D(ref["x_real"], ref["y"], block_outputs=outputs)
        fake_logit, _ = prior.D(ref["G_ema_out"], ref["y"])
    assert len(outputs) == len(ref["D_real_block_outputs"])
    for (ours, got), (theirs, want) in zip(outputs, ref["D_real_block_outputs"], strict=True):
        assert _max_diff(got, want) <= TOL, f"{name}: our D {ours} vs StudioGAN {theirs}"
    assert _max_diff(feats[-1], ref["D_real_h"]) <= TOL
    assert _max_diff(logit.flatten(), ref["D_real_adv_output"]) <= TOL
    assert _max_diff(fake_logit.flatten(), ref["D_fake_adv_output"]) <= TOL
    # DGP's feature list maps one to one: each block (and attention) output, the last
    # block post-ReLU (the reference DGP quirk), then the pooled vector.
    assert len(feats) == len(outputs) + 1
    torch.testing.assert_close(feats[-2], torch.relu(outputs[-1][1]))


def test_the_plain_generator_file_also_matches(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    shutil.copy(SMALL / "imagenet128" / "model=G-best-weights-step=1000.pth", folder)
    shutil.copy(SMALL / "imagenet128" / D_FILE, folder)
    ref = torch.load(SMALL / "imagenet128" / "forward.pt", weights_only=False)
    prior = load_prior(folder)  # no YAML: the architecture comes from the tensors
    with torch.no_grad():
        x = prior.G(ref["z"], prior.G.shared(ref["y"]))
    assert _max_diff(x, ref["G_out"]) <= TOL


@pytest.mark.parametrize("name", NAMES)
def test_yaml_and_tensors_give_the_same_architecture(name):
    folder = SMALL / name
    from_yaml = studiogan.config_from_yaml(folder / "studiogan.yaml")
    g = torch.load(folder / G_EMA, weights_only=True)["state_dict"]
    d = torch.load(folder / D_FILE, weights_only=True)["state_dict"]
    assert studiogan.infer_config(g, d) == from_yaml
    expected_res = {"imagenet128": 128, "papa64": 64, "afhq256": 256}[name]
    assert from_yaml.resolution == expected_res


def _meta_state_dict(manifest: dict) -> dict[str, torch.Tensor]:
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    return {
        k: torch.empty(v["shape"], dtype=dtypes[v["dtype"]], device="meta")
        for k, v in manifest.items()
    }


@pytest.mark.parametrize(
    "manifest",
    [
        "studiogan_keys_imagenet128_ch96.json",
        "studiogan_keys_afhq256_ch96.json",
        "studiogan_keys_papa64_ch80.json",
    ],
)
def test_full_size_configs_cover_every_key(manifest):
    data = json.loads((REFERENCE / manifest).read_text())
    g, d = _meta_state_dict(data["G"]), _meta_state_dict(data["D"])
    config = studiogan.infer_config(g, d)
    cfg = data["config"]
    assert (config.resolution, config.n_classes, config.G_ch, config.D_ch, config.shared_dim) == (
        cfg["img_size"],
        cfg["num_classes"],
        cfg["g_conv_dim"],
        cfg["d_conv_dim"],
        cfg["g_shared_dim"],
    )
    assert config.effective_dim_z == cfg["z_dim"]
    with torch.device("meta"):
        nets = {"G": Generator(config), "D": Discriminator(config)}
    for role, sd in (("G", g), ("D", d)):
        ours = {k: tuple(v.shape) for k, v in nets[role].state_dict().items()}
        converted = {k: tuple(v.shape) for k, v in studiogan.to_ours(sd, role).items()}
        assert set(converted) == {k for k in ours if not (role == "G" and OPTIONAL_G_KEYS.match(k))}
        assert all(converted[k] == ours[k] for k in converted), role
        # every StudioGAN tensor but the BN step counters found a place
        counters = [k for k in sd if k.endswith("num_batches_tracked")]
        assert len(converted) == len(sd) - len(counters)


def test_fixed_spectral_norm_is_pytorchs():
    torch.manual_seed(0)
    theirs = torch.nn.utils.spectral_norm(torch.nn.Linear(6, 5))
    ours = SNLinear(6, 5, style="fixed")
    with torch.no_grad():
        ours.weight.copy_(theirs.weight_orig)
        ours.bias.copy_(theirs.bias)
        ours.u0.copy_(theirs.weight_u[None])
        ours.v0.copy_(theirs.weight_v[None])
    x = torch.randn(3, 6)
    for _ in range(3):  # training mode: one power step per forward, vectors updated
        torch.testing.assert_close(ours.train()(x), theirs.train()(x))
    torch.testing.assert_close(ours.u0[0], theirs.weight_u)
    torch.testing.assert_close(ours.v0[0], theirs.weight_v)
    with torch.no_grad():  # eval mode: sigma = u^T W v as stored, even for non-unit vectors
        ours.u0.mul_(0.7)
        theirs.weight_u.mul_(0.7)
    torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))


# --------------------------------------------------------------------------- refusals


def _folder(tmp_path, g_src, d_src, yaml_src=None):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(g_src, folder / G_EMA)
    shutil.copy(d_src, folder / D_FILE)
    if yaml_src is not None:
        shutil.copy(yaml_src, folder / "studiogan.yaml")
    return folder


def test_generator_and_discriminator_of_different_configs_are_refused(tmp_path):
    folder = _folder(tmp_path, SMALL / "imagenet128" / G_EMA, SMALL / "afhq256" / D_FILE)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_prior(folder)


def test_swapped_files_are_refused(tmp_path):
    folder = _folder(tmp_path, SMALL / "imagenet128" / D_FILE, SMALL / "imagenet128" / G_EMA)
    with pytest.raises(CheckpointError, match="not a generator"):
        load_prior(folder)


def test_biggan_pytorch_weights_under_a_studiogan_config_are_refused(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(PARITY / "G_ema.pth", folder / "G_ema.pth")
    shutil.copy(PARITY / "D.pth", folder / "D.pth")
    cfg = studiogan.config_from_yaml(SMALL / "imagenet128" / "studiogan.yaml")
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    with pytest.raises(
        CheckpointError, match="StudioGAN model but G_ema.pth is a BigGAN-PyTorch checkpoint"
    ):
        load_prior(folder)


def test_studiogan_weights_under_a_biggan_pytorch_config_are_refused(tmp_path):
    folder = _folder(tmp_path, SMALL / "imagenet128" / G_EMA, SMALL / "imagenet128" / D_FILE)
    cfg = studiogan.config_from_yaml(SMALL / "imagenet128" / "studiogan.yaml")
    plain = {**cfg.to_dict(), "family": "biggan-pytorch"}
    (folder / "config.json").write_text(json.dumps(plain))
    with pytest.raises(CheckpointError, match="weights are StudioGAN's"):
        load_prior(folder)


def _renamed(sd: dict, pattern: str, repl: str) -> dict:
    import re

    return {re.sub(pattern, repl, k): v for k, v in sd.items()}


@pytest.mark.parametrize(
    "make,what",
    [
        (
            lambda g: {
                "mapping.fc0.weight": torch.zeros(2, 2),
                "synthesis.b4.const": torch.zeros(1),
            },
            "StyleGAN2/3",
        ),
        (lambda g: {**g, "blocks.0.0.conv2d3.weight_orig": torch.zeros(1)}, "BigGAN-Deep"),
        (lambda g: {k: v for k, v in g.items() if not k.startswith("shared.")}, "SNGAN/SAGAN"),
    ],
)
def test_other_studiogan_architectures_are_named(tmp_path, make, what):
    g = torch.load(SMALL / "imagenet128" / G_EMA, weights_only=True)
    g["state_dict"] = make(g["state_dict"])
    folder = tmp_path / "x"
    folder.mkdir()
    torch.save(g, folder / G_EMA)
    shutil.copy(SMALL / "imagenet128" / D_FILE, folder / D_FILE)
    with pytest.raises(CheckpointError, match=what):
        read_folder(folder)


@pytest.mark.parametrize(
    "backbone,what",
    [("deep_big_resnet", "BigGAN-Deep"), ("stylegan2", "StyleGAN2"), ("resnet", "SNGAN/SAGAN")],
)
def test_yaml_of_another_architecture_is_refused(tmp_path, backbone, what):
    text = (SMALL / "imagenet128" / "studiogan.yaml").read_text()
    file = tmp_path / "studiogan.yaml"
    file.write_text(text.replace('"big_resnet"', f'"{backbone}"'))
    with pytest.raises(CheckpointError, match=what):
        studiogan.config_from_yaml(file)


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path, capsys):
    folder = _folder(tmp_path, SMALL / "imagenet128" / G_EMA, SMALL / "imagenet128" / D_FILE)
    payload = torch.load(folder / D_FILE, weights_only=True)
    payload["extra"] = _Boom()
    torch.save(payload, folder / D_FILE)
    with pytest.raises(CheckpointError, match="pickled Python objects") as info:
        load_prior(folder)
    assert "weights_only=False" not in str(info.value)
    assert "this must never run" not in capsys.readouterr().out


# --------------------------------------------------------------------------- real D files


def _run_with_d(tmp_path, d_bytes: bytes):
    folder = _folder(tmp_path, SMALL / "imagenet128" / G_EMA, SMALL / "imagenet128" / D_FILE)
    (folder / D_FILE).chmod(0o644)
    (folder / D_FILE).write_bytes(d_bytes)
    return folder


@pytest.mark.parametrize("numpy1", [False, True], ids=["numpy2-names", "numpy1-names"])
@pytest.mark.parametrize("aa_p", ["N/A", "tensor", "numpy"])
def test_discriminators_with_numpy_metadata_load(tmp_path, aa_p, numpy1):
    """StudioGAN stores best_fid (and maybe aa_p) as numpy.float64: such D files load,
    whichever numpy wrote them, and give the reference weights."""
    before = torch.serialization.get_safe_globals()
    d_bytes = studiogan_files.real_d_bytes(SMALL / "imagenet128" / D_FILE, aa_p=aa_p, numpy1=numpy1)
    weights = read_folder(_run_with_d(tmp_path, d_bytes))
    want = read_folder(SMALL / "imagenet128")
    assert weights.D.keys() == want.D.keys()
    assert all(torch.equal(weights.D[k], want.D[k]) for k in want.D)
    # allowed for that read only
    assert torch.serialization.get_safe_globals() == before


@pytest.mark.parametrize(
    "kind", ["object-array", "object-scalar", "object-scalar-numpy1", "os.system"]
)
def test_other_pickled_objects_beside_numpy_floats_stay_refused(tmp_path, kind):
    marker = tmp_path / "ran"
    before = torch.serialization.get_safe_globals()
    d_bytes = studiogan_files.hostile_d_bytes(SMALL / "imagenet128" / D_FILE, kind, marker)
    folder = _run_with_d(tmp_path, d_bytes)
    with pytest.raises(CheckpointError, match=r"holds pickled Python objects besides tensors"):
        read_folder(folder)
    assert not marker.exists()
    assert torch.serialization.get_safe_globals() == before


# --------------------------------------------------------------------------- the DGP loop


def test_dgp_loop_runs_on_a_studiogan_prior(tmp_path):
    from dgp_engine.method.manipulate import Renderer
    from dgp_engine.method.state import ReconstructionState

    prior = load_prior(SMALL / "imagenet128")
    torch.manual_seed(0)
    target = torch.rand(1, 3, 128, 128) * 2 - 1
    preset = load_preset("inpainting").scaled(0.01)  # stage groups, IN swap, features
    mask = torch.ones(1, 1, 128, 128)
    mask[..., 40:80, 40:80] = 0
    before = {k: v.clone() for k, v in prior.G.state_dict().items()}
    phi = make_degradation("inpaint", mask=mask, resolution=128)
    run = reconstruct(prior, target, phi, class_id=3, preset=preset, seed=0)
    reports = list(run)
    assert reports and all(
        torch.isfinite(torch.tensor(list(r.losses.values()))).all() for r in reports if r.losses
    )
    state = run.state
    assert any(d.abs().max() > 0 for d in state.weight_delta.values()), "G was fine-tuned"
    after = prior.G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    file = tmp_path / "r.dgp"
    state.save(file)
    loaded = ReconstructionState.load(file)
    renderer = Renderer(prior, loaded)
    torch.testing.assert_close(renderer.render(), Renderer(prior, state).render())
    frames = [f.image for f in renderer.jitter(2, sigma=0.3, seed=1)]
    assert len(frames) == 2 and all(torch.isfinite(torch.as_tensor(f)).all() for f in frames)


def test_a_fresh_studiogan_family_network_has_sensible_sigmas():
    """build_prior (benchmarks, tests, training) settles each fixed-style layer's u, v on
    its top singular pair: sigma = u^T W v then is the spectral norm, not a random
    (possibly negative or tiny) number that blows the network up."""
    from dgp_engine import build_prior
    from dgp_engine.models.spectral import sn_layers

    cfg = BigGANConfig(
        resolution=64,
        G_ch=16,
        D_ch=16,
        n_classes=10,
        G_attn="32",
        D_attn="32",
        BN_eps=1e-4,
        family="studiogan",
    )
    prior = build_prior(cfg, seed=0)
    for layer in sn_layers(prior.G) + sn_layers(prior.D):
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        exact = torch.linalg.matrix_norm(w, 2)
        assert abs(layer.sigma().item() / exact.item() - 1) < 1e-3
    with torch.no_grad():
        x = prior.G(torch.randn(2, prior.G.dim_z), prior.G.shared(torch.tensor([1, 2])))
        logit, _ = prior.D(x, torch.tensor([1, 2]))
    assert torch.isfinite(x).all() and torch.isfinite(logit).all()

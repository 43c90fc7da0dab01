"""StyleGAN2 (issue 23, networks and loaders): parity with the reference projects' own
forwards on the four small reference models, key coverage of the published full-size
configs, and the safe readers' refusals of hostile or foreign files.

Reference: ``reference/stylegan2_small`` (README there): weights written by StudioGAN's and
NVIDIA's code, and every intermediate their forwards produced, in ``forward.pt``."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dgp_engine.errors import CheckpointError, InputError
from dgp_engine.models import stylegan2 as sg2
from dgp_engine.models.stylegan2 import StyleGAN2Config
from dgp_engine.priors import stylegan2_files as files

from .conftest import REFERENCE

SMALL = REFERENCE / "stylegan2_small"
MODELS = ("studiogan_afhq256", "studiogan_uncond", "nvidia_cond", "nvidia_uncond")
PKL = "network-snapshot-000100.pkl"
G_EMA = "model=G_ema-best-weights-step=1000.pth"
G_RAW = "model=G-best-weights-step=1000.pth"
D_FILE = "model=D-best-weights-step=1000.pth"
TOL = 1e-4
TOL_CLAMP = 1e-3
#: conv_clamp of the StudioGAN runs (the checkpoints do not record it; forward.json does).
STUDIOGAN_CLAMP = {"studiogan_afhq256": 256.0, "studiogan_uncond": None}


def _load(name: str) -> files.StyleGAN2Weights:
    if name.startswith("nvidia"):
        return files.read_network_pickle(SMALL / name / PKL)
    return files.read_studiogan(SMALL / name, conv_clamp=STUDIOGAN_CLAMP[name])


class Case:
    def __init__(self, name: str):
        self.name = name
        self.weights = _load(name)
        self.G, self.D = files.build_networks(self.weights)
        self.G_raw, _ = files.build_networks(self.weights, ema=False)
        self.ref = torch.load(SMALL / name / "forward.pt", weights_only=True)
        self.meta = json.loads((SMALL / name / "forward.json").read_text())
        self.nvidia = name.startswith("nvidia")

    @property
    def c(self) -> torch.Tensor | None:
        return self.ref["in.c"] if self.weights.config.c_dim else None

    def d_labels(self, case: str) -> torch.Tensor:
        y = {
            "real": self.ref["in.y"],
            "fake": self.ref["in.y"],
            "real_b1": self.ref["in.y"][:1],
            "real_cswap": self.ref["in.y"].flip(0),
            "b16": self.ref["in.y16"],
            "clamp": self.ref["in.y"],
        }[case]
        # NVIDIA's D takes one-hot labels, StudioGAN's class ids: ours takes both
        return torch.nn.functional.one_hot(y, 3).float() if self.nvidia else y

    def d_input(self, case: str) -> torch.Tensor:
        r = self.ref
        return {
            "real": r["in.x_real"],
            "fake": r["G_ema.img"],
            "real_b1": r["in.x_real"][:1],
            "real_cswap": r["in.x_real"],
            "b16": r["in.x16_uint8"].float() / 127.5 - 1,
            "clamp": r["in.x_real"] * r["in.clamp_x_scale"],
        }[case]

    def final_key(self, case: str) -> str:
        return f"D.{case}.{'logits' if self.nvidia else 'adv_output'}"


@pytest.fixture(scope="module", params=MODELS)
def case(request) -> Case:
    return Case(request.param)


def _diff(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    return (got - want).abs().max().item()


def _count_clamped(net: nn.Module, run) -> int:
    """Elements sitting at ±clamp in the outputs of the layers that clamp."""
    hits = [0]

    def hook(module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
        hits[0] += int((out.abs() == module.clamp_limit).sum())

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if getattr(m, "clamp_limit", None) is not None
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return hits[0]


# --------------------------------------------------------------------------- configs


def test_configs_read_from_the_files_match_the_reference_constructors(case):
    cfg, meta = case.weights.config, case.meta
    kw = meta["init_kwargs"] if case.nvidia else meta["constructor_kwargs"]
    g, d = kw["G"], kw["D"]
    assert (cfg.resolution, cfg.z_dim, cfg.w_dim, cfg.c_dim) == (
        g["img_resolution"],
        g["z_dim"],
        g["w_dim"],
        g["c_dim"],
    )
    assert (cfg.channel_base, cfg.channel_max) == (256, 16)
    assert cfg.mapping_layers == g["mapping_kwargs"]["num_layers"] == 8
    assert cfg.conv_clamp == g["synthesis_kwargs"]["conv_clamp"] == d["conv_clamp"]
    assert cfg.mbstd_group_size == d["epilogue_kwargs"]["mbstd_group_size"]
    assert cfg.d_label_dim == d["c_dim"] and cfg.num_ws == 10
    assert cfg.d_head == ("nvidia" if case.nvidia else "studiogan")
    assert sum(p.numel() for p in case.G.parameters()) == meta["G_param_count"]
    assert sum(p.numel() for p in case.D.parameters()) == meta["D_param_count"]


# --------------------------------------------------------------------------- generator


def test_mapping_and_truncation_match(case):
    r = case.ref
    with torch.no_grad():
        assert _diff(case.G.map(r["in.z"], case.c), r["G_ema.ws"]) <= TOL
        psi = float(r["in.truncation_psi"])
        assert _diff(case.G.map(r["in.z"], case.c, truncation_psi=psi), r["G_ema.psi0.7.ws"]) <= TOL


def test_every_synthesis_block_matches(case):
    r = case.ref
    inter: list[tuple[str, torch.Tensor]] = []
    with torch.no_grad():
        img = case.G.synthesis(r["G_ema.ws"], intermediates=inter)
    names = [n for n, _ in inter]
    assert names == [f"b{res}.{k}" for res in (4, 8, 16, 32, 64) for k in ("x", "img")]
    for name, got in inter:
        assert _diff(got, r[f"G_ema.{name}"]) <= TOL, name
    assert _diff(img, r["G_ema.img"]) <= TOL


def test_generator_end_to_end_truncation_and_noise_modes(case):
    r = case.ref
    with torch.no_grad():
        assert _diff(case.G(r["in.z"], case.c), r["G_ema.img"]) <= TOL
        assert _diff(case.G(r["in.z"], case.c, truncation_psi=0.7), r["G_ema.psi0.7.img"]) <= TOL
        assert (
            _diff(case.G.synthesis(r["G_ema.ws"], noise_mode="none"), r["G_ema.noise_none.img"])
            <= TOL
        )
        # the noise matters: without it the image is another one
        assert _diff(r["G_ema.noise_none.img"], r["G_ema.img"]) > 1e-2
        torch.manual_seed(0)
        random = case.G.synthesis(r["G_ema.ws"], noise_mode="random")
        assert random.shape == r["G_ema.img"].shape and _diff(random, r["G_ema.img"]) > 1e-2


def test_non_ema_generator_matches(case):
    r = case.ref
    assert case.weights.G is not None
    with torch.no_grad():
        ws = case.G_raw.map(r["in.z"], case.c)
        assert _diff(ws, r["G.ws"]) <= TOL
        assert _diff(case.G_raw.synthesis(ws), r["G.img"]) <= TOL
    assert _diff(r["G.img"], r["G_ema.img"]) > 1e-2  # really another network


def test_generator_clamp_case_matches_with_the_same_clamped_elements(case):
    r = case.ref
    ws = r["G_ema.ws"] * r["in.clamp_ws_scale"]
    out: list[torch.Tensor] = []
    hits = _count_clamped(case.G, lambda: out.append(case.G.synthesis(ws)))
    assert _diff(out[0], r["G_ema.clamp.img"]) <= TOL_CLAMP
    assert hits == r["G_ema.clamp.hits"]
    assert hits == sum(case.meta["G_info"]["clamp_case_hits_per_layer"].values())
    assert r["G_ema.clamp.img"].abs().max() > 256  # the clamp case leaves the ±256 range
    if case.weights.config.conv_clamp is None:
        assert hits == 0


def test_class_ids_and_one_hot_labels_give_the_same_generator(case):
    r = case.ref
    with torch.no_grad():
        a = case.G.map(r["in.z"], r["in.y"])
        b = case.G.map(r["in.z"], torch.nn.functional.one_hot(r["in.y"], 3).float())
    if case.weights.config.c_dim:
        assert torch.equal(a, b)
        with pytest.raises(InputError, match="Class ids must lie"):
            case.G.map(r["in.z"], torch.tensor([0, 3]))
        with pytest.raises(InputError, match="conditional"):
            case.G.map(r["in.z"], None)
    else:  # unconditional: labels are not used at all
        assert torch.equal(a, b) and torch.equal(a, case.G.map(r["in.z"]))


# --------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("which", ["real", "fake", "real_b1"])
def test_discriminator_blocks_and_heads_match(case, which):
    r, D = case.ref, case.D
    rec: list[tuple[str, torch.Tensor]] = []
    with torch.no_grad():
        out, feats = D(case.d_input(which), case.d_labels(which), block_outputs=rec)
    got = dict(rec)
    head = "b4.out" if case.nvidia else "linear1"
    expected = [f"b{res}" for res in (64, 32, 16, 8)] + ["b4.mbstd", "b4.conv", "b4.fc", head]
    assert list(got)[: len(expected)] == expected
    for res in (64, 32, 16, 8):
        assert _diff(got[f"b{res}"], r[f"D.{which}.b{res}.x"]) <= TOL, res
    for name in ("b4.mbstd", "b4.conv", "b4.fc", head):
        assert _diff(got[name], r[f"D.{which}.{name}"]) <= TOL, name
    if case.weights.config.d_label_dim:
        assert _diff(got["cmap"], r[f"D.{which}.cmap"]) <= TOL
    else:
        assert "cmap" not in got
    if not case.nvidia:
        assert _diff(got["b4.fc"], r[f"D.{which}.h"]) <= TOL
    want = r[case.final_key(which)]
    assert out.shape == (want.shape[0] if want.dim() else 1, 1)
    assert _diff(out.reshape(want.shape), want) <= TOL
    # DGP's features: the blocks' outputs, then h
    assert len(feats) == D.num_features == 5
    for f, name in zip(feats, expected[:4] + ["b4.fc"], strict=True):
        assert f is got[name]


def test_batch_of_one_has_the_minibatch_std_channel_at_1e_minus_4(case):
    mbstd = case.ref["D.real_b1.b4.mbstd"]
    assert torch.all(mbstd[:, -1] == 1e-4)
    rec: list[tuple[str, torch.Tensor]] = []
    with torch.no_grad():
        case.D(case.d_input("real_b1"), case.d_labels("real_b1"), block_outputs=rec)
    assert torch.equal(dict(rec)["b4.mbstd"][:, -1], mbstd[:, -1])


def test_independent_scoring_equals_scoring_each_sample_alone(case):
    x, y = case.d_input("real"), case.d_labels("real")
    with torch.no_grad():
        batch, _ = case.D(x, y)
        alone, _ = case.D(x, y, independent=True)
    want = case.ref[case.final_key("real_b1")].reshape(-1)
    assert _diff(alone[:1].reshape(-1), want) <= TOL
    # the plain batch differs: its minibatch std sees both samples (README: 0.4476 vs 0.4495)
    assert _diff(batch[:1].reshape(-1), want) > 1e-4


def test_swapped_labels_and_a_batch_of_16_match(case):
    r = case.ref
    with torch.no_grad():
        swapped, _ = case.D(case.d_input("real_cswap"), case.d_labels("real_cswap"))
        rec: list[tuple[str, torch.Tensor]] = []
        b16, _ = case.D(case.d_input("b16"), case.d_labels("b16"), block_outputs=rec)
    want = r[case.final_key("real_cswap")]
    assert _diff(swapped.reshape(want.shape), want) <= TOL
    same = _diff(want, r[case.final_key("real")]) < 1e-6
    assert same == (case.weights.config.d_label_dim == 0)  # labels matter iff conditional
    want16 = r[case.final_key("b16")]
    assert _diff(b16.reshape(want16.shape), want16) <= TOL
    # strided groups of 8 or 4 over 16 samples
    assert _diff(dict(rec)["b4.mbstd"], r["D.b16.b4.mbstd"]) <= TOL


def test_discriminator_clamp_case_matches_with_the_same_clamped_elements(case):
    out: list[torch.Tensor] = []
    hits = _count_clamped(
        case.D, lambda: out.append(case.D(case.d_input("clamp"), case.d_labels("clamp"))[0])
    )
    want = case.ref[case.final_key("clamp")]
    assert _diff(out[0].reshape(want.shape), want) <= TOL_CLAMP
    assert hits == case.ref["D.clamp.hits"]
    assert hits == sum(case.meta["D_info"]["clamp_case_hits_per_layer"].values())


def test_minibatch_std_groups_are_strided_and_batches_must_divide():
    layer = sg2.MinibatchStd(group_size=2, num_channels=1)
    x = torch.zeros(4, 1, 1, 1)
    x[:, 0, 0, 0] = torch.tensor([0.0, 10.0, 2.0, 30.0])
    std = layer(x)[:, 1, 0, 0]
    # groups {0, 2} (std 1) and {1, 3} (std 10)
    assert torch.allclose(std, torch.tensor([1.0, 10.0, 1.0, 10.0]))
    with pytest.raises(InputError, match="does not divide"):
        sg2.MinibatchStd(group_size=4, num_channels=1)(torch.zeros(6, 4, 4, 4))


# --------------------------------------------------------------------------- DGP interface


def test_generator_groups_cover_every_parameter_once(case):
    G = case.G
    seen: list[int] = []
    for i in range(G.num_groups + 1):
        seen += [id(p) for p in G.group_params(i, update_embed=True)]
    assert sorted(seen) == sorted(id(p) for p in G.parameters())
    embed = [id(p) for p in G.mapping.embed.parameters()] if G.c_dim else []
    without = [id(p) for p in G.group_params(0)]
    assert set(without) == {id(p) for p in G.mapping.parameters()} - set(embed)
    assert G.group_modules(0) == [G.mapping]
    assert G.group_modules(1) == [G.synthesis.b4] and G.group_modules(5) == [G.synthesis.b64]
    assert G.group_modules(G.num_groups) == []
    with pytest.raises(IndexError):
        G.group_modules(G.num_groups + 1)


def test_synthesis_ws_slices_share_the_torgb_w_with_the_next_block(case):
    ws = torch.arange(10.0).reshape(1, 10, 1).expand(1, 10, 24)
    slices = case.G.synthesis.split_ws(ws)
    assert [s[0, :, 0].tolist() for s in slices] == [
        [0, 1],
        [1, 2, 3],
        [3, 4, 5],
        [5, 6, 7],
        [7, 8, 9],
    ]
    with pytest.raises(InputError, match="ws of shape"):
        case.G.synthesis.split_ws(ws[:, :9])


# --------------------------------------------------------------------------- key coverage


def _manifest(name: str) -> dict[str, Any]:
    return json.loads((REFERENCE / f"stylegan2_keys_{name}.json").read_text())


def _meta_state(entries: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v["shape"], device="meta") for k, v in entries.items()}


def _full_config(name: str, m: dict[str, Any]) -> StyleGAN2Config:
    if name.startswith("nvidia"):
        return files.config_from_init_kwargs(m["G_kwargs"], m["D_kwargs"])
    # StudioGAN: the architecture from the tensors' shapes, the group size from the YAML
    return files.infer_studiogan_config(
        _meta_state(m["G"]),
        _meta_state(m["D"]),
        conv_clamp=None,
        mbstd_group_size=m["config"]["d_epilogue_mbstd_group_size"],
    )


@pytest.mark.parametrize(
    "name",
    ["studiogan_afhq256_cond", "studiogan_afhq512_uncond", "nvidia_ffhq1024", "nvidia_paper512"],
)
def test_full_size_configs_have_a_place_for_every_tensor(name):
    m = _manifest(name)
    cfg = _full_config(name, m)
    assert cfg.num_ws == m["num_ws"]
    assert cfg.resolution == m["config"].get("img_size", m["config"].get("img_resolution"))
    G, D = sg2.build(cfg, "meta")
    for net, entries, count in ((G, m["G"], m["G_params"]), (D, m["D"], m["D_params"])):
        ours = {k: (list(v.shape), "param") for k, v in net.named_parameters()}
        ours.update({k: (list(v.shape), "buffer") for k, v in net.named_buffers()})
        theirs = {k: (v["shape"], v["kind"]) for k, v in entries.items()}
        assert ours == theirs
        assert sum(p.numel() for p in net.parameters()) == count
        assert all(v["dtype"] == "float32" for v in entries.values())
    # and the strict check accepts exactly these names and shapes
    files.check_state_dict(G, _meta_state(m["G"]), "G", cfg)
    files.check_state_dict(D, _meta_state(m["D"]), "D", cfg)


def test_full_size_nvidia_configs_read_their_settings():
    cfg = _full_config("nvidia_ffhq1024", _manifest("nvidia_ffhq1024"))
    assert (cfg.conv_clamp, cfg.mbstd_group_size, cfg.num_fp16_res) == (256.0, 4, 4)
    assert (cfg.channel_base, cfg.channel_max, cfg.c_dim) == (32768, 512, 0)
    cfg = _full_config("nvidia_paper512", _manifest("nvidia_paper512"))
    assert cfg.mbstd_group_size == 8 and cfg.d_head == "nvidia"
    cfg = _full_config("studiogan_afhq256_cond", _manifest("studiogan_afhq256_cond"))
    assert (cfg.channel_base, cfg.c_dim, cfg.projection_dim, cfg.d_head) == (
        16384,
        3,
        512,
        "studiogan",
    )


def test_strict_check_names_missing_and_misshapen_tensors():
    m = _manifest("nvidia_paper512")
    cfg = _full_config("nvidia_paper512", m)
    G, _ = sg2.build(cfg, "meta")
    sd = _meta_state(m["G"])
    del sd["mapping.w_avg"]
    sd["synthesis.b8.conv0.weight"] = torch.empty(3, 3, device="meta")
    with pytest.raises(
        CheckpointError,
        match=r"1 missing \(e.g. mapping.w_avg\).*"
        r"synthesis.b8.conv0.weight",
    ):
        files.check_state_dict(G, sd, "G", cfg)


# --------------------------------------------------------------------------- configs


def test_config_roundtrips_and_refuses_what_it_cannot_build():
    cfg = StyleGAN2Config(
        resolution=64,
        z_dim=32,
        w_dim=24,
        c_dim=3,
        conv_clamp=256.0,
        mbstd_group_size=None,
        d_head="studiogan",
    )
    assert StyleGAN2Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(CheckpointError, match="unknown settings: colour"):
        StyleGAN2Config.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(CheckpointError, match="wrong type"):
        StyleGAN2Config.from_dict({**cfg.to_dict(), "z_dim": "32"})
    with pytest.raises(CheckpointError, match="power of two"):
        StyleGAN2Config(resolution=96)
    with pytest.raises(CheckpointError, match="'orig' architecture"):
        StyleGAN2Config(d_architecture="orig")
    with pytest.raises(CheckpointError, match="d_head"):
        StyleGAN2Config(d_head="tf")


def test_init_kwargs_the_network_does_not_implement_are_refused():
    m = _manifest("nvidia_paper512")
    g, d = m["G_kwargs"], m["D_kwargs"]
    files.config_from_init_kwargs(g, d)
    with pytest.raises(CheckpointError, match="architecture='orig'"):
        files.config_from_init_kwargs(g, {**d, "architecture": "orig"})
    with pytest.raises(CheckpointError, match="does not implement: magnitude_ema_beta"):
        files.config_from_init_kwargs({**g, "magnitude_ema_beta": 0.999}, d)
    with pytest.raises(CheckpointError, match="different channel settings"):
        files.config_from_init_kwargs(g, {**d, "channel_base": 16384})
    # stylegan3's repository passes synthesis settings at the generator's top level
    flat = {k: v for k, v in g.items() if k != "synthesis_kwargs"}
    flat.update(g["synthesis_kwargs"], fused_modconv_default="inference_only")
    assert files.config_from_init_kwargs(flat, d) == files.config_from_init_kwargs(g, d)
    # TF-converted pickles: no mapping in D's settings, a whole-batch mbstd group
    legacy = {
        **d,
        "mapping_kwargs": {"num_layers": 0, "lr_multiplier": 0.1},
        "epilogue_kwargs": {"mbstd_group_size": None},
    }
    cfg = files.config_from_init_kwargs(g, legacy)
    assert (cfg.d_mapping_layers, cfg.d_mapping_lr, cfg.mbstd_group_size) == (0, 0.1, None)


# --------------------------------------------------------------------------- pickles

FAKE_MODULES = (
    "torch_utils",
    "torch_utils.persistence",
    "dnnlib",
    "dnnlib.util",
    "numpy.core.multiarray",
)


def _fake_global(module: str, name: str, obj: Any = None) -> Any:
    """A stand-in object that pickles as ``module.name`` (for writing test pickles)."""

    def fake(*args: Any) -> None:
        raise AssertionError("a test pickle's stand-in was called")

    target = obj if obj is not None else fake
    target.__module__, target.__qualname__, target.__name__ = module, name, name
    return target


@pytest.fixture
def nvidia_names(monkeypatch):
    """Register stand-ins under NVIDIA's module names so that pickle can write them."""
    reconstruct = _fake_global("torch_utils.persistence", "_reconstruct_persistent_obj")
    easydict = _fake_global("dnnlib.util", "EasyDict", type("EasyDict", (dict,), {}))
    old_scalar = _fake_global("numpy.core.multiarray", "scalar")
    mods = {}
    for name in FAKE_MODULES:
        mods[name] = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, mods[name])
    mods["torch_utils"].persistence = mods["torch_utils.persistence"]
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = reconstruct
    mods["dnnlib"].util = mods["dnnlib.util"]
    mods["dnnlib.util"].EasyDict = easydict
    mods["numpy.core.multiarray"].scalar = old_scalar
    return types.SimpleNamespace(reconstruct=reconstruct, easydict=easydict, old_scalar=old_scalar)


def _repickle(
    tree: Any, names: Any, protocol: int = 4, module_src: str = "", old_numpy: bool = False
) -> bytes:
    """Write an unpickled network tree back in NVIDIA's format."""

    class Writer(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, files.PersistentObject):
                meta = {
                    "type": "class",
                    "version": 6,
                    "module_src": module_src,
                    "class_name": obj.class_name,
                    "state": obj.state,
                }
                return names.reconstruct, (meta,)
            if isinstance(obj, files.EasyDict):
                return names.easydict, (), None, None, iter(obj.items())
            if old_numpy and isinstance(obj, np.generic):
                return names.old_scalar, (obj.dtype, obj.tobytes())
            return NotImplemented

    buf = io.BytesIO()
    Writer(buf, protocol=protocol).dump(tree)
    return buf.getvalue()


def _tree(name: str = "nvidia_cond") -> Any:
    return files.safe_unpickle((SMALL / name / PKL).read_bytes(), PKL)


def _write(tmp_path: Path, data: bytes, name: str = "net.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _same_weights(a: files.StyleGAN2Weights, b: files.StyleGAN2Weights) -> bool:
    return a.config == b.config and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in ((a.G_ema, b.G_ema), (a.D, b.D), (a.G or {}, b.G or {}))
    )


class _Runs:
    """An object whose unpickling would call ``func(*args)``."""

    def __init__(self, func: Any, *args: Any):
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return self.func, self.args


def test_rewritten_pickles_load_the_same_weights(tmp_path, nvidia_names):
    original = files.read_network_pickle(SMALL / "nvidia_cond" / PKL)
    again = files.read_network_pickle(_write(tmp_path, _repickle(_tree(), nvidia_names)))
    assert _same_weights(original, again)


@pytest.mark.parametrize("protocol", [2, 3])
def test_older_pickle_formats_load_the_same_weights(tmp_path, nvidia_names, protocol):
    # protocols 2/3: GLOBAL opcodes, sets as set(list) (2: Python 2 module names, bytes as
    # _codecs.encode(str)); numpy 1's scalar module name
    data = _repickle(_tree(), nvidia_names, protocol=protocol, old_numpy=True)
    assert (b"__builtin__\nset\n" if protocol == 2 else b"builtins\nset\n") in data
    assert b"numpy.core.multiarray\nscalar" in data
    original = files.read_network_pickle(SMALL / "nvidia_cond" / PKL)
    assert _same_weights(original, files.read_network_pickle(_write(tmp_path, data)))


def test_embedded_module_source_is_never_run(tmp_path, nvidia_names):
    sentinel = tmp_path / "ran.txt"
    code = f"open({str(sentinel)!r}, 'w').close()\n"
    path = _write(tmp_path, _repickle(_tree(), nvidia_names, module_src=code))
    weights = files.read_network_pickle(path)
    files.build_networks(weights)
    assert not sentinel.exists()


@pytest.mark.parametrize("func", [eval, exec, os.system])
def test_pickles_with_other_globals_are_refused_and_nothing_runs(tmp_path, func):
    sentinel = tmp_path / "ran.txt"
    arg = f"touch {sentinel}" if func is os.system else f"open({str(sentinel)!r}, 'w').close()"
    path = _write(tmp_path, pickle.dumps({"G": _Runs(func, arg), "D": None}))
    with pytest.raises(
        CheckpointError,
        match=rf"net.pkl was refused: it refers to "
        rf"\S*\.{func.__name__}, which is not part",
    ):
        files.read_network_pickle(path)
    assert not sentinel.exists()


def test_a_hostile_global_deep_inside_a_real_network_is_refused(tmp_path, nvidia_names):
    sentinel = tmp_path / "ran.txt"
    tree = _tree()
    kwargs = tree["G"].state["_init_kwargs"]
    kwargs["mapping_kwargs"]["num_layers"] = _Runs(eval, f"open({str(sentinel)!r}, 'w')")
    path = _write(tmp_path, _repickle(tree, nvidia_names))
    with pytest.raises(CheckpointError, match="refers to builtins.eval"):
        files.read_network_pickle(path)
    assert not sentinel.exists()


def test_a_hostile_global_inside_a_tensor_storage_is_refused(tmp_path):
    sentinel = tmp_path / "ran.txt"
    blob = io.BytesIO()
    torch.save(
        _Runs(eval, f"open({str(sentinel)!r}, 'w')"), blob, _use_new_zipfile_serialization=False
    )
    data = pickle.dumps({"G": _Runs(torch.storage._load_from_bytes, blob.getvalue())})
    with pytest.raises(CheckpointError, match="tensor storage in it refers to objects"):
        files.read_network_pickle(_write(tmp_path, data))
    assert not sentinel.exists()


def test_a_truncated_pickle_is_refused_as_damaged(tmp_path):
    data = (SMALL / "nvidia_uncond" / PKL).read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 3):
        with pytest.raises(CheckpointError, match="damaged or incomplete"):
            files.read_network_pickle(_write(tmp_path, data[:cut]))
    with pytest.raises(
        CheckpointError, match="damaged or is not a network pickle|damaged or incomplete"
    ):
        files.read_network_pickle(_write(tmp_path, b"\x80\x04 not a pickle"))
    with pytest.raises(CheckpointError, match="is a zip archive .* not an NVIDIA network"):
        files.read_network_pickle(SMALL / "studiogan_uncond" / D_FILE)


def _rename_module(
    obj: files.PersistentObject, old: str, new: str, class_name: str
) -> files.PersistentObject:
    mods = obj.state["_modules"]
    sub = mods.pop(old)
    mods[new] = files.PersistentObject(class_name, sub.state)
    return obj


def test_a_stylegan3_generator_is_refused_by_name(tmp_path, nvidia_names):
    tree = _tree()
    for key in ("G", "G_ema"):
        _rename_module(tree[key].state["_modules"]["synthesis"], "b4", "input", "SynthesisInput")
    with pytest.raises(CheckpointError, match="StyleGAN3 network.*not StyleGAN2"):
        files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))
    # StyleGAN3 layer names alone are enough
    tree = _tree()
    for key in ("G", "G_ema"):
        _rename_module(
            tree[key].state["_modules"]["synthesis"], "b8", "L1_36_512", "SynthesisLayer"
        )
    with pytest.raises(CheckpointError, match="StyleGAN3"):
        files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))


def test_a_projected_discriminator_is_refused_by_name(tmp_path, nvidia_names):
    tree = _tree()
    tree["D"] = files.PersistentObject("ProjectedDiscriminator", tree["D"].state)
    with pytest.raises(CheckpointError, match="StyleGAN-XL"):
        files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))


def test_other_classes_in_stylegan2_places_are_refused(tmp_path, nvidia_names):
    tree = _tree()
    synthesis = tree["G_ema"].state["_modules"]["synthesis"]
    _rename_module(synthesis.state["_modules"]["b8"], "torgb", "torgb", "ToRGBLayerV2")
    with pytest.raises(
        CheckpointError,
        match=r"G_ema.*not a StyleGAN2 generator: its "
        r"synthesis.b8.torgb is a ToRGBLayerV2",
    ):
        files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))


def test_a_pickle_without_discriminator_is_refused(tmp_path, nvidia_names):
    tree = _tree()
    del tree["D"]
    with pytest.raises(CheckpointError, match="holds no discriminator"):
        files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))


def _set_init_kwarg(tree: Any, key: str, value: Any) -> Any:
    tree["G_ema"].state["_init_kwargs"][key] = value
    return tree


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: _set_init_kwarg(t, "z_dim", "512"),
        lambda t: _set_init_kwarg(t, "mapping_kwargs", [8]),
        lambda t: _set_init_kwarg(
            t,
            "synthesis_kwargs",
            {**t["G_ema"].state["_init_kwargs"]["synthesis_kwargs"], "resample_filter": ["a", "b"]},
        ),
        lambda t: _set_init_kwarg(t, 3, "not a name"),
        lambda t: t["D"].state.__setitem__("_modules", 5) or t,
        lambda t: t["D"].state.__setitem__("_non_persistent_buffers_set", 7) or t,
        lambda t: t["D"].state.__setitem__("_init_kwargs", None) or t,
        lambda t: (
            t["G_ema"].state["_modules"]["mapping"].state["_buffers"].__setitem__("w_avg", "zeros")
            or t
        ),
        lambda t: {**t, "D": t["D"].state},
        lambda t: [t],
    ],
    ids=[
        "z_dim-text",
        "mapping-list",
        "filter-text",
        "key-int",
        "modules-int",
        "buffer-set-int",
        "D-without-kwargs",
        "buffer-text",
        "D-not-module",
        "not-a-dict",
    ],
)
def test_malformed_network_pickles_are_refused_with_a_sentence(tmp_path, nvidia_names, damage):
    path = _write(tmp_path, _repickle(damage(_tree("nvidia_uncond")), nvidia_names))
    with pytest.raises(CheckpointError, match=r"^net\.pkl"):
        files.read_network_pickle(path)


FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_FUZZ_BASE = (SMALL / "nvidia_uncond" / PKL).read_bytes()


@FUZZ
@given(data=st.data())
def test_damaged_network_pickles_give_weights_or_a_sentence(tmp_path, data):
    raw = bytearray(_FUZZ_BASE)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del raw[data.draw(st.integers(1, len(raw))) :]
    try:
        files.read_network_pickle(_write(tmp_path, bytes(raw)))
    except CheckpointError as exc:
        assert str(exc).startswith(("net.pkl", "Could not read net.pkl")), exc


def test_a_converted_pickle_without_training_extras_loads(tmp_path, nvidia_names):
    tree = _tree("nvidia_uncond")
    tree = {"G_ema": tree["G_ema"], "D": tree["D"]}  # no G, augment_pipe, dataset settings
    weights = files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))
    assert weights.G is None and weights.info["training_set_kwargs"] is None
    with pytest.raises(CheckpointError, match="no non-averaged generator"):
        files.build_networks(weights, ema=False)
    files.build_networks(weights)


def test_non_finite_weights_are_refused(tmp_path, nvidia_names):
    tree = _tree("nvidia_uncond")
    tree["D"].state["_modules"]["b4"].state["_modules"]["fc"].state["_parameters"]["weight"][
        0, 0
    ] = float("nan")
    with pytest.raises(CheckpointError, match="D is damaged: b4.fc.weight"):
        files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))


# --------------------------------------------------------------------------- StudioGAN


def _run_folder(tmp_path: Path, name: str = "studiogan_afhq256", yaml: bool = True) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for f in (G_EMA, G_RAW, D_FILE) + (("studiogan.yaml",) if yaml else ()):
        (folder / f).symlink_to(SMALL / name / f)
    return folder


def test_studiogan_discriminator_needs_exactly_the_numpy_scalar_globals():
    d_file = SMALL / "studiogan_afhq256" / D_FILE
    with pytest.raises(pickle.UnpicklingError):
        torch.load(d_file, weights_only=True)
    weights = files.read_studiogan(SMALL / "studiogan_afhq256", conv_clamp=256)
    assert weights.info["best_fid"] == pytest.approx(123.456)
    assert isinstance(weights.info["best_fid"], float) and weights.info["step"] == 1000
    assert weights.source == "studiogan" and weights.config.mbstd_group_size == 8


def _save_with_numpy1_scalar(obj: Any, path: Path, names: Any) -> None:
    """torch.save, writing numpy scalars under numpy 1's module name (2022 files)."""

    class Pickler(pickle._Pickler):  # the Python pickler: its reduce hook is overridable
        def reducer_override(self, o: Any) -> Any:
            if isinstance(o, np.generic):
                return names.old_scalar, (o.dtype, o.tobytes())
            return NotImplemented

    module = types.SimpleNamespace(Pickler=Pickler, __name__="pickle")
    torch.save(obj, path, pickle_module=module)


def test_studiogan_files_naming_numpy_1_scalars_load(tmp_path, nvidia_names):
    folder = _run_folder(tmp_path)
    data = torch.load(SMALL / "studiogan_afhq256" / D_FILE, weights_only=False)
    (folder / D_FILE).unlink()
    _save_with_numpy1_scalar(data, folder / D_FILE, nvidia_names)
    with zipfile.ZipFile(folder / D_FILE) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        assert b"numpy.core.multiarray\nscalar" in z.read(pkl)
    weights = files.read_studiogan(folder, conv_clamp=256)
    assert weights.info["best_fid"] == pytest.approx(123.456)


def test_studiogan_files_with_other_globals_are_refused_and_nothing_runs(tmp_path):
    folder = _run_folder(tmp_path)
    sentinel = tmp_path / "ran.txt"
    data = torch.load(SMALL / "studiogan_afhq256" / D_FILE, weights_only=False)
    data["lecam_emas"] = _Runs(eval, f"open({str(sentinel)!r}, 'w')")
    (folder / D_FILE).unlink()
    torch.save(data, folder / D_FILE)
    with pytest.raises(CheckpointError, match="pickled Python objects besides tensors"):
        files.read_studiogan(folder, conv_clamp=256)
    assert not sentinel.exists()


def test_studiogan_group_size_comes_from_the_yaml_or_the_caller(tmp_path):
    folder = _run_folder(tmp_path, yaml=False)
    with pytest.raises(CheckpointError, match="minibatch-std group size"):
        files.read_studiogan(folder, conv_clamp=256)
    weights = files.read_studiogan(folder, conv_clamp=256, mbstd_group_size=8)
    reference = files.read_studiogan(SMALL / "studiogan_afhq256", conv_clamp=256)
    assert _same_weights(weights, reference)
    assert files.with_settings(weights, conv_clamp=None).config.conv_clamp is None


def test_studiogan_yaml_that_does_not_fit_the_checkpoint_is_refused(tmp_path):
    folder = _run_folder(tmp_path)
    text = (SMALL / "studiogan_afhq256" / "studiogan.yaml").read_text()
    (folder / "studiogan.yaml").unlink()
    (folder / "studiogan.yaml").write_text(text.replace("z_dim: 32", "z_dim: 512"))
    with pytest.raises(CheckpointError, match="gives z_dim 512 but the checkpoint has 32"):
        files.read_studiogan(folder, conv_clamp=256)
    (folder / "studiogan.yaml").write_text(text.replace('"stylegan2"', '"stylegan3"'))
    with pytest.raises(CheckpointError, match="'stylegan3', not StyleGAN2"):
        files.read_studiogan(folder, conv_clamp=256)
    (folder / "studiogan.yaml").write_text(text.replace('d_cond_mtd: "SPD"', 'd_cond_mtd: "AC"'))
    with pytest.raises(CheckpointError, match="d_cond_mtd: AC"):
        files.read_studiogan(folder, conv_clamp=256)


def test_studiogan_stylegan3_and_biggan_files_are_refused(tmp_path):
    folder = _run_folder(tmp_path, "studiogan_uncond")
    data = torch.load(SMALL / "studiogan_uncond" / G_EMA, weights_only=True)
    data["state_dict"] = {
        k.replace("synthesis.b4.", "synthesis.input."): v for k, v in data["state_dict"].items()
    }
    (folder / G_EMA).unlink()
    torch.save(data, folder / G_EMA)
    with pytest.raises(CheckpointError, match="StudioGAN StyleGAN3 network"):
        files.read_studiogan(folder, conv_clamp=None)
    (folder / G_EMA).unlink()
    biggan = REFERENCE / "studiogan_small" / "papa64"
    shutil.copy(next(biggan.glob("model=G_ema-*.pth")), folder / G_EMA)
    with pytest.raises(CheckpointError, match="not a StudioGAN StyleGAN2 generator"):
        files.read_studiogan(folder, conv_clamp=None)


@pytest.mark.parametrize(
    "key,shape",
    [
        ("mapping.fc0.weight", (24,)),
        ("synthesis.b64.conv1.weight", (0, 4, 3, 3)),
        ("synthesis.b8.conv1.weight", (5, 16, 3, 3)),
    ],
)
def test_studiogan_tensors_of_foreign_shapes_are_refused(tmp_path, key, shape):
    folder = _run_folder(tmp_path, "studiogan_uncond")
    data = torch.load(SMALL / "studiogan_uncond" / G_EMA, weights_only=True)
    data["state_dict"][key] = torch.zeros(shape)
    (folder / G_EMA).unlink()
    torch.save(data, folder / G_EMA)
    with pytest.raises(CheckpointError, match="^studiogan_uncond"):
        files.read_studiogan(folder, conv_clamp=None)


def test_studiogan_folder_without_discriminator_is_refused(tmp_path):
    folder = _run_folder(tmp_path)
    (folder / D_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"has no model=D-…pth"):
        files.read_studiogan(folder, conv_clamp=256)


def test_studiogan_damaged_file_is_refused(tmp_path):
    folder = _run_folder(tmp_path)
    data = (SMALL / "studiogan_afhq256" / G_EMA).read_bytes()
    (folder / G_EMA).unlink()
    (folder / G_EMA).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or incomplete"):
        files.read_studiogan(folder, conv_clamp=256)


def test_weights_keep_the_state_dict_order_independent_names():
    # StudioGAN orders G as synthesis-then-mapping, NVIDIA D as blocks, mapping, b4: names
    # matter, not positions
    sg = files.read_studiogan(SMALL / "studiogan_afhq256", conv_clamp=256)
    nv = files.read_network_pickle(SMALL / "nvidia_cond" / PKL)
    assert list(sg.G_ema)[0].startswith("synthesis.") and list(nv.D)[-1].startswith("b4.")
    assert set(sg.G_ema) == set(nv.G_ema)
    assert set(sg.D) - set(nv.D) == {"linear1.weight", "linear1.bias"}
    assert set(nv.D) - set(sg.D) == {"b4.out.weight", "b4.out.bias"}


def test_a_tensor_claiming_more_values_than_it_stores_is_refused_before_any_copy(
    tmp_path, nvidia_names
):
    # stride 0: one stored value claiming 3000×3000 — the import copied the claim (a
    # 912-byte pickle took 1.6 GB for 20000², and claims are unbounded) before any check
    tree = _tree()
    params = (
        tree["G_ema"].state["_modules"]["mapping"].state["_modules"]["fc0"].state["_parameters"]
    )
    params["weight"] = torch.zeros(1).expand(3000, 3000)
    with pytest.raises(CheckpointError, match="larger than its storage"):
        files.read_network_pickle(_write(tmp_path, _repickle(tree, nvidia_names)))

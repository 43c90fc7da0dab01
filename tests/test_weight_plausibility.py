"""Damaged weights that still parse (issue 20, defect 5): flipped exponent bits and absurd
values are refused at import, at load and by ``dgp models verify``, naming the tensor;
every legitimate model we have passes.  Files without a single tensor (empty, cut short)
get one sentence."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from dgp_engine.cli import main
from dgp_engine.errors import CheckpointError
from dgp_engine.models import BigGANConfig, Discriminator, Generator
from dgp_engine.priors import hub, registry
from dgp_engine.priors.checkpoint import implausible_value, read_folder, read_state_dict
from dgp_engine.priors.load import build_prior, load_prior
from dgp_engine.system import paths

from .conftest import PARITY, REFERENCE
from .helpers import PARITY_CONFIG

SMALL = REFERENCE / "studiogan_small"
G_FLIPS = 64


def _bundled_copy(dest):
    shutil.copytree(registry.bundled_model_dir(), dest)
    return dest


def _flip_exponent_msb(sd: dict[str, torch.Tensor], count: int, seed: int = 0) -> list[str]:
    """Flip the top exponent bit of ``count`` values of ``sd``'s weight matrices/kernels
    (bit 14 of a float16, bit 30 of a float32), in place, the way a flipped byte in the
    file does.  Deterministic: positions come from a seeded generator, among values with
    |w| in [0.01, 1), where that bit is 0 (the value grows ×2¹⁶ or ×2¹²⁸ and stays
    finite).  Returns the
    names of the tensors hit."""
    gen = torch.Generator().manual_seed(seed)
    keys = sorted(
        k for k, v in sd.items() if k.endswith(".weight") and v.dim() >= 2 and v.numel() >= 1024
    )
    hit = []
    for _ in range(count):
        key = keys[int(torch.randint(len(keys), (1,), generator=gen))]
        flat = sd[key].view(-1)
        ok = ((flat.float().abs() >= 0.01) & (flat.float().abs() < 1)).nonzero().view(-1)
        pos = int(ok[int(torch.randint(len(ok), (1,), generator=gen))])
        bits = flat.view(torch.int16 if flat.dtype == torch.float16 else torch.int32)
        bits[pos] ^= (1 << 14) if flat.dtype == torch.float16 else (1 << 30)
        hit.append(key)
    return hit


def test_every_legitimate_model_we_have_is_plausible():
    folders = [
        registry.bundled_model_dir(),
        SMALL / "imagenet128",
        SMALL / "papa64",
        SMALL / "afhq256",
    ]
    for folder in folders:
        weights = read_folder(folder)
        assert implausible_value(weights.G) is None, folder
        assert implausible_value(weights.D) is None, folder
    for name in ("G_ema.pth", "D.pth"):  # the reference BigGAN-PyTorch weights
        assert implausible_value(read_state_dict(PARITY / name)) is None
    cfg = BigGANConfig.from_dict({**PARITY_CONFIG, "G_ch": 8, "D_ch": 8})
    prior = build_prior(cfg, seed=3)  # orthogonal init, as training starts
    assert implausible_value(prior.G.state_dict()) is None
    assert implausible_value(prior.D.state_dict()) is None
    torch.manual_seed(0)  # PyTorch's default init (what the fake hub serves)
    assert implausible_value(Generator(cfg).state_dict()) is None
    assert implausible_value(Discriminator(cfg).state_dict()) is None


def test_a_bundled_generator_with_flipped_bytes_is_refused_everywhere(tmp_path, capsys):
    folder = _bundled_copy(tmp_path / "flipped")
    g_file = folder / "G_ema.safetensors"
    sd = load_file(str(g_file))
    assert sd["blocks.0.0.conv1.weight"].dtype == torch.float16  # stored as float16
    hit = set(_flip_exponent_msb(sd, G_FLIPS))
    save_file(sd, str(g_file))
    # Loading the folder (what `dgp colorize --model FOLDER` does) is refused.
    with pytest.raises(CheckpointError) as info:
        load_prior(folder)
    msg = str(info.value)
    assert "G_ema.safetensors" in msg and "is damaged" in msg and "download or copy" in msg
    assert any(k in msg for k in hit)
    # So is importing it, and nothing is installed.
    with pytest.raises(
        CheckpointError,
        match=r"G_ema\.safetensors is damaged: .*\.weight "
        r"holds .*flipped.*not installed",
    ):
        hub.import_files("flipped", g_file, folder / "D.safetensors", config=folder / "config.json")
    assert registry.installed("flipped") is None
    assert not (paths.models_dir() / "flipped").exists()


def test_verify_rechecks_a_damaged_install(tmp_path, capsys):
    """A model installed before the check existed (its record lists the damaged file's
    SHA-256, so the checksum passes): `dgp models verify` names the tensor."""
    src = _bundled_copy(tmp_path / "src")
    model = hub.import_files(
        "mine", src / "G_ema.safetensors", src / "D.safetensors", config=src / "config.json"
    )
    assert main(["models", "verify", "mine"]) == 0
    installed = model.folder / "G_ema.safetensors"
    sd = load_file(str(installed))
    hit = set(_flip_exponent_msb(sd, 3, seed=1))
    save_file(sd, str(installed))
    record = json.loads((model.folder / "model.json").read_text())
    record["files"]["G_ema.safetensors"].update(
        size=installed.stat().st_size, sha256=hub.sha256_file(installed)
    )
    (model.folder / "model.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["models", "verify", "mine"]) == 1
    out = capsys.readouterr().out
    assert "G_ema.safetensors is damaged" in out and any(k in out for k in hit)
    assert "import it again" in out
    with pytest.raises(CheckpointError, match="dgp models verify mine"):
        load_prior("mine")


def test_flipped_exponents_in_the_reference_float32_weights_are_refused(tmp_path):
    sd = torch.load(PARITY / "G_ema.pth", map_location="cpu", weights_only=True)
    assert sd["blocks.0.0.conv1.weight"].dtype == torch.float32
    _flip_exponent_msb(sd, 4, seed=2)
    g = tmp_path / "G_ema.pth"
    torch.save(sd, g)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(PARITY_CONFIG))
    with pytest.raises(CheckpointError, match=r"G_ema\.pth is damaged: .*holds [0-9.]+e\+3"):
        hub.import_files("parity", g, PARITY / "D.pth", config=cfg)
    assert registry.installed("parity") is None


@pytest.mark.parametrize("family", ["studiogan", "biggan-pytorch"])
def test_a_weight_of_1e30_is_refused(tmp_path, family):
    if family == "studiogan":  # stored as float16: 1e30 would become infinity
        src = SMALL / "papa64"
        g_name = "model=G_ema-best-weights-step=1000.pth"
        data = torch.load(src / g_name, map_location="cpu", weights_only=True)
        data["state_dict"]["linear0.weight_orig"][0, 0] = 1e30
        (tmp_path / g_name).parent.mkdir(exist_ok=True)
        torch.save(data, tmp_path / g_name)
        g, d = tmp_path / g_name, src / "model=D-best-weights-step=1000.pth"
        config = None
        want = r"linear\.weight holds 1e\+30, which becomes infinity in float16"
    else:  # stored as float32: finite, but no BigGAN holds it
        sd = torch.load(PARITY / "G_ema.pth", map_location="cpu", weights_only=True)
        sd["blocks.2.0.conv1.weight"][0, 0, 1, 1] = 1e30
        g, d = tmp_path / "G_ema.pth", PARITY / "D.pth"
        torch.save(sd, g)
        config = tmp_path / "config.json"
        config.write_text(json.dumps(PARITY_CONFIG))
        want = r"blocks\.2\.0\.conv1\.weight holds 1e\+30"
    with pytest.raises(CheckpointError, match=want):
        hub.import_files("huge", g, d, config=config)
    assert registry.installed("huge") is None


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04" + b"\0" * 100, "half"])
def test_an_empty_or_truncated_file_is_one_sentence(tmp_path, capsys, content):
    g = tmp_path / "G_ema.pth"
    g.write_bytes(
        PARITY.joinpath("G_ema.pth").read_bytes()[:200_000] if content == "half" else content
    )
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(PARITY_CONFIG))
    for extra in ([], ["--config", str(cfg)]):
        assert (
            main(["models", "import", "cut", "--g", str(g), "--d", str(PARITY / "D.pth"), *extra])
            == 1
        )
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("dgp: error: ")
        assert "()" not in err and err.count(". ") == 0 and len(err) < 260
        assert "G_ema.pth" in err and "download or copy it again" in err
        if content == b"":
            assert "empty (0 bytes)" in err
    assert registry.installed("cut") is None


# --- sizes (hostile test pass after issue 20) ---------------------------------------------------
def test_a_tensor_claiming_more_values_than_its_file_stores_is_refused(tmp_path):
    # torch.save keeps a stride-0 tensor as one stored value; reading and casting it then
    # allocated its claim: a 4.5 MB .pth with one 20000×20000 claim took 3 GB to refuse
    from dgp_engine.priors.stylegan2_files import _load_studiogan_file

    sd = load_file(str(registry.bundled_model_dir() / "G_ema.safetensors"))
    sd["linear.weight"] = torch.zeros(1, dtype=torch.float16).expand(3000, 3000)
    torch.save(sd, tmp_path / "G_ema.pth")
    with pytest.raises(CheckpointError, match=r"linear\.weight claims 9,000,000 values"):
        read_state_dict(tmp_path / "G_ema.pth")
    torch.save({"state_dict": sd}, tmp_path / "model=G-best-weights-step=1.pth")
    with pytest.raises(CheckpointError, match="claims 9,000,000 values"):
        _load_studiogan_file(tmp_path / "model=G-best-weights-step=1.pth")
    # views that share one storage without overlapping (tied or sliced weights) are fine
    base = torch.arange(12.0)
    torch.save({"a": base[:6].view(2, 3), "b": base[6:].view(3, 2).t()}, tmp_path / "ok.pth")
    assert read_state_dict(tmp_path / "ok.pth")["b"].shape == (2, 3)


def test_integer_or_zeroed_weights_are_refused_at_import_and_by_verify(tmp_path, capsys):
    # both imported and verified "OK"; every run then failed with "the model's weights hold
    # invalid values (NaN or inf)" — a zeroed layer divides by its spectral norm, 0, and
    # int64 weights are floats cut to whole numbers (mostly 0)
    model = _bundled_copy(tmp_path / "bundled")
    config = model / "config.json"
    sd = load_file(str(model / "G_ema.safetensors"))
    d_pth = tmp_path / "D.pth"
    torch.save(load_file(str(model / "D.safetensors")), d_pth)
    as_int = {k: v.to(torch.int64) if v.is_floating_point() else v for k, v in sd.items()}
    zeroed = dict(
        sd, **{"blocks.1.0.conv1.weight": torch.zeros_like(sd["blocks.1.0.conv1.weight"])}
    )
    for name, bad, says in (
        ("int", as_int, "int64 whole numbers"),
        ("zero", zeroed, "blocks.1.0.conv1.weight holds only zeros"),
    ):
        torch.save(bad, tmp_path / f"G_{name}.pth")
        code = main(
            [
                "models",
                "import",
                f"bad-{name}",
                "--g",
                str(tmp_path / f"G_{name}.pth"),
                "--d",
                str(d_pth),
                "--config",
                str(config),
            ]
        )
        err = capsys.readouterr().err
        assert code == 1 and says in err and "not installed" in err, err
        assert not (paths.models_dir() / f"bad-{name}").exists()
    # an install zeroed afterwards, its record updated to match: verify names the tensor
    installed = (
        hub.import_files(
            "fine", model / "G_ema.safetensors", model / "D.safetensors", config=config
        ).folder
        / "G_ema.safetensors"
    )
    save_file(zeroed, str(installed))
    record = json.loads((installed.parent / "model.json").read_text())
    record["files"]["G_ema.safetensors"].update(
        size=installed.stat().st_size, sha256=hub.sha256_file(installed)
    )
    (installed.parent / "model.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["models", "verify", "fine"]) == 1
    assert "blocks.1.0.conv1.weight holds only zeros" in capsys.readouterr().out

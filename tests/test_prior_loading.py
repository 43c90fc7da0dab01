"""load_prior: folders of .pth or safetensors, suffixes, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from dgp_engine import CheckpointError, load_prior

from .conftest import PARITY
from .helpers import PARITY_CONFIG, parity_folder


def test_loads_pth_folder_in_eval_mode(tmp_path):
    prior = load_prior(parity_folder(tmp_path / "m"))
    assert not prior.G.training and not prior.D.training
    assert prior.resolution == 128 and prior.G.dim_z == 120
    assert len(prior.class_names) == 1000 and prior.class_name(1).startswith("goldfish")
    sd = torch.load(PARITY / "G_ema.pth", weights_only=True)
    for k, v in sd.items():
        assert torch.equal(prior.G.state_dict()[k], v), k


def test_loads_safetensors_with_suffix_and_fp16(tmp_path):
    folder = tmp_path / "st"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(PARITY_CONFIG))
    for name, out in (("G_ema.pth", "G_ema_128.safetensors"), ("D.pth", "D_128.safetensors")):
        sd = torch.load(PARITY / name, weights_only=True)
        save_file({k: v.half().contiguous() for k, v in sd.items()}, str(folder / out))
    prior = load_prior(folder)
    ref = torch.load(PARITY / "G_ema.pth", weights_only=True)
    w = prior.G.state_dict()["linear.weight"]
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, ref["linear.weight"], atol=1e-3, rtol=1e-3)


def test_checkpoint_without_dgp_instance_norm_keys_loads(tmp_path):
    folder = parity_folder(tmp_path / "m")
    sd = torch.load(folder / "G_ema.pth", weights_only=True)
    torch.save(
        {k: v for k, v in sd.items() if ".in1." not in k and ".in2." not in k}, folder / "G_ema.pth"
    )
    prior = load_prior(folder)
    assert torch.all(prior.G.blocks[0][0].in1.weight == 1)


def test_wrong_config_names_expected_config(tmp_path):
    folder = parity_folder(tmp_path / "m")
    (folder / "config.json").write_text(json.dumps({**PARITY_CONFIG, "G_ch": 32}))
    with pytest.raises(CheckpointError, match=r"does not fit the expected config.*G_ch 32"):
        load_prior(folder)


def test_256_checkpoint_config_on_128_weights(tmp_path):
    folder = parity_folder(tmp_path / "m")
    (folder / "config.json").write_text(json.dumps({**PARITY_CONFIG, "resolution": 256}))
    with pytest.raises(CheckpointError, match="256px"):
        load_prior(folder)


def test_truncated_file_is_reported(tmp_path):
    folder = parity_folder(tmp_path / "m")
    data = (folder / "D.pth").read_bytes()
    (folder / "D.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or incomplete"):
        load_prior(folder)


def test_missing_discriminator_and_config(tmp_path):
    folder = parity_folder(tmp_path / "m")
    (folder / "D.pth").unlink()
    with pytest.raises(CheckpointError, match="missing D.pth"):
        load_prior(folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_prior(folder)


def test_pickled_code_is_refused(tmp_path):
    """weights_only=True: a .pth that needs arbitrary code to unpickle is not run."""
    folder = parity_folder(tmp_path / "m")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, folder / "G_ema.pth")
    with pytest.raises(CheckpointError):
        load_prior(folder)


def test_unknown_name(tmp_path):
    with pytest.raises(CheckpointError, match="neither a folder nor a known model"):
        load_prior("no-such-model-anywhere")


def test_checksum_identifies_the_weights(tmp_path):
    import torch

    from dgp_engine.priors.hub import import_files

    a = load_prior(parity_folder(tmp_path / "a"))
    again = load_prior(parity_folder(tmp_path / "b"))
    assert len(a.checksum) == 64 and a.checksum == again.checksum
    other = parity_folder(tmp_path / "c")
    sd = torch.load(other / "G_ema.pth", weights_only=True)
    sd["linear.bias"] = sd["linear.bias"] + 1e-3
    torch.save(sd, other / "G_ema.pth")
    assert load_prior(other).checksum != a.checksum
    # installed models: from the install record, without hashing the weights again
    model = import_files(
        "mine",
        tmp_path / "a" / "G_ema.pth",
        tmp_path / "a" / "D.pth",
        config=tmp_path / "a" / "config.json",
    )
    first = load_prior("mine").checksum
    assert len(first) == 64 and first == load_prior(model.folder).checksum

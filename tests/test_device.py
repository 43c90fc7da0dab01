"""Device selection: CUDA > MPS > CPU, overridable, clear errors for a missing GPU.

The tests run with CUDA hidden (conftest) on a machine without Apple MPS."""

from __future__ import annotations

import pytest
import torch

from dgp_engine.errors import DeviceError
from dgp_engine.system.device import available_devices, describe_device, select_device


def test_auto_falls_back_to_the_cpu_here():
    assert available_devices() == ["cpu"]
    assert select_device() == torch.device("cpu")
    assert select_device("auto") == select_device("AUTO ") == torch.device("cpu")
    assert select_device("cpu") == select_device(torch.device("cpu")) == torch.device("cpu")
    assert describe_device("cpu").startswith("CPU (")


@pytest.mark.parametrize(
    "choice, message",
    [
        ("cuda", r"CUDA was requested but .*choose the device 'auto' or 'cpu'\."),
        ("cuda:1", r"CUDA was requested but .*'auto' or 'cpu'"),
        ("mps", r"Apple MPS was requested but .*choose the device 'auto' or 'cpu'\."),
        ("gpu", r"A GPU was requested but neither CUDA nor Apple MPS is available"),
        ("tpu", r"Unknown device 'tpu': choose one of auto, cpu, cuda, cuda:N, mps, gpu\."),
        ("cuda:x", r"Unknown device 'cuda:x': write cuda:0"),
    ],
)
def test_a_missing_or_unknown_device_is_a_clear_error(choice, message):
    with pytest.raises(DeviceError, match=message):
        select_device(choice)


def test_the_reason_for_no_cuda_is_specific():
    with pytest.raises(DeviceError) as err:
        select_device("cuda")
    msg = str(err.value)
    if torch.version.cuda is None:
        assert "no CUDA support (a CPU-only wheel)" in msg
    else:  # a CUDA build with the GPUs hidden by the test setup
        assert "CUDA_VISIBLE_DEVICES" in msg


def test_environment_override(monkeypatch):
    monkeypatch.setenv("DGP_STUDIO_DEVICE", "cpu")
    assert select_device() == torch.device("cpu")
    monkeypatch.setenv("DGP_STUDIO_DEVICE", "cuda")
    with pytest.raises(DeviceError, match="CUDA was requested"):
        select_device()
    assert select_device("cpu") == torch.device("cpu")  # an explicit choice wins

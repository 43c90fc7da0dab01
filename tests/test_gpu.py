"""The engine on a GPU (CUDA or Apple MPS): opt-in with ``pytest -m gpu``.

tests/conftest.py hides CUDA from the test process (CUDA_VISIBLE_DEVICES=""), so each
check runs this module as a script in a subprocess that sees the GPU
(``DGP_TEST_CUDA_VISIBLE_DEVICES`` picks the devices; every device otherwise); the
subprocess reports numbers as JSON and the test judges them.  That also keeps the
out-of-memory case's memory limit out of the test process.

The model has dim_z 120 (BigGAN-128's), which is not a multiple of 16: torch draws a
normal sample of 16 or more values in blocks of 16, so this is the case where drawing
z candidates in batches could change which candidates are drawn.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20

pytestmark = pytest.mark.gpu


# --- the test side ------------------------------------------------------------------
def gpu_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if "DGP_TEST_CUDA_VISIBLE_DEVICES" in env:
        env["CUDA_VISIBLE_DEVICES"] = env["DGP_TEST_CUDA_VISIBLE_DEVICES"]
    return env


def in_gpu_process(check: str, timeout: float = 240) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-m", "tests.test_gpu", check],
        cwd=REPO,
        env=gpu_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if res.returncode:
        pytest.fail(f"GPU check {check!r} failed (exit {res.returncode}):\n{res.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def device() -> str:
    """The GPU kind, "cuda" or "mps"; skips the module's tests where neither is there."""
    found = in_gpu_process("probe", timeout=120)
    if found["device"] == "none":
        pytest.skip(
            f"needs a CUDA or MPS device; torch {found['torch']} sees none "
            "(these tests are opt-in with -m gpu)"
        )
    return str(found["device"])


@pytest.fixture
def cuda(device: str) -> str:
    if device != "cuda":
        pytest.skip(f"needs CUDA (this machine has {device})")
    return device


def test_fp32_on_the_gpu_matches_the_cpu(device):
    r = in_gpu_process("cpu_vs_gpu")
    assert r["tf32_after_run"] is False, "precision fp32 must turn TF32 off"
    # same candidates (drawn on the CPU), so the same pick unless two are within rounding
    assert r["z_max_diff"] < 1e-6, r
    assert r["select_loss_gpu"] == pytest.approx(r["select_loss_cpu"], rel=1e-4)
    # fp32 kernels on the two devices sum in different orders (≈1e-6 relative per op);
    # after 6 Adam steps of lr 5e-5 the renders (in [-1, 1]) stay far closer than
    # bfloat16's (≈5e-4 mean on the CPU bf16 test's schedule)
    assert r["max_diff"] < 1e-2, r
    assert r["mean_diff"] < 1e-3, r
    assert all(
        v == pytest.approx(r["losses_cpu"][k], rel=1e-3) for k, v in r["losses_gpu"].items()
    ), r


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_reduced_precisions_finish_close_to_fp32(cuda, precision):
    r = in_gpu_process(f"precision:{precision}")
    assert r["finite"], r
    assert r["tf32_after_run"] is (precision == "tf32")
    # the CPU bf16 test's bounds (tests/test_compute.py): bfloat16's 8-bit mantissa flips
    # some near-zero gradients' signs; TF32 keeps 11 bits, so it is no further off
    assert r["max_diff"] < 0.15, r
    assert r["mean_diff"] < 0.04, r
    assert r["total"] == pytest.approx(r["total_fp32"], rel=0.1)


def test_batched_z_selection_picks_the_same_z(device):
    r = in_gpu_process("select_batch")
    assert r["z_max_diff"] == 0.0, (
        f"select_batch 16 picked another z than select_batch 1 (losses "
        f"{r['select_loss_16']} vs {r['select_loss_1']}): the candidates drawn depend on "
        "the batch size"
    )
    assert r["select_loss_16"] == pytest.approx(r["select_loss_1"], rel=1e-4)


def test_state_renders_on_the_gpu(device):
    r = in_gpu_process("render")
    assert r["render_device"].startswith(device) and r["shape"] == [1, 3, 64, 64]
    assert r["finite"]
    # the G output the next step of a longer run sees (cuDNN set deterministic; the CPU
    # test holds this to 1e-5, the margin is for GPU kernels chosen per shape)
    assert r["max_diff_to_next_frame"] < 1e-3, r


def test_out_of_memory_raises_device_memory_error_and_frees_the_run(cuda):
    r = in_gpu_process("out_of_memory")
    assert r["error"] == "DeviceMemoryError", r
    assert r["is_device_error"]
    for advice in ("smaller working region", "bf16", "CPU"):
        assert advice in r["message"], r["message"]
    # what the failed run held is released once the error is dropped
    assert r["allocated_after_mib"] <= r["allocated_before_mib"] + 8, r
    assert r["small_run_after"] == "ok"


# --- the GPU process side -------------------------------------------------------------
def _gpu_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "none"


def _config(res: int = 64, ch: int = 16) -> Any:
    from dgp_engine import BigGANConfig

    return BigGANConfig(
        resolution=res,
        G_ch=ch,
        D_ch=ch,
        dim_z=120,
        shared_dim=16,
        n_classes=5,
        G_attn="0",
        D_attn="0",
    )


def _target(res: int = 64) -> Any:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(2)
    low = torch.rand(1, 3, 4, 4, generator=g) * 1.6 - 0.8
    return F.interpolate(low, size=(res, res), mode="bilinear", align_corners=False)


def _preset(select_num: int = 4, iterations: tuple[int, int] = (3, 3)) -> Any:
    from dgp_engine import Preset

    return Preset.from_dict(
        {
            "iterations": list(iterations),
            "ft_num": [2, "all"],
            "G_lrs": [5e-5, 5e-5],
            "z_lrs": [1e-2, 1e-2],
            "w_D_loss": [1, 1],
            "w_mse": [1, 1],
            "ftr_num": [8, 8],
            "select_num": select_num,
        }
    )


def _run(dev: str, precision: str, select_batch: int = 1, preset: Any = None) -> dict[str, Any]:
    import torch

    import dgp_engine as dgp

    prior = dgp.build_prior(_config(), device=dev, seed=0)
    run = dgp.reconstruct(
        prior,
        _target(),
        "colorize",
        class_id=1,
        preset=preset or _preset(),
        seed=3,
        precision=precision,
        select_batch=select_batch,
    )
    reports = list(run)
    assert run.state is not None
    steps = [r for r in reports if r.phase == "optimize" and not r.done]
    select = [r.losses["select_loss"] for r in reports if r.phase == "select"]
    return {
        "image": dgp.render(prior, run.state).float().cpu(),
        "z": run.state.z.cpu(),
        "losses": steps[-1].losses if steps else {},
        "finite": all(torch.isfinite(torch.tensor(list(r.losses.values()))).all() for r in steps),
        "select_loss": select[-1] if select else None,
        "last_frame": steps[-1].image.float().cpu() if steps else None,
        "state": run.state,
        "prior": prior,
    }


def _tf32_on() -> bool:
    import torch

    return bool(torch.backends.cuda.matmul.allow_tf32)


def _diff(a: Any, b: Any) -> dict[str, float]:
    d = (a - b).abs()
    return {"max_diff": float(d.max()), "mean_diff": float(d.mean())}


def check_probe() -> dict[str, Any]:
    import torch

    return {"device": _gpu_device(), "torch": torch.__version__}


def check_cpu_vs_gpu() -> dict[str, Any]:
    dev = _gpu_device()
    cpu = _run("cpu", "fp32")
    gpu = _run(dev, "fp32")
    return {
        **_diff(gpu["image"], cpu["image"]),
        "tf32_after_run": _tf32_on() if dev == "cuda" else False,
        "z_max_diff": float((gpu["z"] - cpu["z"]).abs().max()),
        "select_loss_cpu": cpu["select_loss"],
        "select_loss_gpu": gpu["select_loss"],
        "losses_cpu": cpu["losses"],
        "losses_gpu": gpu["losses"],
    }


def check_precision(precision: str) -> dict[str, Any]:
    ref = _run("cuda", "fp32")
    got = _run("cuda", precision)
    tf32 = _tf32_on()
    return {
        **_diff(got["image"], ref["image"]),
        "finite": got["finite"],
        "tf32_after_run": tf32,
        "total": got["losses"]["total"],
        "total_fp32": ref["losses"]["total"],
    }


def check_select_batch() -> dict[str, Any]:
    dev = _gpu_device()
    p = _preset(select_num=48, iterations=(1, 0))
    one = _run(dev, "fp32", select_batch=1, preset=p)
    many = _run(dev, "fp32", select_batch=16, preset=p)
    return {
        "z_max_diff": float((many["z"] - one["z"]).abs().max()),
        "select_loss_1": one["select_loss"],
        "select_loss_16": many["select_loss"],
    }


def check_render() -> dict[str, Any]:
    import torch

    import dgp_engine as dgp

    dev = _gpu_device()
    done = _run(dev, "fp32", preset=_preset(iterations=(2, 2)))
    longer = _run(dev, "fp32", preset=_preset(iterations=(2, 3)))
    image = dgp.render(done["prior"], done["state"])
    return {
        "render_device": str(image.device),
        "shape": list(image.shape),
        "finite": bool(torch.isfinite(image).all()),
        "max_diff_to_next_frame": _diff(image.float().cpu(), longer["last_frame"])["max_diff"],
    }


def check_out_of_memory() -> dict[str, Any]:
    import torch

    import dgp_engine as dgp
    from dgp_engine.errors import DeviceError, DeviceMemoryError

    _run("cuda", "fp32")  # cuBLAS/cuDNN workspaces exist before the baseline is taken
    prior = dgp.build_prior(_config(res=128, ch=32), device="cuda", seed=0)
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    total = torch.cuda.get_device_properties(0).total_memory
    # room for the private copy of G, far from enough for 64 candidates at 128 px
    torch.cuda.set_per_process_memory_fraction(
        min(1.0, (torch.cuda.memory_reserved() + 48 * MIB) / total)
    )
    preset = dgp.Preset.from_dict(
        {
            "iterations": [2],
            "ft_num": [2],
            "G_lrs": [5e-5],
            "z_lrs": [1e-2],
            "w_D_loss": [1],
            "w_mse": [0],
            "ftr_num": [7],
            "select_num": 64,
        }
    )
    run = dgp.reconstruct(
        prior,
        _target(128),
        "colorize",
        class_id=1,
        preset=preset,
        select_batch=64,
        precision="fp32",
    )
    error, message, is_device_error = "none", "", False
    try:
        run.run_to_end()
    except Exception as exc:  # the check reports whatever came out, the test judges it
        error, message = type(exc).__name__, str(exc)
        is_device_error = isinstance(exc, DeviceError) and isinstance(exc, DeviceMemoryError)
    del run
    gc.collect()
    torch.cuda.synchronize()
    after = torch.cuda.memory_allocated()
    torch.cuda.set_per_process_memory_fraction(1.0)
    small = _run("cuda", "fp32")
    return {
        "error": error,
        "message": message,
        "is_device_error": is_device_error,
        "allocated_before_mib": before / MIB,
        "allocated_after_mib": after / MIB,
        "small_run_after": "ok" if small["finite"] else "not finite",
    }


def main(check: str) -> None:
    import torch

    torch.set_num_threads(1)
    torch.backends.cudnn.deterministic = True  # two runs compared must sum alike
    torch.backends.cudnn.benchmark = False
    name, _, arg = check.partition(":")
    fn = globals()[f"check_{name}"]
    print(json.dumps(fn(arg) if arg else fn()))


if __name__ == "__main__":
    main(sys.argv[1])

"""Which compute device the engine runs on: CUDA, then Apple MPS, then the CPU.

``select_device()`` takes the user's choice ("auto", "cpu", "cuda", "cuda:1", "mps",
"gpu" = any GPU); ``DGP_STUDIO_DEVICE`` overrides the default "auto". Asking for a GPU
that is not there raises DeviceError saying why and what to choose instead, rather
than silently running on the CPU.
"""

from __future__ import annotations

import os

import torch

from ..errors import DeviceError

ENV_VAR = "DGP_STUDIO_DEVICE"
CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps", "gpu")


def _cuda_count() -> int:
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver raises here rather than returning False
        return 0


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:
        return False


def available_devices() -> list[str]:
    """Devices usable right now, best first, e.g. ``["cuda:0", "cuda:1", "cpu"]``."""
    out = [f"cuda:{i}" for i in range(_cuda_count())]
    if _mps_available():
        out.append("mps")
    out.append("cpu")
    return out


def _why_no_cuda() -> str:
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return (
            "this PyTorch build has no CUDA support (a CPU-only wheel): install a CUDA "
            "build of PyTorch from pytorch.org, or choose the device 'auto' or 'cpu'"
        )
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return (
            f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU: unset it, or choose the "
            "device 'auto' or 'cpu'"
        )
    return (
        "no NVIDIA GPU is visible (no GPU, or its driver is missing or too old for this "
        "PyTorch): check `nvidia-smi`, or choose the device 'auto' or 'cpu'"
    )


def _why_no_mps() -> str:
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_built():
        return (
            "this PyTorch build has no Apple MPS support (MPS needs macOS 12.3+ on Apple "
            "silicon): choose the device 'auto' or 'cpu'"
        )
    return (
        "MPS is built in but unavailable (it needs macOS 12.3+ on an Apple-silicon or "
        "AMD GPU Mac): choose the device 'auto' or 'cpu'"
    )


def select_device(requested: str | torch.device | None = None) -> torch.device:
    """The device to run on. ``None`` means ``$DGP_STUDIO_DEVICE`` or else "auto"
    (CUDA > MPS > CPU). Raises DeviceError for an unknown name or a missing GPU."""
    if isinstance(requested, torch.device):
        requested = str(requested)
    if requested is None or not str(requested).strip():
        requested = os.environ.get(ENV_VAR, "").strip() or "auto"
    choice = str(requested).strip().lower()

    if choice == "auto":
        if _cuda_count():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "gpu":
        if _cuda_count():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        raise DeviceError(
            f"A GPU was requested but neither CUDA nor Apple MPS is available: {_why_no_cuda()}."
        )
    if choice == "mps":
        if _mps_available():
            return torch.device("mps")
        raise DeviceError(f"Apple MPS was requested but {_why_no_mps()}.")
    if choice == "cuda" or choice.startswith("cuda:"):
        index = 0
        if choice != "cuda":
            try:
                index = int(choice.split(":", 1)[1])
            except ValueError:
                raise DeviceError(
                    f"Unknown device {requested!r}: write cuda:0, cuda:1, …"
                ) from None
        count = _cuda_count()
        if count == 0:
            raise DeviceError(f"CUDA was requested but {_why_no_cuda()}.")
        if not 0 <= index < count:
            visible = ", ".join(f"cuda:{i}" for i in range(count))
            raise DeviceError(
                f"GPU cuda:{index} was requested but only {count} CUDA "
                f"device{'s are' if count > 1 else ' is'} visible ({visible}): "
                "choose one of those or 'auto'."
            )
        return torch.device("cuda", index)
    raise DeviceError(f"Unknown device {requested!r}: choose one of {', '.join(CHOICES)}.")


def describe_device(device: str | torch.device) -> str:
    """A human-readable name for a device, e.g. "NVIDIA H100 80GB HBM3 (79 GiB)"."""
    dev = torch.device(device)
    if dev.type == "cuda":
        index = dev.index or 0
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB, cuda:{index})"
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({os.cpu_count() or 1} logical cores)"

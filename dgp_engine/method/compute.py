"""How a reconstruction computes: number precision and the fast path's optimiser.

Precision (``reconstruct(..., precision=...)``), one of :data:`PRECISIONS`:

* ``"fp32"`` — float32 everywhere; on CUDA, TF32 off for matmuls and convolutions.
* ``"tf32"`` — CUDA only: float32 tensors, TF32 tensor-core matmuls/convolutions.
* ``"bf16"`` — bfloat16 autocast for the networks' forward and backward (weights,
  optimiser state and losses stay float32).  On CPUs with AMX (Sapphire Rapids and
  later) and on recent GPUs.  The fast path's spectrally normalised layers take their
  own bfloat16 route under it (:func:`dgp_engine.models.spectral.lowp_dtype`):
  activations channels-last, a frozen layer's weight converted once, a trained layer's
  once per step with its weight gradient returned in float32 for the float32 master,
  σ always in float32.  Untested on GPUs so far (no GPU was lent when it was written).
* ``"auto"`` — what the fast path uses unless told: TF32 on CUDA; on a CPU, bfloat16
  where the CPU computes it natively (AMX or AVX512-BF16) *and* a one-time measurement
  on this machine found it faster (:func:`auto_cpu_precision`, cached per CPU model and
  torch version in the user cache), float32 elsewhere.

The reference-exact mode always computes in float32.  ``bench/fast_vs_exact_quality.py
--fast-precisions fp32,bf16`` measures each precision against float32 on the same run.

:class:`InBackwardAdam` is Adam with β1 = 0 (the DGP setting) for the fast path: it keeps
only the second moment (with β1 = 0 the first moment *is* the gradient) and steps each
parameter the moment its gradient is complete during ``backward()``, then frees that
gradient, so neither a first moment nor a full set of gradients is ever held.  The
arithmetic is torch's fused Adam kernel's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DeviceError, InputError
from ..system import fileio, paths

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "tf32", "bf16")


def check_precision(precision: str | None, exact: bool) -> str:
    """The precision setting, normalised ("auto" for None), whatever the device: refuses
    an unknown name, or anything but float32 with the reference-exact mode."""
    choice = (precision or "auto").strip().lower()
    if choice not in PRECISIONS:
        raise InputError(f"Unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}.")
    if exact and choice not in ("auto", "fp32"):
        raise InputError(
            "The reference-exact mode computes in float32 only: drop the "
            "precision setting or the exact mode."
        )
    return choice


def generator_weights(G: torch.nn.Module) -> int:
    """How many weights a generator has (what "auto" weighs against BF16_MIN_WEIGHTS)."""
    return sum(p.numel() for p in G.parameters())


def resolve_precision(
    precision: str | None, device: torch.device, exact: bool, *, weights: int | None = None
) -> str:
    """The precision a run uses on ``device``: "fp32", "tf32" or "bf16".  Refuses what
    the device cannot do with a sentence saying what to choose instead.  ``weights``:
    the generator's number of weights, when known ("auto" keeps a small model, whose
    layers are too narrow for bfloat16 to pay off, in float32)."""
    choice = check_precision(precision, exact)
    if exact:
        return "fp32"
    if choice == "auto":
        if device.type == "cuda":
            return "tf32"
        if device.type == "cpu":
            auto = auto_cpu_precision()
            if auto.precision == "bf16" and weights is not None and weights < BF16_MIN_WEIGHTS:
                say_once(
                    logging.INFO,
                    f"Precision auto: float32 for this model: its {weights / 1e6:.1f} M "
                    "weights make layers too narrow for bfloat16 to pay off (it does from "
                    f"{BF16_MIN_WEIGHTS / 1e6:.0f} M).",
                )
                return "fp32"
            say_once(logging.INFO, f"Precision auto: {auto.reason}")
            return auto.precision
        return "fp32"
    if choice == "tf32" and device.type != "cuda":
        raise DeviceError(
            f"TF32 needs an NVIDIA GPU; this run is on {device.type}: choose "
            "precision 'fp32' or 'auto'."
        )
    if choice == "bf16" and device.type == "mps":
        raise DeviceError(
            "bfloat16 is not supported on Apple MPS by this engine: choose "
            "precision 'fp32' or 'auto'."
        )
    if choice == "bf16" and device.type == "cpu" and cpu_bf16_support() is None:
        say_once(
            logging.WARNING,
            "Precision bf16: this CPU has no native bfloat16 (AMX or AVX512-BF16), so "
            "bfloat16 is emulated and runs slower than float32; choose 'auto' or 'fp32'.",
        )
    return choice


# --- precision "auto" on a CPU ---------------------------------------------------------

#: Bumped when the measurement changes, so that older cached results are measured again.
MEASURE_VERSION = 1
#: bfloat16 is chosen when the measurement finds it at least this much faster.
BF16_MIN_SPEEDUP = 1.15
#: ... and for generators of at least this many weights: the bundled 64 px ch16 prior
#: (2.3 M) gained nothing in bfloat16 on a quiet machine and lost on a busy one; a 128 px
#: ch32 one (8.5 M) ran 1.5-1.6x faster (docs/performance.md).
BF16_MIN_WEIGHTS = 5_000_000

_said: set[str] = set()
_said_lock = threading.Lock()


def say_once(level: int, message: str) -> None:
    """Log ``message`` the first time this process says it, and never again."""
    with _said_lock:
        if message in _said:
            return
        _said.add(message)
    log.log(level, "%s", message)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _probe_cpu_bf16() -> str | None:
    """The CPU's native bfloat16 arithmetic, "AMX" or "AVX512-BF16", or None.  Linux
    lists both in /proc/cpuinfo; elsewhere torch's AMX check finds AMX only."""
    flags = _cpu_flags()
    if "amx_bf16" in flags and "amx_tile" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    init_amx = getattr(torch._C._cpu, "_init_amx", None)
    try:
        if not flags and init_amx is not None and init_amx():
            return "AMX"
    except RuntimeError:
        pass
    return None


def _onednn_bf16() -> bool:
    """Whether this torch build computes bfloat16 convolutions with oneDNN."""
    try:
        return bool(
            torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
            and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


_probe_lock = threading.Lock()
_probed: list[str | None] = []


def cpu_bf16_support() -> str | None:
    """ "AMX" or "AVX512-BF16" when this CPU and torch build compute bfloat16 natively
    (oneDNN), else None.  Probed once per process."""
    with _probe_lock:
        if not _probed:
            native = _probe_cpu_bf16()
            _probed.append(native if native is not None and _onednn_bf16() else None)
        return _probed[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def measure_bf16_speedup(repeats: int = 4) -> float:
    """float32 time / bfloat16 time of the fast path's two kinds of layer work, measured
    here: a trained 3×3 convolution (192 channels at 64×64 px, channels-last in
    bfloat16, forward and both gradients, its weight converted to bfloat16 each time as
    a step does) and a frozen weight-bound 1536-channel 3×3 layer at 8×8 px as one
    matrix product (forward and both gradients).  Each part's best of ``repeats``,
    float32 and bfloat16 interleaved, so a busy machine's slow moments count little.
    ~1 s on 2 cores."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 192, 64, 64, generator=gen)
    w = torch.randn(192, 192, 3, 3, generator=gen) * 0.03
    cols = torch.randn(13824, 64, generator=gen)
    wm = torch.randn(1536, 13824, generator=gen) * 0.01
    g = torch.randn(1536, 64, generator=gen)
    weights = {torch.float32: wm, torch.bfloat16: wm.to(torch.bfloat16)}  # a frozen layer's

    def conv(dtype: torch.dtype) -> None:
        fmt = torch.channels_last if dtype == torch.bfloat16 else torch.contiguous_format
        xd = x.to(dtype, memory_format=fmt)
        wd = w.to(dtype, memory_format=fmt)
        out = F.conv2d(xd, wd, None, 1, 1)
        torch.ops.aten.convolution_backward(
            out, xd, wd, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, False]
        )

    def gemm(dtype: torch.dtype) -> None:
        md, cd, gd = weights[dtype], cols.to(dtype), g.to(dtype)
        torch.mm(md, cd)
        torch.mm(gd.t(), md)
        torch.mm(gd, cd.t()).float()

    parts = (conv, gemm)
    best = {(p, d): math.inf for p in parts for d in (torch.float32, torch.bfloat16)}
    with torch.no_grad():
        for _ in range(repeats + 2):  # the first rounds make oneDNN's kernels
            for part, dtype in best:
                t = time.perf_counter()
                part(dtype)
                best[part, dtype] = min(best[part, dtype], time.perf_counter() - t)
    fp32 = sum(best[p, torch.float32] for p in parts)
    return fp32 / sum(best[p, torch.bfloat16] for p in parts)


@dataclass(frozen=True)
class AutoPrecision:
    """What "auto" computes in on this CPU, and why (one sentence for the user)."""

    precision: str  # "fp32" or "bf16"
    reason: str
    speedup: float | None = None  # measured float32 time / bfloat16 time


def _measure_cache() -> Path:
    return paths.cache_dir() / "compute" / "cpu_precision.json"


def _cached_speedup(key: dict[str, Any]) -> float | None:
    try:
        data = json.loads(fileio.read_small_file(_measure_cache()))
        if data.get("key") == key:
            return float(data["speedup"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return None


_auto_lock = threading.Lock()
_auto: dict[str, AutoPrecision] = {}


def auto_cpu_precision() -> AutoPrecision:
    """Precision "auto" on this CPU: bfloat16 when the CPU computes it natively and a
    measurement (:func:`measure_bf16_speedup`, made once per CPU model and torch version,
    kept in the user cache) finds it at least BF16_MIN_SPEEDUP faster; float32
    otherwise.  Decided once per process."""
    with _auto_lock:
        if "cpu" not in _auto:
            decided = _decide_cpu_precision()
            assert decided is not None  # measured when not known
            _auto["cpu"] = decided
        return _auto["cpu"]


def describe_auto_precision(device: torch.device) -> str:
    """One sentence: what precision "auto" picks on ``device`` and why (the app's
    settings show it; nothing is measured here)."""
    if device.type == "cuda":
        return "auto: TF32 on this NVIDIA GPU."
    if device.type != "cpu":
        return "auto: float32 on this device."
    known = known_auto_cpu_precision()
    if known is None:
        native = cpu_bf16_support()
        return (
            f"auto: this CPU has {native}; the first run measures whether bfloat16 is "
            "faster than float32 here (about a second, once)."
        )
    if known.precision == "bf16":
        return (
            f"auto: {known.reason} Models under {BF16_MIN_WEIGHTS / 1e6:.0f} M weights "
            "(the bundled one) stay in float32, where bfloat16 does not pay off."
        )
    return f"auto: {known.reason}"


#: "off" keeps "auto" in float32 on every CPU (the test suite sets it; users may too).
AUTO_BF16_ENV = "DGP_STUDIO_CPU_BF16"


def _switched_off() -> AutoPrecision | None:
    if os.environ.get(AUTO_BF16_ENV, "").strip().lower() in ("off", "0", "no"):
        return AutoPrecision("fp32", f"float32, as {AUTO_BF16_ENV}=off.")
    return None


def known_auto_cpu_precision() -> AutoPrecision | None:
    """What "auto" computes in on this CPU if that is known without measuring (no native
    bfloat16, or a measurement in the cache), else None: for a settings page, which
    must not wait for a measurement."""
    with _auto_lock:
        if "cpu" in _auto:
            return _auto["cpu"]
    return _decide_cpu_precision(measure=False)


def _decide_cpu_precision(measure: bool = True) -> AutoPrecision | None:
    off = _switched_off()
    if off is not None:
        return off
    native = cpu_bf16_support()
    if native is None:
        if _probe_cpu_bf16() is not None:
            return AutoPrecision(
                "fp32", "float32, as this PyTorch build cannot compute bfloat16 with oneDNN."
            )
        return AutoPrecision(
            "fp32", "float32, as this CPU has no native bfloat16 (AMX or AVX512-BF16)."
        )
    key = {
        "cpu": cpu_model(),
        "native": native,
        "torch": torch.__version__,
        "measure": MEASURE_VERSION,
    }
    speedup = _cached_speedup(key)
    if speedup is None and not measure:
        return None
    if speedup is None:
        speedup = measure_bf16_speedup()
        try:
            text = json.dumps({"key": key, "speedup": round(speedup, 3)}, indent=1)
            cache = _measure_cache()
            cache.parent.mkdir(parents=True, exist_ok=True)
            fileio.atomic_write_text(cache, text + "\n")
        except OSError as exc:  # measured again next time; nothing else depends on it
            log.info("could not keep the precision measurement: %s", exc)
    if speedup >= BF16_MIN_SPEEDUP:
        return AutoPrecision(
            "bf16",
            f"bfloat16, as this CPU has {native} and bfloat16 measured {speedup:.1f}× "
            "as fast as float32 here.",
            speedup,
        )
    return AutoPrecision(
        "fp32",
        f"float32: this CPU has {native}, but bfloat16 measured only {speedup:.2f}× "
        "as fast as float32 here.",
        speedup,
    )


def reset_auto_precision() -> None:
    """Forget the process's probe and decision (tests; a changed cache folder)."""
    with _probe_lock:
        _probed.clear()
    with _auto_lock:
        _auto.clear()
    with _said_lock:
        _said.clear()


def apply_matmul_precision(precision: str, device: torch.device) -> None:
    """Set CUDA's TF32 switches for a run (they are process-wide in PyTorch, so the
    last run started decides; runs on the CPU leave them alone)."""
    if device.type != "cuda":
        return
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The context the networks' forward passes run in."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def default_select_batch(device: torch.device, resolution: int) -> int:
    """z-selection candidates rendered and scored per batch.  GPUs: 16.  CPUs: 4 up to
    128 px — the weight-bound low-resolution layers are read once per batch (BigGAN-128
    ch96, 2 cores: 0.25 → 0.21 s/sample, peak RSS 1.3 → 1.7 GiB) — and 1 above, where
    each candidate's 128² px attention map alone takes 268 MB (256 px: 9 % faster for
    1 GiB more)."""
    if device.type == "cuda":
        return 16
    if device.type == "cpu" and resolution <= 128:
        return 4
    return 1


class InBackwardAdam:
    """Adam(β1 = 0, β2) over parameter groups, stepped during ``backward()``.

    ``set_lrs`` gives each group its learning rate for the coming backward.  A
    parameter whose group has learning rate 0 is not stepped (as torch's Adam would
    step it with lr 0 but only if it had a gradient; the fast path gives frozen
    groups none).  Call :meth:`close` to remove the hooks."""

    def __init__(
        self,
        groups: Sequence[Sequence[torch.nn.Parameter]],
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.lrs = [0.0] * len(groups)
        self._sq: dict[int, torch.Tensor] = {}
        self._steps: dict[int, torch.Tensor] = {}
        self._fused = hasattr(torch, "_fused_adam_")  # private op: formula below otherwise
        self._handles: list[Any] = []
        seen: set[int] = set()
        for g, params in enumerate(groups):
            for p in params:
                if id(p) in seen:
                    continue
                seen.add(id(p))
                wanted = p.requires_grad  # torch hooks only a tensor that requires grad;
                p.requires_grad_(True)  # the hook stays when the flag is turned off
                hook = p.register_post_accumulate_grad_hook  # untyped in torch
                self._handles.append(hook(self._hook(g)))  # type: ignore[no-untyped-call]
                p.requires_grad_(wanted)

    def set_lrs(self, lrs: Sequence[float]) -> None:
        self.lrs = [float(x) for x in lrs]

    def _hook(self, group: int) -> Callable[[torch.Tensor], None]:
        def step(p: torch.Tensor) -> None:
            grad = p.grad
            p.grad = None
            if grad is None or self.lrs[group] == 0.0:
                return
            with torch.no_grad():
                self._step(p, grad, self.lrs[group])

        return step

    def _step(self, p: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        key = id(p)
        sq = self._sq.get(key)
        if sq is None:
            sq = self._sq[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            self._steps[key] = torch.zeros((), dtype=torch.float32, device=p.device)
        step = self._steps[key]
        if self._fused and p.device.type in ("cpu", "cuda") and p.is_contiguous():
            step += 1
            # β1 = 0: the first moment is the gradient itself, so the gradient's buffer
            # serves as the kernel's first-moment argument (it is overwritten with itself).
            torch._fused_adam_(
                [p],
                [grad],
                [grad],
                [sq],
                [],
                [step],
                lr=lr,
                beta1=0.0,
                beta2=self.beta2,
                weight_decay=0.0,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )
            return
        step += 1
        t = float(step)
        sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        denom = sq.sqrt().div_(math.sqrt(1 - self.beta2**t)).add_(self.eps)
        p.addcdiv_(grad, denom, value=-lr)

    def state_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._sq.values())

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._sq.clear()
        self._steps.clear()

"""How a reconstruction computes: number precision and the fast path's optimiser.

Precision (``reconstruct(..., precision=...)``), one of :data:`PRECISIONS`:

* ``"fp32"`` — float32 everywhere; on CUDA, TF32 off for matmuls and convolutions.
* ``"tf32"`` — CUDA only: float32 tensors, TF32 tensor-core matmuls/convolutions.
* ``"bf16"`` — bfloat16 autocast for the networks' forward and backward (weights,
  optimiser state and losses stay float32).  On CPUs with AMX (Sapphire Rapids and
  later) and on recent GPUs.
* ``"auto"`` — what the fast path uses unless told: TF32 on CUDA, float32 elsewhere.

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
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..errors import DeviceError, InputError

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


def resolve_precision(precision: str | None, device: torch.device, exact: bool) -> str:
    """The precision a run uses on ``device``: "fp32", "tf32" or "bf16".  Refuses what
    the device cannot do with a sentence saying what to choose instead."""
    choice = check_precision(precision, exact)
    if exact:
        return "fp32"
    if choice == "auto":
        return "tf32" if device.type == "cuda" else "fp32"
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
    return choice


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

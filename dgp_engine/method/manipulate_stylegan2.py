"""Manipulation of a StyleGAN2 result (docs/method.md#stylegan2-priors): jitter in w
space and morphing of w+ and the tuned weights.  The engine's side only: the command
line's and the app's manipulation (:mod:`.manipulate`'s :class:`~.manipulate.Renderer`
and :class:`~.manipulate.Morph`) still take BigGAN results and refuse a StyleGAN2 prior
with a sentence.

* jitter: G.synthesis(w+* + σ·ε; θ*) with one ε ~ N(0, I) of w's size added to every
  layer's w (so the variation moves the image as one w would, not layer by layer);
* morph between A = (θ_A, w+_A) and B: w+ = (1 − u)·w+_A + u·w+_B and every weight and
  buffer blended the same way, as the BigGAN morph does (``t`` in [0, 1] along the
  keyframes, eased per segment).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..errors import InputError, StateError
from ..priors.load import Prior
from .manipulate import RenderJob, _noise_seed, check_morphable, ease, keyframe_labels
from .reconstruct_stylegan2 import (
    NOISE_MODE,
    check_fits_stylegan2,
    check_same_family,
    materialize_stylegan2,
)
from .state import ReconstructionState


def _check_stylegan2(prior: Prior, state: ReconstructionState, label: str) -> None:
    if not state.is_stylegan2:
        raise StateError(
            f"{label} was restored with a BigGAN prior: use the BigGAN "
            "manipulation (Renderer, Morph) for it."
        )
    check_same_family(prior, state)


class StyleGAN2Renderer:
    """Renders from one StyleGAN2 result: θ* made once, batches of ``batch_size``."""

    def __init__(
        self,
        prior: Prior,
        state: ReconstructionState,
        *,
        batch_size: int = 8,
        allow_other_model: bool = False,
    ):
        if batch_size < 1:
            raise InputError("batch_size must be at least 1.")
        _check_stylegan2(prior, state, "This result")
        warning = state.model_warning(prior.name, prior.checksum, allow_mismatch=allow_other_model)
        self.warnings: list[str] = [warning] if warning else []
        self.prior, self.state = prior, state
        self.batch_size = int(batch_size)
        self.generator = materialize_stylegan2(prior, state)
        self.device = next(self.generator.parameters()).device

    @property
    def w_dim(self) -> int:
        return int(self.state.ws.shape[-1])

    def jitter_noise(self, index: int, seed: int = 0) -> torch.Tensor:
        """ε ~ N(0, I) of variation ``index`` ([1, 1, w_dim]); the same for any n."""
        gen = torch.Generator().manual_seed(_noise_seed(seed, index))
        return torch.randn(1, 1, self.w_dim, generator=gen)

    def jitter_latents(
        self, n: int, sigma: float, seed: int = 0, *, start: int = 0
    ) -> torch.Tensor:
        """w+* + σ·ε for variations ``start … start+n−1`` ([n, num_ws, w_dim])."""
        if n < 0:
            raise InputError("The number of variations cannot be negative.")
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, (int, float))
            or not math.isfinite(sigma)
            or sigma < 0
        ):
            raise InputError("σ must be a finite number ≥ 0.")
        base = self.state.ws.float().cpu()
        if n == 0:
            return base.new_zeros(0, *base.shape[1:])
        eps = torch.cat([self.jitter_noise(start + i, seed) for i in range(n)])
        return base + eps * float(sigma)

    def render(self, ws: torch.Tensor | None = None) -> torch.Tensor:
        """G.synthesis(w+; θ*) for [N, num_ws, w_dim] (the state's own when not given)."""
        return torch.cat(list(self._batches(self._check_ws(ws))))

    def _check_ws(self, ws: torch.Tensor | None) -> torch.Tensor:
        ws = (self.state.ws if ws is None else ws).float().cpu()
        if ws.dim() != 3 or ws.shape[1:] != self.state.ws.shape[1:]:
            raise InputError(
                f"w+ of this model has shape (N, {self.state.ws.shape[1]}, "
                f"{self.w_dim}); got {tuple(ws.shape)}."
            )
        return ws

    def _batches(self, ws: torch.Tensor) -> Iterator[torch.Tensor]:
        for i in range(0, ws.shape[0], self.batch_size):
            with torch.no_grad():
                x = self.generator.synthesis(
                    ws[i : i + self.batch_size].to(self.device), NOISE_MODE
                )
            yield x.float().cpu()

    def jitter(
        self,
        n: int,
        sigma: float,
        seed: int = 0,
        *,
        start: int = 0,
        cancel: threading.Event | None = None,
    ) -> RenderJob:
        """``n`` variations G.synthesis(w+* + σ·ε_i; θ*)."""
        ws = self.jitter_latents(n, sigma, seed, start=start)
        params = [
            {
                "kind": "jitter",
                "variation": start + i,
                "seed": seed,
                "sigma": float(sigma),
                "ws": ws[i : i + 1],
            }
            for i in range(n)
        ]

        def produce() -> Iterator[tuple[torch.Tensor, dict[str, Any]]]:
            k = 0
            for x in self._batches(ws):
                for img in x:
                    yield img, dict(params[k])
                    k += 1

        return RenderJob(n, produce, cancel)

    def state_with(self, ws: torch.Tensor, note: str = "") -> ReconstructionState:
        """A new state sharing θ* with another w+ (to adopt a variation)."""
        task = dict(self.state.task)
        if note:
            task["manipulation"] = note
        return dataclasses.replace(
            self.state, z=self._check_ws(ws)[:1].clone(), task=task, created=time.time()
        )


class StyleGAN2Morph:
    """The blend of two or more StyleGAN2 keyframe results, w+ and weights."""

    def __init__(
        self,
        prior: Prior,
        keyframes: Sequence[ReconstructionState],
        *,
        names: Sequence[str] | None = None,
        easing: str = "linear",
        allow_other_model: bool = False,
    ):
        check_morphable(keyframes, names)
        self.warnings: list[str] = []
        for label, s in zip(keyframe_labels(len(keyframes), names), keyframes, strict=True):
            _check_stylegan2(prior, s, f"Keyframe {label}")
            check_fits_stylegan2(prior, s)
            warning = s.model_warning(
                prior.name,
                prior.checksum,
                label=f"Keyframe {label}",
                allow_mismatch=allow_other_model,
            )
            if warning:
                self.warnings.append(warning)
        ease(easing, 0.5)
        self.prior, self.keyframes, self.easing = prior, list(keyframes), easing
        base_G = prior.stylegan2.G
        base = base_G.state_dict()
        self._float_keys = [k for k, v in base.items() if v.is_floating_point()]
        self._thetas = []
        for s in keyframes:
            theta = {}
            for k in self._float_keys:
                v = base[k].detach().clone()
                if k in s.weight_delta:
                    v.add_(s.weight_delta[k].to(v.device, v.dtype))
                theta[k] = v
            self._thetas.append(theta)
        self._ws = [s.ws.detach().float().cpu() for s in keyframes]
        self._work = copy.deepcopy(base_G).eval()
        for p in self._work.parameters():
            p.requires_grad_(False)
        self._work_sd = self._work.state_dict()
        self.device = next(self._work.parameters()).device
        self._loaded: tuple[int, float] | None = None

    @property
    def segments(self) -> int:
        return len(self.keyframes) - 1

    def locate(self, t: float) -> tuple[int, float]:
        if not math.isfinite(float(t)):
            raise InputError("The morph position must be a finite number in [0, 1].")
        s = min(1.0, max(0.0, float(t))) * self.segments
        k = min(int(math.floor(s)), self.segments - 1)
        return k, ease(self.easing, s - k)

    def ws_at(self, t: float) -> torch.Tensor:
        k, u = self.locate(t)
        return torch.lerp(self._ws[k], self._ws[k + 1], u)

    def _load(self, k: int, u: float) -> None:
        if self._loaded == (k, u):
            return
        a, b = self._thetas[k], self._thetas[k + 1]
        with torch.no_grad():
            for key in self._float_keys:
                torch.lerp(a[key], b[key], u, out=self._work_sd[key])
        self._loaded = (k, u)

    def at(self, t: float) -> torch.Tensor:
        """The frame at position ``t``: [1, 3, R, R] on the CPU."""
        k, u = self.locate(t)
        self._load(k, u)
        with torch.no_grad():
            image: torch.Tensor = self._work.synthesis(self.ws_at(t).to(self.device), NOISE_MODE)
        return image.cpu()

    def render(
        self, times: Sequence[float], cancel: threading.Event | None = None, *, keep: bool = True
    ) -> RenderJob:
        times = [float(t) for t in times]

        def produce() -> Iterator[tuple[torch.Tensor, dict[str, Any]]]:
            for t in times:
                k, u = self.locate(t)
                yield self.at(t)[0], {"kind": "morph", "t": t, "segment": k, "u": u}

        return RenderJob(len(times), produce, cancel, keep)

    def state_at(self, t: float) -> ReconstructionState:
        """A state for the blend at ``t`` (w+ and weights), to adopt or save."""
        k, u = self.locate(t)
        self._load(k, u)
        base = self.prior.stylegan2.G.state_dict()
        delta = {}
        for key in self._float_keys:
            d = (self._work_sd[key] - base[key]).float().cpu()
            if torch.count_nonzero(d):
                delta[key] = d
        near = self.keyframes[k if u < 0.5 else k + 1]
        task = dict(near.task)
        task["manipulation"] = f"morph t={t:.4g}"
        return dataclasses.replace(
            near, z=self.ws_at(t).clone(), weight_delta=delta, task=task, created=time.time()
        )

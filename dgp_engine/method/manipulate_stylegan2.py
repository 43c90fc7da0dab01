"""Manipulation of a StyleGAN2 result (docs/method.md#stylegan2-priors): jitter (and the
jitter walk) in w space, category transfer for a conditional model, and morphing of w+
and the tuned weights.  The same interface as :mod:`.manipulate`'s :class:`~.manipulate.
Renderer` and :class:`~.manipulate.Morph`, from the same bases (:class:`~.manipulate.
ResultRenderer`, :class:`~.manipulate.KeyframeBlend`; :mod:`.manipulators` picks the
family's):

* jitter: G.synthesis(w+* + σ·ε; θ*) with one ε ~ N(0, I) of w's size added to every
  layer's w (so the variation moves the image as one w would, not layer by layer); σ is
  one value or one per synthesis block (:meth:`StyleGAN2Renderer.z_chunks`, coarse to
  fine), as a hierarchical BigGAN's is one per z chunk;
* category transfer (conditional models): w+′ = w+* + ref(c′) − ref(c), where ref(c) is
  the truncated mapping of the result's starting z with the label c — w recomputed
  through the mapping with the new class, the tuned w+'s per-layer offsets from its
  start kept; a result that did not start from a mapped z (w_avg, a given w+, an older
  file) uses the mean over fixed z samples instead; c′ moves from the own class's label
  ``amount`` of the way to the target's (a class, or a blend of classes);
* morph between A = (θ_A, w+_A) and B: w+ = (1 − u)·w+_A + u·w+_B and every weight and
  buffer blended the same way (:class:`~.manipulate.KeyframeBlend`, as the BigGAN morph).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import InputError, StateError
from ..models import stylegan2 as sg2
from ..priors.load import Prior
from .manipulate import ClassSpec, KeyframeBlend, RenderJob, ResultRenderer
from .reconstruct_stylegan2 import (
    NOISE_MODE,
    check_fits_stylegan2,
    check_same_family,
    materialize_stylegan2,
)
from .state import ReconstructionState

#: z samples whose mean mapping is a class's reference w when the result did not start
#: from a mapped z (seeded: the same reference every time).
REFERENCE_SAMPLES = 256
REFERENCE_SEED = 0


def _check_stylegan2(prior: Prior, state: ReconstructionState, label: str) -> None:
    if not state.is_stylegan2:
        check_same_family(prior, state)  # a StyleGAN2 prior: says which model to load
        raise StateError(
            f"{label} was restored with a BigGAN prior: use the BigGAN "
            "manipulation (Renderer, Morph) for it."
        )
    check_same_family(prior, state)


def ws_chunks(G: sg2.Generator) -> list[tuple[str, slice]]:
    """The layers of w+ each synthesis block's convolutions take, coarse → fine ("4 px",
    "8 px", …); the last block also has the final toRGB's.  (A block's toRGB shares its
    w with the next block's first convolution.)"""
    blocks = G.synthesis.blocks
    out, start = [], 0
    for i, blk in enumerate(blocks):
        end = start + blk.num_conv + (blk.num_torgb if i == len(blocks) - 1 else 0)
        out.append((f"{blk.resolution} px", slice(start, end)))
        start += blk.num_conv
    return out


class StyleGAN2Renderer(ResultRenderer[sg2.Generator]):
    """Renders from one StyleGAN2 result: θ* made once, batches of ``batch_size``."""

    latent_key = "ws"
    tensor_target = "label"
    #: ref(c) of the result's own class, made by the first transfer
    _own_reference: torch.Tensor | None = None

    def _check_family(self, prior: Prior, state: ReconstructionState) -> None:
        _check_stylegan2(prior, state, "This result")

    def _materialize(self) -> sg2.Generator:
        return materialize_stylegan2(self.prior, self.state)

    # --- latents ---------------------------------------------------------------------
    @property
    def w_dim(self) -> int:
        return int(self.state.ws.shape[-1])

    @property
    def num_ws(self) -> int:
        return int(self.state.ws.shape[1])

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """w+: one w per layer, a jitter's ε shared by every layer (so the variation moves
        the image as one w would), its σ one per layer."""
        return (self.num_ws, self.w_dim)

    def z_chunks(self) -> list[tuple[str, slice]]:
        """The latent's chunks, coarse → fine: the layers of w+ of each synthesis block."""
        return ws_chunks(self.generator)

    def _jitter_base(self, z: torch.Tensor | None) -> torch.Tensor:
        return self._check_ws(z)[:1]

    # --- rendering ---------------------------------------------------------------------
    def render(self, ws: torch.Tensor | None = None) -> torch.Tensor:
        """G.synthesis(w+; θ*) for [N, num_ws, w_dim] (the state's own when not given)."""
        return torch.cat(list(self._batches(self._check_ws(ws))))

    def _check_ws(self, ws: torch.Tensor | None) -> torch.Tensor:
        ws = (self.state.ws if ws is None else ws).float().cpu()
        if ws.dim() != 3 or ws.shape[1:] != self.state.ws.shape[1:]:
            raise InputError(
                f"w+ of this model has shape (N, {self.num_ws}, {self.w_dim}); "
                f"got {tuple(ws.shape)}."
            )
        return ws

    def _forward(self, *batch: torch.Tensor) -> torch.Tensor:
        (ws,) = batch
        image: torch.Tensor = self.generator.synthesis(ws, NOISE_MODE)
        return image

    def job(
        self,
        ws: torch.Tensor,
        params: Sequence[dict[str, Any]],
        cancel: threading.Event | None = None,
    ) -> RenderJob:
        """A :class:`RenderJob` over w+ batches, one ``params`` dict each."""
        return self._job(self._latent_inputs(ws), params, cancel)

    def _latent_inputs(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self._check_ws(latents),)

    # --- category transfer ---------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return int(self.generator.c_dim)

    def _check_conditional(self) -> None:
        if self.n_classes == 0:
            raise InputError(
                f"{self.prior.name} is an unconditional model: it has no classes to "
                "transfer a result to (jitter and morph work)."
            )

    def label(self, spec: ClassSpec) -> torch.Tensor:
        """The mapping's label for a class id (one-hot), a blend {class id: weight}
        (weights normalised to sum 1) or a label tensor passed through; [1, c_dim]."""
        self._check_conditional()
        n = self.n_classes
        if isinstance(spec, torch.Tensor):
            c = spec.detach().float().cpu().reshape(1, -1)
            if c.shape[1] != n or not bool(torch.isfinite(c).all()):
                raise InputError(f"A class label of this model has {n} finite values.")
            return c
        out = torch.zeros(1, n)
        if isinstance(spec, Mapping):
            ids, weights = self._blend(spec)
            for i, v in zip(ids, weights.tolist(), strict=True):
                out[0, i] += v
            return out
        out[0, self._check_class(spec)] = 1.0
        return out

    def own_label(self) -> torch.Tensor:
        """The label of the result's own class (the one its w+ started from)."""
        self._check_conditional()
        cid = self.state.class_id
        if not 0 <= cid < self.n_classes:
            raise StateError(
                f"This result records class {cid}, which {self.prior.name} does not have "
                f"(classes 0..{self.n_classes - 1}): it cannot be moved to another class."
            )
        return self.label(cid)

    def _psi(self) -> float:
        psi = self.state.preset.get("truncation_psi", 1.0)
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0 <= psi <= 1:
            raise StateError(
                f"This result is damaged: its preset's truncation_psi is {psi!r}, not a "
                "number in [0, 1]."
            )
        return float(psi)

    def reference(self, label: torch.Tensor) -> torch.Tensor:
        """ref(c): the mapping of the result's starting z with ``label``, truncated as
        its start was (the mean over :data:`REFERENCE_SAMPLES` fixed z when the state
        records none); [1, num_ws, w_dim] on the CPU."""
        G = self.generator
        z = self.state.mapped_z
        if z is None:
            gen = torch.Generator().manual_seed(REFERENCE_SEED)
            z = torch.randn(REFERENCE_SAMPLES, G.z_dim, generator=gen)
        z = z.float().reshape(-1, G.z_dim)
        with torch.no_grad():
            ws = G.mapping(z.to(self.device), label.expand(z.shape[0], -1).to(self.device))
            w = G.mapping.truncate(ws.mean(0, keepdim=True), self._psi())
        return w.float().cpu()

    def transfer_ws(self, target: ClassSpec, amount: float = 1.0) -> torch.Tensor:
        """w+ of the result moved ``amount`` of the way (0 = own class, 1 = target) to
        ``target``: w+* + ref(c′) − ref(c) ([1, num_ws, w_dim])."""
        if isinstance(amount, bool) or not math.isfinite(float(amount)):
            raise InputError("The transfer amount must be a finite number.")
        own = self.own_label()
        new = torch.lerp(own, self.label(target), float(amount))
        if self._own_reference is None:
            self._own_reference = self.reference(own)
        ws = self.state.ws.float().cpu()
        if float(amount) == 0.0:
            return ws.clone()
        return ws + (self.reference(new) - self._own_reference)

    def transfer(
        self,
        targets: Sequence[ClassSpec],
        amount: float | Sequence[float] = 1.0,
        *,
        cancel: threading.Event | None = None,
    ) -> RenderJob:
        """Category transfer G.synthesis(w+′; θ*) for each target class (or blend), moved
        ``amount`` of the way from the result's own class (one value or one each)."""
        self._check_conditional()
        amounts = self._transfer_amounts(targets, amount)
        if not targets:
            return RenderJob(0, lambda: iter(()), cancel)
        ws = torch.cat([self.transfer_ws(t, a) for t, a in zip(targets, amounts, strict=True)])
        params = [
            {"kind": "transfer", "target": self._describe(t), "amount": a, "ws": ws[i : i + 1]}
            for i, (t, a) in enumerate(zip(targets, amounts, strict=True))
        ]
        return self.job(ws, params, cancel)

    def transfer_state(self, target: ClassSpec, amount: float = 1.0) -> ReconstructionState:
        """The state of a category transfer (to adopt it): the moved w+, and the target's
        class id once the move is at least half way."""
        ws = self.transfer_ws(target, amount)
        cid, note = self._transfer_record(target, amount)
        return self.state_with(ws, class_id=cid, note=note)

    def state_with(
        self,
        ws: torch.Tensor | None = None,
        *,
        z: torch.Tensor | None = None,
        class_id: int | None = None,
        note: str = "",
    ) -> ReconstructionState:
        """A new state sharing θ* with another w+ (``ws``, or ``z`` as the BigGAN
        renderer names its latent) and class, to adopt a variation or a transfer."""
        new = ws if ws is not None else z
        return dataclasses.replace(
            self.state,
            z=self._check_ws(new)[:1].clone(),
            class_id=self.state.class_id if class_id is None else self._check_class(class_id),
            task=self._noted_task(note),
            created=time.time(),
        )


class StyleGAN2Morph(KeyframeBlend[sg2.Generator]):
    """The blend of two or more StyleGAN2 keyframe results, w+ and weights."""

    def _base(self) -> sg2.Generator:
        return self.prior.stylegan2.G

    def _check_fits(self, label: str, state: ReconstructionState) -> None:
        _check_stylegan2(self.prior, state, f"Keyframe {label}")
        check_fits_stylegan2(self.prior, state)

    def _latents_of(self, state: ReconstructionState) -> tuple[torch.Tensor, ...]:
        return (state.ws.detach().float().cpu(),)

    def ws_at(self, t: float) -> torch.Tensor:
        (ws,) = self._latents_at(t)
        return ws

    def _frame(self, t: float) -> torch.Tensor:
        image: torch.Tensor = self._work.synthesis(self.ws_at(t).to(self.device), NOISE_MODE)
        return image

    def _state_latents(self, t: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.ws_at(t).clone(), None

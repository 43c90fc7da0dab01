"""Manipulation after a reconstruction (docs/method.md#manipulation): jitter, category
transfer, morph.

Nothing here re-runs a reconstruction: a :class:`Renderer` materialises the
fine-tuned generator θ* of one state once and renders batches from it; a
:class:`Morph` keeps every keyframe's full weights (base + delta) and blends them
into one working generator per frame.  What the renderers and morphs of both families
share is written once here, in their bases :class:`ResultRenderer` and
:class:`KeyframeBlend` (the StyleGAN2 ones are in :mod:`.manipulate_stylegan2`).

Long work returns a :class:`RenderJob`: iterate it for one :class:`Frame` report
per rendered image (index, total, image, parameters, elapsed); ``job.cancel()`` (or a
set ``cancel`` event) stops it after the frame it is at, keeping the frames already made
(:class:`dgp_engine.system.runs.CancellableRun`).

Morph convention: the API uses a position ``t`` in [0, 1] along the keyframes,
``t = 0`` renders the first keyframe (A) and ``t = 1`` the last (B); between two
keyframes each value is ``(1 − u)·A + u·B`` for the local position ``u``.  In
the notation of docs/method.md#manipulation that is λ = 1 − u (z = λ z_A + (1 − λ) z_B).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch

from ..errors import InputError, StateError
from ..models import Generator, freeze_sn
from ..priors.load import Prior
from ..system.runs import CancellableRun
from .pictures import signed_to_uint8
from .state import ReconstructionState, mark_in_initialized

# --------------------------------------------------------------------------- easing curves


def _ease_in_out_quad(u: float) -> float:
    return 2 * u * u if u < 0.5 else 1 - (-2 * u + 2) ** 2 / 2


def _ease_in_out_cubic(u: float) -> float:
    return 4 * u**3 if u < 0.5 else 1 - (-2 * u + 2) ** 3 / 2


#: Easing curves as data: name → f(u) on [0, 1], monotone, f(0) = 0, f(1) = 1.
EASINGS: dict[str, Callable[[float], float]] = {
    "linear": lambda u: u,
    "ease-in": lambda u: u * u,
    "ease-out": lambda u: 1 - (1 - u) ** 2,
    "ease-in-out": _ease_in_out_quad,
    "cubic": _ease_in_out_cubic,
    "sine": lambda u: 0.5 - 0.5 * math.cos(math.pi * u),
    "smoothstep": lambda u: u * u * (3 - 2 * u),
    "smootherstep": lambda u: u**3 * (u * (6 * u - 15) + 10),
}


def easing_names() -> list[str]:
    return list(EASINGS)


def ease(name: str, u: float) -> float:
    """The eased position for ``u`` (clamped to [0, 1]); exactly 0 and 1 at the ends."""
    try:
        fn = EASINGS[name]
    except KeyError:
        raise InputError(f"Unknown easing {name!r}: use one of {', '.join(EASINGS)}.") from None
    u = min(1.0, max(0.0, float(u)))
    if u <= 0.0:
        return 0.0
    if u >= 1.0:
        return 1.0
    return min(1.0, max(0.0, float(fn(u))))


# --------------------------------------------------------------------------- reports and jobs


@dataclass
class Frame:
    """One rendered image of a job."""

    index: int  # 0-based position in the job
    total: int  # images the job renders when not cancelled
    image: torch.Tensor  # [3, R, R] in [-1, 1], CPU float32
    params: dict[str, Any] = field(default_factory=dict)  # what produced it (t, seed, class…)
    elapsed: float = 0.0  # seconds since the job started

    def to_uint8(self) -> np.ndarray:
        return signed_to_uint8(self.image)


class RenderJob(CancellableRun[Frame]):
    """Iterator of :class:`Frame` reports; cancel is checked before the first frame and
    after every frame (``produce`` is a generator, left suspended after the frame it
    yielded: no further batch is rendered once cancelled).

    After iterating, ``frames`` holds every report (unless ``keep=False``, for long
    exports that stream frames to a file), ``done`` counts them and ``cancelled`` says
    whether it stopped early.  ``run_to_end(progress)`` iterates for you and returns
    the images stacked as [N, 3, R, R]."""

    def __init__(
        self,
        total: int,
        produce: Callable[[], Iterator[tuple[torch.Tensor, dict[str, Any]]]],
        cancel: threading.Event | None = None,
        keep: bool = True,
    ):
        super().__init__(cancel)
        self.total = total
        self.keep = keep
        self.done = 0
        self.frames: list[Frame] = []
        self._produce = produce

    def __len__(self) -> int:
        return self.total

    def _reports(self) -> Iterator[Frame]:
        t0 = time.perf_counter()
        if self.total > 0 and self._stop_requested():
            return
        for image, params in self._produce():
            frame = Frame(self.done, self.total, image, params, time.perf_counter() - t0)
            self.done += 1
            if self.keep:
                self.frames.append(frame)
            yield frame
            if self.done < self.total and self._stop_requested():
                return

    def run_to_end(self, progress: Callable[[Frame], Any] | None = None) -> torch.Tensor:
        for frame in self:
            if progress is not None:
                progress(frame)
        return self.images()

    def images(self) -> torch.Tensor:
        if not self.frames:
            return torch.empty(0, 3, 0, 0)
        return torch.stack([f.image for f in self.frames])


# ------------------------------------------------------------------- one state: jitter, transfer


def _noise_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for variation ``index`` of ``seed`` (independent of n)."""
    words = np.random.SeedSequence([int(seed) % (1 << 64), int(index)]).generate_state(1, np.uint64)
    return int(words[0]) & ((1 << 63) - 1)


def sigma_values(
    sigma: float | Sequence[float], chunks: Sequence[tuple[str, slice]]
) -> list[float]:
    """One σ per latent chunk (a single σ is every chunk's), each finite and ≥ 0."""
    if isinstance(sigma, bool):
        raise InputError("σ must be a finite number ≥ 0.")
    if isinstance(sigma, (int, float)):
        values = [float(sigma)] * len(chunks)
    else:
        try:
            values = [float(s) for s in sigma]
        except (TypeError, ValueError):
            raise InputError("σ must be a finite number ≥ 0.") from None
        if len(values) != len(chunks):
            names = ", ".join(name for name, _ in chunks)
            raise InputError(
                f"Give one σ per latent chunk ({len(chunks)}: {names}); got {len(values)}."
            )
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise InputError("σ must be a finite number ≥ 0.")
    return values


def check_walk(frames: int, keys: int, easing: str) -> None:
    """A jitter walk's frame and key counts and easing, before any latent is made."""
    if frames < 1 or keys < 1:
        raise InputError("A jitter walk needs at least one frame and one key.")
    check_frame_count(frames, "walk frames")
    ease(easing, 0.5)


def walk_path(anchors: torch.Tensor, frames: int, easing: str, loop: bool) -> torch.Tensor:
    """``frames`` latents gliding through ``anchors`` (first axis) with ``easing`` between
    neighbours, back to the first when ``loop``: a jitter walk of any latent's shape."""
    if loop:
        anchors = torch.cat([anchors, anchors[:1]])
    spans = anchors.shape[0] - 1
    if spans == 0:
        return anchors[:1].expand(frames, *anchors.shape[1:]).clone()
    out = []
    for i in range(frames):
        pos = (i / frames if loop else i / max(1, frames - 1)) * spans
        k = min(int(pos), spans - 1)
        out.append(torch.lerp(anchors[k], anchors[k + 1], ease(easing, pos - k)))
    return torch.stack(out)


def batched_job(
    batches: Callable[[], Iterator[torch.Tensor]],
    params: Sequence[dict[str, Any]],
    cancel: threading.Event | None = None,
) -> RenderJob:
    """A :class:`RenderJob` over rendered batches, one ``params`` dict per image."""

    def produce() -> Iterator[tuple[torch.Tensor, dict[str, Any]]]:
        k = 0
        for x in batches():
            for img in x:
                yield img, dict(params[k])
                k += 1

    return RenderJob(len(params), produce, cancel)


NetT = TypeVar("NetT", bound=torch.nn.Module)

#: A transfer's target: a class id, a blend {class id: weight}, or the family's own tensor
#: (a BigGAN's class embedding, a StyleGAN2's mapping label) passed through.
ClassSpec = int | Mapping[int, float] | torch.Tensor


class ResultRenderer(Generic[NetT]):
    """What the renderer of every family shares (:class:`Renderer` for a BigGAN result,
    :class:`~.manipulate_stylegan2.StyleGAN2Renderer` for a StyleGAN2 one): the checks it
    is built with and the tuned generator θ* made once, the jitter and the jitter walk,
    the class checks and bookkeeping of a category transfer, and render jobs that render
    ``batch_size`` images at a time.

    A family's renderer says what its latent is (:attr:`latent_shape`, :meth:`z_chunks`,
    :meth:`_jitter_base`), what renders a batch of latents (:meth:`_latent_inputs`) and
    how a batch renders (:meth:`_forward`)."""

    #: The params key of a jitter or walk frame's latent.
    latent_key: ClassVar[str]
    #: How a transfer whose target is a tensor is described in params and notes.
    tensor_target: ClassVar[str]

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
        self._check_family(prior, state)
        warning = state.model_warning(prior.name, prior.checksum, allow_mismatch=allow_other_model)
        self.warnings: list[str] = [warning] if warning else []
        self.prior = prior
        self.state = state
        self.batch_size = int(batch_size)
        self.generator: NetT = self._materialize()
        self.device = next(self.generator.parameters()).device

    def _check_family(self, prior: Prior, state: ReconstructionState) -> None:
        """Refuse a state this renderer cannot render (before anything is made)."""

    def _materialize(self) -> NetT:
        """θ*: the prior's generator plus the state's weight delta."""
        raise NotImplementedError

    # --- latents ---------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, ...]:
        """One latent's shape, without the batch axis: its chunks split the first axis,
        and one ε is shared along every axis but the last."""
        raise NotImplementedError

    def z_chunks(self) -> list[tuple[str, slice]]:
        """The latent's chunks along its first axis, coarse → fine."""
        raise NotImplementedError

    def _jitter_base(self, z: torch.Tensor | None) -> torch.Tensor:
        """The latent a jitter moves ([1, *latent_shape]; the state's own when None)."""
        raise NotImplementedError

    def sigma_vector(self, sigma: float | Sequence[float]) -> torch.Tensor:
        """σ along the latent's first axis ([1, latent_shape[0], 1, …]) for one σ or one
        per chunk (see :meth:`z_chunks`)."""
        first, *rest = self.latent_shape
        chunks = self.z_chunks()
        values = sigma_values(sigma, chunks)
        out = torch.zeros(1, first, *(1 for _ in rest))
        for v, (_, sl) in zip(values, chunks, strict=True):
            out[:, sl] = v
        return out

    def jitter_noise(self, index: int, seed: int = 0) -> torch.Tensor:
        """ε ~ N(0, I) of variation ``index`` ([1, 1, …, latent_shape[-1]]); the same for
        any n."""
        *shared, last = self.latent_shape
        gen = torch.Generator().manual_seed(_noise_seed(seed, index))
        return torch.randn(1, *(1 for _ in shared), last, generator=gen)

    def jitter_latents(
        self,
        n: int,
        sigma: float | Sequence[float],
        seed: int = 0,
        *,
        start: int = 0,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """latent* + σ·ε for variations ``start … start+n−1`` ([n, *latent_shape]).
        ``sigma`` is one value or one per chunk (see :meth:`z_chunks`), so coarse and fine
        layers can be jittered separately."""
        if n < 0:
            raise InputError("The number of variations cannot be negative.")
        check_frame_count(n, "variations")
        scale = self.sigma_vector(sigma)
        base = self._jitter_base(z)
        if n == 0:
            return base.new_zeros(0, *self.latent_shape)
        eps = torch.cat([self.jitter_noise(start + i, seed) for i in range(n)])
        return base + eps * scale

    def walk_latents(
        self,
        frames: int,
        sigma: float | Sequence[float],
        seed: int = 0,
        *,
        keys: int = 4,
        easing: str = "sine",
        loop: bool = True,
    ) -> torch.Tensor:
        """A smooth jitter walk: ``frames`` latents gliding through ``keys`` jittered
        latents (variations 0…keys−1 of ``seed``), back to the first when ``loop``."""
        check_walk(frames, keys, easing)
        return walk_path(self.jitter_latents(keys, sigma, seed), frames, easing, loop)

    # --- rendering ---------------------------------------------------------------------
    def _forward(self, *batch: torch.Tensor) -> torch.Tensor:
        """θ*'s images of one batch of inputs (on the device)."""
        raise NotImplementedError

    def _batches(self, *inputs: torch.Tensor) -> Iterator[torch.Tensor]:
        """The images of ``inputs`` (paired along their first axis), ``batch_size`` at a
        time, without gradients; float32 on the CPU."""
        for i in range(0, inputs[0].shape[0], self.batch_size):
            with torch.no_grad():
                x = self._forward(*(t[i : i + self.batch_size].to(self.device) for t in inputs))
            yield x.float().cpu()

    def _job(
        self,
        inputs: tuple[torch.Tensor, ...],
        params: Sequence[dict[str, Any]],
        cancel: threading.Event | None,
    ) -> RenderJob:
        """A :class:`RenderJob` over checked ``inputs``, one ``params`` dict per image."""
        if len(params) != inputs[0].shape[0]:
            raise InputError("Give one params dict per image.")
        return batched_job(lambda: self._batches(*inputs), params, cancel)

    def _latent_inputs(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The checked inputs that render ``latents`` with the result's class."""
        raise NotImplementedError

    def jitter(
        self,
        n: int,
        sigma: float | Sequence[float],
        seed: int = 0,
        *,
        start: int = 0,
        cancel: threading.Event | None = None,
    ) -> RenderJob:
        """``n`` variations of the result: latent* + σ·ε_i rendered through θ* (with the
        state's class embedding for a BigGAN)."""
        latents = self.jitter_latents(n, sigma, seed, start=start)
        sig = float(sigma) if isinstance(sigma, (int, float)) else [float(s) for s in sigma]
        params = [
            {
                "kind": "jitter",
                "variation": start + i,
                "seed": seed,
                "sigma": sig,
                self.latent_key: latents[i : i + 1],
            }
            for i in range(n)
        ]
        return self._job(self._latent_inputs(latents), params, cancel)

    def jitter_walk(
        self,
        frames: int,
        sigma: float | Sequence[float],
        seed: int = 0,
        *,
        keys: int = 4,
        easing: str = "sine",
        loop: bool = True,
        cancel: threading.Event | None = None,
    ) -> RenderJob:
        """The frames of :meth:`walk_latents` (an animation that loops when ``loop``)."""
        latents = self.walk_latents(frames, sigma, seed, keys=keys, easing=easing, loop=loop)
        params = [
            {"kind": "walk", "frame": i, "seed": seed, self.latent_key: latents[i : i + 1]}
            for i in range(frames)
        ]
        return self._job(self._latent_inputs(latents), params, cancel)

    # --- classes -----------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        raise NotImplementedError

    def _check_class(self, c: Any) -> int:
        if (
            isinstance(c, bool)
            or not isinstance(c, (int, np.integer))
            or not 0 <= int(c) < self.n_classes
        ):
            raise InputError(
                f"Class id {c!r} is out of range: this model has classes 0..{self.n_classes - 1}."
            )
        return int(c)

    def _blend(self, spec: Mapping[int, float]) -> tuple[list[int], torch.Tensor]:
        """The class ids of a blend {class id: weight} and their weights normalised to
        sum 1."""
        if not spec:
            raise InputError("A class blend needs at least one class.")
        ids = [self._check_class(c) for c in spec]
        w = torch.tensor([float(v) for v in spec.values()])
        if not torch.isfinite(w).all() or (w < 0).any() or float(w.sum()) <= 0:
            raise InputError("Class blend weights must be ≥ 0 and not all zero.")
        return ids, w / w.sum()

    @staticmethod
    def _transfer_amounts(
        targets: Sequence[ClassSpec], amount: float | Sequence[float]
    ) -> list[float]:
        """One transfer amount per target (one value is every target's)."""
        amounts = (
            [float(amount)] * len(targets)
            if isinstance(amount, (int, float))
            else [float(a) for a in amount]
        )
        if len(amounts) != len(targets):
            raise InputError("Give one transfer amount per target class.")
        return amounts

    def _describe(self, t: ClassSpec) -> Any:
        """A transfer target as its params and notes record it."""
        if isinstance(t, Mapping):
            return {int(k): float(v) for k, v in t.items()}
        if isinstance(t, torch.Tensor):
            return self.tensor_target
        return int(t)

    def _transfer_record(self, target: ClassSpec, amount: float) -> tuple[int | None, str]:
        """The class id a transferred state takes (the target's once the move is at least
        half way; None keeps the own) and the note its task records."""
        cid = int(target) if isinstance(target, int) and float(amount) >= 0.5 else None
        return cid, f"class {self._describe(target)} ×{float(amount):.2f}"

    def _noted_task(self, note: str) -> dict[str, Any]:
        """The state's task record, noting the manipulation that made a new state."""
        task = dict(self.state.task)
        if note:
            task["manipulation"] = note
        return task


class Renderer(ResultRenderer[Generator]):
    """Renders from one reconstruction state without re-running the reconstruction.

    The fine-tuned generator θ* is made once (base + delta, spectral norms cached);
    every call renders batches of ``batch_size`` through it.  A state restored with other
    weights than ``prior``'s is refused (:class:`~dgp_engine.errors.ModelMismatchError`)
    unless ``allow_other_model``; ``warnings`` then says so (and that a state without a
    model checksum cannot be checked), for the caller to show."""

    latent_key = "z"
    tensor_target = "embedding"

    def _materialize(self) -> Generator:
        return self.state.materialize(self.prior.G)

    # --- latents ---------------------------------------------------------------------
    @property
    def dim_z(self) -> int:
        return self.generator.dim_z

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.dim_z,)

    def z_chunks(self) -> list[tuple[str, slice]]:
        """The latent's chunks, coarse → fine: ("input", …), ("block 1", …), …
        A non-hierarchical model has one chunk that feeds every layer."""
        return z_chunks(self.generator)

    def _jitter_base(self, z: torch.Tensor | None) -> torch.Tensor:
        return (self.state.z if z is None else z).reshape(1, -1).float().cpu()

    # --- class embeddings ------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return self.prior.G.shared.num_embeddings

    def class_embedding(self, spec: ClassSpec) -> torch.Tensor:
        """e(y) for a class id, a blend {class id: weight} (weights normalised to sum 1),
        or an embedding tensor passed through; [1, shared_dim] on the CPU."""
        table = self.prior.G.shared.weight.detach().float().cpu()
        if isinstance(spec, torch.Tensor):
            e = spec.detach().float().cpu().reshape(1, -1)
            if e.shape[1] != table.shape[1]:
                raise InputError(
                    f"A class embedding has {table.shape[1]} values; got {e.shape[1]}."
                )
            return e
        if isinstance(spec, Mapping):
            ids, weights = self._blend(spec)
            return (weights.unsqueeze(1) * table[ids]).sum(0, keepdim=True)
        return table[self._check_class(spec)].unsqueeze(0).clone()

    def transfer_embedding(self, target: ClassSpec, amount: float = 1.0) -> torch.Tensor:
        """The state's own embedding moved ``amount`` of the way (0 = own, 1 = target)
        to the target class embedding (category transfer, docs/method.md#manipulation)."""
        if not math.isfinite(float(amount)):
            raise InputError("The transfer amount must be a finite number.")
        own = self.state.embedding.detach().float().cpu().reshape(1, -1)
        return torch.lerp(own, self.class_embedding(target), float(amount))

    # --- rendering ---------------------------------------------------------------------
    def render(
        self, z: torch.Tensor | None = None, embedding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """G(z, e; θ*) for [N, dim_z] latents and [1 or N, shared_dim] embeddings (the
        state's own when not given); [N, 3, R, R] on the CPU, batched."""
        return torch.cat(list(self._batches(*self._inputs(z, embedding))))

    def _inputs(
        self, z: torch.Tensor | None, embedding: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = (self.state.z if z is None else z).float().cpu()
        z = z.reshape(-1, z.shape[-1])
        e = (self.state.embedding if embedding is None else embedding).float().cpu()
        e = e.reshape(-1, e.shape[-1])
        if z.shape[1] != self.dim_z:
            raise InputError(f"A latent of this model has {self.dim_z} values; got {z.shape[1]}.")
        if e.shape[1] != self.generator.shared.embedding_dim:
            raise InputError(
                f"A class embedding of this model has "
                f"{self.generator.shared.embedding_dim} values; got {e.shape[1]}."
            )
        n = max(z.shape[0], e.shape[0])
        if z.shape[0] not in (1, n) or e.shape[0] not in (1, n):
            raise InputError(f"{z.shape[0]} latents and {e.shape[0]} embeddings do not pair up.")
        return z.expand(n, -1), e.expand(n, -1)

    def _forward(self, *batch: torch.Tensor) -> torch.Tensor:
        z, e = batch
        image: torch.Tensor = self.generator(z, e, use_in=self.state.use_in)
        return image

    def job(
        self,
        z: torch.Tensor,
        embedding: torch.Tensor,
        params: Sequence[dict[str, Any]],
        cancel: threading.Event | None = None,
    ) -> RenderJob:
        """A :class:`RenderJob` over paired latents/embeddings, one ``params`` dict each."""
        return self._job(self._inputs(z, embedding), params, cancel)

    def _latent_inputs(self, latents: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._inputs(latents, self.state.embedding)

    def transfer(
        self,
        targets: Sequence[ClassSpec],
        amount: float | Sequence[float] = 1.0,
        *,
        z: torch.Tensor | None = None,
        cancel: threading.Event | None = None,
    ) -> RenderJob:
        """Category transfer G(z*, e′; θ*) for each target class (or blend), moved
        ``amount`` of the way from the state's own embedding (one value or one each)."""
        amounts = self._transfer_amounts(targets, amount)
        es = [self.transfer_embedding(t, a) for t, a in zip(targets, amounts, strict=True)]
        e = torch.cat(es) if es else torch.zeros(0, self.generator.shared.embedding_dim)
        zz = (self.state.z if z is None else z).reshape(1, -1).expand(max(1, len(es)), -1)
        params = [
            {"kind": "transfer", "target": self._describe(t), "amount": a, "embedding": es[i]}
            for i, (t, a) in enumerate(zip(targets, amounts, strict=True))
        ]
        if not es:
            return RenderJob(0, lambda: iter(()), cancel)
        return self.job(zz, e, params, cancel)

    def transfer_state(self, target: ClassSpec, amount: float = 1.0) -> ReconstructionState:
        """The state of a category transfer (to adopt it): the moved embedding, and the
        target's class id once the move is at least half way."""
        e = self.transfer_embedding(target, amount)
        cid, note = self._transfer_record(target, amount)
        return self.state_with(embedding=e, class_id=cid, note=note)

    def state_with(
        self,
        *,
        z: torch.Tensor | None = None,
        embedding: torch.Tensor | None = None,
        class_id: int | None = None,
        note: str = "",
    ) -> ReconstructionState:
        """A new state sharing θ* with another latent/embedding (to adopt a variation or a
        transferred class as the current result)."""
        s = self.state
        task = self._noted_task(note)
        return dataclasses.replace(
            s,
            z=(s.z if z is None else z.detach().float().cpu().reshape(1, -1)).clone(),
            embedding=(
                s.embedding
                if embedding is None
                else embedding.detach().float().cpu().reshape(1, -1)
            ).clone(),
            class_id=s.class_id if class_id is None else self._check_class(class_id),
            task=task,
            created=time.time(),
        )


def z_chunks(G: Generator) -> list[tuple[str, slice]]:
    if not G.cfg.hier:
        return [("all layers", slice(0, G.dim_z))]
    c = G.z_chunk_size
    return [
        ("input" if i == 0 else f"block {i}", slice(i * c, (i + 1) * c))
        for i in range(G.dim_z // c)
    ]


# --------------------------------------------------------------------------- morph


def keyframe_labels(n: int, names: Sequence[str] | None = None) -> list[str]:
    """Names used in messages: the given ones, else A, B, C…"""
    if names:
        return [str(x) for x in names]
    return [chr(ord("A") + i) if i < 26 else f"keyframe {i + 1}" for i in range(n)]


def check_morphable(
    states: Sequence[ReconstructionState], names: Sequence[str] | None = None
) -> None:
    """Raise StateError saying why these states cannot be blended (different base
    model, weights, latent sizes or normalisation)."""
    if len(states) < 2:
        raise InputError("A morph needs at least two keyframes.")
    names = keyframe_labels(len(states), names)
    why = (
        "Morphing blends the two fine-tuned generators weight by weight, so every "
        "keyframe must be restored with the same base model"
    )
    a, na = states[0], names[0]
    for b, nb in zip(states[1:], names[1:], strict=True):
        ma, mb = a.model or {}, b.model or {}
        if ma.get("name") and mb.get("name") and ma["name"] != mb["name"]:
            raise StateError(
                f"Cannot morph {na} and {nb}: {na} was restored with the model "
                f"{ma['name']!r} and {nb} with {mb['name']!r}. {why}; restore "
                f"{nb} again with {ma['name']!r}."
            )
        if ma.get("config") and mb.get("config") and ma["config"] != mb["config"]:
            diff = sorted(
                k
                for k in set(ma["config"]) | set(mb["config"])
                if ma["config"].get(k) != mb["config"].get(k)
            )
            raise StateError(
                f"Cannot morph {na} and {nb}: their models have different "
                f"settings ({', '.join(diff)}). {why}."
            )
        if ma.get("checksum") and mb.get("checksum") and ma["checksum"] != mb["checksum"]:
            raise StateError(
                f"Cannot morph {na} and {nb}: both name the model "
                f"{ma.get('name', '?')!r} but with different weights (checksums "
                f"differ). {why}."
            )
        if a.z.shape[-1] != b.z.shape[-1] or a.embedding.shape[-1] != b.embedding.shape[-1]:
            raise StateError(
                f"Cannot morph {na} and {nb}: their latents or class embeddings "
                f"have different sizes. {why}."
            )
        if bool(a.use_in) != bool(b.use_in):
            ins, bn = (na, nb) if a.use_in else (nb, na)
            raise StateError(
                f"Cannot morph {na} and {nb}: {ins} was restored with instance "
                f"normalisation (e.g. the inpainting preset) and {bn} without, so "
                "their generators normalise differently. Restore both with presets "
                "that agree (the morphing preset uses neither)."
            )


class KeyframeBlend(Generic[NetT]):
    """What every family's morph shares: each keyframe's full weights (base + delta)
    kept, blended into one working copy of the base network per position (the last
    blend is reused), positions ``t`` in [0, 1] along evenly spaced keyframes with an
    easing per segment, and render jobs that render a repeated position once.

    Keyframes restored with other weights than ``prior``'s are refused unless
    ``allow_other_model`` (``warnings`` then says so, as :class:`ResultRenderer`'s).

    A family's morph says which network it blends (:meth:`_base`), whether a keyframe
    fits it (:meth:`_check_fits`), what a keyframe's latents are (:meth:`_latents_of`;
    they are blended as the weights are), how a loaded blend renders them (:meth:`_frame`)
    and what a blend needs before it renders (:meth:`_prepared`)."""

    #: Weights a blend's state leaves out of its weight delta.
    delta_skip: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        prior: Prior,
        keyframes: Sequence[ReconstructionState],
        *,
        names: Sequence[str] | None = None,
        easing: str = "linear",
        allow_other_model: bool = False,
    ):
        self.prior = prior
        self.warnings = self._checked_keyframes(keyframes, names, allow_other_model)
        ease(easing, 0.5)  # validate the name early
        self.keyframes = list(keyframes)
        self.easing = easing
        base = self._base()
        sd = base.state_dict()
        self._float_keys = [k for k, v in sd.items() if v.is_floating_point()]
        self._thetas: list[dict[str, torch.Tensor]] = []
        for s in keyframes:
            theta = {}
            for k in self._float_keys:
                v = sd[k].detach().clone()
                if k in s.weight_delta:
                    v.add_(s.weight_delta[k].to(v.device, v.dtype))  # as materialize() does
                theta[k] = v
            self._thetas.append(theta)
        self._work: NetT = copy.deepcopy(base).eval()
        for p in self._work.parameters():
            p.requires_grad_(False)
        self._work_sd = self._work.state_dict()
        self.device = next(self._work.parameters()).device
        self._loaded: tuple[int, float] | None = None
        self._latents = [self._latents_of(s) for s in keyframes]

    def _base(self) -> NetT:
        """The prior's network the keyframes' weight deltas apply to."""
        raise NotImplementedError

    def _check_fits(self, label: str, state: ReconstructionState) -> None:
        """Refuse (StateError) keyframe ``label`` when it does not fit the prior."""
        raise NotImplementedError

    def _latents_of(self, state: ReconstructionState) -> tuple[torch.Tensor, ...]:
        """A keyframe's latents, as blended (on the CPU)."""
        raise NotImplementedError

    def _checked_keyframes(
        self,
        keyframes: Sequence[ReconstructionState],
        names: Sequence[str] | None,
        allow_other_model: bool,
    ) -> list[str]:
        """Every family's keyframe checks: morphable together, each fits the prior, each
        restored with the prior's weights unless ``allow_other_model``.  Returns the
        warnings for the keyframes allowed."""
        check_morphable(keyframes, names)
        warnings = []
        for label, s in zip(keyframe_labels(len(keyframes), names), keyframes, strict=True):
            self._check_fits(label, s)
            warning = s.model_warning(
                self.prior.name,
                self.prior.checksum,
                label=f"Keyframe {label}",
                allow_mismatch=allow_other_model,
            )
            if warning:
                warnings.append(warning)
        return warnings

    @property
    def segments(self) -> int:
        return len(self.keyframes) - 1

    def locate(self, t: float) -> tuple[int, float]:
        """(segment, eased local position u) for the position ``t`` in [0, 1]."""
        if not math.isfinite(float(t)):
            raise InputError("The morph position must be a finite number in [0, 1].")
        s = min(1.0, max(0.0, float(t))) * self.segments
        k = min(int(math.floor(s)), self.segments - 1)
        return k, ease(self.easing, s - k)

    def _load(self, k: int, u: float) -> None:
        if self._loaded == (k, u):
            return
        a, b = self._thetas[k], self._thetas[k + 1]
        with torch.no_grad():
            for key in self._float_keys:
                torch.lerp(a[key], b[key], u, out=self._work_sd[key])
        self._prepared()
        self._loaded = (k, u)

    def _prepared(self) -> None:
        """Called after a blend is loaded into the working network."""

    def _latents_at(self, t: float) -> tuple[torch.Tensor, ...]:
        """The keyframes' latents blended at position ``t``."""
        k, u = self.locate(t)
        return tuple(
            torch.lerp(a, b, u) for a, b in zip(self._latents[k], self._latents[k + 1], strict=True)
        )

    def _frame(self, t: float) -> torch.Tensor:
        """The working network's image at ``t`` (its blend loaded), on the device."""
        raise NotImplementedError

    def at(self, t: float) -> torch.Tensor:
        """The frame at position ``t``: [1, 3, R, R] on the CPU."""
        k, u = self.locate(t)
        self._load(k, u)
        with torch.no_grad():
            image = self._frame(t)
        return image.cpu()

    def render(
        self, times: Sequence[float], cancel: threading.Event | None = None, *, keep: bool = True
    ) -> RenderJob:
        """A job rendering the frame at each position (repeated positions, e.g. held
        frames and the way back of a ping-pong, are rendered once and kept only until
        their last use).  ``keep=False`` when streaming a long export to a file."""
        times = [float(t) for t in times]

        def produce() -> Iterator[tuple[torch.Tensor, dict[str, Any]]]:
            uses = Counter(times)
            cache: dict[float, torch.Tensor] = {}
            for t in times:
                image = cache[t] if t in cache else self.at(t)[0]
                uses[t] -= 1
                if uses[t]:
                    cache[t] = image
                else:
                    cache.pop(t, None)
                k, u = self.locate(t)
                yield image, {"kind": "morph", "t": t, "segment": k, "u": u}

        return RenderJob(len(times), produce, cancel, keep)

    def _state_latents(self, t: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A blended state's ``z`` at ``t`` (a StyleGAN2's w+) and its class embedding
        (None: the nearer keyframe's)."""
        raise NotImplementedError

    def state_at(self, t: float) -> ReconstructionState:
        """A state for the blend at ``t`` (latents and weights), to adopt or save; its
        class (and a StyleGAN2 result's starting z) are the nearer keyframe's."""
        near, delta, task = self._blend_delta(t)
        z, embedding = self._state_latents(t)
        return dataclasses.replace(
            near,
            z=z,
            embedding=near.embedding if embedding is None else embedding,
            weight_delta=delta,
            task=task,
            created=time.time(),
        )

    def _blend_delta(
        self, t: float
    ) -> tuple[ReconstructionState, dict[str, torch.Tensor], dict[str, Any]]:
        """For a state at ``t``: the nearer keyframe, the blend's weight delta from the
        prior's network (:attr:`delta_skip` left out) and the task record noting the morph."""
        base = self._base().state_dict()
        k, u = self.locate(t)
        self._load(k, u)
        delta = {}
        for key in self._float_keys:
            if key in self.delta_skip:
                continue
            d = (self._work_sd[key] - base[key]).float().cpu()
            if torch.count_nonzero(d):
                delta[key] = d
        near = self.keyframes[k if u < 0.5 else k + 1]
        task = dict(near.task)
        task["manipulation"] = f"morph t={t:.4g}"
        return near, delta, task


class Morph(KeyframeBlend[Generator]):
    """Renders the blend of two or more keyframe states (docs/method.md#manipulation),
    weights included.

    ``t`` in [0, 1] runs along the keyframes (t = 0: first, t = 1: last; keyframes
    evenly spaced).  Every generator weight and buffer, z and the class embedding are
    interpolated; ``at(0)``/``at(1)`` equal each end state's own :func:`render`.
    Keyframes restored with other weights than ``prior``'s are refused unless
    ``allow_other_model`` (see :class:`Renderer`; ``warnings`` as there)."""

    # the shared class embedding table is not tuned: a state records its own embedding
    delta_skip = frozenset({"shared.weight"})

    def _base(self) -> Generator:
        return self.prior.G

    def _check_fits(self, label: str, state: ReconstructionState) -> None:
        try:
            state.check_fits(self.prior.G)
        except StateError as exc:
            raise StateError(f"{label}: {exc}") from exc

    @property
    def use_in(self) -> bool:
        """The keyframes' generators normalise with instance norm (they all agree)."""
        return bool(self.keyframes[0].use_in)

    def _latents_of(self, state: ReconstructionState) -> tuple[torch.Tensor, ...]:
        return (
            state.z.detach().float().cpu().reshape(1, -1),
            state.embedding.detach().float().cpu().reshape(1, -1),
        )

    def latent_at(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        z, e = self._latents_at(t)
        return z, e

    def _prepared(self) -> None:
        mark_in_initialized(self._work, self.use_in)
        freeze_sn(self._work)

    def _frame(self, t: float) -> torch.Tensor:
        z, e = self.latent_at(t)
        image: torch.Tensor = self._work(z.to(self.device), e.to(self.device), use_in=self.use_in)
        return image

    def _state_latents(self, t: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        z, e = self.latent_at(t)
        return z.clone(), e.clone()


#: The most frames (or variations) one render makes: 100,000 frames is 69 minutes at 24 fps.
#: Their latents and frame times are made up front: a 10⁹-frame morph once filled 24 GB
#: before its first frame and was killed.
MAX_FRAMES = 100_000


def check_frame_count(n: int, what: str = "frames") -> int:
    """``n`` when a render may make that many ``what``; InputError above :data:`MAX_FRAMES`."""
    if int(n) > MAX_FRAMES:
        raise InputError(
            f"{int(n):,} {what} are more than the {MAX_FRAMES:,} one render makes: ask for fewer."
        )
    return int(n)


@dataclass(frozen=True)
class MorphTimeline:
    """How a morph animation is laid out in time (plain data, saved in projects).

    ``frames`` spans the whole path from the first keyframe to the last, both ends
    included; ``hold_start``/``hold_end`` add that many extra frames on the ends;
    ``pingpong`` plays the path back (without repeating the end frames) so the
    animation loops smoothly."""

    frames: int = 48
    fps: float = 24.0
    easing: str = "ease-in-out"
    hold_start: int = 0
    hold_end: int = 0
    pingpong: bool = False

    def __post_init__(self) -> None:
        if int(self.frames) < 2:
            raise InputError("A morph needs at least 2 frames.")
        if not (math.isfinite(float(self.fps)) and 0 < float(self.fps) <= 240):
            raise InputError("fps must be between 0 and 240.")
        if int(self.hold_start) < 0 or int(self.hold_end) < 0:
            raise InputError("Hold frames cannot be negative.")
        n = int(self.frames)
        check_frame_count(
            n + int(self.hold_start) + int(self.hold_end) + (n - 2 if self.pingpong else 0),
            "morph frames",
        )
        ease(self.easing, 0.5)

    def path(self) -> list[float]:
        """Linear positions of the transition frames (easing is applied per segment by
        :class:`Morph`)."""
        n = int(self.frames)
        return [i / (n - 1) for i in range(n)]

    def times(self) -> list[float]:
        """Every frame's position, holds and ping-pong included."""
        path = self.path()
        forward = [0.0] * int(self.hold_start) + path + [1.0] * int(self.hold_end)
        if self.pingpong:
            return forward + path[-2:0:-1]
        return forward

    @property
    def frame_count(self) -> int:
        return len(self.times())

    @property
    def duration(self) -> float:
        return self.frame_count / float(self.fps)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MorphTimeline:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def morph_frames(
    prior: Prior,
    keyframes: Sequence[ReconstructionState],
    timeline: MorphTimeline,
    cancel: threading.Event | None = None,
    *,
    keep: bool = True,
    allow_other_model: bool = False,
) -> RenderJob:
    """The frames of a morph animation laid out by ``timeline``."""
    return Morph(
        prior, keyframes, easing=timeline.easing, allow_other_model=allow_other_model
    ).render(timeline.times(), cancel, keep=keep)

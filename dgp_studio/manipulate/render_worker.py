"""Manipulation rendering: the engine's render jobs (jitter, category transfer, morph
frames, animation export) as generator jobs on the panel's worker lane
(:mod:`..thread_worker`, the same worker the editor's runs use), sending frames back
as uint8 arrays, never tensors.

Requests are plain dataclasses; :class:`RenderThread` (GUI thread) turns each into a
:class:`~..jobs.Job` whose generator :meth:`Renderers.handle` runs in the lane's
thread.  Live requests (slider drags) coalesce: a newer request of the same channel
cancels the queued and the running one of that channel, so the preview follows the
slider instead of a backlog.  Each request carries a generation number that comes
back with its frames, so the GUI drops late frames of superseded requests."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from dgp_engine import DGPError, Prior
from dgp_engine.errors import ExportCancelled, ExportError
from dgp_engine.files.animation import (
    AnimationExport,
    ExportProgress,
    export_size,
    grid,
    resize_frame,
    save_image,
)
from dgp_engine.method.manipulate import MorphTimeline, RenderJob
from dgp_engine.method.manipulators import AnyMorph, AnyRenderer, morph_for, renderer_for
from dgp_engine.method.pictures import signed_to_uint8
from dgp_engine.method.state import ReconstructionState
from dgp_engine.tasks.postprocess import PhotoComposer

from ..jobs import Job, JobProgress, JobState
from ..thread_worker import GeneratorWorker, WorkerLane, describe_error
from .export_plan import ExportPlan

log = logging.getLogger(__name__)

#: Which latent chunks a jitter moves: all, the coarse half (layout, pose) or the
#: fine half (texture, detail) of a hierarchical BigGAN's z chunks or of a StyleGAN2's
#: synthesis blocks (the layers of w+).
LAYERS = {"all": "All layers", "coarse": "Coarse layers (shape)", "fine": "Fine layers (detail)"}

#: The largest grid picture written (as ``dgp jitter``: more takes over 800 MB to write).
MAX_GRID_SIDE = 16384

#: Channels whose newer request supersedes the pending and running one.
LIVE_CHANNELS = frozenset({"result", "jitter", "transfer", "scrub", "play"})


# --------------------------------------------------------------------------- requests


@dataclass
class Request:
    channel: str = field(init=False, default="")
    generation: int = field(init=False, default=0)
    # model output → the photo with it composed in (numpy only, thread-safe): applied here,
    # in the render thread, so the UI thread never composes (a whole-photo colour
    # transfer of a large picture takes a second)
    composite: Callable[[np.ndarray], np.ndarray] | None = field(
        init=False, default=None, repr=False
    )


@dataclass
class RenderResult(Request):
    """The current result as it is (G(z*, e*; θ*))."""

    prior: Prior
    state: ReconstructionState

    def __post_init__(self) -> None:
        self.channel = "result"


@dataclass
class RenderThumbnail(Request):
    """A keyframe's picture for its thumbnail; not live: each keyframe gets its own."""

    prior: Prior
    state: ReconstructionState

    def __post_init__(self) -> None:
        self.channel = "thumb"


@dataclass
class RenderJitter(Request):
    prior: Prior
    state: ReconstructionState
    count: int
    sigma: float
    seed: int
    layers: str = "all"  # "all", "coarse" or "fine" latent chunks (see LAYERS)

    def __post_init__(self) -> None:
        self.channel = "jitter"


@dataclass
class RenderTransfer(Request):
    prior: Prior
    state: ReconstructionState
    target: int | dict[int, float]
    amount: float

    def __post_init__(self) -> None:
        self.channel = "transfer"


@dataclass
class RenderMorphAt(Request):
    prior: Prior
    keyframes: list[ReconstructionState]
    names: list[str]
    easing: str
    t: float

    def __post_init__(self) -> None:
        self.channel = "scrub"


@dataclass
class RenderMorphTimeline(Request):
    prior: Prior
    keyframes: list[ReconstructionState]
    names: list[str]
    timeline: MorphTimeline

    def __post_init__(self) -> None:
        self.channel = "play"


@dataclass
class Adopt(Request):
    """Make a state of a variation (``kind="jitter"``), a transfer or a morph position."""

    prior: Prior
    kind: str
    params: dict[str, Any]
    state: ReconstructionState | None = None
    keyframes: list[ReconstructionState] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    easing: str = "linear"

    def __post_init__(self) -> None:
        self.channel = "adopt"


@dataclass
class LoadState(Request):
    path: str
    name: str = ""

    def __post_init__(self) -> None:
        self.channel = "load"


@dataclass
class ExportAnimation(Request):
    """Export the morph (``source="morph"``), a looping jitter walk (``"walk"``), a category
    sweep from the result to ``target`` (``"sweep"``) or the jitter variations as one
    grid picture (``"grid"``).  With ``plan`` composable and ``composed`` every frame goes
    into the photo by the engine's PhotoComposer (``plan.pixels`` is a snapshot: the
    editor may change its picture meanwhile)."""

    prior: Prior
    path: str
    source: str = "morph"
    keyframes: list[ReconstructionState] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    timeline: MorphTimeline = field(default_factory=MorphTimeline)
    state: ReconstructionState | None = None
    sigma: float = 0.3
    seed: int = 0
    format: str | None = None
    scale: float = 1.0
    size: tuple[int, int] | None = None
    plan: ExportPlan | None = None
    composed: bool = False
    max_side: int | None = None
    even: str = "pad"
    target: int = 0  # the sweep's class
    amount: float = 1.0  # how far the sweep goes towards it
    count: int = 8  # the grid's variations
    layers: str = "all"  # the grid's jittered layers (see LAYERS)
    replace_frames: bool = False  # the user agreed to replace a folder's frame_*.png

    def __post_init__(self) -> None:
        self.channel = "export"


# --------------------------------------------------------------------------- replies


@dataclass
class RenderedFrame:
    channel: str
    generation: int
    index: int
    total: int
    image: np.ndarray  # H×W×3 uint8
    params: dict[str, Any]  # tensors left out
    elapsed: float
    shown: np.ndarray | None = None  # ``image`` composed into the photo (when asked)


@dataclass
class JobEnded:
    channel: str
    generation: int
    cancelled: bool
    elapsed: float
    frames: int


@dataclass
class StateReady:
    """A state made by an adopt request, or loaded from a file."""

    channel: str  # "adopt" or "load"
    state: ReconstructionState
    info: dict[str, Any]


def sigma_for_layers(renderer: AnyRenderer, sigma: float, layers: str) -> float | list[float]:
    """σ for every latent chunk, or only the coarse/fine half of them."""
    if layers == "all":
        return float(sigma)
    n = len(renderer.z_chunks())
    if n < 2:
        return float(sigma)  # one chunk feeds every layer: nothing to split
    half = (n + 1) // 2
    coarse = [float(sigma)] * half + [0.0] * (n - half)
    return coarse if layers == "coarse" else [float(sigma) - c for c in coarse]


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not hasattr(v, "detach")}


def render_error(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "Out of memory: try fewer variations or a smaller size."
    if isinstance(exc, DGPError):
        return str(exc)
    return describe_error(exc, "rendering")


def _shown(request: Request, image: np.ndarray) -> np.ndarray | None:
    return request.composite(image) if request.composite is not None else None


class Renderers:
    """The render lane's caches (the renderer of the current result, the morph of the
    current keyframes) and its generator functions, run in the lane's thread."""

    def __init__(self, threads: int | None = None, batch_size: int = 1) -> None:
        self.threads = threads
        # One image per batch: the variations grid fills in one by one and a slider
        # move cancels a running jitter after at most one image.
        self.batch_size = batch_size
        self._configured = False
        self._renderer_key: tuple[int, int] | None = None
        self._renderer: AnyRenderer | None = None
        self._keep: tuple[object, ...] = ()  # keeps cache keys' objects alive (ids)
        self._morph_key: tuple[object, ...] | None = None
        self._morph: AnyMorph | None = None
        self._morph_keep: tuple[object, ...] = ()

    def _configure(self) -> None:
        if not self._configured:
            from dgp_engine.system import runtime

            runtime.set_threads(self.threads)
            self._configured = True

    # The prior is only read here and by the editor's runs (a run trains its own copy
    # of G), so requests carry the loaded prior itself.
    def renderer(self, prior: Prior, state: ReconstructionState) -> AnyRenderer:
        key = (id(prior), id(state))
        if self._renderer_key != key:
            self._renderer = None
            # other weights than the state's: the panel has warned (ManipulatePanel.
            # _warn_other_model), the app renders them anyway
            self._renderer = renderer_for(  # BigGAN or StyleGAN2, as the state is
                prior, state, batch_size=self.batch_size, allow_other_model=True
            )
            self._renderer_key, self._keep = key, (prior, state)
        assert self._renderer is not None
        return self._renderer

    def morph(
        self,
        prior: Prior,
        keyframes: Sequence[ReconstructionState],
        names: Sequence[str],
        easing: str,
    ) -> AnyMorph:
        key = (id(prior), tuple(id(s) for s in keyframes), tuple(names))
        if self._morph_key != key:
            self._morph = None
            self._morph = morph_for(
                prior, keyframes, names=names, easing=easing, allow_other_model=True
            )  # warned by the panel
            self._morph_key, self._morph_keep = key, (prior, tuple(keyframes))
        assert self._morph is not None
        self._morph.easing = easing  # its blend cache is keyed by the eased position
        return self._morph

    def _stream(self, request: Request, job: RenderJob) -> Iterator[object]:
        for f in job:
            image = f.to_uint8()
            yield RenderedFrame(
                request.channel,
                request.generation,
                f.index,
                f.total,
                image,
                _plain(f.params),
                f.elapsed,
                _shown(request, image),
            )
        yield JobEnded(
            request.channel,
            request.generation,
            job.cancelled,
            job.frames[-1].elapsed if job.frames else 0.0,
            job.done,
        )

    def _single(
        self, request: Request, image: np.ndarray, t0: float, params: dict[str, Any]
    ) -> Iterator[object]:
        dt = time.perf_counter() - t0
        yield RenderedFrame(
            request.channel, request.generation, 0, 1, image, params, dt, _shown(request, image)
        )
        yield JobEnded(request.channel, request.generation, False, dt, 1)

    def handle(
        self, request: Request, cancel: threading.Event
    ) -> Generator[object, None, str | None]:
        """One request (a cooperative generator job: the engine's render jobs see
        ``cancel`` and stop after the frame they render).  Yields
        :class:`RenderedFrame`, :class:`JobEnded`, :class:`StateReady` and the export's
        progress; an export returns the written path."""
        self._configure()
        t0 = time.perf_counter()
        if isinstance(request, RenderResult):
            image = signed_to_uint8(self.renderer(request.prior, request.state).render()[0])
            yield from self._single(request, image, t0, {})
        elif isinstance(request, RenderThumbnail):
            # its own renderer: the cached one is the current result's (jitter, transfer)
            image = signed_to_uint8(renderer_for(request.prior, request.state).render()[0])
            yield from self._single(request, image, t0, {})
        elif isinstance(request, RenderJitter):
            r = self.renderer(request.prior, request.state)
            sigma = sigma_for_layers(r, request.sigma, request.layers)
            yield from self._stream(
                request, r.jitter(request.count, sigma, request.seed, cancel=cancel)
            )
        elif isinstance(request, RenderTransfer):
            r = self.renderer(request.prior, request.state)
            yield from self._stream(
                request, r.transfer([request.target], request.amount, cancel=cancel)
            )
        elif isinstance(request, RenderMorphAt):
            m = self.morph(request.prior, request.keyframes, request.names, request.easing)
            image = signed_to_uint8(m.at(request.t)[0])
            yield from self._single(request, image, t0, {"t": request.t})
        elif isinstance(request, RenderMorphTimeline):
            m = self.morph(request.prior, request.keyframes, request.names, request.timeline.easing)
            yield from self._stream(request, m.render(request.timeline.times(), cancel))
        elif isinstance(request, Adopt):
            yield self._adopt(request)
        elif isinstance(request, LoadState):
            state = ReconstructionState.load(request.path)
            name = request.name or Path(request.path).stem
            yield StateReady("load", state, {"name": name, "path": request.path})
        elif isinstance(request, ExportAnimation):
            return (yield from self._export(request, cancel))
        return None

    def _adopt(self, request: Adopt) -> StateReady:
        p = request.params
        if request.kind == "morph":
            m = self.morph(request.prior, request.keyframes, request.names, request.easing)
            state = m.state_at(float(p["t"]))
            note = f"morph t={float(p['t']):.3g}"
        else:
            assert request.state is not None
            r = self.renderer(request.prior, request.state)
            if request.kind == "jitter":
                sigma = sigma_for_layers(r, float(p["sigma"]), p.get("layers", "all"))
                z = r.jitter_latents(1, sigma, p["seed"], start=int(p["variation"]))
                note = f"jitter σ={float(p['sigma']):.3g} seed={p['seed']} #{p['variation']}"
                state = r.state_with(z=z, note=note)
            elif request.kind == "transfer":
                target, amount = p["target"], float(p["amount"])
                note = f"class {target} ×{amount:.2f}"
                state = r.transfer_state(target, amount)
            else:
                raise ValueError(f"unknown adopt kind {request.kind!r}")
        return StateReady("adopt", state, {"kind": request.kind, "note": note, **p})

    def _export(
        self, request: ExportAnimation, cancel: threading.Event
    ) -> Generator[object, None, str | None]:
        # Only the export sees ``cancel``: a render job sharing it would just stop
        # yielding, and the export would then write the frames it had as a short file.
        composer = (
            request.plan.composer()
            if request.composed and request.plan is not None and request.plan.composable
            else None
        )
        frame_size = (
            composer.size
            if composer is not None
            else (request.prior.resolution, request.prior.resolution)
        )
        # the size every frame is written at, decided (and refused over the limit unless
        # chosen) before anything is rendered, as ``dgp morph`` does
        target = export_size(
            frame_size, size=request.size, scale=request.scale, max_side=request.max_side
        )
        if request.source == "grid":
            return (yield from self._export_grid(request, composer, target, cancel))
        fps = request.timeline.fps
        if request.source == "morph":
            m = self.morph(request.prior, request.keyframes, request.names, request.timeline.easing)
            frames = m.render(request.timeline.times(), keep=False)
        else:
            assert request.state is not None
            r = self.renderer(request.prior, request.state)
            n = request.timeline.frames
            if request.source == "sweep":
                amounts = [request.amount * i / max(1, n - 1) for i in range(n)]
                frames = r.transfer([request.target] * n, amounts)
            else:
                frames = r.jitter_walk(n, request.sigma, request.seed, loop=True)
            frames.keep = False
        total = len(frames)
        stream = composer.frames(frames) if composer is not None else frames
        export = AnimationExport(
            stream,
            request.path,
            fps=fps,
            format=request.format,
            size=target,
            even=request.even,
            total=total,
            cancel=cancel,
            replace_frames=request.replace_frames,
        )
        last = 0.0
        for report in export:
            now = time.perf_counter()
            if now - last >= 0.1 or report.stage == "done":
                known = report.total  # None: frames of unknown count
                yield JobProgress(
                    None if known is None else report.done / max(1, known),
                    f"{report.done}/{known} frames"
                    if known is not None
                    else f"{report.done} frames",
                    report,
                )
                last = now
        try:
            written = export.run()  # raises ExportCancelled when it stopped early
        except ExportCancelled:
            return None  # the job ends cancelled; nothing was written
        return str(written)

    def _export_grid(
        self,
        request: ExportAnimation,
        composer: PhotoComposer | None,
        target: tuple[int, int],
        cancel: threading.Event,
    ) -> Generator[object, None, str | None]:
        """The jitter variations as one grid picture (``dgp jitter -o grid.png``)."""
        assert request.state is not None
        r = self.renderer(request.prior, request.state)
        sigma = sigma_for_layers(r, request.sigma, request.layers)
        job = r.jitter(request.count, sigma, request.seed, cancel=cancel)
        tiles = []
        t0 = time.perf_counter()
        for f in job:
            tile = composer(f) if composer is not None else f.to_uint8()
            tiles.append(resize_frame(tile, target))
            done = len(tiles)
            yield JobProgress(
                done / request.count,
                f"{done}/{request.count} variations",
                ExportProgress("frames", done, request.count, time.perf_counter() - t0),
            )
        if cancel.is_set() or len(tiles) < request.count:
            return None  # cancelled: nothing was written
        picture = grid(tiles)
        if max(picture.shape[:2]) > MAX_GRID_SIDE:
            raise ExportError(
                f"The grid would be {picture.shape[1]}×{picture.shape[0]} px: "
                "choose a smaller largest side or size, or fewer variations."
            )
        return str(save_image(picture, request.path))


_TITLES = {
    "result": "Rendering the result",
    "thumb": "Rendering a keyframe thumbnail",
    "jitter": "Rendering variations",
    "transfer": "Rendering a category transfer",
    "scrub": "Rendering a morph frame",
    "play": "Rendering the morph",
    "adopt": "Making the chosen state",
    "load": "Loading a state",
    "export": "Exporting an animation",
}


class RenderThread(QObject):
    """The panel's side of the render lane (GUI thread): turns requests into jobs and
    their yields into these signals; the GUI talks to it, never to the thread."""

    frame = Signal(RenderedFrame)
    job_ended = Signal(JobEnded)
    failed = Signal(str, str)  # channel, readable message
    # channel ("adopt"/"load"), the state, an info dict (object: a dict signal argument
    # would become a QVariantMap)
    state_ready = Signal(str, ReconstructionState, object)
    export_progress = Signal(ExportProgress)
    export_finished = Signal(str)  # the written path
    export_failed = Signal(str, bool)  # message, cancelled
    job_added = Signal(object)  # every Job (exports show in the status bar)

    def __init__(self, threads: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._generations = itertools.count(1)
        self.renderers = Renderers(threads)
        self.lane = WorkerLane("dgp-manipulate", self)
        self._requests: dict[Job, Request] = {}  # jobs until they end

    @property
    def qthread(self) -> QThread:
        """The lane's thread (not ``thread``, which would hide QObject.thread())."""
        return self.lane.qthread

    def submit(self, request: Request) -> int:
        request.generation = next(self._generations)
        if request.channel in LIVE_CHANNELS:
            self.cancel(request.channel)  # queued and running ones of this channel
        worker = GeneratorWorker(
            self.renderers.handle,
            request,
            cooperative=True,
            start_if_cancelled=request.channel == "export",
            describe=render_error,
        )
        worker.yielded.connect(self._on_value)
        worker.progress.connect(self._on_progress)
        job = Job.for_worker(worker, _TITLES.get(request.channel, "Rendering"))
        job.ended.connect(self._on_ended)
        self._requests[job] = request
        if request.channel in ("export", "play"):  # long enough for the status bar
            self.job_added.emit(job)
        self.lane.start(worker)
        return request.generation

    def cancel(self, channel: str | None = None) -> None:
        """Cancel queued and running requests of ``channel`` (all when None).  A
        cancelled export still answers (``export_failed(..., True)``); other requests
        cancelled before they started are dropped."""
        for job, request in list(self._requests.items()):
            if channel is None or request.channel == channel:
                job.cancel()

    def stop(self, timeout_ms: int = 30000) -> bool:
        self.cancel()
        return self.lane.stop(timeout_ms)

    @Slot(object)
    def _on_value(self, value: object) -> None:
        if isinstance(value, RenderedFrame):
            self.frame.emit(value)
        elif isinstance(value, JobEnded):
            self.job_ended.emit(value)
        elif isinstance(value, StateReady):
            self.state_ready.emit(value.channel, value.state, value.info)

    @Slot(object)
    def _on_progress(self, p: JobProgress) -> None:
        if isinstance(p.detail, ExportProgress):
            self.export_progress.emit(p.detail)

    @Slot(object)
    def _on_ended(self, job: Job) -> None:
        request = self._requests.pop(job, None)
        if request is None:
            return
        if request.channel == "export":
            if job.state == JobState.FINISHED and job.result:
                self.export_finished.emit(str(job.result))
            elif job.state == JobState.FAILED:
                self.export_failed.emit(job.error, False)
            else:
                self.export_failed.emit("Export cancelled.", True)
        elif job.state == JobState.FAILED:
            self.failed.emit(request.channel, job.error)

"""``dgp jitter``, ``dgp transfer``, ``dgp morph``: manipulate saved reconstruction states."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports torch and the engine only when a command runs
    import torch

    from ..method.manipulate import RenderJob
    from ..method.state import ReconstructionState
    from ..priors.load import Prior

_EASINGS = ["linear", "ease-in", "ease-out", "ease-in-out", "cubic", "sine", "smoothstep",
            "smootherstep"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "jitter", help="render random variations of a result (latent jitter) as a grid",
        description="Render N variations G(z* + σ·ε; θ*) of a saved reconstruction state and "
                    "save them as one grid picture (docs/method.md#manipulation).")
    p.add_argument("state", type=Path, help="a saved reconstruction state (.dgp)")
    p.add_argument("-n", "--count", type=int, default=16, help="variations (default 16)")
    p.add_argument("--sigma", default="0.5",
                   help="jitter strength σ (default 0.5); or one value per latent chunk, "
                        "coarse to fine, comma-separated (e.g. 0,0,0.7,0.7)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--cols", type=int, help="grid columns (default √n)")
    p.add_argument("--walk", type=int, metavar="FRAMES",
                   help="instead of a grid, export a looping jitter walk of FRAMES frames "
                        "through n variations (-o .gif, .png, .webp, .mp4, .webm or a folder)")
    p.add_argument("--fps", type=float, default=24.0, help="walk frames per second (default 24)")
    _common(p, grid=True)
    p.set_defaults(func=run_jitter)

    p = subparsers.add_parser(
        "transfer", help="render a result with another class (category transfer)",
        description="Render G(z*, e(y′); θ*) for another class y′ of a saved state; with "
                    "--amount below 1 the class embedding is interpolated towards y′.")
    p.add_argument("state", type=Path, help="a saved reconstruction state (.dgp)")
    p.add_argument("--class", dest="classes", action="append", required=True, metavar="NAME",
                   help="target class name or id; repeat for a grid of several classes")
    p.add_argument("--amount", type=float, default=1.0,
                   help="how far to move the class embedding: 0 = own class, 1 = target "
                        "(default 1)")
    p.add_argument("--cols", type=int, help="grid columns when several classes are given")
    _common(p, grid=True)
    p.set_defaults(func=run_transfer)

    p = subparsers.add_parser(
        "morph", help="morph between two or more results and export an animation",
        description="Interpolate z, the class embedding and every generator weight between "
                    "keyframe states and export the frames (GIF, APNG .png, WebP, MP4, WebM, "
                    "or a PNG sequence when -o names a folder without suffix).")
    p.add_argument("states", type=Path, nargs="+", metavar="STATE",
                   help="two or more saved reconstruction states (keyframes, in order)")
    p.add_argument("--frames", type=int, default=48,
                   help="frames from the first keyframe to the last, both included (default 48)")
    p.add_argument("--fps", type=float, default=24.0, help="frames per second (default 24)")
    p.add_argument("--easing", default="ease-in-out", choices=_EASINGS,
                   help="easing between keyframes (default ease-in-out)")
    p.add_argument("--hold", type=int, default=0, help="extra frames held at both ends")
    p.add_argument("--hold-start", type=int, help="extra frames held on the first keyframe")
    p.add_argument("--hold-end", type=int, help="extra frames held on the last keyframe")
    p.add_argument("--pingpong", action="store_true", help="play back to the start (loops)")
    p.add_argument("--size", help="output size WxH in pixels (default: the model's × --scale)")
    p.add_argument("--loop", type=int, default=0,
                   help="GIF/APNG/WebP repeat count, 0 = forever (default 0)")
    _common(p, grid=False)
    p.set_defaults(func=run_morph)


def _common(p: argparse.ArgumentParser, grid: bool) -> None:
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output picture (.png, .jpg, .webp)" if grid else
                   "output animation (.gif, .png, .webp, .mp4, .webm) or a folder")
    p.add_argument("--scale", type=float, default=1.0, help="upscale factor (default 1)")
    p.add_argument("--resample", default="lanczos",
                   choices=["nearest", "bilinear", "bicubic", "lanczos"],
                   help="filter used when scaling (default lanczos)")
    p.add_argument("--model", default="bundled",
                   help="model the states were restored with: a name or a folder "
                        "(default bundled)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: every core)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


# --------------------------------------------------------------------------- loading


def load_states_and_prior(paths: list[Path], model: str, device: str = "cpu"
                          ) -> tuple[list[ReconstructionState], Prior]:
    """Read states, load the prior and check the states fit it, with messages that say
    which model to pass or fetch."""
    from ..errors import CheckpointError, StateError
    from ..method.state import ReconstructionState
    from ..priors.load import load_prior

    states = [ReconstructionState.load(p) for p in paths]
    try:
        prior = load_prior(model, device=device)
    except CheckpointError as exc:
        wanted = {str(s.model["name"]) for s in states if s.model.get("name")} - {model}
        hint = ""
        if wanted:
            name = sorted(wanted)[0]
            hint = (f" The state was restored with {name!r}: pass --model {name} (get it with "
                    f"`dgp models pull {name}` or `dgp models import {name} --g G_ema.pth "
                    "--d D.pth`).")
        raise CheckpointError(f"{exc}{hint}") from exc
    for path, state in zip(paths, states):
        try:
            state.check_fits(prior.G)
        except StateError as exc:
            name = state.model.get("name") or "another model"
            raise StateError(
                f"{path.name} was restored with the model {name!r}, which is not the loaded "
                f"{prior.name!r}: pass --model {name}. If that model is missing, fetch it with "
                f"`dgp models pull {name}` or import its files with `dgp models import {name} "
                "--g G_ema.pth --d D.pth`.") from exc
    return states, prior


def _setup(args: argparse.Namespace) -> None:
    import torch

    from ..system.runtime import available_cores

    _claim_output(args)
    torch.set_num_threads(args.threads or available_cores())


def _claim_output(args: argparse.Namespace) -> None:
    """Before any work: -o is not an input, its folder takes files, and no other run is
    writing it (a lock beside it, held until the command ends)."""
    from ..errors import OutputError
    from ..files.photos import _same_file, claim_or_refuse

    out = Path(args.output)
    inputs = [Path(p) for p in (getattr(args, "states", None) or [getattr(args, "state", None)])
              if p is not None]
    if any(out.exists() and _same_file(out, p) for p in inputs):
        raise OutputError(f"{out} is an input state; pick another output name.")
    claim_or_refuse(out)


def _progress(args: argparse.Namespace, total: int, desc: str) -> Any:
    """A tqdm bar (tqdm is untyped)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr,
                disable=True if args.quiet else None, leave=False)


def _parse_sigma(text: str) -> float | list[float]:
    from ..errors import InputError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--sigma must be a number or comma-separated numbers; got "
                         f"{text!r}.") from None
    if not values:
        raise InputError("--sigma needs a value.")
    return values[0] if len(values) == 1 and "," not in text else values


def _save_grid(args: argparse.Namespace, images: Iterable[torch.Tensor]) -> None:
    from ..files.animation import frame_array, grid, resize_frame, save_image

    arrays = [resize_frame(frame_array(x), scale=args.scale, resample=args.resample)
              for x in images]
    out = save_image(grid(arrays, cols=args.cols), args.output)
    if not args.quiet:
        print(f"wrote {out}", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def run_jitter(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..method.manipulate import Renderer

    if args.count < 1:
        raise InputError("-n must be at least 1.")
    _setup(args)
    sigma = _parse_sigma(args.sigma)
    if args.walk is not None:
        from ..files.animation import format_for

        format_for(args.output)  # fail on a bad name before any work
    (state,), prior = load_states_and_prior([args.state], args.model, args.device)
    renderer = Renderer(prior, state)
    if args.walk is not None:
        job = renderer.jitter_walk(args.walk, sigma, seed=args.seed, keys=args.count)
        _export(args, job, args.fps)
        return 0
    job = renderer.jitter(args.count, sigma, seed=args.seed)
    with _progress(args, len(job), "jitter") as bar:
        images = job.run_to_end(lambda f: bar.update(1))
    _save_grid(args, images)
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    from ..method.manipulate import Renderer
    from ..priors.classes import resolve_class

    _setup(args)
    (state,), prior = load_states_and_prior([args.state], args.model, args.device)
    targets = [resolve_class(c, prior.class_names) for c in args.classes]
    job = Renderer(prior, state).transfer(targets, args.amount)
    with _progress(args, len(job), "transfer") as bar:
        images = job.run_to_end(lambda f: bar.update(1))
    _save_grid(args, images)
    return 0


def _parse_size(text: str | None) -> tuple[int, int] | None:
    from ..errors import InputError

    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must look like 256x256; got {text!r}.") from None
    return w, h


def run_morph(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..files.animation import format_for
    from ..method.manipulate import Morph, MorphTimeline

    if len(args.states) < 2:
        raise InputError("A morph needs at least two states (keyframes).")
    format_for(args.output)  # fail on a bad name before any work
    _setup(args)
    timeline = MorphTimeline(
        frames=args.frames, fps=args.fps, easing=args.easing,
        hold_start=args.hold if args.hold_start is None else args.hold_start,
        hold_end=args.hold if args.hold_end is None else args.hold_end,
        pingpong=args.pingpong)
    states, prior = load_states_and_prior(list(args.states), args.model, args.device)
    names = [p.name for p in args.states]
    morph = Morph(prior, states, names=names, easing=timeline.easing)
    job = morph.render(timeline.times(), keep=False)  # frames stream into the file
    _export(args, job, timeline.fps, size=_parse_size(args.size), loop=args.loop)
    return 0


def _export(args: argparse.Namespace, job: RenderJob, fps: float,
            size: tuple[int, int] | None = None, loop: int = 0) -> None:
    from ..files.animation import AnimationExport
    from .interrupt import current

    # A first Ctrl-C cancels the export (an unfinished animation is not a result): no file.
    export = AnimationExport(job, args.output, fps=fps, size=size, scale=args.scale,
                             resample=args.resample, loop=loop, total=len(job),
                             cancel=current().event)
    with _progress(args, len(job), args.command) as bar:
        out = export.run(lambda r: bar.update(1) if r.stage == "frames" else None)
    if not args.quiet:
        print(f"wrote {out} ({len(job)} frames, {fps:g} fps, {len(job) / fps:.2f} s)",
              file=sys.stderr)

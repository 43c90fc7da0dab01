"""``dgp jitter``, ``dgp transfer``, ``dgp morph``: manipulate saved reconstruction states.

What they write shows the photo: each output is composed into the photo the state was
restored from (at the photo's resolution, exactly as the app previews it: the hole
filled, the colour transferred, the region blended), or onto ``--onto PHOTO``; ``--raw``
writes the generator's own square instead.  Frames over 3840 px on the long side need
``--max-side N`` (never a silent downscale); MP4/WebM frames of odd size are padded or
cropped by one pixel (``--even``), which the command says."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports torch and the engine only when a command runs
    import torch

    from ..files.photos import Photo
    from ..method.state import ReconstructionState
    from ..priors.load import Prior
    from ..tasks.postprocess import PhotoComposer

_MAX_SIDE = 3840  # animation.MAX_EXPORT_SIDE (the CLI imports the engine only to run)
_MAX_GRID_SIDE = 16384  # a grid picture larger than this takes over 800 MB to write
_EASINGS = [
    "linear",
    "ease-in",
    "ease-out",
    "ease-in-out",
    "cubic",
    "sine",
    "smoothstep",
    "smootherstep",
]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "jitter",
        help="render random variations of a result (latent jitter) as a grid",
        description="Render N variations G(z* + σ·ε; θ*) of a saved reconstruction state and "
        "save them as one grid picture (docs/method.md#manipulation); a StyleGAN2 result "
        "is jittered in w space (docs/method.md#stylegan2-priors).",
    )
    p.add_argument("state", type=Path, help="a saved reconstruction state (.dgp)")
    p.add_argument("-n", "--count", type=int, default=16, help="variations (default 16)")
    p.add_argument(
        "--sigma",
        default="0.5",
        help="jitter strength σ (default 0.5); or one value per latent chunk (a "
        "BigGAN's z chunks, a StyleGAN2's synthesis blocks), coarse to fine, "
        "comma-separated (e.g. 0,0,0.7,0.7)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--cols", type=int, help="grid columns (default √n)")
    p.add_argument(
        "--walk",
        type=int,
        metavar="FRAMES",
        help="instead of a grid, export a looping jitter walk of FRAMES frames "
        "through n variations (-o .gif, .png, .webp, .mp4, .webm or a folder)",
    )
    p.add_argument("--fps", type=float, default=24.0, help="walk frames per second (default 24)")
    _common(p, grid=True)
    _even_option(p)
    p.set_defaults(func=run_jitter)

    p = subparsers.add_parser(
        "transfer",
        help="render a result with another class (category transfer)",
        description="Render G(z*, e(y′); θ*) for another class y′ of a saved state; with "
        "--amount below 1 the class embedding is interpolated towards y′. A result of a "
        "conditional StyleGAN2 has its w+ moved by what the mapping makes of its starting z "
        "with y′ instead of its own class (docs/method.md#stylegan2-priors).",
    )
    p.add_argument("state", type=Path, help="a saved reconstruction state (.dgp)")
    p.add_argument(
        "--class",
        dest="classes",
        action="append",
        required=True,
        metavar="NAME",
        help="target class name or id; repeat for a grid of several classes",
    )
    p.add_argument(
        "--amount",
        type=float,
        default=1.0,
        help="how far to move the class embedding: 0 = own class, 1 = target (default 1)",
    )
    p.add_argument("--cols", type=int, help="grid columns when several classes are given")
    _common(p, grid=True)
    p.set_defaults(func=run_transfer)

    p = subparsers.add_parser(
        "morph",
        help="morph between two or more results and export an animation",
        description="Interpolate z, the class embedding and every generator weight between "
        "keyframe states and export the frames (GIF, APNG .png, WebP, MP4, WebM, "
        "or a PNG sequence when -o names a folder without suffix).",
    )
    p.add_argument(
        "states",
        type=Path,
        nargs="+",
        metavar="STATE",
        help="two or more saved reconstruction states (keyframes, in order)",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=48,
        help="frames from the first keyframe to the last, both included (default 48)",
    )
    p.add_argument("--fps", type=float, default=24.0, help="frames per second (default 24)")
    p.add_argument(
        "--easing",
        default="ease-in-out",
        choices=_EASINGS,
        help="easing between keyframes (default ease-in-out)",
    )
    p.add_argument("--hold", type=int, default=0, help="extra frames held at both ends")
    p.add_argument("--hold-start", type=int, help="extra frames held on the first keyframe")
    p.add_argument("--hold-end", type=int, help="extra frames held on the last keyframe")
    p.add_argument("--pingpong", action="store_true", help="play back to the start (loops)")
    p.add_argument(
        "--size",
        help="output size WxH in pixels (default: the photo's × --scale; the model's with --raw)",
    )
    p.add_argument(
        "--loop", type=int, default=0, help="GIF/APNG/WebP repeat count, 0 = forever (default 0)"
    )
    _common(p, grid=False)
    _even_option(p)
    p.set_defaults(func=run_morph)


def _common(p: argparse.ArgumentParser, grid: bool) -> None:
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output picture (.png, .jpg, .webp)"
        if grid
        else "output animation (.gif, .png, .webp, .mp4, .webm) or a folder",
    )
    p.add_argument(
        "--onto",
        type=Path,
        metavar="PHOTO",
        help="compose onto this photo (a picture, or a .dgpproj project's picture) "
        "instead of the one the state records; it must have that photo's "
        "size",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="write the generator's own square (e.g. 64×64) instead of composing "
        "each output into the photo",
    )
    p.add_argument(
        "--max-side",
        type=int,
        metavar="N",
        help=f"scale {'tiles' if grid else 'frames'} down so their long side is at "
        f"most N px (over {_MAX_SIDE} px they are refused without it)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="upscale factor (default 1)")
    p.add_argument(
        "--resample",
        default="lanczos",
        choices=["nearest", "bilinear", "bicubic", "lanczos"],
        help="filter used when scaling (default lanczos)",
    )
    p.add_argument(
        "--model",
        default="bundled",
        help="model the states were restored with: a name or a folder (default bundled)",
    )
    p.add_argument(
        "--model-mismatch",
        choices=["refuse", "ok"],
        default="refuse",
        help="a state restored with other weights than --model's is refused "
        "(default); ok renders it with --model anyway, with a warning",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: every core)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow replacing an existing output (a PNG sequence folder: its frame_*.png "
        "files are replaced and extra ones removed)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


# --------------------------------------------------------------------------- loading


def load_states_and_prior(
    paths: list[Path], model: str, device: str = "cpu", allow_mismatch: bool = False
) -> tuple[list[ReconstructionState], Prior]:
    """Read states, load the prior and check the states fit it and were restored with its
    weights (model checksum), with messages that say which model to pass or fetch.  With
    ``allow_mismatch`` a state of other weights is rendered anyway; every warning (that,
    or a state without a checksum) is printed on stderr."""
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
            hint = (
                f" The state was restored with {name!r}: pass --model {name} (get it with "
                f"`dgp models pull {name}` or `dgp models import {name} --g G_ema.pth "
                "--d D.pth`)."
            )
        raise CheckpointError(f"{exc}{hint}") from exc
    from ..method.reconstruct_stylegan2 import check_fits_stylegan2

    for path, state in zip(paths, states, strict=True):
        try:
            if prior.is_biggan:
                state.check_fits(prior.G)
            else:
                check_fits_stylegan2(prior, state)
        except StateError as exc:
            name = state.model.get("name") or "another model"
            raise StateError(
                f"{path.name} was restored with the model {name!r}, which is not the loaded "
                f"{prior.name!r}: pass --model {name}. If that model is missing, fetch it with "
                f"`dgp models pull {name}` or import its files with `dgp models import {name} "
                "--g G_ema.pth --d D.pth`."
            ) from exc
        made_with = state.model.get("name")
        if isinstance(made_with, str) and made_with and made_with != prior.name:
            advice = f"pass --model {made_with}"
        else:
            advice = "pass the model it was restored with as --model"
        warning = state.model_warning(
            prior.name,
            prior.checksum,
            allow_mismatch=allow_mismatch,
            label=path.name,
            advice=f"{advice}, or --model-mismatch ok to render it with this one anyway",
        )
        if warning:
            print(f"dgp: warning: {warning}", file=sys.stderr)
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
    inputs = [
        Path(p)
        for p in (getattr(args, "states", None) or [getattr(args, "state", None)])
        if p is not None
    ]
    if any(out.exists() and _same_file(out, p) for p in inputs):
        raise OutputError(f"{out} is an input state; pick another output name.")
    onto = getattr(args, "onto", None)
    if onto is not None and out.exists() and _same_file(out, onto):
        raise OutputError(f"{out} is the photo to compose onto; pick another output name.")
    if not args.overwrite:
        # an existing grid or animation was replaced, and a folder's own frame_*.png files
        # (a video's frames, say) were replaced or deleted, without a word
        if out.is_dir():
            if any(out.iterdir()):
                raise OutputError(
                    f"{out} is a folder that already holds files: a PNG sequence replaces "
                    "its frame_*.png files and removes extra ones. Pick a new or empty "
                    "folder, or allow that with --overwrite."
                )
        elif os.path.lexists(out):
            raise OutputError(
                f"{out} already exists; pick another name or allow overwriting (--overwrite)."
            )
    claim_or_refuse(out)


def _progress(args: argparse.Namespace, total: int, desc: str) -> Any:
    """A tqdm bar (tqdm is untyped)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="frame",
        file=sys.stderr,
        disable=True if args.quiet else None,
        leave=False,
    )


def _parse_sigma(text: str) -> float | list[float]:
    from ..errors import InputError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(
            f"--sigma must be a number or comma-separated numbers; got {text!r}."
        ) from None
    if not values:
        raise InputError("--sigma needs a value.")
    return values[0] if len(values) == 1 and "," not in text else values


def _even_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--even",
        choices=("pad", "crop"),
        default="pad",
        help="MP4/WebM need an even width and height: pad odd frames by one edge "
        "pixel (default) or crop one off",
    )


# --------------------------------------------------------------------------- composing


def _read_onto(path: Path) -> Photo:
    """--onto: a picture file, or the picture of a .dgpproj project."""
    from ..files.photos import Photo, read_image

    if path.suffix.lower() != ".dgpproj":
        return read_image(path)
    from ..errors import InputError
    from ..files.project import load_project

    project = load_project(path)
    pixels = project.sources.get("picture")
    if pixels is None and project.sources:
        pixels = next(iter(project.sources.values()))
    if pixels is None:
        raise InputError(f"The project {path.name} holds no picture to compose onto.")
    return dataclasses.replace(Photo.from_array(pixels), path=path)


def _composer(
    args: argparse.Namespace, states: list[ReconstructionState], labels: list[str], resolution: int
) -> PhotoComposer | None:
    """The composer of every output into the photo; None with --raw.  Refuses (one
    sentence, and what --raw would write instead) when the states cannot share one."""
    from ..errors import CompositionError, InputError
    from ..method.placement import common_placement
    from ..tasks.postprocess import PhotoComposer, photo_for, same_photo

    if args.raw:
        if args.onto is not None:
            raise InputError(
                "Give either --onto (compose onto that photo) or --raw (the "
                "generator's own square), not both."
            )
        return None
    raw = f"Pass --raw to write the generator's {resolution}×{resolution} squares instead."
    try:
        placement = common_placement([s.placement for s in states], labels)
        if placement.view.resolution != resolution:
            r = placement.view.resolution
            raise CompositionError(
                f"{labels[0]} places a {r}×{r} model output in its photo, but this model "
                f"renders {resolution}×{resolution}: the state is damaged or not this "
                "model's."
            )
        onto = _read_onto(args.onto) if args.onto is not None else None
        photo = photo_for(placement, onto, label=labels[0])
    except CompositionError as exc:
        raise CompositionError(f"{exc} {raw}") from exc
    if onto is not None and not args.quiet and not same_photo(placement, onto):
        print(
            f"note: {onto.path.name if onto.path else 'the photo'} is not the photo "
            f"{labels[0]} was restored from (its pixels differ); composing onto it as "
            "asked.",
            file=sys.stderr,
        )
    return PhotoComposer(photo, placement)


def _target_size(
    args: argparse.Namespace,
    frame_size: tuple[int, int],
    size: tuple[int, int] | None = None,
    what: str = "frames",
) -> tuple[int, int]:
    """The size outputs are written at, refused over the limit unless chosen."""
    from ..errors import ExportTooLarge, InputError
    from ..files.animation import export_size

    if args.max_side is not None and args.max_side < 2:
        raise InputError("--max-side must be at least 2 px.")
    try:
        return export_size(frame_size, size=size, scale=args.scale, max_side=args.max_side)
    except ExportTooLarge as exc:
        w, h = exc.size
        raise ExportTooLarge(
            f"The {what} would be {w}×{h} px, more than the {exc.limit} px on the long side "
            f"written without asking (video players and GIF writers balk at more). Pass --max-side "
            f"{exc.limit} (or less) to scale them down, --size WxH, or --raw for the "
            "generator's square.",
            exc.size,
            exc.limit,
        ) from exc


def _check_grid(
    args: argparse.Namespace, count: int, composer: PhotoComposer | None, resolution: int
) -> None:
    """Refuse, before anything is rendered, a grid of ``count`` tiles that is larger than
    :data:`_MAX_GRID_SIDE` or than memory holds (rendered tensors, composed and scaled
    tiles, the grid): ``-n 1000 --scale 60`` once went on to resize 1000 tiles of 3840² px
    (44 GB) before the grid's size was looked at."""
    from ..errors import InputError
    from ..system.memory import budget, why_too_big

    fw, fh = composer.size if composer is not None else (resolution, resolution)
    tw, th = _target_size(args, (fw, fh), what="tiles")
    cols = max(1, min(count, args.cols or math.ceil(math.sqrt(count))))
    rows = math.ceil(count / cols)
    gw, gh = cols * tw + (cols - 1) * 2, rows * th + (rows - 1) * 2
    if max(gw, gh) > _MAX_GRID_SIDE:
        raise InputError(
            f"The grid would be {gw}×{gh} px: pass --max-side to make the "
            f"tiles smaller (at most {_MAX_GRID_SIDE} px in all), fewer "
            "variations, or --raw."
        )
    need = count * (resolution * resolution * 3 * 4 + (fw * fh + tw * th) * 3) + gw * gh * 3
    if need > budget():
        raise InputError(
            f"A grid of {count} tiles of {tw}×{th} px cannot be made: "
            f"{why_too_big(need)}. Ask for fewer variations or smaller tiles "
            "(--max-side)."
        )


def _save_grid(
    args: argparse.Namespace, images: Iterable[torch.Tensor], composer: PhotoComposer | None
) -> None:
    from ..errors import InputError
    from ..files.animation import frame_array, grid, resize_frame, save_image

    arrays = [composer(x) if composer is not None else frame_array(x) for x in images]
    h, w = arrays[0].shape[:2]
    tw, th = _target_size(args, (w, h), what="tiles")
    arrays = [resize_frame(a, (tw, th), resample=args.resample) for a in arrays]
    picture = grid(arrays, cols=args.cols)
    if max(picture.shape[:2]) > _MAX_GRID_SIDE:
        raise InputError(
            f"The grid would be {picture.shape[1]}×{picture.shape[0]} px: pass "
            f"--max-side to make the tiles smaller (at most {_MAX_GRID_SIDE} px "
            "in all), fewer variations, or --raw."
        )
    out = save_image(picture, args.output)
    if not args.quiet:
        what = f"{len(arrays)} tile(s) of {tw}×{th}" + (
            "" if composer is None else f", composed into {composer.placement.describe()}"
        )
        print(f"wrote {out} ({what})", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def run_jitter(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..method.manipulators import renderer_for

    if args.count < 1:
        raise InputError("-n must be at least 1.")
    _setup(args)
    sigma = _parse_sigma(args.sigma)
    if args.walk is not None:
        from ..files.animation import format_for

        format_for(args.output)  # fail on a bad name before any work
    (state,), prior = load_states_and_prior(
        [args.state], args.model, args.device, args.model_mismatch == "ok"
    )
    composer = _composer(args, [state], [args.state.name], prior.resolution)
    # checked (and said) above; BigGAN z or StyleGAN2 w+ alike
    renderer = renderer_for(prior, state, allow_other_model=True)
    if args.walk is not None:
        job = renderer.jitter_walk(args.walk, sigma, seed=args.seed, keys=args.count)
        _export(args, job, len(job), args.fps, composer, prior.resolution)
        return 0
    _check_grid(args, args.count, composer, prior.resolution)
    job = renderer.jitter(args.count, sigma, seed=args.seed)
    with _progress(args, len(job), "jitter") as bar:
        images = job.run_to_end(lambda f: bar.update(1))
    _save_grid(args, images, composer)
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..method.manipulators import renderer_for
    from ..priors.classes import resolve_class

    _setup(args)
    (state,), prior = load_states_and_prior(
        [args.state], args.model, args.device, args.model_mismatch == "ok"
    )
    if prior.n_classes == 0:
        raise InputError(
            f"{prior.name} is an unconditional model: it has no classes to transfer "
            f"{args.state.name} to (dgp jitter and dgp morph work)."
        )
    composer = _composer(args, [state], [args.state.name], prior.resolution)
    targets = [resolve_class(c, prior.class_names) for c in args.classes]
    _check_grid(args, len(targets), composer, prior.resolution)
    job = renderer_for(prior, state, allow_other_model=True).transfer(targets, args.amount)
    with _progress(args, len(job), "transfer") as bar:
        images = job.run_to_end(lambda f: bar.update(1))
    _save_grid(args, images, composer)
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
    from ..method.manipulate import MorphTimeline
    from ..method.manipulators import morph_for

    if len(args.states) < 2:
        raise InputError("A morph needs at least two states (keyframes).")
    format_for(args.output)  # fail on a bad name before any work
    size = _parse_size(args.size)
    _setup(args)
    timeline = MorphTimeline(
        frames=args.frames,
        fps=args.fps,
        easing=args.easing,
        hold_start=args.hold if args.hold_start is None else args.hold_start,
        hold_end=args.hold if args.hold_end is None else args.hold_end,
        pingpong=args.pingpong,
    )
    states, prior = load_states_and_prior(
        list(args.states), args.model, args.device, args.model_mismatch == "ok"
    )
    names = [p.name for p in args.states]
    composer = _composer(args, states, names, prior.resolution)
    morph = morph_for(prior, states, names=names, easing=timeline.easing, allow_other_model=True)
    job = morph.render(timeline.times(), keep=False)  # frames stream into the file
    _export(
        args, job, len(job), timeline.fps, composer, prior.resolution, size=size, loop=args.loop
    )
    return 0


def _export(
    args: argparse.Namespace,
    frames: Iterable[Any],
    total: int,
    fps: float,
    composer: PhotoComposer | None,
    resolution: int,
    size: tuple[int, int] | None = None,
    loop: int = 0,
) -> None:
    """Stream ``frames`` (a render job), composed when ``composer`` is given, into the
    animation file; sizes are decided (and refused over the limit) before any rendering."""
    from ..files.animation import AnimationExport, even_size, format_for
    from .interrupt import current

    frame_size = composer.size if composer is not None else (resolution, resolution)
    target = _target_size(args, frame_size, size)
    written, note = even_size(target, format_for(args.output), args.even)
    if note and not args.quiet:
        print(f"note: {note}", file=sys.stderr)
    stream = composer.frames(frames) if composer is not None else frames
    # A first Ctrl-C cancels the export (an unfinished animation is not a result): no file.
    export = AnimationExport(
        stream,
        args.output,
        fps=fps,
        size=target,
        resample=args.resample,
        loop=loop,
        total=total,
        even=args.even,
        cancel=current().event,
        replace_frames=True,  # the folder was checked above (--overwrite)
    )
    with _progress(args, total, args.command) as bar:
        out = export.run(lambda r: bar.update(1) if r.stage == "frames" else None)
    if not args.quiet:
        what = (
            "the generator's square"
            if composer is None
            else f"composed into {composer.placement.describe()}"
        )
        print(
            f"wrote {out} ({total} frames of {written[0]}×{written[1]}, {fps:g} fps, "
            f"{total / fps:.2f} s; {what})",
            file=sys.stderr,
        )

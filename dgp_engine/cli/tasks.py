"""``dgp colorize|inpaint|superres|restore|defend|hybrid`` and ``dgp eval``.

A task command turns its arguments into a
:class:`~dgp_engine.tasks.request.RestoreRequest` (the task is the sub-command's
:class:`~dgp_engine.method.taskspec.TaskSpec`, never looked up by name), which the engine
resolves (device, threads, precision, prior, class, preset) as it does for a batch and
the app.  Every check on the input (files, mask, region, class, output path) runs before
the model does; a problem ends with one clear message and exit code 1, the
input untouched and no output file; the output and state files are claimed (a lock
beside each) so an unwritable target or a second run writing the same file is refused
before the model loads.  Ctrl-C or SIGTERM stops the optimisation cleanly (within one
iteration) and saves what it reached — nothing when no optimisation step finished; a
second one abandons, leaving no partial file (:mod:`.interrupt`).  A device that runs out
of memory part-way ends the run with the engine's advice (e.g. ``--precision bf16``) and
writes nothing: a run has a state to save only at its end or after a clean stop.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..method.taskspec import EVAL_TASKS, TASK_SPECS

if TYPE_CHECKING:  # the CLI imports torch and the engine only when a command runs
    import numpy as np

    from ..method.reconstruct import Report
    from ..method.region import Region
    from ..method.state import ReconstructionState
    from ..priors.load import Prior
    from ..tasks.request import RestoreRequest

EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for spec in TASK_SPECS:
        help_text = spec.summary
        p = subparsers.add_parser(spec.command, help=help_text, description=help_text + ".")
        p.add_argument(
            "input",
            type=Path,
            metavar="IN",
            help="input image (any format Pillow reads: PNG, JPEG, TIFF, WebP, …)",
        )
        p.add_argument(
            "-o",
            "--output",
            type=Path,
            required=True,
            metavar="OUT",
            help="output image (.png, .jpg, .tif, .webp or .bmp)",
        )
        if spec.uses_mask:
            p.add_argument(
                "--mask",
                type=Path,
                metavar="M",
                help="mask image of the input's size: white = fill, black = keep "
                "(or painted strokes on a transparent layer)",
            )
            p.add_argument("--box", metavar="X,Y,W,H", help="fill this box instead of a mask")
        if spec.new_picture:
            p.add_argument(
                "--factor",
                type=int,
                choices=(2, 4, 8),
                help="super-resolution factor (default: the largest that fits "
                "the input into the model)",
            )
        p.add_argument(
            "--region",
            metavar="X,Y,SIZE",
            help="square of the photo to work on (default: around the mask with "
            "context for inpainting, else the whole photo)",
        )
        p.add_argument(
            "--feather",
            type=int,
            metavar="PX",
            help="seam width in photo pixels (default: scaled to the region)",
        )
        p.add_argument(
            "--face-points",
            metavar='"X,Y X,Y X,Y"',
            help="work on the face whose left eye, right eye and mouth are at these photo "
            "pixels, aligned the FFHQ way (face priors find the face themselves when a "
            "detector is installed)",
        )
        p.add_argument(
            "--aligned",
            action="store_true",
            help="the photo already is an aligned face crop: a face prior restores it as it is",
        )
        _common(p)
        p.add_argument(
            "--save-state",
            type=Path,
            metavar="S.dgp",
            help="also save the reconstruction (z, class, fine-tuned weights) for "
            "manipulation or to render it again",
        )
        p.set_defaults(func=run_task_command, task=spec.name, spec=spec)

    e = subparsers.add_parser(
        "eval",
        help="measure a method on a data set with the paper's protocol",
        description="Degrade clean images, restore them, report PSNR/SSIM/MSE per image "
        "and as means (inpainting: on the hole only).",
    )
    e.add_argument("task", choices=EVAL_TASKS)
    e.add_argument(
        "--data",
        type=Path,
        required=True,
        help=".npz with images (uint8 N×H×W×3) and labels, or a folder of images",
    )
    e.add_argument("--limit", type=int, help="number of images (default: all)")
    e.add_argument(
        "--pick",
        choices=("spread", "first"),
        default="spread",
        help="which images when limited: evenly spread over the set (default, "
        "covers every class of a class-sorted archive) or the first ones",
    )
    e.add_argument(
        "--method",
        choices=("dgp", "z-only", "dip"),
        default="dgp",
        help="dgp (default), z-only (generator frozen: GAN inversion) or dip "
        "(same architecture, random weights, fine-tuned)",
    )
    e.add_argument(
        "--json", type=Path, required=True, metavar="OUT", help="where to write the results (JSON)"
    )
    e.add_argument(
        "--factor",
        type=int,
        choices=(2, 4, 8),
        default=4,
        help="super-resolution factor (default 4, as the paper)",
    )
    e.add_argument("--mask", type=Path, help="inpainting mask instead of the centre hole")
    e.add_argument(
        "--save-images",
        type=Path,
        metavar="DIR",
        help="also write clean / input / result PNGs into DIR",
    )
    _common(e, class_default="label")
    e.set_defaults(func=run_eval_command)

    t = subparsers.add_parser(
        "eval-table",
        help="paper-style table from `dgp eval` result files",
        description="Print one Markdown table (PSNR / SSIM / MSE, seconds per image) of "
        "`dgp eval` results, one row per task and method, and whether the "
        "paper's ordering DGP > DIP-style > z-only holds per task.",
    )
    t.add_argument("results", nargs="+", type=Path, metavar="RESULT.json")
    t.add_argument(
        "-o", "--output", type=Path, metavar="TABLE.md", help="also write the table to this file"
    )
    t.add_argument("--overwrite", action="store_true", help="allow replacing --output")
    t.set_defaults(func=run_eval_table_command)


def _common(p: argparse.ArgumentParser, class_default: str = "auto") -> None:
    p.add_argument(
        "--class",
        dest="class_spec",
        default=class_default,
        metavar="N|NAME|auto",
        help="class condition: an id, a class name, or auto to let z selection "
        f"pick it (default {class_default})",
    )
    p.add_argument(
        "--model", default="bundled", help="model folder or registry name (default: bundled)"
    )
    p.add_argument(
        "--preset",
        help="preset name or .toml file (default: the model's own "
        "preset for the task, else the published one)",
    )
    p.add_argument(
        "--iterations-scale",
        type=float,
        metavar="S",
        help="scale every stage's iteration count (e.g. 0.5 for a quick run)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:N, mps, gpu or auto (default: $DGP_STUDIO_DEVICE, else auto)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: every core; the app leaves one for its window)",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="reference-exact optimisation (slower; matches the published code)",
    )
    _precision_option(p)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow replacing existing output files (even the input)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _precision_option(p: argparse.ArgumentParser) -> None:
    from ..method.compute import PRECISIONS

    # no argparse choices: a bad value is refused with the engine's own sentence (exit 1)
    p.add_argument(
        "--precision",
        default="auto",
        metavar="{" + ",".join(PRECISIONS) + "}",
        help="compute precision (default auto: TF32 on NVIDIA GPUs; bf16 on CPUs "
        "with AMX or AVX512-BF16 where a one-time measurement found it faster; "
        "float32 elsewhere); tf32 needs an NVIDIA GPU; bf16 is faster where the "
        "hardware has it (not Apple MPS, nor with --exact); see docs/performance.md",
    )


# --- shared pieces ------------------------------------------------------------------------------
class ProgressBar:
    """tqdm bars for z selection, then for the optimisation (stage, iteration, loss, ETA).

    The bar restarts between the two phases (a selection sample costs a fraction of an
    optimisation iteration).  Stage count and time left are the engine's (``Report``)."""

    def __init__(self, select_total: int, iterations: int, *, quiet: bool):
        from tqdm import tqdm

        self.select_total = select_total
        self.iterations = iterations
        self.phase = "select" if select_total else "optimize"
        self.format_interval = tqdm.format_interval
        self.bar = tqdm(
            total=select_total or iterations,
            unit="it",
            file=sys.stderr,
            disable=quiet,
            dynamic_ncols=True,
            leave=True,
            desc="selecting z" if select_total else "starting",
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]",
        )

    def update(self, report: Report) -> None:
        if report.state is not None:
            return
        if report.phase == "select":
            pos = report.iteration
            desc = "selecting z"
            post = ""
        else:
            if self.phase != "optimize":
                self.phase = "optimize"
                self.bar.reset(total=self.iterations)
            pos = report.step
            desc = f"stage {report.stage + 1}/{report.num_stages}"
            loss = report.losses.get("total")
            post = (
                f"it {report.iteration}/{report.stage_iterations}"
                + (f" loss {loss:.4g}" if loss is not None else "")
                + (f" ETA {self.format_interval(report.eta)}" if report.eta is not None else "")
            )
        self.bar.set_description(desc, refresh=False)
        self.bar.set_postfix_str(post, refresh=False)
        if pos > self.bar.n:
            self.bar.update(pos - self.bar.n)

    def stopping(self) -> None:
        self.bar.write("Stopping after this iteration… (Ctrl-C again to abort without saving)")

    def close(self) -> None:
        self.bar.close()


@contextmanager
def cancel_on_sigint(
    event: threading.Event, on_first: Callable[[], None] | None = None, also_sigterm: bool = False
) -> Iterator[None]:
    """While active, the first Ctrl-C (and, with ``also_sigterm``, SIGTERM) sets ``event``
    (a clean stop); a second one raises KeyboardInterrupt.  Outside the main thread
    signals cannot be caught: no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        if on_first is not None:
            on_first()

    signums = [signal.SIGINT] + ([signal.SIGTERM] if also_sigterm else [])
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def restore_request(
    args: argparse.Namespace, *, mask: np.ndarray | None = None, region: Region | None = None
) -> RestoreRequest:
    """The engine's request for a task command (or ``dgp eval``'s settings): what the
    arguments ask for, resolved by :func:`dgp_engine.tasks.request.resolve_request`."""
    from ..system.runtime import available_cores
    from ..tasks.request import RestoreRequest

    # every core by default: a full colorization took 17.4 s on 2 threads vs 21.5 s on 1
    # (bundled prior, quiet 2-core machine); glibc allocator kept from trimming
    # (docs/method.md#where-the-time-goes)
    threads = available_cores() if args.threads is None else args.threads
    return RestoreRequest(
        getattr(args, "spec", None) or args.task,
        model=args.model,
        preset=args.preset,
        iterations_scale=args.iterations_scale,
        class_spec=args.class_spec,
        seed=args.seed,
        exact=args.exact,
        device=args.device,
        precision=args.precision,
        threads=threads,
        region=region,
        mask=mask,
        factor=getattr(args, "factor", None),
        feather=getattr(args, "feather", None),
        save_state=getattr(args, "save_state", None) is not None,
        face_points=getattr(args, "face_points", None),
        aligned=bool(getattr(args, "aligned", False)),
    )


def _parse_box(text: str) -> tuple[int, int, int, int]:
    from ..errors import InputError

    try:
        parts = [int(float(v)) for v in str(text).replace(" ", "").split(",")]
        if len(parts) != 4:
            raise ValueError
    except ValueError:
        raise InputError(
            f"A box is written x,y,width,height (four whole numbers); got {text!r}."
        ) from None
    return parts[0], parts[1], parts[2], parts[3]


def _check_region_inside(region: Region, size: tuple[int, int]) -> None:
    """A typed region must lie inside the photo: refuse (naming the nearest one that fits)
    instead of moving it silently."""
    from ..errors import InputError
    from ..method.region import clamp_region

    w, h = size
    fitted = clamp_region(region, w, h)
    if fitted != region:
        raise InputError(
            f"The region {region.x},{region.y},{region.size} (x,y,size) reaches "
            f"outside the {w}×{h} photo. The nearest region inside it is "
            f"--region {fitted.x},{fitted.y},{fitted.size}."
        )


def _save_state(
    state: ReconstructionState, path: Path, *, sources: Sequence[str | Path], overwrite: bool
) -> None:
    from ..files.photos import check_output_path, output_error

    check_output_path(path, sources=sources, overwrite=overwrite, image=False)
    try:
        state.save(path)
    except OSError as exc:
        raise output_error(exc, path) from exc


def _describe_class(prior: Prior, class_id: int) -> str:
    if prior.n_classes == 0:
        return "none (unconditional model)"
    name = prior.class_name(class_id) if prior.class_names else ""
    return f"{class_id} ({name.split(',')[0]})" if name else str(class_id)


# --- restoration commands -------------------------------------------------------------------------
def run_task_command(args: argparse.Namespace) -> int:
    from ..errors import DeviceMemoryError, InputError
    from ..files.photos import box_mask, check_output_path, read_image, read_mask, save_image
    from ..method.region import parse_region
    from ..system.memory import RUN_BYTES_PER_PIXEL
    from ..tasks.request import resolve_request
    from .interrupt import current

    interrupts = current()
    spec = args.spec
    # refused before decoding when a run on it would not fit in memory (issue 13)
    photo = read_image(args.input, bytes_per_pixel=RUN_BYTES_PER_PIXEL)
    hole = None
    mask_path = getattr(args, "mask", None)
    box = getattr(args, "box", None)
    if mask_path is not None and box is not None:
        raise InputError("Give either --mask or --box, not both.")
    if mask_path is not None:
        hole = read_mask(mask_path, photo.size)
    elif box is not None:
        hole = box_mask(_parse_box(box), photo.size)
    elif spec.needs_mask:
        raise InputError(f"{spec.command} needs --mask M (white = fill) or --box x,y,w,h.")
    region = parse_region(args.region) if args.region else None
    if region is not None:
        _check_region_inside(region, photo.size)
    sources = [args.input] + ([mask_path] if mask_path else [])
    if (
        args.save_state is not None
        and Path(args.save_state).resolve() == Path(args.output).resolve()
    ):
        raise InputError("--save-state and -o must be different files.")
    check_output_path(args.output, sources=sources, overwrite=args.overwrite, claim=True)
    if args.save_state is not None:
        check_output_path(
            args.save_state,
            sources=sources + [args.output],
            overwrite=args.overwrite,
            image=False,
            claim=True,
        )
    # the device and precision are refused before the model loads
    ready = resolve_request(restore_request(args, mask=hole, region=region))
    prior, preset = ready.prior, ready.preset
    job = ready.start(photo, cancel=interrupts.event)  # Ctrl-C cancels it (.interrupt)
    # printed once, before the run: a soft region is a warning with its two remedies
    warnings = {a.message for a in job.plan.advisories}
    for note in job.notes:
        print(f"{'warning' if note in warnings else 'note'}: {note}", file=sys.stderr)
    bar = ProgressBar(job.select_total, preset.total_iterations, quiet=args.quiet)
    try:
        for report in job:
            bar.update(report)
    except DeviceMemoryError as exc:
        # no state exists mid-run (only one at the end, or on a clean stop): nothing to save
        raise DeviceMemoryError(f"{exc} Nothing was written (the input is unchanged).") from exc
    finally:
        bar.close()
    result = job.result
    if result is None:  # pragma: no cover - the engine always ends with a state
        raise InputError("The run ended without a result.")
    if result.cancelled and not result.state.progress.get("step", 0):
        # Stopped during loading or z selection: there is no result, only a start point.
        print(
            "stopped before the first optimisation step: nothing was written (the input "
            "is unchanged).",
            file=sys.stderr,
        )
        return interrupts.exit_code
    with interrupts.writing():
        save_image(result.photo, args.output, overwrite=args.overwrite, sources=sources)
        if args.save_state is not None:
            _save_state(result.state, args.save_state, sources=sources, overwrite=args.overwrite)
    w, h = result.photo.size
    progress = result.state.progress
    what = (
        f"stopped early at iteration {progress.get('step', 0)}/{progress.get('total', 0)}"
        if result.cancelled
        else "done"
    )
    print(
        f"{what}: wrote {args.output} ({w}×{h}), class "
        f"{_describe_class(prior, result.state.class_id)}"
        + (f", state {args.save_state}" if args.save_state else "")
    )
    return interrupts.exit_code if result.cancelled else 0


# --- evaluation ----------------------------------------------------------------------------------
def run_eval_table_command(args: argparse.Namespace) -> int:
    from ..files.photos import check_output_path, write_atomic
    from ..tasks.evaluate import format_table, ordering_summary, read_results

    if args.output:
        check_output_path(
            args.output, sources=args.results, overwrite=args.overwrite, image=False, claim=True
        )
    results = read_results(args.results)
    text = format_table(results)
    order = ordering_summary(results)
    if order:
        text += "\n\n" + "\n".join(f"- {line}" for line in order)
    print(text)
    if args.output:
        write_atomic(args.output, lambda f: f.write(text.encode("utf-8") + b"\n"))
    return 0


def run_eval_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import InputError
    from ..files.photos import check_output_path
    from ..tasks.evaluate import evaluate, load_dataset, load_hole, write_json
    from ..tasks.request import resolve_request

    check_output_path(
        args.json, sources=[args.data], overwrite=args.overwrite, image=False, claim=True
    )
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1.")
    # the class is chosen per image below (``label``: the data set's own)
    ready = resolve_request(dataclasses.replace(restore_request(args), class_spec="auto"))
    prior, preset, precision = ready.prior, ready.preset, ready.precision
    data = load_dataset(args.data, args.limit, args.pick)
    hole = load_hole(args.mask, prior.resolution) if args.mask else None
    spec = str(args.class_spec).strip().lower()
    class_mode: str | int = spec
    if spec not in ("auto", "label"):
        class_id = prior.choose_class(args.class_spec)
        class_mode = "auto" if class_id is None else class_id
    cancel = threading.Event()
    bar = tqdm(
        total=len(data.images),
        unit="img",
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
        desc=f"{args.task} {args.method}",
    )
    psnrs: list[float] = []

    def on_image(row: dict[str, Any]) -> None:
        if row["psnr"] is not None:
            psnrs.append(row["psnr"])
        bar.set_postfix_str(
            f"psnr {sum(psnrs) / max(1, len(psnrs)):.2f} {row['seconds']:.1f}s/img", refresh=False
        )
        bar.update(1)

    def stopping() -> None:
        bar.write(
            "Stopping after this iteration; the images done so far are written… "
            "(Ctrl-C again to abort)"
        )

    with cancel_on_sigint(cancel, stopping):
        try:
            result = evaluate(
                prior,
                ready.task,
                data,
                method=args.method,
                preset=preset,
                factor=args.factor,
                hole=hole,
                class_mode=class_mode,
                seed=args.seed,
                exact=args.exact,
                precision=precision,
                cancel=cancel,
                on_image=on_image,
                save_images=args.save_images,
            )
        finally:
            bar.close()
    result["data"]["pick"] = args.pick
    write_json(result, args.json)
    mean = result["mean"]
    if result["count"]:
        print(
            f"{args.task} {args.method}: PSNR {mean['psnr']:.2f}  SSIM {mean['ssim']:.4f}  "
            f"MSE {mean['mse']:.5f}  ({result['count']} images, "
            f"{result['seconds_per_image']:.1f} s/image) → {args.json}"
        )
    else:
        print(f"{args.task} {args.method}: no image finished → {args.json}")
    return 0 if result["complete"] else EXIT_INTERRUPTED

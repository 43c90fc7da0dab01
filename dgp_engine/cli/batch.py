"""``dgp batch TASK IN_DIR -o OUT_DIR``: restore a whole folder, resumably.

The same model / preset / class / seed options as the single-image commands.  A
journal in OUT_DIR makes re-running the same command resume; the first Ctrl-C (or
SIGTERM) lets the pictures being restored finish and starts no more, a second one
abandons them (they go back to pending), a third aborts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..method.taskspec import TASK_SPECS
from .tasks import EXIT_INTERRUPTED, _common

if TYPE_CHECKING:
    from ..batch import BatchJob, BatchSettings

RAY_INSTALL = 'pip install "dgp-studio[cluster]"'
CONNECT_TIMEOUT_S = 30  # dgp_engine.batch.ray_backend.CONNECT_TIMEOUT_S (not imported: no Ray)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "batch",
        help="restore every picture of a folder (resumable; local workers or Ray)",
        description="Restore every picture under IN_DIR (sub-folders included) into OUT_DIR, "
        "mirroring names. A journal in OUT_DIR makes the same command resume "
        "after a crash or Ctrl-C; a contact sheet (contact-sheet.html) shows "
        "before/after and failures. OUT_DIR may hold other files: the job "
        "writes only its output names and OUT_DIR/.dgp-batch/, and removes only "
        "temp files of those that a dgp process which has ended on this machine "
        "left. OUT_DIR must not contain IN_DIR (refused). Exit code: 0 when "
        "every picture is done (or skipped), 1 when some failed, 130 when "
        "stopped early.",
    )
    p.add_argument(
        "task",
        choices=[s.command for s in TASK_SPECS],
        metavar="TASK",
        help="colorize, inpaint, superres, restore, defend or hybrid",
    )
    p.add_argument("input_dir", type=Path, metavar="IN_DIR", help="folder of pictures")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT_DIR",
        help="folder for the results (created; neither inside IN_DIR nor containing it)",
    )
    p.add_argument(
        "--mask",
        type=Path,
        metavar="M",
        help="inpaint/hybrid: one mask for every picture (white = fill)",
    )
    p.add_argument(
        "--masks",
        type=Path,
        metavar="DIR",
        help="inpaint/hybrid: masks by name: DIR/<same sub-path and stem>.<any "
        "picture type> (default: <stem>_mask.<type> beside each picture)",
    )
    p.add_argument(
        "--mask-suffix",
        default="_mask",
        metavar="S",
        help="the naming rule's suffix for masks beside pictures (default _mask)",
    )
    p.add_argument(
        "--factor",
        type=int,
        choices=(2, 4, 8),
        help="superres/hybrid factor (default: the largest that fits)",
    )
    p.add_argument("--feather", type=int, metavar="PX", help="seam width in photo pixels")
    p.add_argument(
        "--recolor",
        action="store_true",
        help="colorize: also pictures already in colour (replacing their true "
        "colours); by default they are skipped, with the reason in the "
        "journal and the contact sheet",
    )
    _common(p)
    p.add_argument(
        "--save-state",
        action="store_true",
        help="also save each reconstruction as OUT_DIR/<input path>.dgp",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes or Ray actors, each holding the prior (default: one "
        "per GPU, else one on the CPU with every core)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Ray: alone, a Ray started here; with ADDRESS (e.g. "
        f"10.0.0.5:6379 or auto) an existing cluster, given up when it does "
        f"not answer within --ray-timeout (needs {RAY_INSTALL})",
    )
    p.add_argument(
        "--ray-timeout",
        type=float,
        metavar="S",
        help="seconds to wait for the Ray cluster at ADDRESS before giving up "
        f"(default {CONNECT_TIMEOUT_S:g}; Ctrl-C stops waiting at once)",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="on resume, run the pictures that failed before again",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="redo every picture (also when the settings changed); a damaged "
        "journal is kept aside (.dgp-batch/journal.sqlite.damaged) and a new "
        "one started",
    )
    p.set_defaults(func=run_batch_command)


@contextmanager
def _stop_on_signals(job: BatchJob, say: Callable[[str], None]) -> Iterator[None]:
    """First Ctrl-C / SIGTERM: finish current pictures; second: abandon them; third:
    KeyboardInterrupt.  Outside the main thread: no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = [0]

    def handler(signum: int, frame: FrameType | None) -> None:
        presses[0] += 1
        if presses[0] == 1:
            job.stop()
            say(
                "Stopping: no picture has started yet…"
                if job.pool is None
                else "Stopping: the pictures being restored finish, no new ones start… "
                "(Ctrl-C again to abandon them)"
            )
        elif presses[0] == 2:
            job.abandon()
            say(
                "Abandoning the current pictures (they start again on the next run)… "
                "(Ctrl-C again to abort at once)"
            )
        else:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def settings_from_args(args: argparse.Namespace) -> BatchSettings:
    from ..batch import BatchSettings

    return BatchSettings(
        task=args.task,
        input_dir=args.input_dir,
        output_dir=args.output,
        model=args.model,
        preset=args.preset,
        iterations_scale=args.iterations_scale,
        class_spec=args.class_spec,
        seed=args.seed,
        exact=args.exact,
        factor=args.factor,
        feather=args.feather,
        mask=args.mask,
        masks_dir=args.masks,
        mask_suffix=args.mask_suffix,
        save_state=args.save_state,
        recolor=args.recolor,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
        overwrite=args.overwrite,
    )


def run_batch_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..batch import DONE, FAILED, PENDING, RUNNING, SKIPPED, BatchJob
    from ..batch.plan import CONTACT_SHEET
    from ..batch.report import summary_table
    from ..errors import DGPError, InputError

    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1.")
    if args.ray is not None:
        from ..batch.ray_backend import require_ray

        require_ray()
    job = BatchJob(
        settings_from_args(args),
        workers=args.workers,
        ray=args.ray,
        ray_timeout=args.ray_timeout,
        retry_failed=args.retry_failed,
        restart=args.restart,
    )
    counts = job.counts()
    todo = counts[PENDING]
    for note in job.notes:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"{todo} picture(s) to restore, {counts[DONE]} already done, {counts[FAILED]} "
        f"failed before{' (--retry-failed runs them again)' if counts[FAILED] else ''}, "
        f"{counts[SKIPPED]} skipped → {args.output}",
        file=sys.stderr,
    )
    bar = tqdm(
        total=todo,
        unit="img",
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
        desc=args.task,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
    )
    running: dict[str, str] = {}

    def show_running() -> None:
        bar.set_postfix_str(
            " | ".join(f"{Path(r).name} {t}" for r, t in list(running.items())[:3]), refresh=False
        )

    def say(message: str) -> None:
        if args.quiet:  # a disabled bar prints nothing
            print(message, file=sys.stderr)
        else:
            bar.write(message, file=sys.stderr)

    from .interrupt import current

    if current().stop_requested:  # Ctrl-C while the folder was being planned
        job.stop()
    with _stop_on_signals(job, say):
        try:
            for ev in job:
                rel = ev.rel or ""
                if ev.kind == "workers" and args.verbose:
                    bar.write(ev.message)
                elif ev.kind == "progress":
                    left = f"{ev.eta:.0f}s left" if ev.eta is not None else "starting"
                    running[rel] = f"{ev.step}/{ev.total} {left}"
                    show_running()
                    bar.refresh()
                elif ev.kind == "item":
                    if ev.status == RUNNING:
                        running[rel] = "starting"
                    else:
                        running.pop(rel, None)
                        if ev.status in (DONE, FAILED, SKIPPED):
                            bar.update(1)
                        if ev.status == FAILED:
                            bar.write(f"failed: {ev.rel}: {ev.reason}")
                    show_running()
        except DGPError:
            bar.close()
            if job.rows:
                print(summary_table(job.rows, stats=job.stats))
            raise
        finally:
            bar.close()
    rows = job.rows
    print(summary_table(rows, stats=job.stats))
    sheet = args.output / CONTACT_SHEET
    if sheet.is_file():
        print(f"contact sheet: {sheet}")
    final = job.final_counts
    if job.outcome in ("stopped", "abandoned"):
        if job.stop_note:
            print(job.stop_note, file=sys.stderr)
        print(
            f"stopped: {final.get(PENDING, 0)} picture(s) left; run the same command again "
            "to resume.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if final.get(FAILED, 0) else 0

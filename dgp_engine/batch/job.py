"""The batch driver: plans the job, keeps the journal, hands pictures to workers (local
processes or Ray actors) and writes what comes back.

    job = BatchJob(settings, workers=2)        # checks + journal lock; raises on bad input
    for event in job:                          # BatchEvent: item status changes, progress
        ...
    job.stop()      # finish the current pictures, start no more (first Ctrl-C)
    job.abandon()   # stop the current pictures too; they go back to pending

Construction does every check that can fail before long work (folders, model name,
preset, settings against the journal's) so a mistake is one clear message.  The
driver alone writes the journal and the output folder: outputs, states and
thumbnails atomically, the journal committed after each change.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ..errors import DGPError, InputError, OperationCancelled, OutputError
from ..files.photos import check_fits, image_size, read_mask, write_atomic
from ..system.fileio import (
    NotRegularFile,
    clean_stale_temps,
    clean_stale_temps_for,
    open_regular,
    read_regular,
)
from ..system.memory import RUN_BYTES_PER_PIXEL, gb, why_too_big
from . import journal as J
from .plan import (
    CONTACT_SHEET,
    WORK_DIR,
    BatchItem,
    BatchSettings,
    describe_changes,
    model_family,
    model_identity,
    output_problem,
    plan_batch,
    prepare_output_dir,
    settings_digest,
)
from .report import RunStats, write_contact_sheet

log = logging.getLogger(__name__)

# A picture whose worker died this many times is marked failed (it may be the cause).
MAX_ATTEMPTS = 3


@dataclass
class BatchEvent:
    """What the driver reports: ``kind`` is "workers" (workers ready), "item" (an item
    changed status), "progress" (a running item's iterations) or "finished"."""

    kind: str
    rel: str | None = None
    status: str | None = None
    reason: str | None = None
    step: int = 0
    total: int = 0
    eta: float | None = None  # seconds left for this item (engine's estimate)
    seconds: float | None = None  # an item's compute time
    thumb_in: Path | None = None
    thumb_out: Path | None = None
    output: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    message: str = ""


class WorkerPool(Protocol):
    """What the driver needs of a back end (:class:`.local.LocalPool`,
    :class:`.ray_backend.RayPool`): workers by id, one picture each at a time."""

    kind: str

    @property
    def size(self) -> int: ...

    def idle(self) -> list[int]: ...

    def submit(self, wid: int, request: dict[str, Any]) -> None: ...

    def replace(self, wid: int) -> bool: ...

    def poll(self, timeout: float) -> list[tuple[Any, ...]]:
        """Events: ("ready", wid, info), ("error", wid, message), ("progress", wid, rel,
        step, total, eta), ("result", wid, response), ("lost", wid, rel | None, why)."""
        ...

    def abandon(self) -> None: ...

    def close(self, timeout: float = 10.0) -> None: ...


def default_local_workers(device: str | None) -> tuple[int, list[str | None]]:
    """One worker per GPU, else one on the CPU; and each worker's device."""
    import torch

    wanted = (device or os.environ.get("DGP_STUDIO_DEVICE") or "auto").lower()
    if wanted in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        n = torch.cuda.device_count()
        return n, [f"cuda:{i}" for i in range(n)]
    return 1, [device]


class BatchJob:
    def __init__(
        self,
        settings: BatchSettings,
        *,
        workers: int | None = None,
        ray: str | None = None,
        ray_timeout: float | None = None,
        retry_failed: bool = False,
        restart: bool = False,
    ):
        from ..tasks.restore import resolve_preset

        self.settings = settings
        self.workers_wanted = workers
        self.ray_address = ray
        self.ray_timeout = ray_timeout
        if workers is not None and workers < 1:
            raise InputError("--workers must be at least 1.")
        if ray_timeout is not None and not ray_timeout > 0:
            raise InputError("--ray-timeout must be a number of seconds above 0.")
        self.plan = plan_batch(settings)
        self.model_id, folder = model_identity(settings.model)
        preset = resolve_preset(
            settings.preset,
            settings.spec,
            self.model_id["name"],
            settings.iterations_scale,
            family=model_family(folder),
        )
        self.result_settings = settings.result_settings(self.model_id, preset.to_dict())
        self.result_settings["input"] = str(settings.input_dir)
        self.digest = settings_digest(self.result_settings)
        self.out_dir = settings.output_dir
        prepare_output_dir(self.out_dir)
        self.journal = J.Journal(self.out_dir / WORK_DIR, restart=restart)
        try:
            _remove_stale_temp_files(self.out_dir, self.plan.items)
            self._check_settings(restart)
            self.notes = self.plan.notes() + self._sync(retry_failed)
            if self.journal.set_aside is not None:
                self.notes.insert(
                    0,
                    f"the damaged batch journal was kept as "
                    f"{self.journal.set_aside}; a new one was started.",
                )
        except BaseException:
            self.journal.close()
            raise
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self.stats = RunStats()
        self.by_rel = {item.rel: item for item in self.plan.items}
        self.closed = False
        self.fatal: DGPError | None = None
        self.outcome = "not started"
        self.stop_note = ""  # how a stop before the first picture went, when it says more
        self.final_counts: dict[str, int] = {}
        self.rows: list[J.ItemRow] = []
        self.pool: WorkerPool | None = None
        # each local worker's share of the memory budget, fixed when they start (Ray
        # workers judge by their own machine's budget)
        self.worker_budget: int | None = None
        self.worker_count = 1

    # --- before the run --------------------------------------------------------------------
    def _check_settings(self, restart: bool) -> None:
        old = self.journal.get("settings")
        if old is not None and old != self.result_settings:
            if not restart:
                changes = describe_changes(old, self.result_settings)
                raise InputError(
                    f"{self.out_dir} holds a batch job run with other settings: "
                    + "; ".join(changes)
                    + ". Run with the same settings to resume it, add "
                    "--restart to redo every picture with the new ones, or choose another "
                    "output folder."
                )
        if restart and old is not None:
            self.journal.reset_all()
        self.journal.put("settings", self.result_settings)
        self.journal.put("job", self.settings.to_dict())
        self.journal.put("schema", J.SCHEMA_VERSION)

    def _sync(self, retry_failed: bool) -> list[str]:
        """Bring the journal in line with the folder: new pictures pending, interrupted ones
        restarted, done ones checked (input unchanged, output there)."""
        jr = self.journal
        rows = {r.rel: r for r in jr.items()}
        notes = []
        recovered = restarted = changed = 0
        for item in self.plan.items:
            row = rows.pop(item.rel, None)
            jr.add(
                item.rel,
                self._rel_out(item.output),
                self._rel_out(item.state) if item.state else None,
                str(item.mask) if item.mask else None,
            )
            if row is None:
                if item.skip_reason:
                    jr.set_status(item.rel, J.SKIPPED, item.skip_reason)
                continue
            if row.status == J.RUNNING:
                if self._output_is(item, row.out_sha):
                    jr.set_status(item.rel, J.DONE)
                    recovered += 1
                else:
                    jr.back_to_pending(item.rel, "interrupted; started again")
                    restarted += 1
            elif row.status == J.DONE:
                why = self._done_still_valid(item, row)
                if why:
                    jr.back_to_pending(item.rel, why)
                    changed += 1
            elif row.status == J.FAILED:
                if retry_failed:
                    jr.back_to_pending(item.rel)
            elif row.status == J.SKIPPED:
                if item.skip_reason:
                    jr.set_status(item.rel, J.SKIPPED, item.skip_reason)
                else:
                    jr.back_to_pending(item.rel)
            if item.skip_reason and row.status == J.PENDING:
                jr.set_status(item.rel, J.SKIPPED, item.skip_reason)
        for rel, row in rows.items():  # inputs no longer in the folder
            if row.status != J.DONE:
                jr.set_status(rel, J.SKIPPED, "no longer in the input folder")
        if recovered:
            notes.append(
                f"{recovered} picture(s) written just before the last run stopped "
                "are counted as done."
            )
        if restarted:
            notes.append(f"{restarted} picture(s) interrupted in the last run start again.")
        if changed:
            notes.append(f"{changed} done picture(s) run again: input changed or output missing.")
        return notes

    def _rel_out(self, path: Path) -> str:
        return path.relative_to(self.out_dir).as_posix()

    @staticmethod
    def _output_is(item: BatchItem, sha: str | None) -> bool:
        if not sha or not item.output.is_file():
            return False
        try:
            return J.file_sha256(read_regular(item.output)) == sha
        except OSError:
            return False

    def _not_ours(self, item: BatchItem, row: J.ItemRow | None) -> str | None:
        """Why the existing output of ``item`` is not this job's to replace, or None: the
        job wrote it and it is as the job wrote it. An output edited by hand since (the
        input then changed, so the picture runs again) is the user's now."""
        if row is None or row.out_sha is None:
            return "not written by this job"
        if not self._output_is(item, row.out_sha):
            return "changed since this job wrote it"
        return None

    def _done_still_valid(self, item: BatchItem, row: J.ItemRow) -> str | None:
        """None if a done item stays done, else why it runs again."""
        if not item.output.is_file():
            return "output missing; run again"
        if item.state is not None and not item.state.is_file():
            return "state file missing; run again"
        if row.settings != self.digest:
            return "settings changed; run again"
        try:
            st = item.source.stat()
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) == (row.in_size, row.in_mtime):
            return None
        try:
            if J.file_sha256(read_regular(item.source)) == row.in_sha:
                return None
        except OSError:  # not readable (or no longer a regular file): planning says so
            return None
        return "input changed; run again"

    def _row(self, rel: str) -> J.ItemRow:
        row = self.journal.item(rel)
        assert row is not None, rel  # every planned picture has a row (see _sync)
        return row

    # --- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish the pictures being restored, start no more."""
        self._stop.set()

    def abandon(self) -> None:
        """Stop the current pictures too (within one iteration); they go back to pending."""
        self._stop.set()
        self._abandon.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def counts(self) -> dict[str, int]:
        return self.journal.counts()

    def todo(self) -> list[str]:
        return [r.rel for r in self.journal.items(J.PENDING)]

    # --- the run ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[BatchEvent]:
        return self._drive()

    def _make_pool(self, todo: int) -> WorkerPool:
        """The workers for ``todo`` pictures: never more than that (each holds a prior; 64
        asked for 2 pictures once took 2.5 minutes and 64 priors' memory instead of 4 s)."""
        from .runner import worker_config

        s = self.settings
        wanted = None if self.workers_wanted is None else min(self.workers_wanted, todo)
        if self.ray_address is not None:
            from .ray_backend import CONNECT_TIMEOUT_S, RayPool

            return RayPool(
                s,
                wanted,
                self.ray_address,
                timeout=self.ray_timeout or CONNECT_TIMEOUT_S,
                cancel=self._stop,
            )
        from ..system.memory import worker_budget
        from ..system.runtime import available_cores
        from .local import LocalPool

        n_default, devices = default_local_workers(s.device)
        n = max(1, min(wanted or n_default, todo))
        self.worker_count = n
        self.worker_budget = worker_budget(n)  # before the workers take their own memory
        devices = [devices[i % len(devices)] for i in range(n)]
        threads = s.threads or max(1, available_cores() // n)
        return LocalPool([worker_config(s, device=d, threads=threads) for d in devices])

    def _j(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """A journal write, timed (a full disk or a damaged journal is the journal's
        OutputError)."""
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        self.stats.journal_seconds += time.perf_counter() - t0
        self.stats.journal_ops += 1

    def _request(self, item: BatchItem, wid: int) -> dict[str, Any] | None:
        """Check the outputs can be written, read the input (and mask) for a worker; None
        when the item ends here (skipped or failed, before any work)."""
        t0 = time.perf_counter()
        row = self.journal.item(item.rel)
        if not self.settings.overwrite and os.path.lexists(item.output):
            why = self._not_ours(item, row)
            if why is not None:
                self._j(
                    self.journal.set_status,
                    item.rel,
                    J.SKIPPED,
                    f"an output of that name already exists ({why}); allow replacing "
                    "it with --overwrite",
                )
                return None
        for what, path in (("output", item.output), ("state file", item.state)):
            problem = output_problem(path, self.out_dir) if path is not None else None
            if problem:
                self._j(
                    self.journal.mark_failed, item.rel, f"its {what} cannot be written: {problem}"
                )
                return None
        try:
            # a regular file only, checked before and after opening (never blocks: a FIFO
            # swapped in since the folder was planned is refused, not waited on)
            with open_regular(item.source) as (fh, st):
                if self.worker_budget is not None and st.st_size > self.worker_budget:
                    why = why_too_big(st.st_size, self.worker_budget, self.worker_count)
                    self._j(
                        self.journal.mark_failed,
                        item.rel,
                        f"{item.rel} is {gb(st.st_size)}: {why}. Downscale or recompress it first.",
                    )
                    return None
                data = fh.read()
        except NotRegularFile as exc:
            self._j(
                self.journal.set_status,
                item.rel,
                J.SKIPPED,
                f"not a regular file ({exc.kind}): only picture files are read",
            )
            return None
        except OSError as exc:
            self._j(self.journal.mark_failed, item.rel, f"could not read it: {exc.strerror or exc}")
            return None
        size = image_size(data) if self.worker_budget is not None else None
        if size is not None:  # the single commands' check, on one worker's share
            try:
                check_fits(
                    size,
                    item.rel,
                    bytes_per_pixel=RUN_BYTES_PER_PIXEL,
                    budget=self.worker_budget,
                    workers=self.worker_count,
                )
            except InputError as exc:
                self._j(self.journal.mark_failed, item.rel, str(exc))
                return None
        mask = None
        if item.mask is not None:
            try:
                mask = read_mask(item.mask)
            except DGPError as exc:
                self._j(self.journal.mark_failed, item.rel, str(exc))
                return None
        self.stats.io_seconds += time.perf_counter() - t0
        self._j(
            self.journal.mark_running,
            item.rel,
            size=st.st_size,
            mtime=st.st_mtime_ns,
            sha=J.file_sha256(data),
            settings=self.digest,
            worker=str(wid),
        )
        return {
            "rel": item.rel,
            "source": str(item.source),
            "data": data,
            "mask": mask,
            "memory_budget": self.worker_budget,
            "workers": self.worker_count,
            "mask_name": item.mask.name if item.mask else None,
            "out_suffix": item.output.suffix,
            "want_state": item.state is not None,
        }

    def _write_result(
        self, item: BatchItem, resp: dict[str, Any]
    ) -> tuple[Path | None, Path | None]:
        """Outputs first (atomic), the journal after: see Journal.mark_writing."""
        t0 = time.perf_counter()
        thumbs = self.out_dir / WORK_DIR / "thumbs"
        row = self._row(item.rel)
        self._j(self.journal.mark_writing, item.rel, J.file_sha256(resp["output"]))
        for path, data in ((item.state, resp.get("state")), (item.output, resp["output"])):
            if path is None or data is None:
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(
                    f"Could not create {path.parent}: {exc.strerror or exc}."
                ) from exc
            write_atomic(path, _writer(data))
        t_in = t_out = None
        try:
            thumbs.mkdir(parents=True, exist_ok=True)
            t_in, t_out = thumbs / f"{row.id}-in.jpg", thumbs / f"{row.id}-out.jpg"
            t_in.write_bytes(resp["thumb_in"])
            t_out.write_bytes(resp["thumb_out"])
        except OSError as exc:  # thumbnails are a convenience: never fail an item for them
            log.warning("thumbnail for %s not written: %s", item.rel, exc)
        self.stats.io_seconds += time.perf_counter() - t0
        return t_in, t_out

    def _drive(self) -> Iterator[BatchEvent]:
        jr = self.journal
        st = self.stats
        st.started = time.time()
        pending = deque(self.todo())
        inflight: dict[int, tuple[str, float]] = {}  # wid → (rel, t_submit)
        pool: WorkerPool | None = None
        try:
            if not pending:
                self.outcome = "nothing to do"
            elif self._stop.is_set():  # stopped before the workers were asked for
                self.outcome = "stopped"
            else:
                try:
                    pool = self._make_pool(len(pending))
                except OperationCancelled as exc:  # stopped while reaching the workers
                    if not self._stop.is_set():
                        raise
                    self.outcome, self.stop_note = "stopped", str(exc)
                else:
                    yield from self._loop(pool, pending, inflight)
                    self.outcome = (
                        "abandoned"
                        if self._abandon.is_set()
                        else "stopped"
                        if self._stop.is_set()
                        else "finished"
                    )
        except DGPError as exc:
            self.fatal = exc
            self.outcome = "error"
            raise
        except BaseException:
            self.outcome = "interrupted"
            raise
        finally:
            if pool is not None:
                if self.outcome != "finished":
                    pool.abandon()
                try:
                    pool.close()
                except Exception as exc:  # noqa: BLE001 — cleanup goes on
                    log.warning("closing the batch workers: %s", exc)
            for rel, _ in inflight.values():
                try:
                    jr.back_to_pending(rel, "abandoned; starts again on the next run")
                except DGPError:
                    pass
            st.finished = time.time()
            try:
                jr.finish_run(self.outcome)
            except DGPError:
                pass
            self._write_report()
            self.close()
        yield BatchEvent("finished", counts=self.final_counts, message=self.outcome)

    def _loop(
        self, pool: WorkerPool, pending: deque[str], inflight: dict[int, tuple[str, float]]
    ) -> Iterator[BatchEvent]:
        jr = self.journal
        self.pool = pool  # for tests and tools that watch the workers
        lost_total = 0
        abandon_sent = False
        self._j(jr.start_run, pool.kind, pool.size)
        yield BatchEvent(
            "workers", message=f"starting {pool.size} {pool.kind} worker(s)", counts=jr.counts()
        )
        while True:
            if self._abandon.is_set() and not abandon_sent:
                pool.abandon()
                abandon_sent = True
            if not self._stop.is_set():
                for wid in pool.idle():
                    request = None
                    while pending and request is None:
                        rel = pending.popleft()
                        request = self._request(self.by_rel[rel], wid)
                        if request is None:
                            row = self._row(rel)
                            yield BatchEvent(
                                "item", rel, row.status, row.reason, counts=jr.counts()
                            )
                    if request is None:
                        break
                    pool.submit(wid, request)
                    inflight[wid] = (request["rel"], time.perf_counter())
                    yield BatchEvent("item", request["rel"], J.RUNNING, counts=jr.counts())
            if not inflight and (self._stop.is_set() or not pending):
                break
            for ev in pool.poll(0.25):
                kind, wid = ev[0], ev[1]
                if kind == "ready":
                    yield BatchEvent("workers", message=f"worker {ev[2]['worker']} ready")
                elif kind == "error":
                    raise DGPError(f"A batch worker could not start: {ev[2]}")
                elif kind == "progress":
                    yield BatchEvent(
                        "progress", ev[2], J.RUNNING, step=ev[3], total=ev[4], eta=ev[5]
                    )
                elif kind == "result":
                    rel, t_sub = inflight.pop(wid)
                    yield self._finish(self.by_rel[rel], ev[2], time.perf_counter() - t_sub)
                elif kind == "lost":
                    lost = inflight.pop(wid, None)
                    lost_total += 1
                    if lost is not None:
                        rel = lost[0]
                        row = self._row(rel)
                        if row.attempts >= MAX_ATTEMPTS:
                            self._j(
                                jr.mark_failed,
                                rel,
                                f"its worker died {row.attempts} "
                                f"times while restoring it ({ev[3]})",
                            )
                        else:
                            self._j(jr.back_to_pending, rel, f"worker lost ({ev[3]})")
                            pending.appendleft(rel)
                        row = self._row(rel)
                        yield BatchEvent("item", rel, row.status, row.reason, counts=jr.counts())
                    if lost_total > 2 * pool.size + MAX_ATTEMPTS or not pool.replace(wid):
                        raise DGPError(f"Batch workers keep dying ({ev[3]}); stopping.")
                    yield BatchEvent("workers", message=f"worker lost ({ev[3]}); replaced")

    def _finish(self, item: BatchItem, resp: dict[str, Any], wall: float) -> BatchEvent:
        jr = self.journal
        status = resp["status"]
        if status == "done":
            try:
                t_in, t_out = self._write_result(item, resp)
            except OutputError as exc:
                if _stops_every_write(exc):
                    self._j(jr.back_to_pending, item.rel, "its output could not be written")
                    raise
                # this picture's name or folder: the others can still be written
                self._j(
                    jr.mark_failed,
                    item.rel,
                    f"its output could not be written: {exc}",
                    resp["seconds"],
                )
                self.stats.failed += 1
                return BatchEvent(
                    "item",
                    item.rel,
                    J.FAILED,
                    str(exc),
                    seconds=resp["seconds"],
                    counts=jr.counts(),
                )
            self._j(
                jr.mark_done,
                item.rel,
                seconds=resp["seconds"],
                class_id=resp.get("class_id"),
                notes=resp.get("notes") or [],
            )
            self.stats.done += 1
            self.stats.worker_seconds += resp["seconds"]
            self.stats.item_wall += wall
            return BatchEvent(
                "item",
                item.rel,
                J.DONE,
                seconds=resp["seconds"],
                thumb_in=t_in,
                thumb_out=t_out,
                output=item.output,
                counts=jr.counts(),
            )
        if status == "skipped":  # the worker decided (e.g. a colorize input in colour)
            self._j(jr.set_status, item.rel, J.SKIPPED, resp.get("reason"))
            return BatchEvent("item", item.rel, J.SKIPPED, resp.get("reason"), counts=jr.counts())
        if status == "abandoned":
            self._j(jr.back_to_pending, item.rel, "abandoned; starts again on the next run")
            return BatchEvent("item", item.rel, J.PENDING, "abandoned", counts=jr.counts())
        self._j(
            jr.mark_failed, item.rel, resp.get("reason") or "unknown error", resp.get("seconds")
        )
        self.stats.failed += 1
        return BatchEvent(
            "item",
            item.rel,
            J.FAILED,
            resp.get("reason"),
            seconds=resp.get("seconds"),
            counts=jr.counts(),
        )

    def _write_report(self) -> None:
        try:
            self.final_counts = self.journal.counts()
            self.rows = self.journal.items()
            write_contact_sheet(self.out_dir, self.rows, self.settings)
        except (OSError, DGPError) as exc:
            log.warning("the contact sheet was not written: %s", exc)
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.journal.close()

    def __del__(self) -> None:  # a job never iterated still releases its lock
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def _stops_every_write(exc: OutputError) -> bool:
    """A write error every other picture would meet too (disk full, read-only file
    system, or one we cannot tell): the job stops, the picture stays pending."""
    cause = exc.__cause__
    return not isinstance(cause, OSError) or cause.errno in (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EIO,
    )


def _writer(data: bytes) -> Callable[[BinaryIO], object]:
    return lambda f: f.write(data)


def _remove_stale_temp_files(out_dir: Path, items: list[BatchItem]) -> None:
    """Temp files that a killed run of ours left: only those of the files this job writes
    (its outputs, states and contact sheet) and in its own work folder, and only when their
    writer's process is dead on this host (:func:`dgp_engine.system.fileio.clean_stale_temps_for`).
    Anything else in the output folder — other programs' files, another ``dgp`` writing
    there — is not ours to touch."""
    targets = [out_dir / CONTACT_SHEET]
    for item in items:
        targets.append(item.output)
        if item.state is not None:
            targets.append(item.state)
    clean_stale_temps_for(targets)
    clean_stale_temps(out_dir / WORK_DIR, again=True)

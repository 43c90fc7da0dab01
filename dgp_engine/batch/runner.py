"""One batch worker: loads the prior once, then restores pictures sent to it as bytes and
answers with encoded results (+ the reconstruction state as bytes, thumbnails).

The same :class:`ItemRunner` runs in a local worker process and inside a Ray actor, so
both back ends restore exactly as ``dgp colorize|inpaint|…`` does: the job's settings
become a :class:`~dgp_engine.tasks.request.RestoreRequest`, resolved once when the
worker starts (device, threads, precision, prior, class, preset, as the CLI resolves
its arguments), and each picture runs that resolution with its own mask.  It never
writes into the output folder: the driver does, so one process owns the journal and the
outputs.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DGPError
from ..method.taskspec import COLOR_TRANSFER
from .plan import BatchSettings

if TYPE_CHECKING:
    from ..tasks.request import RestoreRequest

log = logging.getLogger(__name__)

THUMB_SIDE = 160
# (picture, step, total steps, seconds left) while a picture is restored
ProgressCallback = Callable[[str, int, int, float | None], None]
# worker → driver progress messages at most this often (seconds)
PROGRESS_INTERVAL = 1.0


def worker_config(
    settings: BatchSettings, *, device: str | None, threads: int | None
) -> dict[str, Any]:
    """What a worker needs to start (plain data: it crosses process and node borders;
    :func:`restore_request` makes the engine's request of it)."""
    return {
        "task": settings.task,
        "model": settings.model,
        "preset": settings.preset,
        "iterations_scale": settings.iterations_scale,
        "class_spec": settings.class_spec,
        "seed": settings.seed,
        "exact": settings.exact,
        "factor": settings.factor,
        "feather": settings.feather,
        "device": device,
        "threads": threads,
        "precision": settings.precision,
        "recolor": settings.recolor,
    }


def restore_request(config: dict[str, Any]) -> RestoreRequest:
    """The engine's request a worker's config asks for (each picture adds its mask)."""
    from ..tasks.request import RestoreRequest

    return RestoreRequest(
        config["task"],
        model=config["model"],
        preset=config.get("preset"),
        iterations_scale=config.get("iterations_scale"),
        class_spec=config.get("class_spec", "auto"),
        seed=config.get("seed", 0),
        exact=bool(config.get("exact", False)),
        device=config.get("device"),
        precision=config.get("precision") or "auto",
        threads=config.get("threads"),
        factor=config.get("factor"),
        feather=config.get("feather"),
    )


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> bytes:
    from PIL import Image

    from ..files.photos import unit_to_uint8

    img = Image.fromarray(unit_to_uint8(rgb), "RGB")
    img.thumbnail((side, side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class ItemRunner:
    """Holds the resolved request (the prior loaded once); :meth:`process` restores one
    picture, :meth:`cancel` (from another thread: the worker's signal watcher, a Ray
    call) stops the one it is at."""

    def __init__(self, config: dict[str, Any]) -> None:
        from ..tasks.request import resolve_request

        self.config = config
        self._cancel = threading.Event()
        # a precision this device cannot compute in stops the worker before the model loads
        self.ready = resolve_request(restore_request(config))
        self.device = self.ready.device
        self.prior = self.ready.prior
        self.preset = self.ready.preset
        self.name = f"{socket.gethostname()}:{os.getpid()} {self.device}"

    def info(self) -> dict[str, Any]:
        return {
            "worker": self.name,
            "device": str(self.device),
            "threads": self.ready.threads,
            "precision": self.ready.compute_precision,
            "preset": self.preset.to_dict(),
        }

    def cancel(self) -> None:
        """Stop the picture being restored (thread-safe); it is answered "abandoned"."""
        self._cancel.set()

    def process(
        self, request: dict[str, Any], on_progress: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Restore ``request['data']`` (encoded picture bytes); returns a response dict with
        ``status`` done / failed / abandoned."""
        self._cancel.clear()
        t0 = time.perf_counter()
        out: dict[str, Any] = {"rel": request["rel"], "worker": self.name}
        try:
            out.update(self._restore(request, on_progress))
        except DGPError as exc:
            out.update(status="failed", reason=str(exc))
        except Exception as exc:  # noqa: BLE001 — one bad picture must not end the job
            log.error("%s failed:\n%s", request["rel"], traceback.format_exc())
            out.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        out["seconds"] = time.perf_counter() - t0
        return out

    def _restore(
        self, request: dict[str, Any], on_progress: ProgressCallback | None
    ) -> dict[str, Any]:
        from ..files.photos import check_mask, decode_image, save_image
        from ..system.memory import RUN_BYTES_PER_PIXEL

        rel = request["rel"]
        # the single commands' memory check before decoding: on this worker's share of the
        # budget (local workers), else on this machine's budget (Ray)
        photo = decode_image(
            request["data"],
            name=rel,
            bytes_per_pixel=RUN_BYTES_PER_PIXEL,
            budget=request.get("memory_budget"),
            workers=request.get("workers") or 1,
        )
        if request.get("source"):  # the state records where its photo is (manipulation)
            photo = dataclasses.replace(photo, path=Path(request["source"]))
        thumb_in = thumbnail(photo.rgb)
        if self.ready.task.compose == COLOR_TRANSFER and not self.config.get("recolor"):
            from ..tasks.postprocess import colour_check

            check = colour_check(photo.rgb)
            if check.colour:  # its true colours would be replaced
                return {
                    "status": "skipped",
                    "thumb_in": thumb_in,
                    "reason": f"{check.reason}; --recolor colorizes it anyway",
                }
        hole = None
        if request.get("mask") is not None:
            hole = check_mask(request["mask"], photo.size, f"The mask {request['mask_name']}")
        job = self.ready.for_picture(mask=hole).start(photo, cancel=self._cancel)
        last = 0.0
        for report in job:
            now = time.monotonic()
            if on_progress is not None and report.state is None and now - last >= PROGRESS_INTERVAL:
                last = now
                on_progress(
                    rel,
                    report.step if report.phase == "optimize" else 0,
                    job.preset.total_iterations,
                    report.eta,
                )
        result = job.result
        if result is None or result.cancelled:
            return {"status": "abandoned", "reason": "stopped before the end"}
        with tempfile.TemporaryDirectory(prefix="dgp-batch-") as tmp:
            path = save_image(result.photo, Path(tmp) / f"out{request['out_suffix']}")
            data = path.read_bytes()
            state = None
            if request.get("want_state"):
                state = result.state.save(Path(tmp) / "state.dgp").read_bytes()
        return {
            "status": "done",
            "output": data,
            "state": state,
            "thumb_in": thumb_in,
            "thumb_out": thumbnail(result.photo.rgb),
            "class_id": result.state.class_id,
            "notes": list(job.notes),
            "size": result.photo.size,
        }

"""One batch worker: loads the prior once, then restores pictures sent to it as bytes and
answers with encoded results (+ the reconstruction state as bytes, thumbnails).

The same :class:`ItemRunner` runs in a local worker process and inside a Ray actor, so
both back ends restore exactly as ``dgp colorize|inpaint|…`` does: it calls the
single-image pipeline (:func:`dgp_engine.tasks.restore.restore_image`, the CLI's class
resolution and image writing).  It never writes into the output folder: the driver
does, so one process owns the journal and the outputs.
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
from typing import Any

import numpy as np

from ..errors import DGPError
from .plan import BatchSettings

log = logging.getLogger(__name__)

THUMB_SIDE = 160
# (picture, step, total steps, seconds left) while a picture is restored
ProgressCallback = Callable[[str, int, int, float | None], None]
# worker → driver progress messages at most this often (seconds)
PROGRESS_INTERVAL = 1.0


def worker_config(settings: BatchSettings, *, device: str | None, threads: int | None
                  ) -> dict[str, Any]:
    """What a worker needs to start (plain data: it crosses process and node borders)."""
    return {
        "task": settings.task, "model": settings.model, "preset": settings.preset,
        "iterations_scale": settings.iterations_scale, "class_spec": settings.class_spec,
        "seed": settings.seed, "exact": settings.exact, "factor": settings.factor,
        "feather": settings.feather, "device": device, "threads": threads,
        "precision": settings.precision, "recolor": settings.recolor,
    }


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> bytes:
    from PIL import Image

    from ..files.photos import unit_to_uint8

    img = Image.fromarray(unit_to_uint8(rgb), "RGB")
    img.thumbnail((side, side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class ItemRunner:
    """Holds the prior; :meth:`process` restores one picture."""

    def __init__(self, config: dict[str, Any]) -> None:
        from ..method.compute import resolve_precision
        from ..priors.load import load_prior
        from ..system.runtime import configure
        from ..tasks.restore import resolve_device, resolve_preset

        self.config = config
        self.cancel_event = threading.Event()
        self.device = resolve_device(config.get("device"))
        # a precision this device cannot compute in stops the worker before the model loads
        self.precision = config.get("precision") or "auto"
        self.resolved_precision = resolve_precision(self.precision, self.device,
                                                    bool(config.get("exact", False)))
        self.threads = configure(config.get("threads"))
        self.prior = load_prior(config["model"], device=self.device)
        self.preset = resolve_preset(config.get("preset"), config["task"], self.prior.name,
                                     config.get("iterations_scale"))
        self.class_id = self.prior.choose_class(config.get("class_spec", "auto"))
        self.name = f"{socket.gethostname()}:{os.getpid()} {self.device}"

    def info(self) -> dict[str, Any]:
        return {"worker": self.name, "device": str(self.device), "threads": self.threads,
                "precision": self.resolved_precision, "preset": self.preset.to_dict()}

    def process(self, request: dict[str, Any], on_progress: ProgressCallback | None = None
                ) -> dict[str, Any]:
        """Restore ``request['data']`` (encoded picture bytes); returns a response dict with
        ``status`` done / failed / abandoned."""
        self.cancel_event.clear()
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

    def _restore(self, request: dict[str, Any], on_progress: ProgressCallback | None
                 ) -> dict[str, Any]:
        from ..files.photos import check_mask, decode_image, save_image
        from ..system.memory import RUN_BYTES_PER_PIXEL
        from ..tasks.restore import restore_image

        rel = request["rel"]
        # the single commands' memory check before decoding: on this worker's share of the
        # budget (local workers), else on this machine's budget (Ray)
        photo = decode_image(request["data"], name=rel, bytes_per_pixel=RUN_BYTES_PER_PIXEL,
                             budget=request.get("memory_budget"),
                             workers=request.get("workers") or 1)
        if request.get("source"):  # the state records where its photo is (manipulation)
            photo = dataclasses.replace(photo, path=Path(request["source"]))
        thumb_in = thumbnail(photo.rgb)
        if self.config["task"] == "colorize" and not self.config.get("recolor"):
            from ..tasks.postprocess import colour_check

            check = colour_check(photo.rgb)
            if check.colour:  # its true colours would be replaced
                return {"status": "skipped", "thumb_in": thumb_in,
                        "reason": f"{check.reason}; --recolor colorizes it anyway"}
        hole = None
        if request.get("mask") is not None:
            hole = check_mask(request["mask"], photo.size, f"The mask {request['mask_name']}")
        job = restore_image(self.prior, photo, self.config["task"], mask=hole,
                            factor=self.config.get("factor"), class_id=self.class_id,
                            preset=self.preset, seed=self.config.get("seed", 0),
                            exact=self.config.get("exact", False), cancel=self.cancel_event,
                            feather=self.config.get("feather"), precision=self.precision)
        last = 0.0
        for report in job:
            now = time.monotonic()
            if on_progress is not None and report.state is None and now - last >= \
                    PROGRESS_INTERVAL:
                last = now
                on_progress(rel, report.step if report.phase == "optimize" else 0,
                            job.preset.total_iterations, report.eta)
        result = job.result
        if result is None or result.cancelled:
            return {"status": "abandoned", "reason": "stopped before the end"}
        with tempfile.TemporaryDirectory(prefix="dgp-batch-") as tmp:
            path = save_image(result.photo, Path(tmp) / f"out{request['out_suffix']}")
            data = path.read_bytes()
            state = None
            if request.get("want_state"):
                state = result.state.save(Path(tmp) / "state.dgp").read_bytes()
        return {"status": "done", "output": data, "state": state, "thumb_in": thumb_in,
                "thumb_out": thumbnail(result.photo.rgb), "class_id": result.state.class_id,
                "notes": list(job.notes), "size": result.photo.size}

"""Ray execution: one actor per GPU (or per CPU worker) holding the prior.

The driver keeps the journal and writes every output; actors get each picture as
bytes and answer with the encoded result (+ the state file's bytes), so no shared
filesystem is assumed — only that DGP Studio and the model are installed on every
node (``pip install "dgp-studio[cluster]"``; ``--model bundled`` ships inside it, a
registry model must be pulled on each node).  An actor lost mid-job (its node went
away, it was killed) gives its picture back to pending and is replaced; the driver
goes on.  Ray is optional: without it ``--ray`` says how to install it.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from ..errors import DGPError
from .plan import BatchSettings
from .runner import worker_config

log = logging.getLogger(__name__)

INSTALL_HINT = ('Ray is not installed: install the cluster extra with '
                'pip install "dgp-studio[cluster]" (or pip install "ray>=2.9").')


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DGPError(INSTALL_HINT) from None
    return ray


class _RayWorker:
    """The actor: an ItemRunner; a start-up error is kept and reported by ``info``."""

    def __init__(self, config: dict[str, Any]) -> None:
        from .runner import ItemRunner

        self.runner: ItemRunner | None = None
        self.error: str | None = None
        try:
            self.runner = ItemRunner(config)
        except DGPError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 — reported to the driver
            self.error = f"{type(exc).__name__}: {exc}"

    def info(self) -> dict[str, Any]:
        return {"error": self.error} if self.runner is None else self.runner.info()

    def process(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.runner is not None  # the driver sends pictures only to ready actors
        return self.runner.process(request)

    def cancel(self) -> None:
        if self.runner is not None:
            self.runner.cancel_event.set()


class RayPool:
    """Ray actors behind the same protocol as :class:`.local.LocalPool`."""

    kind = "ray"

    def __init__(self, settings: BatchSettings, workers: int | None, address: str) -> None:
        ray = require_ray()
        self.ray = ray
        self.started_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address not in (None, "", "local"):
                kwargs["address"] = address
            # ray.init installs its own SIGTERM/SIGINT handlers; the command's interrupt
            # machine must keep deciding what a signal does.
            kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                ray.init(**kwargs)
            except Exception as exc:  # noqa: BLE001 — a connection problem, said plainly
                raise DGPError(f"Could not start or reach Ray ({address}): {exc}") from exc
            finally:
                if threading.current_thread() is threading.main_thread():
                    for sig, handler in kept.items():
                        if handler is not None:
                            signal.signal(sig, handler)
            self.started_ray = True
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        cpus = int(res.get("CPU", 1))
        use_gpu = gpus > 0 and str(settings.device or "auto").lower() not in ("cpu",)
        if use_gpu:
            n = workers or gpus
            options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
            config = worker_config(settings, device="cuda", threads=settings.threads or 1)
        else:
            alive = [nd for nd in ray.nodes() if nd.get("Alive")]
            n = workers or max(1, len(alive))
            per = max(1, cpus // n)
            options = {"num_cpus": per}
            config = worker_config(settings, device="cpu", threads=settings.threads or per)
        self.options = {**options, "max_restarts": 0, "max_concurrency": 2}
        self.config = config
        self.actor_class = ray.remote(_RayWorker)
        self.actors: dict[int, Any] = {}
        self.info_refs: dict[Any, int] = {}   # ObjectRef → wid (start-up)
        self.task_refs: dict[Any, int] = {}   # ObjectRef → wid (a picture)
        self.ready: set[int] = set()
        self.busy: dict[int, str] = {}
        self.size = n
        for wid in range(n):
            self._start(wid)

    def _start(self, wid: int) -> None:
        actor = self.actor_class.options(**self.options).remote(self.config)
        self.actors[wid] = actor
        self.info_refs[actor.info.remote()] = wid

    def idle(self) -> list[int]:
        return [w for w in sorted(self.ready) if w not in self.busy]

    def submit(self, wid: int, request: dict[str, Any]) -> None:
        self.busy[wid] = request["rel"]
        self.task_refs[self.actors[wid].process.remote(request)] = wid

    def replace(self, wid: int) -> bool:
        self.ready.discard(wid)
        self.busy.pop(wid, None)
        try:
            self.ray.kill(self.actors[wid])
        except Exception:  # noqa: BLE001 — already gone
            pass
        self._start(wid)
        return True

    def poll(self, timeout: float) -> list[tuple[Any, ...]]:
        ray = self.ray
        refs = list(self.info_refs) + list(self.task_refs)
        if not refs:
            return []
        done, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            done += more
        events: list[tuple[Any, ...]] = []
        for ref in done:
            if ref in self.info_refs:
                wid = self.info_refs.pop(ref)
                try:
                    info = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    events.append(("error", wid, f"Ray actor did not start: {exc}"))
                    continue
                if info.get("error"):
                    events.append(("error", wid, info["error"]))
                else:
                    self.ready.add(wid)
                    events.append(("ready", wid, info))
                continue
            wid = self.task_refs.pop(ref)
            rel = self.busy.pop(wid, None)
            try:
                events.append(("result", wid, ray.get(ref)))
            except ray.exceptions.RayError as exc:
                self.ready.discard(wid)
                why = f"Ray actor lost: {type(exc).__name__}"
                log.warning("%s (%s): %s", why, rel, exc)
                events.append(("lost", wid, rel, why))
        return events

    def abandon(self) -> None:
        for wid in list(self.busy):
            try:
                self.actors[wid].cancel.remote()
            except Exception:  # noqa: BLE001 — a lost actor has nothing to cancel
                pass

    def close(self, timeout: float = 10.0) -> None:
        ray = self.ray
        if self.task_refs:
            try:
                ray.wait(list(self.task_refs), num_returns=len(self.task_refs),
                         timeout=timeout)
            except Exception:  # noqa: BLE001
                pass
        for actor in self.actors.values():
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        if self.started_ray:
            ray.shutdown()

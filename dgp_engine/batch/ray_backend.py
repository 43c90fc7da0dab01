"""Ray execution: one actor per GPU (or per CPU worker) holding the prior.

The driver keeps the journal and writes every output; actors get each picture as
bytes and answer with the encoded result (+ the state file's bytes), so no shared
filesystem is assumed — only that DGP Studio and the model are installed on every
node (``pip install "dgp-studio[cluster]"``; ``--model bundled`` ships inside it, a
registry model must be pulled on each node).  An actor lost mid-job (its node went
away, it was killed) gives its picture back to pending and is replaced; the driver
goes on.  Ray is optional: without it ``--ray`` says how to install it.

Connecting to a cluster gives up after a timeout (``--ray-timeout``, default
:data:`CONNECT_TIMEOUT_S`): Ray itself retries an unreachable address for many minutes
inside native calls that no signal interrupts.  So the address is first probed with a
plain TCP connection, and ``ray.init`` runs on a helper thread while the driver waits
for it in short steps, watching the timeout and the stop request (the first Ctrl-C).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from typing import Any

from ..errors import DGPError, OperationCancelled
from .plan import BatchSettings
from .runner import worker_config

log = logging.getLogger(__name__)

# Seconds to reach a Ray cluster given by address before giving up (connecting to a live
# cluster takes well under a second; Ray alone retries an unreachable one for minutes).
CONNECT_TIMEOUT_S = 30.0

INSTALL_HINT = (
    "Ray is not installed: install the cluster extra with "
    'pip install "dgp-studio[cluster]" (or pip install "ray>=2.9").'
)


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
            self.runner.cancel()


class RayPool:
    """Ray actors behind the same protocol as :class:`.local.LocalPool`."""

    kind = "ray"

    def __init__(
        self,
        settings: BatchSettings,
        workers: int | None,
        address: str,
        *,
        timeout: float = CONNECT_TIMEOUT_S,
        cancel: threading.Event | None = None,
    ) -> None:
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
                if "address" in kwargs:
                    connect(ray, address, kwargs, timeout=timeout, cancel=cancel)
                else:
                    ray.init(**kwargs)
            except DGPError:
                raise
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
        self.info_refs: dict[Any, int] = {}  # ObjectRef → wid (start-up)
        self.task_refs: dict[Any, int] = {}  # ObjectRef → wid (a picture)
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
                ray.wait(list(self.task_refs), num_returns=len(self.task_refs), timeout=timeout)
            except Exception:  # noqa: BLE001
                pass
        for actor in self.actors.values():
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        if self.started_ray:
            ray.shutdown()


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port``, ``[v6]:port`` or ``ray://host:port``; None for the
    forms Ray resolves itself (``auto``) or that have no port."""
    text = address.strip()
    if text.startswith("ray://"):
        text = text[len("ray://") :]
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def _probe(host: str, port: int, timeout: float) -> None:
    """A plain TCP connection to the cluster's address (a closed port or a host that does
    not exist fails at once, instead of inside Ray's retries)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror as exc:
        raise DGPError(
            f"Could not reach Ray at {host}:{port}: the host name {host!r} is "
            "unknown. Check the head node's address."
        ) from exc
    except TimeoutError as exc:
        raise _no_answer(f"{host}:{port}", timeout) from exc
    except OSError as exc:
        raise DGPError(
            f"Could not reach Ray at {host}:{port} ({exc.strerror or exc}): check "
            "the head node's address and port (`ray start --head` prints them) "
            "and that the cluster is running."
        ) from exc


def connect(
    ray: Any,
    address: str,
    kwargs: dict[str, Any],
    *,
    timeout: float,
    cancel: threading.Event | None,
) -> None:
    """``ray.init(**kwargs)`` to the cluster at ``address``, given up after ``timeout``
    seconds (DGPError) or as soon as ``cancel`` is set (OperationCancelled).

    Both the probe and ``ray.init`` run on a daemon thread: what they block in cannot be
    interrupted, and a process that gives up leaves it behind (it ends with the process).
    Off the main thread Ray installs no signal handlers."""
    outcome: dict[str, BaseException | None] = {}
    target = parse_address(address)

    def attempt() -> None:
        try:
            if target is not None:
                _probe(*target, timeout)
            ray.init(**kwargs)
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001 — handed to the waiting thread
            outcome["error"] = exc

    # (kept: the thread may get there after this function gave up)
    logging.getLogger("ray._private.worker").addFilter(_QUIET)
    thread = threading.Thread(target=attempt, name="dgp-ray-connect", daemon=True)
    deadline = time.monotonic() + timeout
    thread.start()
    while thread.is_alive():
        if cancel is not None and cancel.is_set():
            raise OperationCancelled(
                f"Stopped while connecting to Ray at {address}: no picture was started."
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise _no_answer(address, timeout)
        thread.join(min(0.1, left))
    error = outcome.get("error")
    if isinstance(error, DGPError):
        raise error
    if error is not None:
        raise DGPError(f"Could not reach Ray at {address}: {error}") from error


def _no_answer(address: str, timeout: float) -> DGPError:
    return DGPError(
        f"Ray at {address} did not answer within {timeout:g} s: check the head "
        "node's address and port and that the cluster is running and reachable "
        "from here (--ray-timeout sets how long to wait)."
    )


class _QuietThreadWarning(logging.Filter):
    """Drops Ray's warning that it set no SIGTERM handler off the main thread (on purpose:
    the command's own handlers stay in charge)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "handler is not set" not in record.getMessage()


_QUIET = _QuietThreadWarning()

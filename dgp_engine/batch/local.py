"""Local execution: N worker processes, each loading the prior once.

Processes are started with ``spawn`` (a forked copy of a process that already ran
torch threads can deadlock).  Each worker has its own task queue, so the driver
always knows which picture a worker holds: a worker that dies (killed, out of
memory) gives its picture back and is replaced.  Workers ignore Ctrl-C — the driver
decides whether current pictures finish or are abandoned — and exit by themselves
when the driver dies.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from typing import Any

from ..errors import DGPError


def _worker_main(wid: int, config: dict[str, Any], tasks: Any, results: Any, abandon: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C
    runner_box: list[Any] = []

    def watch() -> None:
        parent = mp.parent_process()
        while True:
            if parent is not None and not parent.is_alive():
                os._exit(3)  # nothing to save: the driver writes every output
            if abandon.is_set() and runner_box:
                runner_box[0].cancel()
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True, name="dgp-batch-watch").start()
    from .runner import ItemRunner

    try:
        runner = ItemRunner(config)
    except DGPError as exc:
        results.put(("error", wid, str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 — said to the driver, which stops the job
        results.put(("error", wid, f"{type(exc).__name__}: {exc}"))
        return
    runner_box.append(runner)
    results.put(("ready", wid, runner.info()))

    def progress(rel: str, step: int, total: int, eta: float | None) -> None:
        results.put(("progress", wid, rel, step, total, eta))

    while True:
        request = tasks.get()
        if request is None:
            return
        results.put(("result", wid, runner.process(request, on_progress=progress)))


class LocalPool:
    """Worker processes on this machine; see :class:`dgp_engine.batch.job.BatchJob` for
    the protocol (``submit``, ``poll`` → events, ``abandon``, ``close``)."""

    kind = "local"

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        self.ctx = mp.get_context("spawn")
        self.configs = configs
        self.results = self.ctx.Queue()
        self.abandon_event = self.ctx.Event()
        self.procs: dict[int, mp.process.BaseProcess] = {}
        self.tasks: dict[int, Any] = {}
        self.ready: set[int] = set()
        self.busy: dict[int, str] = {}
        self.dead: set[int] = set()
        for wid in range(len(configs)):
            self._spawn(wid)

    @property
    def size(self) -> int:
        return len(self.configs)

    def _spawn(self, wid: int) -> None:
        self.tasks[wid] = self.ctx.Queue()
        p = self.ctx.Process(
            target=_worker_main,
            name=f"dgp-batch-{wid}",
            daemon=True,
            args=(wid, self.configs[wid], self.tasks[wid], self.results, self.abandon_event),
        )
        p.start()
        self.procs[wid] = p

    def idle(self) -> list[int]:
        return [w for w in sorted(self.ready) if w not in self.busy]

    def submit(self, wid: int, request: dict[str, Any]) -> None:
        self.busy[wid] = request["rel"]
        self.tasks[wid].put(request)

    def replace(self, wid: int) -> bool:
        self.ready.discard(wid)
        self.busy.pop(wid, None)
        self.dead.discard(wid)
        self._spawn(wid)
        return True

    def poll(self, timeout: float) -> list[tuple[Any, ...]]:
        events: list[tuple[Any, ...]] = []
        try:
            events.append(self.results.get(timeout=timeout))
            while True:
                events.append(self.results.get_nowait())
        except queue.Empty:
            pass
        for ev in events:
            if ev[0] == "ready":
                self.ready.add(ev[1])
            elif ev[0] == "result":
                self.busy.pop(ev[1], None)
        for ev in events:
            if ev[0] == "error":
                self.dead.add(ev[1])
        for wid, p in list(self.procs.items()):
            if p.is_alive() or wid in self.dead:
                continue
            self.dead.add(wid)
            why = f"worker process {p.pid} ended (exit code {p.exitcode})"
            if wid in self.ready:
                self.ready.discard(wid)
                events.append(("lost", wid, self.busy.pop(wid, None), why))
            else:
                events.append(("error", wid, why + " while starting"))
        return events

    def abandon(self) -> None:
        self.abandon_event.set()

    def close(self, timeout: float = 10.0) -> None:
        for wid, q in self.tasks.items():
            if self.procs[wid].is_alive():
                try:
                    q.put(None)
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs.values():
            if p.is_alive():
                p.terminate()
                p.join(2)
        for q in (*self.tasks.values(), self.results):
            q.cancel_join_thread()
            q.close()

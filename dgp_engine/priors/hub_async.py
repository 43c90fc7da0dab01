"""The model operations for asyncio (the app's qasync loop): each runs the blocking
call of :mod:`dgp_engine.priors.hub` in a worker thread, delivers progress on the event loop and
honours task cancellation (nothing half-done is kept)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .hub import VerifyResult, import_files, import_pickle, pull, remove, verify
from .progress import ProgressCallback, TransferProgress
from .registry import InstalledModel

T = TypeVar("T")


async def _in_thread(
    fn: Callable[..., T],
    *args: Any,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    **kwargs: Any,
) -> T:
    """Run a blocking model operation in a worker thread: progress callbacks are delivered
    on the event loop (the GUI thread under qasync), and cancelling the awaiting task
    sets the cancel event and waits until the worker has cleaned up before the
    CancelledError propagates. (A cancel that arrives after the last step cannot undo a
    finished install; refresh the model list after a cancel.)"""
    loop = asyncio.get_running_loop()
    event = cancel if cancel is not None else threading.Event()
    relay = None
    if progress is not None:

        def relay(report: TransferProgress) -> None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(progress, report)

    future = loop.run_in_executor(
        None, functools.partial(fn, *args, progress=relay, cancel=event, **kwargs)
    )
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        event.set()
        # The worker stops at its next progress step and tidies up; wait for that, even if
        # the task is cancelled again meanwhile (shielded: cancelling the executor future
        # would not stop the thread, only stop us from waiting for it).
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        raise


async def pull_async(
    name: str,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> InstalledModel:
    """:func:`pull` off the event loop; cancel the task (or set ``cancel``) to stop it."""
    return await _in_thread(pull, name, progress=progress, cancel=cancel, **kwargs)


async def import_files_async(
    name: str,
    g: str | Path,
    d: str | Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> InstalledModel:
    """:func:`import_files` off the event loop."""
    return await _in_thread(import_files, name, g, d, progress=progress, cancel=cancel, **kwargs)


async def import_pickle_async(
    name: str,
    pkl: str | Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> InstalledModel:
    """:func:`import_pickle` off the event loop (an NVIDIA StyleGAN2 network pickle)."""
    return await _in_thread(import_pickle, name, pkl, progress=progress, cancel=cancel, **kwargs)


async def verify_async(
    names: list[str] | str | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[VerifyResult]:
    """:func:`verify` off the event loop."""
    return await _in_thread(verify, names, progress=progress, cancel=cancel)


async def remove_async(name: str, **kwargs: Any) -> Path:
    """:func:`remove` off the event loop (deleting large files can take a moment)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(remove, name, **kwargs))

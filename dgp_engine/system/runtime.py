"""Process-wide compute settings: thread count and allocator behaviour
(docs/method.md#where-the-time-goes)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

import torch

log = logging.getLogger(__name__)

# glibc mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_allocator_tuned = False
_libc: ctypes.CDLL | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """For the app: one core left for the UI and the OS (2 intra-op threads on 2 busy
    cores were measured slower than 1 and stall GUI timers)."""
    return max(1, available_cores() - 1)


def set_threads(n: int | None = None) -> int:
    n = default_threads() if n is None or n <= 0 else int(n)
    torch.set_num_threads(n)
    return n


def tune_allocator() -> bool:
    """Keep freed memory in the heap instead of returning it to the OS after every
    iteration (glibc): the same effect as MALLOC_MMAP_MAX_=0
    MALLOC_TRIM_THRESHOLD_=1e11, which halved the reference loop's time on CPU.
    Returns True if applied."""
    global _allocator_tuned, _libc
    if _allocator_tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok: bool = (
            libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
        )
    except (OSError, AttributeError):
        return False
    _allocator_tuned = ok
    _libc = libc if ok else None
    if ok:
        log.debug("glibc allocator tuned (no mmap for large blocks, no trimming)")
    return ok


def release_free_memory() -> bool:
    """Give the pages of freed heap blocks back to the system (glibc's ``malloc_trim``)
    when :func:`tune_allocator` keeps them.  For work whose feature maps are hundreds of
    MB (a 1024 px StyleGAN2): kept, their freed space did not fit the next ones, and a DGP
    run's peak RSS grew with every iteration (bench/results/stylegan2_speed.json).  The
    pages given back are faulted in again once, so call it every few iterations, not
    every one.  False when there is nothing to do (the allocator was not tuned)."""
    libc = _libc
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def configure(threads: int | None = None, tune_memory: bool = True) -> int:
    """Apply engine runtime settings; call once in the thread that runs the engine."""
    if tune_memory:
        tune_allocator()
    return set_threads(threads)

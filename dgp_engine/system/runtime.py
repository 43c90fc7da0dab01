"""Process-wide compute settings: thread count and allocator behaviour
(docs/method.md#where-the-time-goes)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Iterator

import torch

log = logging.getLogger(__name__)

# glibc mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_allocator_tuned = False
_libc: ctypes.CDLL | None = None
_large_blocks_users = 0
_large_blocks_lock = threading.Lock()

#: Blocks from this size up go back to the system when freed while
#: :func:`large_blocks_returned` is active (glibc's own largest mmap threshold).
LARGE_BLOCK = 32 * 2**20


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


@contextlib.contextmanager
def large_blocks_returned(threshold: int = LARGE_BLOCK) -> Iterator[None]:
    """While active, blocks of ``threshold`` bytes and up are mapped on their own and
    returned to the system when freed, as glibc does by default, even when
    :func:`tune_allocator` keeps everything in the heap.  For work with feature maps of
    hundreds of MB (a 1024 px StyleGAN2): kept in the heap, their freed space did not
    fit the next ones and a DGP iteration's peak RSS doubled (2.8 → 5 GB,
    bench/results/stylegan2_speed.json).  Nothing changes when the allocator was not
    tuned (its default already maps such blocks)."""
    global _large_blocks_users
    libc = _libc
    if libc is None:
        yield
        return
    with _large_blocks_lock:
        _large_blocks_users += 1
        if _large_blocks_users == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, int(threshold))
            libc.mallopt(_M_MMAP_MAX, 65536)
    try:
        yield
    finally:
        with _large_blocks_lock:
            _large_blocks_users -= 1
            if _large_blocks_users == 0:
                libc.mallopt(_M_MMAP_MAX, 0)  # the tuned state: everything in the heap


def configure(threads: int | None = None, tune_memory: bool = True) -> int:
    """Apply engine runtime settings; call once in the thread that runs the engine."""
    if tune_memory:
        tune_allocator()
    return set_threads(threads)

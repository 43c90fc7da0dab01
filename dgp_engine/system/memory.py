"""How much memory one operation may take: a budget from the machine's RAM.

Small files can describe huge data (a 79 KB PNG of 9000×9000 px, a 10 MB project whose
member inflates to 1 GiB). Readers compare what a file would cost in memory — pixels
times bytes per pixel, a member's inflated size — with :func:`budget` before they
allocate, and refuse with a message saying what it needs and what is available.

The budget is the smaller of half the memory available now and a quarter of the
machine's RAM (one picture leaves room for the app, the model and everything else
running), or ``DGP_MEMORY_BUDGET`` (bytes, or with a K/M/G suffix) when set.
"""

from __future__ import annotations

import os
import re

from ..errors import InputError

#: Peak bytes per photo pixel of a restoration run, measured on a 3000×3000 photo with
#: the bundled model (peak RSS less the ~220 MB of torch and the model): colorize 71,
#: inpaint 69, restore 65 B/px, since the colour transfer converts in bands of rows
#: (it took 137 B/px converting the whole photo at once); rounded up.
RUN_BYTES_PER_PIXEL = 80
#: Peak bytes per pixel while decoding a picture (file bytes, uint8/16 array, float RGB).
DECODE_BYTES_PER_PIXEL = 24
_FALLBACK = 4 << 30  # when the OS says nothing


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def ram() -> tuple[int, int]:
    """(available now, total) bytes of RAM; a guess of 4 GiB each where the OS does not
    say (non-Linux without sysconf)."""
    info = _meminfo()
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", 0)
    if not total:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            available = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = available = _FALLBACK
    return available or total, total


def parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise InputError(
            f"DGP_MEMORY_BUDGET must be a number of bytes, e.g. 4G or 500M; got {text!r}."
        )
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m[2]]
    return int(float(m[1]) * scale)


def budget() -> int:
    """Bytes one operation may allocate (see the module doc)."""
    override = os.environ.get("DGP_MEMORY_BUDGET", "").strip()
    if override:
        return parse_bytes(override)
    available, total = ram()
    return max(256 << 20, min(available // 2, total // 4))


def gb(n: float) -> str:
    if n >= 1e8:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def pixel_limit(bytes_per_pixel: int = RUN_BYTES_PER_PIXEL) -> int:
    """The most pixels a picture may have when each costs ``bytes_per_pixel``."""
    return max(1, budget() // max(1, bytes_per_pixel))


def why_too_big(needed: int, allowed: int | None = None, workers: int = 1) -> str:
    """The second half of a refusal: what it needs and what the budget is (``allowed``:
    a share of :func:`budget` already worked out, e.g. one of ``workers``' shares)."""
    allowed = budget() if allowed is None else allowed
    who = "one operation" if workers <= 1 else f"each of the {workers} workers"
    return (
        f"it would need about {gb(needed)} of memory, more than the {gb(allowed)} "
        f"allowed for {who} on this machine (half the free memory, at most a quarter of "
        "the RAM"
        + (", shared between the workers" if workers > 1 else "")
        + "; DGP_MEMORY_BUDGET sets another limit)"
    )


def worker_budget(workers: int) -> int:
    """Each worker's share of :func:`budget` when ``workers`` run side by side."""
    return budget() // max(1, workers)

"""Writing files atomically, with the user's permissions: the one way the project writes.

Every file DGP Studio writes — pictures, state and project files, animations, model
records, settings — goes through :func:`atomic_path` (or :func:`atomic_write` on top of
it): the content is written under a hidden temporary name in the target's folder,
flushed to disk, given the permissions a plain ``open(path, "w")`` would give (0666 less
the umask: temp files are created private), and only then renamed over the target. A
crash, a full disk or Ctrl-C leaves the previous file as it was, never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

_umask_lock = threading.Lock()
_umask: int | None = None


def umask() -> int:
    """The process umask (read once; Linux tells it without changing it)."""
    global _umask
    if _umask is None:
        with _umask_lock:
            if _umask is None:
                value = None
                with contextlib.suppress(OSError, ValueError):
                    for line in Path("/proc/self/status").read_text().splitlines():
                        if line.startswith("Umask:"):
                            value = int(line.split()[1], 8)
                if value is None:  # elsewhere: set and restore, once, under the lock
                    value = os.umask(0o022)
                    os.umask(value)
                _umask = value
    return _umask


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (best effort; not every OS allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block
    ends normally, deleted when it raises (``path`` is then untouched). The temp name is
    hidden (``.NAME.XXXX<suffix>``); ``suffix`` may carry the extension a writer needs to
    pick the format (e.g. ``".partial.mp4"``)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer may have used its own file handle
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], object], *,
                 suffix: str = ".part") -> Path:
    """Write ``data`` (bytes, or a function writing into a binary file) to ``path``
    atomically, with the user's permissions. OSError propagates; nothing is left."""
    path = Path(path)
    with atomic_path(path, suffix=suffix) as tmp, open(tmp, "wb") as fh:
        if isinstance(data, (bytes, bytearray, memoryview)):
            fh.write(data)
        else:
            data(fh)
        fh.flush()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, text.encode("utf-8"))

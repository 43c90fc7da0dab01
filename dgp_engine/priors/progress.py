"""Progress and cancellation of long model operations (download, import, verify).

Every long call takes a ``progress`` callback receiving :class:`TransferProgress` and a
``cancel`` ``threading.Event``; :class:`Reporter` delivers one and checks the other at
every step, so a cancelled operation stops at its next report.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import OperationCancelled

_HASH_CHUNK = 8 << 20


@dataclass(frozen=True)
class TransferProgress:
    """One progress report of a long model operation.

    ``stage`` is "download", "hash", "read", "write" or "verify"; ``done``/``total`` are
    bytes of ``file`` (``total`` None when the server does not say); ``index`` of
    ``count`` says which file of the operation this is."""

    model: str
    stage: str
    file: str
    done: int
    total: int | None
    index: int = 0
    count: int = 1

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[TransferProgress], None]


class Reporter:
    def __init__(
        self, model: str, progress: ProgressCallback | None, cancel: threading.Event | None
    ):
        self.model = model
        self.progress = progress
        self.cancel = cancel

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise OperationCancelled(f"{self.model}: cancelled; nothing was installed or changed.")

    def report(
        self, stage: str, file: str, done: int, total: int | None, index: int = 0, count: int = 1
    ) -> None:
        if self.progress is not None:
            self.progress(TransferProgress(self.model, stage, file, done, total, index, count))
        self.check()


def bar_class(reporter: Reporter, file: str, index: int, count: int) -> type:
    """A stand-in for ``tqdm`` that huggingface_hub drives while downloading: each
    update reports bytes and raises OperationCancelled when cancel is set."""

    class _ProgressBar:
        def __init__(
            self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any
        ) -> None:
            self.total = total
            self.n = initial or 0
            reporter.report("download", file, self.n, self.total, index, count)

        def update(self, n: int | float = 1) -> None:
            self.n += int(n or 0)
            reporter.report("download", file, self.n, self.total, index, count)

        def __enter__(self) -> _ProgressBar:
            return self

        def __exit__(self, *exc: Any) -> Literal[False]:
            return False

        def close(self) -> None:
            pass

        def __getattr__(self, name: str) -> Callable[..., None]:
            # refresh, set_description, update_transfer, …: nothing to display here.
            if name.startswith("__"):
                raise AttributeError(name)
            return lambda *a, **k: None

    return _ProgressBar


def sha256_file(
    file: Path, reporter: Reporter | None = None, index: int = 0, count: int = 1
) -> str:
    """SHA-256 of a file, reporting progress and honouring cancel every 8 MiB."""
    digest = hashlib.sha256()
    total = file.stat().st_size
    done = 0
    with open(file, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if reporter is not None:
                reporter.report("hash", file.name, done, total, index, count)
    return digest.hexdigest()

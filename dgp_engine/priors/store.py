"""The models folder as a store: folders appear whole or not at all.

A model is installed by building its folder under a hidden staging name and renaming it
into place (the previous one goes to a hidden trash name first, then is deleted), so a
failed, cancelled or killed install never leaves a folder that later loads. What an
interrupted operation left behind is cleaned up by :func:`cleanup` on the next one.
This module knows folders and files only; what goes in them is the hub's business.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..system import paths
from ..system.fileio import fsync_dir

RECORD_FILE = "model.json"
STAGING = ".staging-"
TRASH = ".trash-"
_STALE_SECONDS = 24 * 3600


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # cannot tell cheaply; the age rule cleans up instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup() -> list[Path]:
    """Remove what interrupted operations left in the models folder (staging folders of
    dead processes, folders half-way through replacement). Returns what was removed."""
    root = paths.models_dir()
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    now = time.time()
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        for prefix in (STAGING, TRASH):
            if not entry.name.startswith(prefix):
                continue
            rest = entry.name[len(prefix) :]
            m = re.match(r"^(?P<name>.+)-(?P<pid>\d+)-[0-9a-f]{8}$", rest)
            try:
                age = now - entry.stat().st_mtime
            except OSError:
                continue
            alive = m is not None and _pid_alive(int(m["pid"]))
            if alive and age < _STALE_SECONDS:
                continue
            if (
                prefix == TRASH
                and m
                and not (root / m["name"]).exists()
                and (entry / RECORD_FILE).is_file()
            ):
                # Killed between the two renames of a replacement: put the old one back.
                with contextlib.suppress(OSError):
                    os.replace(entry, root / m["name"])
                    continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def new_hidden_dir(prefix: str, name: str) -> Path:
    root = paths.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{prefix}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def free_bytes(folder: Path) -> int | None:
    for p in [folder, *folder.parents]:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(p).free
    return None


def mb(n: int | float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def model_dir(name: str) -> Path:
    return paths.models_dir() / name


@contextlib.contextmanager
def staged_folder(name: str) -> Iterator[Path]:
    """A fresh hidden folder to build model ``name`` in; when the block ends normally it
    replaces ``models/<name>`` in one rename (the old folder, if any, is moved aside first
    and deleted after), otherwise it is deleted and ``models/<name>`` is untouched."""
    cleanup()
    staging = new_hidden_dir(STAGING, name)
    staging.mkdir(parents=True)
    try:
        yield staging
        fsync_dir(staging)
        target = model_dir(name)
        trash = None
        if target.exists():
            trash = new_hidden_dir(TRASH, name)
            os.replace(target, trash)
        os.replace(staging, target)
        fsync_dir(target.parent)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def remove_folder(name: str) -> Path:
    """Delete ``models/<name>``: one rename makes it gone for every reader, then the
    files are deleted. Returns the folder's path."""
    cleanup()
    target = model_dir(name)
    trash = new_hidden_dir(TRASH + "rm-", name)
    os.replace(target, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return target

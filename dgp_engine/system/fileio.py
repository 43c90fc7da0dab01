"""Writing files atomically, with the user's permissions: the one way the project writes.

Every file DGP Studio writes — pictures, state and project files, animations, model
records, settings — goes through :func:`atomic_path` (or :func:`atomic_write` on top of
it): the content is written under a hidden temporary name in the target's folder,
flushed to disk, given the permissions a plain ``open(path, "w")`` would give (0666 less
the umask: temp files are created private), and only then renamed over the target. A
crash, a full disk or Ctrl-C leaves the previous file as it was, never half a file.

Temp names carry the writer's process id (``.NAME.<pid>-XXXXXXXX.part``), so what a killed
writer left (SIGKILL, power loss) is recognised as ours and as stale: the first write a
process makes into a folder removes such leftovers (:func:`clean_stale_temps`). A command
that writes a file claims it first (:func:`claim_output`): an exclusive lock file beside it,
which also proves the folder writable before any work and makes a second run writing the
same file refuse at once.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import re
import shutil
import sys
import tempfile
import threading
import time
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
    clean_stale_temps(folder)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=suffix, dir=folder)
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


# --- temp names, stale leftovers -----------------------------------------------------------
# Ours: ".NAME.<pid>-XXXXXXXX<suffix>" (and, from versions before the pid was recorded,
# ".NAME.XXXXXXXX<suffix>"); suffix .part, .tmp, .partial or .partial.EXT; lock files
# ".NAME.dgp-lock".
_TEMP = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)-)?[a-z0-9_]{8}"
                   r"(?:\.part|\.tmp|\.partial(?:\.[A-Za-z0-9]{1,8})?)$")
LOCK_SUFFIX = ".dgp-lock"
_PROCESS_START = time.time()
_LEGACY_GRACE_S = 60.0  # a pid-less temp this much older than our start has no live writer
_cleaned: set[str] = set()
_cleaned_lock = threading.Lock()


def temp_prefix(name: str) -> str:
    """The start of a temp name for writing ``name``: hidden, with our process id."""
    return f".{name}.{os.getpid()}-"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine); True when unsure."""
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def is_stale_temp(entry: Path) -> bool:
    """``entry`` is a temp file/folder of ours whose writer is gone: its process is dead,
    or (no pid in the name) it was last written well before this process started."""
    m = _TEMP.match(entry.name)
    if m is None:
        return False
    if m["pid"] is not None:
        return not pid_alive(int(m["pid"]))
    try:
        return entry.stat().st_mtime < _PROCESS_START - _LEGACY_GRACE_S
    except OSError:
        return False


def clean_stale_temps(folder: str | Path, *, again: bool = False) -> list[Path]:
    """Remove what killed writers of ours left in ``folder`` (temp files and folders whose
    writer is dead, lock files nobody holds); once per folder and process unless
    ``again``. Never touches a name that is not ours; errors are ignored (best effort)."""
    folder = Path(folder)
    key = os.path.abspath(folder)
    with _cleaned_lock:
        if key in _cleaned and not again:
            return []
        _cleaned.add(key)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if entry.name.endswith(LOCK_SUFFIX) and entry.is_file(follow_symlinks=False):
                if _remove_unheld_lock(path):
                    removed.append(path)
            elif is_stale_temp(path):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        except OSError:
            continue
    return removed


# --- claiming an output: one writer per file ------------------------------------------------
class OutputBusy(OSError):
    """Another process holds the claim on this output."""

    def __init__(self, path: Path, holder: str):
        super().__init__(errno.EBUSY, f"{path} is being written by another run ({holder})")
        self.path = path
        self.holder = holder


class OutputClaim:
    """An exclusive lock on writing ``path``: the file ``.NAME.dgp-lock`` beside it, locked
    with ``flock`` (the kernel releases it when the process ends, even on SIGKILL) and
    removed by :meth:`release`. A lock file left unheld is removed by the next claim or
    cleanup in that folder."""

    def __init__(self, path: Path, fd: int, lock_file: Path):
        self.path = path
        self.fd = fd
        self.lock_file = lock_file

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            self.lock_file.unlink()  # unlinked while held: a waiting claimer sees a new inode
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        with _claims_lock:
            if _claims.get(_claim_key(self.path)) is self:
                del _claims[_claim_key(self.path)]


_claims: dict[str, OutputClaim] = {}
_claims_lock = threading.Lock()


def _claim_key(path: Path) -> str:
    return os.path.abspath(path)


def lock_file_for(path: str | Path) -> Path:
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    return folder / f".{path.name}{LOCK_SUFFIX}"


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _open_locked(lock_file: Path) -> tuple[int, bool]:
    """(fd, locked) for ``lock_file``, created if missing; retried when the file was
    replaced between open and lock (a holder released it meanwhile)."""
    for _ in range(20):
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        if not _try_lock(fd):
            return fd, False
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_file))
        except FileNotFoundError:
            same = False
        if same:
            return fd, True
        os.close(fd)
    raise OSError(errno.EAGAIN, f"could not lock {lock_file}")


def _remove_unheld_lock(lock_file: Path) -> bool:
    if _claim_key(lock_file.with_name(lock_file.name[1:-len(LOCK_SUFFIX)])) in _claims:
        return False
    fd, locked = _open_locked(lock_file)
    try:
        if locked:
            lock_file.unlink(missing_ok=True)
        return locked
    finally:
        os.close(fd)


def claim_output(path: str | Path) -> OutputClaim:
    """Claim ``path`` for this process before any work: creates the lock file beside it,
    which proves the folder writable (OSError as the system reports it otherwise), and
    raises :class:`OutputBusy` when another run holds it. Idempotent within a process;
    released by :meth:`OutputClaim.release`, :func:`release_claims` or process exit.
    Also removes stale temp files of ours in that folder."""
    path = Path(path)
    key = _claim_key(path)
    with _claims_lock:
        held = _claims.get(key)
        if held is not None and held.fd >= 0:
            return held
    lock_file = lock_file_for(path)
    fd, locked = _open_locked(lock_file)
    if not locked:
        try:
            holder = os.read(fd, 64).decode("ascii", "replace").strip()
        except OSError:
            holder = ""
        os.close(fd)
        raise OutputBusy(path, f"process {holder}" if holder.isdigit() else "another process")
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
    claim = OutputClaim(path, fd, lock_file)
    with _claims_lock:
        _claims[key] = claim
    clean_stale_temps(lock_file.parent)
    return claim


def release_claims() -> None:
    """Release every output this process claimed (end of a command)."""
    with _claims_lock:
        held = list(_claims.values())
    for claim in held:
        claim.release()


atexit.register(release_claims)

"""Writing files atomically, with the user's permissions: the one way the project writes.

Every file DGP Studio writes — pictures, state and project files, animations, model
records, settings — goes through :func:`atomic_path` (or :func:`atomic_write` on top of
it): the content is written under a hidden temporary name in the target's folder,
flushed to disk, given the permissions a plain ``open(path, "w")`` would give (0666 less
the umask: temp files are created private), and only then renamed over the target. A
crash, a full disk or Ctrl-C leaves the previous file as it was, never half a file.

Temp names carry the writer's process id and a tag of its host
(``.NAME.<pid>-<host>-XXXXXXXX.part``), so what a killed writer left (SIGKILL, power loss) is
recognised as ours and as stale — its process is dead on this host; a name without those
marks (another program's, or written on another machine sharing the folder) is never
removed. The first write a process makes into a folder removes such leftovers
(:func:`clean_stale_temps`); ``dgp batch`` removes only those of the files it writes
(:func:`clean_stale_temps_for`). A command
that writes a file claims it first (:func:`claim_output`): an exclusive lock file beside it
(:mod:`.locks`), which also proves the folder writable before any work and makes a second
run writing the same file refuse at once.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .locks import HeldLock, LockBusy, remove_if_unheld, take_lock

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


def _mode_for(path: Path) -> int:
    """The permissions a file written to ``path`` gets: those of the regular file it
    replaces (a replaced read-only or shared file keeps its mode), else the user's
    umask applied to rw-rw-rw-."""
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode) & 0o777
    return 0o666 & ~umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block
    ends normally, deleted when it raises (``path`` is then untouched). The temp name is
    hidden (``.NAME.XXXX<suffix>``); ``suffix`` may carry the extension a writer needs to
    pick the format (e.g. ``".partial.mp4"``)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    clean_stale_temps(folder)
    fd, name = tempfile.mkstemp(
        prefix=temp_prefix(path.name, folder, suffix), suffix=suffix, dir=folder
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer may have used its own file handle
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _note_written(path)
    fsync_dir(folder)


# Files renamed into place by this process: what a command abandoned part-way had already
# written in full (a count, and the latest few names).
_written_lock = threading.Lock()
_written_count = 0
_written_latest: collections.deque[Path] = collections.deque(maxlen=8)


def _note_written(path: Path) -> None:
    global _written_count
    with _written_lock:
        _written_count += 1
        _written_latest.append(path)


def files_written() -> int:
    """How many files this process has written (renamed into place) so far."""
    return _written_count


def written_since(mark: int, shown: int = 3) -> tuple[int, list[Path]]:
    """How many files were written since :func:`files_written` returned ``mark``, and the
    latest (at most ``shown``) of them, oldest first."""
    with _written_lock:
        n = _written_count - mark
        return n, list(_written_latest)[-min(n, shown, len(_written_latest)) :] if n > 0 else []


def atomic_write(
    path: str | Path, data: bytes | Callable[[BinaryIO], object], *, suffix: str = ".part"
) -> Path:
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


# --- reading: regular files only -----------------------------------------------------------
def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words (from ``st_mode``)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


class NotRegularFile(OSError):
    """A path to read is a device, FIFO, socket or folder (symlinks followed)."""

    def __init__(self, path: Path, mode: int):
        self.kind = file_kind(mode)
        super().__init__(errno.EINVAL, f"not a regular file ({self.kind})", str(path))


@contextlib.contextmanager
def open_regular(path: str | Path) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """Open ``path`` for reading only if it is a regular file (a symlink is followed and
    its target checked): ``(file, its stat)``. A device, FIFO or socket raises
    :class:`NotRegularFile` without being read — checked before opening, and again on the
    open file, which is opened non-blocking so that a FIFO swapped in meanwhile cannot
    hang the reader (/dev/zero once filled 3 GB; a FIFO blocked a batch for good)."""
    path = Path(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(path, st.st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, st.st_mode)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh, st


def read_regular(path: str | Path) -> bytes:
    """The bytes of the regular file ``path`` (:func:`open_regular`)."""
    with open_regular(path) as (fh, _):
        return fh.read()


#: The largest settings file (a JSON or YAML config, a class list, a preset) read whole.
TEXT_FILE_LIMIT = 16 << 20


class FileTooLarge(OSError):
    """A file read whole is larger than its kind ever is."""

    def __init__(self, path: Path, size: int, limit: int):
        super().__init__(
            errno.EFBIG,
            f"{size / 1e6:.1f} MB, more than the {limit >> 20} MB such a file ever holds",
            str(path),
        )


def read_small_file(path: str | Path, limit: int = TEXT_FILE_LIMIT) -> bytes:
    """The bytes of a small regular file: a settings file named on the command line. A
    device, FIFO or socket (:class:`NotRegularFile`) or a file over ``limit`` bytes
    (:class:`FileTooLarge`) is refused before reading — ``--config /dev/zero`` once read
    until the kernel killed it at 24 GB."""
    with open_regular(path) as (fh, st):
        if st.st_size > limit:
            raise FileTooLarge(Path(path), st.st_size, limit)
        data = fh.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise FileTooLarge(Path(path), len(data), limit)
    return data


# --- names the file system takes ------------------------------------------------------------
def short_name(name: str, head: int = 24, tail: int = 12) -> str:
    """A long name as a message shows it: its start and its end."""
    return name if len(name) <= head + tail + 1 else f"{name[:head]}…{name[-tail:]}"


def nearest_existing(path: str | Path) -> Path:
    """``path`` or the nearest folder above it that exists (a file where a folder should be
    included)."""
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p) and p.parent != p:
        p = p.parent
    return p


def name_too_long(path: str | Path) -> str | None:
    """Why ``path`` cannot be created for its length — its name, or a folder to create
    above it, longer than its file system allows (:func:`name_max`), or the whole path
    longer than the system's limit — else None. Checked before work: the system would
    only say so when the result is written."""
    path = Path(os.path.abspath(path))
    base = nearest_existing(path.parent)
    limit = name_max(base)
    for part in path.relative_to(base).parts:  # the folders still to create and the name
        n = len(os.fsencode(part))
        if n > limit:
            return (
                f"the name {short_name(part)!r} is too long: {n} bytes, more than the "
                f"{limit} a file name may have on this file system"
            )
    try:
        path_max = int(os.pathconf(base, "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        path_max = 4096
    n = len(os.fsencode(str(path)))
    if n >= path_max:
        return f"the path is too long: {n} bytes, more than the {path_max - 1} this system allows"
    return None


# --- temp names, stale leftovers -----------------------------------------------------------
# Ours: ".NAME.<pid>-<host>-XXXXXXXX<suffix>" (and, from the version before the host was
# recorded, ".NAME.<pid>-XXXXXXXX<suffix>", taken as this host's); suffix .part, .tmp,
# .partial or .partial.EXT; lock files ".NAME.dgp-lock". A pid-less name is not ours to
# judge: it may be any program's.
_OWNER = (
    r"(?P<pid>\d+)-(?:(?P<host>[0-9a-f]{6})-)?[a-z0-9_]{8}"
    r"(?:\.part|\.tmp|\.partial(?:\.[A-Za-z0-9]{1,8})?)$"
)
_TEMP = re.compile(r"^\.(?P<name>.+?)\." + _OWNER)
_TEMP_TAIL = re.compile(_OWNER)
LOCK_SUFFIX = ".dgp-lock"
#: This machine in temp names: another host's temp in a shared folder has a pid we
#: cannot check, so it is never taken for stale here.
HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
_cleaned: set[str] = set()
_cleaned_lock = threading.Lock()


# the most digits a process id has (Linux pid_max is at most 2**22): temp names are sized
# for it, so the name part of a file's temp name does not depend on the writer
_PID_DIGITS = 7
_RANDOM_CHARS = 8  # what tempfile.mkstemp / mkdtemp put between prefix and suffix


def name_max(folder: str | Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` allows; 255 (the usual
    limit) where it does not say or ``folder`` does not exist."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def fit_name(name: str, extra: int, folder: str | Path) -> str:
    """``name`` as the middle of a hidden helper name ``.<name><extra bytes>`` in ``folder``:
    whole when that fits the folder's :func:`name_max`, else cut short and ended with a
    digest of the whole name — so a file whose own name is legal never gets an illegal
    temp or lock name (a 244-character picture name once lost its result that way)."""
    limit = name_max(folder) - 1 - extra
    if len(os.fsencode(name)) <= limit:
        return name
    digest = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    keep = name[: max(0, limit - len(digest))]
    while keep and len(os.fsencode(keep)) > limit - len(digest):
        keep = keep[:-1]
    return keep + digest


def _temp_extra(suffix: str) -> int:
    """Bytes a temp name adds after its name part: ``.<pid>-<host>-XXXXXXXX<suffix>``."""
    return (
        1
        + max(_PID_DIGITS, len(str(os.getpid())))
        + 1
        + len(HOST_TAG)
        + 1
        + _RANDOM_CHARS
        + len(os.fsencode(suffix))
    )


def temp_prefix(name: str, folder: str | Path = ".", suffix: str = ".part") -> str:
    """The start of a temp name for writing ``name`` in ``folder`` with ``suffix``: hidden,
    with our process id and host; the name part shortened (:func:`fit_name`) when the
    whole temp name would be longer than the file system allows."""
    return f".{fit_name(name, _temp_extra(suffix), folder)}.{os.getpid()}-{HOST_TAG}-"


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


def _owner_gone(m: re.Match[str]) -> bool:
    """The writer named by a temp name's owner marks is a dead process of this host."""
    if m["host"] is not None and m["host"] != HOST_TAG:
        return False
    return not pid_alive(int(m["pid"]))


def is_stale_temp(entry: Path) -> bool:
    """``entry`` is a temp file/folder of ours whose writer is gone: its name carries our
    marks and its process is dead on this host."""
    m = _TEMP.match(entry.name)
    return m is not None and _owner_gone(m)


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


def clean_stale_temps_for(targets: Iterable[str | Path]) -> list[Path]:
    """Remove what killed writers of ours left while writing exactly these files (temp
    files of their names whose writer is dead on this host), and nothing else: other
    names in their folders are left alone, and so are they by the first write this
    process makes there (each folder counts as cleaned). Best effort."""
    wanted: dict[str, set[str]] = {}
    for target in map(Path, targets):
        names = wanted.setdefault(os.path.abspath(target.parent), set())
        names.add(target.name)
        names.add(fit_name(target.name, _temp_extra(".part"), target.parent))
    removed: list[Path] = []
    for folder, names in wanted.items():
        with _cleaned_lock:
            _cleaned.add(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = _temp_of(entry.name, names) if entry.name.startswith(".") else None
            if m is None:
                continue
            try:
                if entry.is_file(follow_symlinks=False) and _owner_gone(m):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue
    return removed


def _temp_of(temp_name: str, names: set[str]) -> re.Match[str] | None:
    """The owner marks of ``temp_name`` when it is the temp name of one of ``names``."""
    dot = temp_name.find(".", 1)
    while dot > 0:
        if temp_name[1:dot] in names:
            m = _TEMP_TAIL.fullmatch(temp_name, dot + 1)
            if m is not None:
                return m
        dot = temp_name.find(".", dot + 1)
    return None


# --- claiming an output: one writer per file ------------------------------------------------
class OutputBusy(OSError):
    """Another process holds the claim on this output."""

    def __init__(self, path: Path, holder: str):
        super().__init__(errno.EBUSY, f"{path} is being written by another run ({holder})")
        self.path = path
        self.holder = holder


class OutputClaim:
    """An exclusive lock on writing ``path``: the lock file ``.NAME.dgp-lock`` beside it
    (:mod:`.locks`: the kernel releases it when the process ends, even on SIGKILL),
    removed by :meth:`release`. A lock file left unheld is removed by the next claim or
    cleanup in that folder."""

    def __init__(self, path: Path, lock: HeldLock):
        self.path = path
        self.lock_file = lock.path
        self._lock = lock

    @property
    def held(self) -> bool:
        return self._lock.held

    def release(self) -> None:
        self._lock.release()
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
    return folder / f".{fit_name(path.name, len(LOCK_SUFFIX), folder)}{LOCK_SUFFIX}"


def _remove_unheld_lock(lock_file: Path) -> bool:
    key = os.path.abspath(lock_file)
    with _claims_lock:
        if any(os.path.abspath(c.lock_file) == key and c.held for c in _claims.values()):
            return False  # ours, held
    return remove_if_unheld(lock_file)


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
        if held is not None and held.held:
            return held
    lock_file = lock_file_for(path)
    try:
        lock = take_lock(lock_file, str(os.getpid()))
    except LockBusy as exc:
        holder = exc.holder
        raise OutputBusy(
            path, f"process {holder}" if holder.isdigit() else "another process"
        ) from None
    claim = OutputClaim(path, lock)
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

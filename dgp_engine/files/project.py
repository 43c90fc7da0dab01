"""Project files (``.dgpproj``): a whole editing session in one file, no Qt.

A project is a zip archive (format ``dgp-project``, version 1):

* ``manifest.json`` (first member) — format, version, times, the JSON parts
  (regions, history, timeline, settings) and an index of every other member
  with its kind, id, dtype and shape;
* ``sources/<id>.png``, ``masks/<id>.png``, ``images/<id>.png`` — pictures as PNG
  (8-bit L/RGB/RGBA; anything else as ``.npy``), so arrays come back bit-exact;
* ``states/<id>.safetensors`` — reconstruction states in the state-file format
  (z, class embedding, generator weights as a delta from the base model, preset,
  seed, model name + config + checksum).

Saving writes a temp file in the same folder and renames it, so the previous
file survives any failure.  A damaged (e.g. truncated) file is never modified:
:func:`load_project` raises :class:`ProjectDamagedError` carrying what could be
recovered; :class:`Autosaver` and :func:`find_recovery` give crash recovery.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np
import torch
from PIL import Image

from ..errors import ProjectDamagedError, ProjectError
from ..method.state import ReconstructionState
from ..system import paths
from ..system.fileio import atomic_write
from ..system.memory import budget as memory_budget
from ..system.memory import gb, why_too_big

log = logging.getLogger(__name__)

FORMAT = "dgp-project"
FORMAT_VERSION = 1
SUFFIX = ".dgpproj"
MANIFEST = "manifest.json"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_ARRAY_KINDS = {"sources": "sources", "masks": "masks", "images": "images"}


@dataclass
class Project:
    """Everything of a session.  Arrays are numpy (uint8/uint16/bool/float, H×W or
    H×W×C); the JSON parts must hold only JSON types (dicts, lists, str, numbers)."""

    sources: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)  # results, snapshots
    states: dict[str, ReconstructionState] = field(default_factory=dict)
    regions: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    # e.g. {"keyframes": [state ids], **MorphTimeline(...).to_dict()}
    timeline: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    created: float = field(default_factory=time.time)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Project):
            return NotImplemented
        return (
            self.title == other.title
            and self.created == other.created
            and self.regions == other.regions
            and self.history == other.history
            and self.timeline == other.timeline
            and self.settings == other.settings
            and _arrays_equal(self.sources, other.sources)
            and _arrays_equal(self.masks, other.masks)
            and _arrays_equal(self.images, other.images)
            and self.states.keys() == other.states.keys()
            and all(states_equal(self.states[k], other.states[k]) for k in self.states)
        )

    __hash__ = None  # type: ignore[assignment]

    def item_names(self) -> list[str]:
        return (
            [f"source {k}" for k in self.sources]
            + [f"mask {k}" for k in self.masks]
            + [f"image {k}" for k in self.images]
            + [f"state {k}" for k in self.states]
        )


def _arrays_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k])
        for k in a
    )


def states_equal(a: ReconstructionState, b: ReconstructionState) -> bool:
    """Same metadata and bit-identical tensors."""
    if json.dumps(a.metadata(), sort_keys=True) != json.dumps(b.metadata(), sort_keys=True):
        return False
    ta, tb = a.tensors(), b.tensors()
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


# --------------------------------------------------------------------------- encoding


def _check_id(kind: str, key: str) -> None:
    if not isinstance(key, str) or not _ID.match(key):
        raise ProjectError(
            f"{kind} id {key!r} is not valid: use 1-64 letters, digits, '_', '.' or '-'."
        )


def _encode_array(a: np.ndarray) -> tuple[bytes, str, dict[str, Any]]:
    a = np.asarray(a)
    meta = {"dtype": a.dtype.str, "shape": list(a.shape)}
    png_mode = None
    if a.dtype == np.uint8 and a.ndim == 2:
        png_mode = "L"
    elif a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] in (3, 4):
        png_mode = "RGB" if a.shape[2] == 3 else "RGBA"
    elif a.dtype == np.bool_ and a.ndim == 2:
        png_mode = "L"
        a = a.astype(np.uint8) * 255
    if png_mode and min(a.shape[:2]) > 0:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a), png_mode).save(buf, format="PNG", compress_level=4)
        return buf.getvalue(), ".png", meta
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue(), ".npy", meta


def _decode_array(data: bytes, ext: str, meta: dict[str, Any] | None) -> np.ndarray:
    if ext == ".npy":
        array: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
        return array
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        if w * h * 8 > memory_budget():  # up to 4 channels of 16 bits
            raise ProjectError(f"a {w}×{h} px picture: {why_too_big(w * h * 8)}")
        a: np.ndarray = np.asarray(im).copy()
    if meta and np.dtype(meta["dtype"]) == np.bool_:
        a = a > 127
    return a


def _state_bytes(state: ReconstructionState) -> bytes:
    return state.to_bytes()


def _state_from_bytes(data: bytes, folder: Path | None = None) -> ReconstructionState:
    # In memory (loading never writes beside the project: its folder may be read-only),
    # through the state reader's checks (format, version).
    return ReconstructionState.from_bytes(data)


def _json(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ProjectError(
            f"The project's {what} cannot be saved: {exc}. Only JSON values "
            "(dicts, lists, text, finite numbers) are allowed there."
        ) from exc


# --------------------------------------------------------------------------- saving


def save_project(
    project: Project, path: str | Path, *, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``project`` to ``path`` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ProjectError(f"The folder {folder} does not exist.")
    members: list[tuple[str, bytes, int]] = []
    index: dict[str, dict[str, Any]] = {}
    for kind in _ARRAY_KINDS:
        for key, arr in getattr(project, kind).items():
            _check_id(kind, key)
            data, ext, meta = _encode_array(arr)
            name = f"{kind}/{key}{ext}"
            members.append(
                (name, data, zipfile.ZIP_DEFLATED if ext == ".npy" else zipfile.ZIP_STORED)
            )
            index[name] = {"kind": kind, "id": key, **meta}
    for key, state in project.states.items():
        _check_id("state", key)
        data = _state_bytes(state)
        name = f"states/{key}.safetensors"
        members.append((name, data, zipfile.ZIP_STORED))
        index[name] = {
            "kind": "states",
            "id": key,
            "class_id": state.class_id,
            "model": (state.model or {}).get("name", ""),
        }
    for name, data, _ in members:
        index[name]["size"] = len(data)
        index[name]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "title": project.title,
        "created": project.created,
        "saved": time.time(),
        "regions": _json(project.regions, "regions"),
        "history": _json(project.history, "history"),
        "timeline": _json(project.timeline, "timeline"),
        "settings": _json(project.settings, "settings"),
        "members": index,
        **(_json(extra, "extra fields") if extra else {}),
    }

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w") as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1), zipfile.ZIP_DEFLATED)
            for name, data, method in members:
                zf.writestr(name, data, method)

    try:
        atomic_write(path, write, suffix=".tmp")
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ProjectError(
                f"Cannot write to {folder}: {exc.strerror or exc}. Save the "
                "project in another folder."
            ) from exc
        raise ProjectError(
            f"Could not save {path.name}: {exc.strerror or exc}. The "
            "previous file (if any) is unchanged."
        ) from exc
    return path


# --------------------------------------------------------------------------- loading


# Manifest fields and the JSON types they must have (a hostile or damaged file may hold
# anything: every use below relies on these).
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "version": (int,),
    "title": (str,),
    "created": (int, float),
    "saved": (int, float),
    "regions": (list,),
    "history": (list,),
    "timeline": (dict,),
    "settings": (dict,),
    "members": (dict,),
    "autosave_of": (str, type(None)),
}
_TYPE_NAMES = {
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a table",
    type(None): "null",
}
# A member may inflate to at most this many times its stored size, above this floor: our
# own members (PNGs, safetensors stored; .npy deflated) stay far below it.
MAX_INFLATE_RATIO = 20
INFLATE_FLOOR = 64 << 20
MAX_MANIFEST_BYTES = 64 << 20


def _check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ProjectError(f"{path.name} is not a DGP Studio project.")
    for key, types in _MANIFEST_TYPES.items():
        value = manifest.get(key)
        if key in manifest and (not isinstance(value, types) or isinstance(value, bool)):
            want = " or ".join(_TYPE_NAMES[t] for t in types)
            raise ProjectError(
                f"{path.name} is damaged: its manifest's {key!r} should be "
                f"{want}, not {type(value).__name__}. The file was left as it "
                "is; open an autosave or an older copy."
            )
    if int(manifest.get("version", 0)) > FORMAT_VERSION:
        raise ProjectError(
            f"{path.name} was saved by a newer DGP Studio (project format "
            f"{manifest.get('version')}); update DGP Studio to open it."
        )
    for name, meta in manifest.get("members", {}).items():
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("kind"), str)
            or not isinstance(meta.get("id"), str)
            or not isinstance(meta.get("size", 0), int)
            or not isinstance(meta.get("sha256", ""), str)
        ):
            raise ProjectError(
                f"{path.name} is damaged: its manifest's entry for {name!r} "
                "is not a table with kind, id, size and sha256. The file was "
                "left as it is; open an autosave or an older copy."
            )
    return manifest


def _member_limit(info: zipfile.ZipInfo, meta: dict[str, Any] | None) -> str | None:
    """Why ``info`` must not be inflated (a zip bomb, or more than memory allows), or None."""
    if meta is not None and "size" in meta and info.file_size != meta["size"]:
        return f"it is {info.file_size} bytes, not the {meta['size']} the manifest recorded"
    if info.file_size > max(INFLATE_FLOOR, MAX_INFLATE_RATIO * info.compress_size):
        return (
            f"{gb(info.compress_size)} would inflate to {gb(info.file_size)}: refused as "
            "a possible zip bomb"
        )
    if info.file_size > memory_budget():
        return why_too_big(info.file_size)
    return None


def _read_members(
    zf: zipfile.ZipFile, path: Path, manifest: dict[str, Any], refused: dict[str, str]
) -> dict[str, bytes]:
    """The members the manifest lists, each checked against the limits before it is
    inflated (refused ones are left out, so they count as lost, and ``refused`` says why;
    a total beyond memory is refused outright)."""
    index: dict[str, dict[str, Any]] = manifest.get("members", {})
    infos = {i.filename: i for i in zf.infolist()}
    total = sum(infos[n].file_size for n in index if n in infos)
    if total > memory_budget():
        raise ProjectError(
            f"{path.name} cannot be opened: its items together would need "
            f"{why_too_big(total)[len('it would need ') :]}. Open it on a "
            "machine with more memory (or set DGP_MEMORY_BUDGET)."
        )
    blobs: dict[str, bytes] = {}
    for name, meta in index.items():
        info = infos.get(name)
        if info is None:
            continue  # _build reports it lost
        why = _member_limit(info, meta)
        if why is not None:
            log.warning("%s: not reading %s: %s", path.name, name, why)
            refused[name] = why
            continue
        blobs[name] = zf.read(info)
    return blobs


def _build(
    manifest: dict[str, Any] | None, blobs: dict[str, bytes], folder: Path | None, lost: list[str]
) -> Project:
    manifest = manifest or {}
    index: dict[str, dict[str, Any]] = manifest.get("members", {})
    project = Project(
        regions=manifest.get("regions", []),
        history=manifest.get("history", []),
        timeline=manifest.get("timeline", {}),
        settings=manifest.get("settings", {}),
        title=manifest.get("title", ""),
        created=float(manifest.get("created", 0.0)),
    )
    names = list(index) or [n for n in blobs if n != MANIFEST]
    for name in names:
        meta = index.get(name)
        kind, _, rest = name.partition("/")
        key, ext = os.path.splitext(rest)
        if meta:
            kind, key = meta["kind"], meta["id"]
        if name not in blobs:
            lost.append(name)
            continue
        data = blobs[name]
        if meta and "sha256" in meta and hashlib.sha256(data).hexdigest() != meta["sha256"]:
            lost.append(name)
            continue
        try:
            if kind in _ARRAY_KINDS:
                getattr(project, kind)[key] = _decode_array(data, ext, meta)
            elif kind == "states":
                project.states[key] = _state_from_bytes(data, folder)
            else:
                log.warning("ignoring unknown project member %s", name)
        except Exception as exc:  # a damaged member: keep the rest
            log.warning("could not read %s: %s", name, exc)
            lost.append(name)
    return project


def load_project(path: str | Path) -> Project:
    """Open a project.  A damaged file raises :class:`ProjectDamagedError` whose
    ``recovered`` project holds every item that could still be read; the file itself
    is never changed."""
    path = Path(path)
    if not path.is_file():
        raise ProjectError(
            f"{path} is not a file (a folder, device or pipe)."
            if path.exists()
            else f"{path} does not exist."
        )
    lost: list[str] = []
    refused: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            if zf.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
                raise ProjectError(
                    f"{path.name} is not a DGP Studio project (its manifest is far too large)."
                )
            manifest = _check_manifest(json.loads(zf.read(MANIFEST)), path)
            blobs = _read_members(zf, path, manifest, refused)
    except ProjectError:
        raise
    except (
        zipfile.BadZipFile,
        KeyError,
        EOFError,
        zlib.error,
        OSError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ) as exc:  # unknown method, encrypted member
        return _raise_damaged(path, exc)
    project = _build(manifest, blobs, path.parent, lost)
    if lost:
        why = "; ".join(f"{n}: {r}" for n, r in refused.items())
        _raise_damaged(
            path,
            ValueError(f"{len(lost)} item(s) failed their checks" + (f" — {why}" if why else "")),
            recovered=(project, lost),
        )
    return project


def recover_project(path: str | Path) -> tuple[Project, list[str]]:
    """Read every intact member of a damaged project (by scanning its local zip
    headers); returns the project and the names of the members that were lost."""
    path = Path(path)
    if path.stat().st_size > memory_budget():
        raise ProjectError(
            f"{path.name} cannot be recovered here: {why_too_big(path.stat().st_size)}."
        )
    data = path.read_bytes()
    blobs = _scan_members(data)
    manifest = None
    lost: list[str] = []
    if MANIFEST in blobs:
        try:
            manifest = _check_manifest(json.loads(blobs[MANIFEST]), path)
        except ProjectError:
            raise
        except (ValueError, RecursionError):
            manifest = None
    if manifest is None:
        lost.append(MANIFEST)
    project = _build(manifest, blobs, path.parent, lost)
    return project, lost


def _raise_damaged(
    path: Path, exc: Exception, recovered: tuple[Project, list[str]] | None = None
) -> NoReturn:
    project, lost = recovered if recovered is not None else recover_project(path)
    found = len(project.item_names())
    what = ", ".join(lost[:6]) + (f" and {len(lost) - 6} more" if len(lost) > 6 else "")
    suggestion = recovered_path(path)
    raise ProjectDamagedError(
        f"{path.name} is damaged (it looks truncated or corrupted: {exc}). Recovered "
        f"{found} item(s)" + (f"; lost: {what}" if lost else "") + ". The file was left as "
        f"it is; save the recovered project under a new name, e.g. {suggestion.name}.",
        path,
        project,
        lost,
    )


def recovered_path(path: str | Path) -> Path:
    """A free name next to ``path`` for a recovered copy: ``name (recovered).dgpproj``."""
    path = Path(path)
    stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
    for i in range(1, 1000):
        label = " (recovered)" if i == 1 else f" (recovered {i})"
        candidate = path.with_name(f"{stem}{label}{SUFFIX}")
        if not candidate.exists():
            return candidate
    return path.with_name(f"{stem} (recovered {int(time.time())}){SUFFIX}")


_LOCAL = b"PK\x03\x04"


def _scan_members(data: bytes) -> dict[str, bytes]:
    """Intact members found by walking local file headers (needs no central directory)."""
    out: dict[str, bytes] = {}
    pos = data.find(_LOCAL)
    while 0 <= pos and pos + 30 <= len(data):
        (_sig, _ver, flags, method, _t, _d, crc, csize, _usize, nlen, elen) = struct.unpack(
            "<IHHHHHIIIHH", data[pos : pos + 30]
        )
        start = pos + 30 + nlen + elen
        end = start + csize
        name = data[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
        if flags & 0x08 or end > len(data) or method not in (0, 8):
            # sizes unknown, truncated, or a compression we do not write: skip it
            pos = data.find(_LOCAL, pos + 4)
            continue
        raw = data[start:end]
        limit = min(max(INFLATE_FLOOR, MAX_INFLATE_RATIO * csize), memory_budget())
        body: bytes | None
        try:  # inflate no further than the limit: a zip bomb stays small
            inflater = zlib.decompressobj(-15)
            body = raw if method == 0 else inflater.decompress(raw, limit + 1)
            if len(body) > limit:
                body = None
        except zlib.error:
            body = None
        if body is not None and zlib.crc32(body) & 0xFFFFFFFF == crc:
            out[name] = body
        pos = data.find(_LOCAL, end if body is not None else pos + 4)
    return out


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest of a project, or None when it cannot be read (cheap: no members)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _check_manifest(json.loads(zf.read(MANIFEST)), Path(path))
    except Exception:
        return None


# --------------------------------------------------------------------------- autosave


def autosave_dir() -> Path:
    return paths.cache_dir() / "autosave"


def autosave_path(project_path: str | Path | None, session: str = "untitled") -> Path:
    """Where the autosave of a project lives (the user cache; never next to the file,
    which may sit in a read-only or synced folder)."""
    if project_path is None:
        _check_id("session", session)
        return autosave_dir() / f"{session}.autosave{SUFFIX}"
    p = Path(project_path).resolve()
    digest = hashlib.sha256(str(p).encode("utf-8")).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", p.stem)[:40] or "project"
    return autosave_dir() / f"{stem}-{digest}.autosave{SUFFIX}"


class Autosaver:
    """Saves a project's autosave every ``interval_s`` seconds while it has changes.

    Call :meth:`maybe_save` from a timer (or after edits); :meth:`discard` after the
    user saved or closed cleanly."""

    def __init__(
        self,
        project_path: str | Path | None = None,
        *,
        interval_s: float = 120.0,
        session: str = "untitled",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.project_path = Path(project_path) if project_path is not None else None
        self.session = session
        self.interval_s = float(interval_s)
        self.clock = clock
        self.last_saved: float | None = None

    @property
    def path(self) -> Path:
        return autosave_path(self.project_path, self.session)

    def due(self) -> bool:
        return self.last_saved is None or self.clock() - self.last_saved >= self.interval_s

    def save(self, project: Project) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        original = str(self.project_path.resolve()) if self.project_path else None
        out = save_project(project, self.path, extra={"autosave_of": original})
        self.last_saved = self.clock()
        return out

    def maybe_save(self, project: Project, dirty: bool = True) -> Path | None:
        if dirty and self.due():
            return self.save(project)
        return None

    def retarget(self, project_path: str | Path) -> None:
        """The project got a (new) file name: drop the old autosave, use the new name."""
        self.discard()
        self.project_path = Path(project_path)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.last_saved = None


@dataclass
class RecoveryCandidate:
    autosave: Path  # the autosave file to open
    original: Path | None  # the project it belongs to (None: never saved)
    saved: float  # when the autosave was written (epoch seconds)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved))
        what = self.original.name if self.original else "an unsaved project"
        return f"Unsaved changes to {what} from {when}"


def find_recovery(project_path: str | Path | None = None) -> list[RecoveryCandidate]:
    """Autosaves newer than their project file (a crash left changes behind).

    With ``project_path``: at most that project's autosave.  Without: every autosave
    whose project was never saved, is gone, or is older than the autosave."""
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    if project_path is not None:
        files = [autosave_path(project_path)]
    else:
        files = sorted(folder.glob(f"*.autosave{SUFFIX}"))
    out = []
    for f in files:
        if not f.is_file():
            continue
        manifest = read_manifest(f)
        saved = float(manifest.get("saved", f.stat().st_mtime)) if manifest else f.stat().st_mtime
        original = manifest.get("autosave_of") if manifest else None
        orig = Path(original) if original else None
        if orig is not None and orig.is_file() and orig.stat().st_mtime >= saved:
            continue  # the project was saved after this autosave: nothing to recover
        out.append(RecoveryCandidate(f, orig, saved))
    return sorted(out, key=lambda c: -c.saved)

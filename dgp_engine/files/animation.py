"""Exporting frames as an animation: GIF, APNG, animated WebP, MP4, WebM, PNG sequence.

``AnimationExport`` is an iterator of :class:`ExportProgress` reports (one per
frame written, then a final one); ``export.cancel()`` (or a set ``cancel`` event) stops
it between frames (:class:`dgp_engine.system.runs.CancellableRun`).  Files are written to
a temp name in the destination folder and renamed at the end, so a failed or cancelled
export leaves no partial file and never touches an existing file of the same name.

Frames may be uint8 H×W×3 arrays, [-1, 1] tensors ([3,H,W] or [N,3,H,W]) or the
:class:`~dgp_engine.method.manipulate.Frame` reports of a render job, given as a list
or any iterable (a render job streams straight into the encoder).

Notes on the formats:
* GIF stores delays in 1/100 s: per-frame delays alternate so the total length
  matches the fps; GIF and APNG writers merge identical consecutive frames (held
  frames) into one longer frame.
* MP4 (H.264) and WebM (VP9) use yuv420p, which needs even sizes: an odd width or
  height is padded by one edge pixel (``even="pad"``), cropped by one (``even="crop"``)
  or resized (``even="resize"``); :func:`even_size` says which in a sentence.
* Frames larger than :data:`MAX_EXPORT_SIDE` on their long side are refused
  (:class:`~dgp_engine.errors.ExportTooLarge`) unless the caller chose a size: an explicit
  ``size`` or a ``max_side`` to scale them down to.  Nothing is downscaled silently.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ExportCancelled, ExportError, ExportTooLarge, InputError
from ..system.fileio import atomic_path, clean_stale_temps, fsync_dir, temp_prefix, umask
from ..system.memory import budget as memory_budget
from ..system.memory import why_too_big
from ..system.runs import CancellableRun
from .photos import unit_to_uint8

log = logging.getLogger(__name__)


SUFFIX_FORMATS = {
    ".gif": "gif",
    ".png": "apng",
    ".apng": "apng",
    ".webp": "webp",
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".webm": "webm",
}
FORMATS = ("gif", "apng", "webp", "mp4", "webm", "png-sequence")
FORMAT_TITLES = {
    "gif": "GIF",
    "apng": "Animated PNG",
    "webp": "Animated WebP",
    "mp4": "MP4 video (H.264)",
    "webm": "WebM video (VP9)",
    "png-sequence": "PNG sequence (folder)",
}
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
VIDEO_FORMATS = ("mp4", "webm")
EVEN_MODES = ("pad", "crop", "resize")
#: The longest side an export takes unless a size is chosen: 4K UHD's width, what H.264
#: level 5.1 players and browsers decode; a GIF or APNG that size holds ~1.6 GB of frames
#: in memory for 48 frames while it is written.
MAX_EXPORT_SIDE = 3840


def export_size(
    frame_size: tuple[int, int],
    *,
    size: tuple[int, int] | None = None,
    scale: float = 1.0,
    max_side: int | None = None,
    limit: int | None = MAX_EXPORT_SIDE,
) -> tuple[int, int]:
    """The (width, height) frames of ``frame_size`` are written at: ``size`` when given,
    else ``frame_size`` × ``scale``; then scaled down (aspect kept) so the long side is at
    most ``max_side`` when given.  Raises :class:`ExportTooLarge` when the caller chose
    neither ``size`` nor ``max_side`` and the long side exceeds ``limit``."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= 64):
        raise InputError(f"The scale must be a number above 0 and at most 64, not {scale}.")
    w, h = frame_size
    tw, th = size or (max(1, round(w * scale)), max(1, round(h * scale)))
    if max_side is not None:
        if int(max_side) < 2:
            raise InputError("The largest side must be at least 2 px.")
        if max(tw, th) > max_side:
            k = max_side / max(tw, th)
            tw, th = max(1, round(tw * k)), max(1, round(th * k))
    elif size is None and limit is not None and max(tw, th) > limit:
        raise ExportTooLarge(
            f"The frames would be {tw}×{th} px, more than the {limit} px on the long side "
            "an export takes without being asked (what video players decode, and what GIF "
            "and APNG writers can hold in memory). Choose a largest side to scale them down "
            "to, a smaller size, or the generator's own square.",
            (tw, th),
            limit,
        )
    return tw, th


def even_size(
    size: tuple[int, int], format: str, even: str = "pad"
) -> tuple[tuple[int, int], str | None]:
    """The size a ``format`` file is written at for frames of ``size`` = (w, h), and a
    sentence saying what was changed to get there (None: nothing).  MP4 and WebM use
    yuv420p, which needs even sides: ``even`` pads by one edge pixel, crops one, or
    resizes."""
    if even not in EVEN_MODES:
        raise InputError(f"even must be one of {', '.join(EVEN_MODES)}.")
    w, h = size
    if format not in VIDEO_FORMATS or not (w % 2 or h % 2):
        return (w, h), None
    sides = " and ".join(s for s, odd in (("width", w % 2), ("height", h % 2)) if odd)
    which = " and ".join(s for s, odd in (("last column", w % 2), ("last row", h % 2)) if odd)
    if even == "crop":
        out = (w - w % 2, h - h % 2)
        how = f"cropped to {out[0]}×{out[1]} (the {which} left out)"
    else:
        out = (w + w % 2, h + h % 2)
        how = (
            f"resized to {out[0]}×{out[1]}"
            if even == "resize"
            else f"padded to {out[0]}×{out[1]} (the {which} repeated)"
        )
    return out, (
        f"{FORMAT_TITLES[format]} needs an even width and height: the {w}×{h} frames (odd "
        f"{sides}) are {how}."
    )


def format_for(path: str | Path) -> str:
    """The format a path asks for: by suffix; a path without suffix is a PNG-sequence folder."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "png-sequence"
    try:
        return SUFFIX_FORMATS[suffix]
    except KeyError:
        raise InputError(
            f"Cannot tell the animation format from {Path(path).name!r}: use "
            ".gif, .png/.apng, .webp, .mp4 or .webm, or a folder name for a PNG "
            "sequence."
        ) from None


@dataclass
class ExportProgress:
    stage: str  # "frames" while frames are written, "done" at the end
    done: int  # frames written so far
    total: int | None  # frames expected (None when the input has no length)
    elapsed: float = 0.0
    path: Path | None = None  # the finished file/folder, on the final report


def frame_array(frame: Any) -> np.ndarray:
    """One frame as a C-contiguous uint8 H×W×3 array."""
    image = getattr(frame, "image", frame)  # manipulate.Frame
    if hasattr(image, "detach"):  # torch tensor in [-1, 1]
        from ..method.pictures import signed_to_uint8  # torch only when frames are tensors

        if image.dim() == 4 and image.shape[0] == 1:
            image = image[0]
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise InputError(f"A frame tensor must be [3, H, W]; got {tuple(image.shape)}.")
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        return signed_to_uint8(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"A frame must be H×W×3; got shape {a.shape}.")
    if a.dtype != np.uint8:
        a = unit_to_uint8(a) if np.issubdtype(a.dtype, np.floating) else a.astype(np.uint8)
    return np.ascontiguousarray(a[..., :3])


def resize_frame(
    a: np.ndarray,
    size: tuple[int, int] | None = None,
    scale: float = 1.0,
    resample: str = "lanczos",
) -> np.ndarray:
    """A uint8 frame resized to ``size`` (w, h), or by ``scale`` when no size is given."""
    if resample not in _RESAMPLE:
        raise InputError(f"resample must be one of {', '.join(_RESAMPLE)}.")
    h, w = a.shape[:2]
    tw, th = size or (max(1, round(w * scale)), max(1, round(h * scale)))
    if (tw, th) == (w, h):
        return a
    return np.asarray(Image.fromarray(a).resize((tw, th), _RESAMPLE[resample]))


def _iter_frames(frames: Any) -> Iterable[Any]:
    if hasattr(frames, "detach") and frames.dim() == 4:
        return list(frames)
    iterable: Iterable[Any] = frames  # anything iterable (list, generator, array)
    return iterable


def frame_delays(n: int, fps: float, unit_ms: int) -> list[int]:
    """Per-frame delays (in ms, multiples of ``unit_ms``) whose running sum follows
    i·1000/fps, so the total length is right even when 1000/fps is not a multiple."""
    marks = [round(i * 1000.0 / fps / unit_ms) * unit_ms for i in range(n + 1)]
    return [max(unit_ms, b - a) for a, b in zip(marks, marks[1:], strict=False)]


class AnimationExport(CancellableRun[ExportProgress]):
    """Writes ``frames`` to ``path``; iterate for progress, or call :meth:`run`.  A
    cancelled export (``cancelled``) writes nothing, also when its frames come from a
    render job that was cancelled."""

    def __init__(
        self,
        frames: Any,
        path: str | Path,
        *,
        fps: float = 24.0,
        format: str | None = None,
        size: tuple[int, int] | None = None,
        scale: float = 1.0,
        resample: str = "lanczos",
        loop: int = 0,
        even: str = "pad",
        quality: int = 90,
        total: int | None = None,
        cancel: threading.Event | None = None,
        max_side: int | None = None,
        limit: int | None = MAX_EXPORT_SIDE,
        replace_frames: bool = False,
    ):
        super().__init__(cancel)
        self.path = Path(path)
        self.format = format or format_for(self.path)
        if self.format not in FORMATS:
            raise InputError(
                f"Unknown animation format {self.format!r}: use one of {', '.join(FORMATS)}."
            )
        if (
            self.format == "png-sequence"
            and not replace_frames
            and self.path.is_dir()
            and any(self.path.glob("frame_*.png"))
        ):
            # the sequence replaces frame_*.png files and removes extra ones: never files
            # someone else put there, unless the caller asked the user (``replace_frames``)
            raise ExportError(
                f"{self.path} already holds frame_*.png files, which a PNG sequence would "
                "replace or remove: choose a new or empty folder."
            )
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= 240):
            raise InputError("fps must be a number between 0 and 240.")
        if size is not None and (len(size) != 2 or min(int(size[0]), int(size[1])) < 1):
            raise InputError("size must be (width, height) in pixels, both ≥ 1.")
        if not (math.isfinite(float(scale)) and 0 < float(scale) <= 64):
            raise InputError("scale must be a number between 0 and 64.")
        if resample not in _RESAMPLE:
            raise InputError(f"resample must be one of {', '.join(_RESAMPLE)}.")
        if even not in EVEN_MODES:
            raise InputError(f"even must be one of {', '.join(EVEN_MODES)}.")
        if max_side is not None and int(max_side) < 2:
            raise InputError("The largest side must be at least 2 px.")
        if isinstance(loop, bool) or not isinstance(loop, int) or not 0 <= loop <= 65535:
            # GIF and APNG store it in 16 bits: -1 ended in Pillow's OverflowError
            raise InputError(f"The repeat count must be 0 (forever) to 65535, not {loop}.")
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1])) if size is not None else None
        self.scale = float(scale)
        self.resample = resample
        self.loop = int(loop)
        self.even = even
        self.max_side = None if max_side is None else int(max_side)
        self.limit = limit
        self.even_note: str | None = None  # what yuv420p's even sides changed, once known
        self.quality = int(quality)
        self.frames = _iter_frames(frames)
        if total is None and isinstance(self.frames, Sized):
            total = len(self.frames)
        self.total = total
        self.written: Path | None = None
        self.frame_size: tuple[int, int] | None = None  # (w, h) as written

    # --- public ---------------------------------------------------------------------
    def run(self, progress: Callable[[ExportProgress], Any] | None = None) -> Path:
        """Export to the end; raises :class:`ExportCancelled` when cancelled."""
        for report in self:
            if progress is not None:
                progress(report)
        if self.cancelled or self.written is None:
            raise ExportCancelled(f"Export to {self.path.name} was cancelled; nothing was written.")
        return self.written

    # --- frames ---------------------------------------------------------------------
    def _prepare(self, frame: Any) -> np.ndarray:
        a = frame_array(frame)
        h, w = a.shape[:2]
        tw, th = export_size(
            (w, h), size=self.size, scale=self.scale, max_side=self.max_side, limit=self.limit
        )
        (ew, eh), note = even_size((tw, th), self.format, self.even)
        if self.frame_size is None:
            self.even_note = note
            self._check_memory(max(tw, ew), max(th, eh))
        if self.even == "resize":
            tw, th = ew, eh
        if (tw, th) != (w, h):
            a = np.asarray(Image.fromarray(a).resize((tw, th), _RESAMPLE[self.resample]))
        if (ew, eh) != (tw, th):
            if self.even == "crop":
                a = a[:eh, :ew]
            else:
                a = np.pad(a, ((0, eh - th), (0, ew - tw), (0, 0)), mode="edge")
        a = np.ascontiguousarray(a)
        size = (a.shape[1], a.shape[0])
        if self.frame_size is None:
            self.frame_size = size
        elif size != self.frame_size:
            raise InputError(
                f"All frames must have the same size: frame {self._done + 1} is "
                f"{w}×{h}, the first was a different size."
            )
        return a

    def _check_memory(self, w: int, h: int) -> None:
        """Refuse frames of w×h px that the export cannot hold in memory — before the first
        is resized (``--size 99999x99999`` once took 24 GB and was killed): GIF, APNG and
        WebP keep every frame until the file is written, video and PNG sequences a few."""
        held = max(1, self.total or 1) if self.format in ("gif", "apng", "webp") else 3
        need = w * h * 4 * held  # RGB(A) bytes of the frames held, and one being resized
        if need > memory_budget():
            also = (
                f" {FORMAT_TITLES[self.format]} holds all {held} frames until it is "
                "written; MP4 or WebM holds one at a time."
                if held > 3
                else ""
            )
            raise InputError(
                f"Frames of {w}×{h} px cannot be exported: "
                f"{why_too_big(need)}.{also} Choose a smaller size."
            )

    def _frames(self) -> Iterator[np.ndarray]:
        for frame in self.frames:
            if self._stop_requested():
                return
            yield self._prepare(frame)
        # A render job (or any source) that stopped early because it was cancelled, or
        # sharing our cancel event, ends without raising: that is a cancellation too,
        # not a short animation.
        if not self._stop_requested() and getattr(self.frames, "cancelled", False):
            self.cancelled = True

    # --- the run --------------------------------------------------------------------
    def _reports(self) -> Iterator[ExportProgress]:
        t0 = time.perf_counter()
        self._done = 0
        folder = self.path.parent
        if not folder.is_dir():
            raise ExportError(f"The folder {folder} does not exist: create it or choose another.")
        if self.format == "png-sequence" and self.path.exists() and not self.path.is_dir():
            raise ExportError(f"{self.path} is a file; a PNG sequence needs a folder name.")
        if self.format != "png-sequence" and self.path.is_dir():
            raise ExportError(f"{self.path} is a folder; give a file name to export to.")
        if self.size is not None:  # chosen: refused before any frame is rendered
            tw, th = export_size(self.size, size=self.size, max_side=self.max_side, limit=None)
            (ew, eh), _ = even_size((tw, th), self.format, self.even)
            self._check_memory(max(tw, ew), max(th, eh))
        tmp = self._temp_path(folder)
        try:
            writer = {
                "gif": self._write_pillow,
                "apng": self._write_pillow,
                "webp": self._write_pillow,
                "mp4": self._write_video,
                "webm": self._write_video,
                "png-sequence": self._write_sequence,
            }
            for done in writer[self.format](tmp):
                self._done = done
                yield ExportProgress("frames", done, self.total, time.perf_counter() - t0)
            if self.cancelled:
                return
            if self._done == 0:
                raise InputError("There are no frames to export.")
            self._commit(tmp)
        except BaseException as exc:
            self._discard(tmp)
            if isinstance(exc, PermissionError):
                raise _unwritable(folder, exc) from exc
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS):
                raise ExportError(
                    f"Could not write {self.path.name}: {exc.strerror}. Nothing was written."
                ) from exc
            raise
        finally:
            if self.cancelled:
                self._discard(tmp)
        self.written = self.path
        yield ExportProgress("done", self._done, self.total, time.perf_counter() - t0, self.path)

    def _temp_path(self, folder: Path) -> Path:
        try:
            clean_stale_temps(folder)  # what a killed export left
            if self.format == "png-sequence":
                return Path(
                    tempfile.mkdtemp(
                        prefix=temp_prefix(self.path.name, folder, ".partial"),
                        suffix=".partial",
                        dir=folder,
                    )
                )
            suffix = f".partial{self.path.suffix}"
            fd, name = tempfile.mkstemp(
                prefix=temp_prefix(self.path.name, folder, suffix), suffix=suffix, dir=folder
            )
            os.close(fd)
            return Path(name)
        except PermissionError as exc:
            raise _unwritable(folder, exc) from exc
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise _unwritable(folder, exc) from exc
            raise ExportError(f"Could not write in {folder}: {exc.strerror or exc}.") from exc

    def _discard(self, tmp: Path) -> None:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)

    def _commit(self, tmp: Path) -> None:
        if self.format != "png-sequence":
            os.chmod(tmp, 0o666 & ~umask())  # temp files are made private
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            return
        if not self.path.exists():
            os.replace(tmp, self.path)
            return
        # An existing folder: move the new frames in, then drop frames of an older,
        # longer export so the folder holds exactly this sequence.
        names = {p.name for p in tmp.iterdir()}
        for p in sorted(tmp.iterdir()):
            os.replace(p, self.path / p.name)
        for old in self.path.glob("frame_*.png"):
            if old.name not in names:
                old.unlink()
        tmp.rmdir()

    # --- writers (generators of frames-written counts) --------------------------------
    def _write_pillow(self, tmp: Path) -> Iterator[int]:
        images: list[Image.Image] = []
        for a in self._frames():
            images.append(Image.fromarray(a))
            yield len(images)
        if self.cancelled or not images:
            return
        unit = 10 if self.format == "gif" else 1
        if self.format == "gif" and self.fps > 50:
            log.warning("GIF delays are 1/100 s: %.3g fps plays at most at 50 fps", self.fps)
        durations = frame_delays(len(images), self.fps, unit)
        first, rest = images[0], images[1:]
        if self.format == "gif":
            first.save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=rest,
                duration=durations,
                loop=self.loop,
                disposal=1,
                optimize=False,
            )
        elif self.format == "apng":
            first.save(
                tmp,
                format="PNG",
                save_all=True,
                append_images=rest,
                duration=durations,
                loop=self.loop,
                default_image=False,
            )
        else:
            first.save(
                tmp,
                format="WEBP",
                save_all=True,
                append_images=rest,
                duration=durations,
                loop=self.loop,
                quality=self.quality,
                method=4,
            )

    def _write_video(self, tmp: Path) -> Iterator[int]:
        import imageio_ffmpeg

        gen = None
        n = 0
        try:
            for a in self._frames():
                if gen is None:
                    h, w = a.shape[:2]
                    if self.format == "mp4":
                        codec, params = (
                            "libx264",
                            ["-crf", "18", "-preset", "medium", "-movflags", "+faststart"],
                        )
                    else:
                        codec, params = (
                            "libvpx-vp9",
                            ["-crf", "32", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8"],
                        )
                    gen = imageio_ffmpeg.write_frames(
                        str(tmp),
                        (w, h),
                        fps=self.fps,
                        codec=codec,
                        pix_fmt_in="rgb24",
                        pix_fmt_out="yuv420p",
                        quality=None,
                        macro_block_size=1,
                        ffmpeg_log_level="error",
                        output_params=params,
                    )
                    gen.send(None)
                gen.send(a)
                n += 1
                yield n
        finally:
            if gen is not None:
                try:
                    gen.close()
                except Exception as exc:
                    if not self.cancelled:
                        raise ExportError(f"The video encoder failed: {exc}") from exc

    def _write_sequence(self, tmp: Path) -> Iterator[int]:
        n = 0
        for a in self._frames():
            Image.fromarray(a).save(tmp / f"frame_{n:05d}.png", format="PNG")
            n += 1
            yield n


def _unwritable(folder: Path, exc: OSError) -> ExportError:
    return ExportError(
        f"Cannot write to {folder}: the folder is read-only or you lack "
        f"permission ({exc.strerror or exc}). Choose another folder; nothing "
        "was written."
    )


def export_animation(
    frames: Any,
    path: str | Path,
    *,
    fps: float = 24.0,
    progress: Callable[[ExportProgress], Any] | None = None,
    cancel: threading.Event | None = None,
    **options: Any,
) -> Path:
    """Write ``frames`` to ``path`` (format from the suffix unless ``format=`` is given).

    Options: ``size=(w, h)`` or ``scale``, ``resample``, ``loop``, ``even``, ``quality``.
    Raises :class:`ExportCancelled` if ``cancel`` gets set, :class:`ExportError` when the
    folder cannot be written."""
    return AnimationExport(frames, path, fps=fps, cancel=cancel, **options).run(progress)


def save_image(image: Any, path: str | Path) -> Path:
    """One frame (array, tensor, PIL image) to a picture file, atomically."""
    path = Path(path)
    a = frame_array(image)
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"The folder {folder} does not exist: create it or choose another.")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"Cannot tell the picture format from {path.name!r}: use .png, .jpg, .webp or .tif."
        )
    try:
        with atomic_path(path, suffix=f".partial{path.suffix}") as tmp:
            Image.fromarray(a).save(tmp, format=fmt)
    except OSError as exc:
        raise _unwritable(folder, exc) from exc
    return path


def grid(images: Any, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile frames (same size) into one uint8 picture, ``cols`` per row (√n by default)."""
    arrays = [frame_array(f) for f in _iter_frames(images)]
    if not arrays:
        raise InputError("There are no images to tile.")
    n = len(arrays)
    cols = max(1, min(n, cols or math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    h, w = arrays[0].shape[:2]
    out = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, 3), 255, np.uint8)
    for i, a in enumerate(arrays):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = a
    return out

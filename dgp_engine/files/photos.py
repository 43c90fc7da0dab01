"""Reading and writing photos: any mode Pillow opens in, any size, safely.

A :class:`Photo` is float RGB in [0, 1] (H×W×3) plus, kept apart, the alpha
channel and what we must carry to the output file: the ICC profile and EXIF
(orientation already applied to the pixels, so the tag is reset).

Saving is atomic: the file is written under a temporary name in the target
folder and renamed into place, so a failure (disk full included) never leaves
a partial output, and an existing file — the input above all — is never
replaced unless the caller asks for it.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import EllipsisType
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import InputError, OutputError
from ..system.fileio import (
    NotRegularFile,
    OutputBusy,
    atomic_write,
    claim_output,
    name_too_long,
    nearest_existing,
    open_regular,
    short_name,
)
from ..system.memory import DECODE_BYTES_PER_PIXEL, why_too_big
from ..system.memory import budget as memory_budget

log = logging.getLogger(__name__)

# Pictures above this many pixels are refused as likely decompression bombs
# (Pillow's own default limit is ~89 Mpx; this is the same order, stated here).
MAX_PIXELS = 120_000_000

# Output formats by file extension and whether they keep an alpha channel.
FORMATS = {
    ".png": ("PNG", True),
    ".jpg": ("JPEG", False),
    ".jpeg": ("JPEG", False),
    ".tif": ("TIFF", True),
    ".tiff": ("TIFF", True),
    ".webp": ("WEBP", True),
    ".bmp": ("BMP", False),
}


# The process umask, read once (os.umask can only be read by setting it).


@dataclass
class Photo:
    """A picture as the engine uses it: float RGB in [0, 1], alpha kept apart."""

    rgb: np.ndarray  # float32 H×W×3 in [0, 1]
    alpha: np.ndarray | None = None  # float32 H×W in [0, 1], None if opaque
    icc_profile: bytes | None = None  # embedded colour profile, if any
    exif: bytes | None = None  # EXIF with orientation reset to 1
    mode: str = "RGB"  # Pillow mode of the source file
    format: str | None = None  # Pillow format name of the source file
    path: Path | None = None  # where it was read from
    bit_depth: int = 8  # bits per sample of the source
    info: dict[str, Any] = field(default_factory=dict)  # dpi and similar, carried to the output

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports sizes."""
        return self.width, self.height

    @property
    def is_gray(self) -> bool:
        """True when the three channels are equal (a black-and-white picture)."""
        r, g, b = self.rgb[..., 0], self.rgb[..., 1], self.rgb[..., 2]
        return bool(np.array_equal(r, g) and np.array_equal(g, b))

    def with_pixels(self, rgb: np.ndarray, alpha: np.ndarray | None | EllipsisType = ...) -> Photo:
        """A copy with new pixels (and alpha, when given), metadata kept."""
        return replace(
            self, rgb=np.asarray(rgb, dtype=np.float32), alpha=self.alpha if alpha is ... else alpha
        )

    @classmethod
    def from_array(cls, arr: np.ndarray) -> Photo:
        """A photo from a uint8/uint16/float array (H×W, H×W×3 or H×W×4)."""
        a = np.asarray(arr)
        if a.dtype == np.uint8:
            f = a.astype(np.float32) / 255.0
        elif a.dtype == np.uint16:
            f = a.astype(np.float32) / 65535.0
        else:
            f = np.clip(a.astype(np.float32), 0.0, 1.0)
        if f.ndim == 2:
            f = np.repeat(f[..., None], 3, axis=2)
        if f.ndim != 3 or f.shape[2] not in (3, 4) or min(f.shape[:2]) < 1:
            raise InputError(f"An image array must be H×W, H×W×3 or H×W×4; got {a.shape}.")
        alpha = f[..., 3].copy() if f.shape[2] == 4 else None
        return cls(rgb=np.ascontiguousarray(f[..., :3]), alpha=alpha)


# --- reading -------------------------------------------------------------------------
def read_image(
    path: str | Path, *, max_pixels: int = MAX_PIXELS, bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL
) -> Photo:
    """Read any image Pillow can open; refuse damaged files and decompression bombs.

    EXIF orientation is applied; 16-bit, CMYK, palette, grayscale and alpha
    inputs are converted to float RGB (+ alpha). A picture whose pixels times
    ``bytes_per_pixel`` (what the caller will spend per pixel: decoding only, or a whole
    restoration run, :data:`dgp_engine.system.memory.RUN_BYTES_PER_PIXEL`) exceed the memory
    budget is refused before it is decoded."""
    path = Path(path)
    data = read_picture_file(path)
    photo = decode_image(
        data, name=str(path), max_pixels=max_pixels, bytes_per_pixel=bytes_per_pixel
    )
    photo.path = path
    return photo


def read_picture_file(path: Path, what: str = "") -> bytes:
    """The bytes of a picture file (``what``: how messages name it, e.g. "Mask file "),
    refused with one sentence when it is missing, a folder, not a regular file (a device,
    FIFO or socket is never read: :func:`dgp_engine.system.fileio.open_regular`), empty, or larger
    than the memory budget."""
    label = f"{what}{path}"
    if not path.exists():
        raise InputError(f"{label} does not exist.")
    if path.is_dir():
        raise InputError(f"{label} is a folder, not an image file.")
    try:
        with open_regular(path) as (fh, st):
            if st.st_size == 0:
                raise InputError(f"{label} is empty (0 bytes): not an image.")
            if st.st_size > memory_budget():
                raise InputError(
                    f"{label} is {st.st_size / 1e9:.1f} GB: "
                    f"{why_too_big(st.st_size)}. Downscale or recompress it "
                    "first."
                )
            return fh.read()
    except NotRegularFile as exc:
        raise InputError(
            f"{label} is not a regular file ({exc.kind}): give a picture file."
        ) from exc
    except OSError as exc:
        raise InputError(f"Could not read {label}: {exc.strerror or exc}.") from exc


def decode_image(
    data: bytes,
    *,
    name: str = "image",
    max_pixels: int = MAX_PIXELS,
    bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL,
    budget: int | None = None,
    workers: int = 1,
) -> Photo:
    """:func:`read_image` for bytes already in memory; ``budget`` (default: the whole
    :func:`dgp_engine.system.memory.budget`) may be one of ``workers``' shares."""
    img = _open_checked(data, name, max_pixels, bytes_per_pixel, budget, workers)
    fmt = img.format
    icc = img.info.get("icc_profile") or None
    src_mode = img.mode
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception as exc:  # a broken EXIF block must not make the picture unreadable
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", name, exc)
    exif = _exif_bytes(img)
    rgb, alpha, bits, icc = _to_float_rgb(img, icc, name)
    if bits == 8 and _colour_16bit(data, fmt):
        bits = 16
        precise = _tiff_16bit(data, rgb.shape) if fmt == "TIFF" else None
        if precise is not None:
            rgb, alpha = precise[..., :3], (precise[..., 3] if precise.shape[2] == 4 else alpha)
        else:
            log.warning(
                "%s has 16 bits per colour channel, which Pillow reads as 8: the "
                "input's finer steps are lost (a 16-bit TIFF input keeps them)",
                name,
            )
    info = {k: img.info[k] for k in ("dpi",) if k in img.info}
    return Photo(
        rgb=rgb,
        alpha=alpha,
        icc_profile=icc,
        exif=exif,
        mode=src_mode,
        format=fmt,
        bit_depth=bits,
        info=info,
    )


def _colour_16bit(data: bytes, fmt: str | None) -> bool:
    """A PNG or TIFF with 16 bits per colour sample (Pillow decodes those to 8)."""
    if fmt == "PNG":  # IHDR: bit depth at byte 24, colour type (2 RGB, 6 RGBA) at 25
        return len(data) > 26 and data[24] == 16 and data[25] in (2, 6)
    if fmt == "TIFF":
        try:
            with Image.open(io.BytesIO(data)) as im:
                bps = getattr(im, "tag_v2", {}).get(258)
            return isinstance(bps, tuple) and len(bps) >= 3 and all(b == 16 for b in bps)
        except Exception:  # noqa: BLE001 - only a hint; the picture itself was read
            return False
    return False


def _tiff_16bit(data: bytes, shape: tuple[int, ...]) -> np.ndarray | None:
    """The full-precision samples of a 16-bit colour TIFF (tifffile), or None."""
    try:
        import tifffile

        a = np.asarray(tifffile.imread(io.BytesIO(data)))
    except Exception:  # noqa: BLE001 - fall back to Pillow's 8-bit reading
        return None
    if a.dtype != np.uint16 or a.ndim != 3 or a.shape[:2] != shape[:2] or a.shape[2] not in (3, 4):
        return None  # e.g. EXIF-rotated: Pillow's orientation wins
    return np.ascontiguousarray(a.astype(np.float32) / 65535.0)


def check_fits(
    size: tuple[int, int],
    name: str,
    *,
    bytes_per_pixel: int,
    budget: int | None = None,
    workers: int = 1,
) -> None:
    """Refuse (InputError) a picture of ``size`` (w, h) whose pixels times
    ``bytes_per_pixel`` exceed ``budget`` (default :func:`dgp_engine.system.memory.budget`; with
    ``workers``, one worker's share of it) — before it is decoded."""
    w, h = size
    allowed = memory_budget() if budget is None else budget
    if w * h * bytes_per_pixel > allowed:
        raise InputError(
            f"{name} is {w}×{h} px ({w * h / 1e6:.0f} Mpx): "
            f"{why_too_big(w * h * bytes_per_pixel, allowed, workers)}. Downscale "
            "it first (or crop the part to restore)."
        )


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a picture's header, without decoding it; None when the
    header cannot be read (decoding says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
    except Exception:  # noqa: BLE001 - a bad file is reported where it is decoded
        return None
    return int(w), int(h)


def _open_checked(
    data: bytes,
    name: str,
    max_pixels: int,
    bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL,
    budget: int | None = None,
    workers: int = 1,
) -> Image.Image:
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone relaxed Pillow globally: we do not
        log.debug("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; checking completeness anyway")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w <= 0 or h <= 0:
                raise InputError(f"{name} has no pixels (size {w}×{h}).")
            if w * h > max_pixels:
                raise InputError(
                    f"{name} is {w}×{h} px ({w * h / 1e6:.0f} Mpx), above the "
                    f"limit of {max_pixels / 1e6:.0f} Mpx: refused as a possible "
                    "decompression bomb. Downscale it first."
                )
            check_fits(
                (w, h), name, bytes_per_pixel=bytes_per_pixel, budget=budget, workers=workers
            )
            img.load()
            if img.format == "PNG":  # chunk CRCs and the end marker, which load() skips
                Image.open(io.BytesIO(data)).verify()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{name} is too large to open safely ({exc}). Downscale it first."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(
            f"{name} is not an image file that can be read (unknown or damaged format)."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct_error()) as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            raise InputError(
                f"{name} is truncated (the file ends early): copy or export it again."
            ) from exc
        raise InputError(f"{name} is damaged and cannot be decoded ({msg}).") from exc
    return img


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def _exif_bytes(img: Image.Image) -> bytes | None:
    try:
        exif = img.getexif()
        if len(exif) == 0:
            return None
        if 0x0112 in exif:  # orientation now applied to the pixels
            exif[0x0112] = 1
        return exif.tobytes()
    except Exception:  # malformed EXIF: drop it rather than fail
        return None


def icc_colour_space(icc: bytes | None) -> str | None:
    """'RGB', 'GRAY', 'CMYK', … from an ICC profile header, None if unreadable."""
    if not icc or len(icc) < 20:
        return None
    return icc[16:20].decode("ascii", "replace").strip().upper()


def _to_float_rgb(
    img: Image.Image, icc: bytes | None, name: str
) -> tuple[np.ndarray, np.ndarray | None, int, bytes | None]:
    """Float RGB, alpha (or None), source bit depth and the ICC profile that still applies."""
    mode = img.mode
    alpha = None
    bits = 8
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img).astype(np.float32)
        bits = 16
        gray = np.clip(a / 65535.0, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None, bits, _keep_icc(icc, "GRAY")
    if mode == "F":
        a = np.asarray(img).astype(np.float32)
        a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
        peak = float(a.max()) if a.size else 1.0
        scale = 1.0 if peak <= 1.0 else (255.0 if peak <= 255.0 else 65535.0)
        gray = np.clip(a / scale, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None, 32, _keep_icc(icc, "GRAY")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("La",):
        img = img.convert("LA")
    elif mode in ("RGBa",):
        img = img.convert("RGBA")
    elif mode == "CMYK":
        img, icc = _cmyk_to_rgb(img, icc, name)
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in mode else "RGB")
    mode = img.mode
    a = np.asarray(img).astype(np.float32) / 255.0
    if mode in ("L", "LA"):
        gray = a if mode == "L" else a[..., 0]
        if mode == "LA":
            alpha = a[..., 1].copy()
        rgb = np.repeat(gray[..., None], 3, axis=2)
        icc = _keep_icc(icc, "GRAY")
    else:
        rgb = a[..., :3]
        if mode == "RGBA":
            alpha = a[..., 3].copy()
        icc = _keep_icc(icc, "RGB")
    if alpha is not None and float(alpha.min()) >= 1.0:
        alpha = None
    return np.ascontiguousarray(rgb, dtype=np.float32), alpha, bits, icc


def _keep_icc(icc: bytes | None, space: str) -> bytes | None:
    """The profile if it describes pixels of ``space`` ('RGB' or 'GRAY'), else None."""
    return icc if icc and icc_colour_space(icc) == space else None


def _cmyk_to_rgb(
    img: Image.Image, icc: bytes | None, name: str
) -> tuple[Image.Image, bytes | None]:
    """CMYK → sRGB through its profile when it has one (then the profile no longer applies)."""
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(img, src, dst, outputMode="RGB")
            if out is not None:
                srgb = ImageCms.ImageCmsProfile(dst).tobytes()
                return out, srgb
        except Exception as exc:
            log.warning("%s: colour profile not usable (%s); converting CMYK naively", name, exc)
    return img.convert("RGB"), None


# --- masks ---------------------------------------------------------------------------
def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A hole mask from an image file: True where the picture is to be filled.

    White (or, for files with transparency, opaque painted) pixels mark the hole;
    black / transparent pixels are kept.  ``size`` = (width, height) the mask must have."""
    path = Path(path)
    img = _open_checked(read_picture_file(path, "Mask file "), f"Mask file {path}", MAX_PIXELS)
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:
        pass
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    ):
        rgba = np.asarray(img.convert("RGBA"))
        alpha = rgba[..., 3]
        if alpha.min() < 255:  # painted strokes on a transparent layer
            hole = alpha > 127
        else:
            hole = np.asarray(img.convert("L")) > 127
    elif img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img).astype(np.float64)
        hole = a > (a.max() / 2 if a.max() > 0 else 0.5)
    else:
        hole = np.asarray(img.convert("L")) > 127
    return check_mask(hole, size, str(path))


def check_mask(
    hole: np.ndarray, size: tuple[int, int] | None, name: str = "The mask"
) -> np.ndarray:
    """Validate a boolean hole mask (True = fill) against a picture of ``size`` (w, h)."""
    hole = np.asarray(hole)
    if hole.ndim == 3:
        hole = hole[..., 0]
    if hole.ndim != 2 or hole.size == 0:
        raise InputError(f"{name} has no pixels.")
    hole = hole.astype(bool)
    if size is not None and (hole.shape[1], hole.shape[0]) != tuple(size):
        raise InputError(
            f"{name} is {hole.shape[1]}×{hole.shape[0]} px but the picture is "
            f"{size[0]}×{size[1]} px: the mask must have the picture's size."
        )
    if not hole.any():
        raise InputError(
            f"{name} marks nothing to fill (it is all black). Paint the area to restore in white."
        )
    if hole.all():
        raise InputError(
            f"{name} covers the whole picture: nothing is known to restore "
            "from. Leave some of it unpainted."
        )
    return hole


def box_mask(box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """A hole mask (True = fill) from a box x, y, width, height on a picture of size (w, h)."""
    x, y, bw, bh = (int(v) for v in box)
    w, h = size
    if bw <= 0 or bh <= 0:
        raise InputError(f"The box {x},{y},{bw},{bh} has no area.")
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        raise InputError(f"The box {x},{y},{bw},{bh} lies outside the {w}×{h} picture.")
    hole = np.zeros((h, w), dtype=bool)
    hole[max(0, y) : min(h, y + bh), max(0, x) : min(w, x + bw)] = True
    return check_mask(hole, size, f"The box {x},{y},{bw},{bh}")


# --- writing ---------------------------------------------------------------------------
def output_format(path: str | Path) -> tuple[str, bool]:
    """(Pillow format, keeps alpha) for an output file name; clear error if unsupported."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise OutputError(
            f"Cannot write {Path(path).name!r}: unknown image type "
            f"{ext or '(no extension)'!r}. Use one of {', '.join(sorted(FORMATS))}."
        )
    return FORMATS[ext]


def check_output_path(
    path: str | Path,
    *,
    sources: Sequence[str | Path] = (),
    overwrite: bool = False,
    image: bool = True,
    claim: bool = False,
) -> Path:
    """Refuse, before any work, an output that would replace an input or an existing
    file (unless ``overwrite``), is a folder or a device, sits in a missing or unwritable
    folder, or (``image``) has an unknown image type.

    With ``claim`` the output is also claimed for this process
    (:func:`dgp_engine.system.fileio.claim_output`): a lock file is created beside it — proof that
    the folder takes new files (``/proc``, read-only mounts fail here, not after the run) —
    and a second run writing the same file is refused at once."""
    path = Path(path)
    too_long = name_too_long(path)
    if too_long:
        raise OutputError(
            f"Cannot write {short_name(str(path), 40, 16)}: {too_long}. Pick a shorter output name."
        )
    if path.is_dir():
        raise OutputError(
            f"{path} is a folder; give a file name for the output (e.g. {path / 'result.png'})."
        )
    if image:
        output_format(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        blocker = nearest_existing(parent)
        if not blocker.is_dir():
            raise OutputError(
                f"{blocker} is a file, not a folder: {path.name} cannot be "
                "written under it. Pick another output folder."
            )
        raise OutputError(f"The folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise OutputError(
            f"No permission to write into {parent}; pick an output in a folder you can write to."
        )
    if path.exists() or path.is_symlink():
        is_source = any(_same_file(path, s) for s in sources if s)
        if is_source and not overwrite:
            raise OutputError(
                f"{path} is the input file; refusing to overwrite it. Pick "
                "another output name (or allow overwriting: --overwrite)."
            )
        if path.exists() and not path.is_file():
            raise OutputError(
                f"{path} is not a regular file (a device, pipe or socket); "
                "give the name of a file to write."
            )
        if not overwrite:
            raise OutputError(
                f"{path} already exists; pick another name or allow overwriting (--overwrite)."
            )
    if claim:
        claim_or_refuse(path)
    return path


def claim_or_refuse(path: Path) -> None:
    """Claim ``path`` for this run (:func:`dgp_engine.system.fileio.claim_output`), or refuse
    with what to do: another run is writing it, or its folder takes no new files."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        claim_output(path)
    except OutputBusy as exc:
        raise OutputError(
            f"{path} is being written by another run ({exc.holder}); wait "
            "for it to finish or pick another output name."
        ) from exc
    except OSError as exc:
        raise OutputError(
            f"Cannot create files in {parent} "
            f"({exc.strerror or exc}): pick an output in a folder you can "
            "write to. Nothing was done."
        ) from exc


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def unit_to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (photos, alpha) → uint8, rounded; out-of-range values are clipped.
    (The generator's [-1, 1] tensors: :func:`dgp_engine.method.pictures.signed_to_uint8`.)"""
    return (np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_pil(photo: Photo, *, with_alpha: bool = True) -> Image.Image:
    rgb = unit_to_uint8(photo.rgb)
    if with_alpha and photo.alpha is not None:
        a = unit_to_uint8(photo.alpha)
        return Image.fromarray(np.dstack([rgb, a]), "RGBA")
    return Image.fromarray(rgb, "RGB")


def save_image(
    photo: Photo | np.ndarray,
    path: str | Path,
    *,
    overwrite: bool = False,
    sources: Sequence[str | Path] = (),
    quality: int = 95,
) -> Path:
    """Write ``photo`` atomically, keeping its ICC profile and EXIF where the format can.

    Never replaces an existing file (the input above all) unless ``overwrite``; a
    failure leaves no partial file behind."""
    if not isinstance(photo, Photo):
        photo = Photo.from_array(photo)
    src = [s for s in (*sources, photo.path) if s]
    path = check_output_path(path, sources=src, overwrite=overwrite)
    fmt, keeps_alpha = output_format(path)
    if photo.bit_depth >= 16:
        if fmt in ("PNG", "TIFF"):
            write_atomic(path, lambda f: _save_16bit(photo, f, fmt, keeps_alpha))
            return path
        log.warning(
            "%s holds 8 bits per channel: the %d-bit input is written with 8 (save "
            "as .png or .tif to keep 16 bits)",
            fmt,
            photo.bit_depth,
        )
    img = to_pil(photo, with_alpha=keeps_alpha)
    if photo.alpha is not None and not keeps_alpha:
        log.warning("%s cannot hold transparency; the alpha channel is dropped", path.name)
    params: dict[str, Any] = {}
    icc = photo.icc_profile if icc_colour_space(photo.icc_profile) in ("RGB", None) else None
    if icc and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        params["icc_profile"] = icc
    if photo.exif and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        params["exif"] = photo.exif
    if "dpi" in photo.info and fmt in ("PNG", "JPEG", "TIFF"):
        params["dpi"] = photo.info["dpi"]
    if fmt == "JPEG":
        params.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        params.update(quality=quality)
    write_atomic(path, lambda f: img.save(f, format=fmt, **params))
    return path


def to_uint16(a: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(a, dtype=np.float32), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def _save_16bit(photo: Photo, fh: BinaryIO, fmt: str, keeps_alpha: bool) -> None:
    """16 bits per channel: gray pictures as 16-bit gray (Pillow), colour ones as 48/64-bit
    PNG (written here: Pillow has no 16-bit RGB mode) or TIFF (tifffile)."""
    alpha = photo.alpha if keeps_alpha else None
    if photo.is_gray and alpha is None:
        params: dict[str, Any] = {}
        if "dpi" in photo.info:
            params["dpi"] = photo.info["dpi"]
        Image.fromarray(to_uint16(photo.rgb[..., 0])).save(fh, format=fmt, **params)
        return
    planes = [photo.rgb] + ([alpha[..., None]] if alpha is not None else [])
    pixels = to_uint16(np.concatenate(planes, axis=2))
    icc = photo.icc_profile if icc_colour_space(photo.icc_profile) in ("RGB", None) else None
    if fmt == "TIFF":
        import tifffile

        extratags = [(34675, "B", len(icc), icc, True)] if icc else []  # ICC profile tag
        tifffile.imwrite(
            fh,
            pixels,
            photometric="rgb",
            compression="zlib",
            extrasamples=("unassalpha",) if alpha is not None else None,
            extratags=extratags,
        )
        return
    _write_png16(fh, pixels, icc, photo.info.get("dpi"))


def _write_png16(fh: BinaryIO, pixels: np.ndarray, icc: bytes | None, dpi: Any = None) -> None:
    """A 16-bit RGB(A) PNG (colour type 2 or 6, no filtering, zlib level 6)."""
    import struct
    import zlib

    h, w, c = pixels.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    rows = np.ascontiguousarray(pixels.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    out = [
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6 if c == 4 else 2, 0, 0, 0)),
    ]
    if icc:
        out.append(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    if dpi:
        try:
            ppm = [max(1, round(float(v) / 0.0254)) for v in dpi[:2]]
            out.append(chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
        except (TypeError, ValueError, IndexError):
            pass
    out.append(chunk(b"IDAT", zlib.compress(raw, 6)))
    out.append(chunk(b"IEND", b""))
    for part in out:
        fh.write(part)


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it into place
    (:func:`dgp_engine.system.fileio.atomic_write`); OSError becomes a clear OutputError."""
    try:
        atomic_write(Path(path), write)
    except OSError as exc:
        raise output_error(exc, Path(path)) from exc


def output_error(exc: OSError, path: Path) -> OutputError:
    """A clear :class:`OutputError` for an OSError met while writing ``path``."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return OutputError(
            f"The disk is full: could not write {path}. Nothing was written; "
            "free some space and run again."
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"No permission to write {path} ({exc.strerror}).")
    return OutputError(f"Could not write {path}: {exc.strerror or exc}.")

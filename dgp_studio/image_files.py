"""Reading and saving pictures for the editor.

Uses ``dgp_engine.imageio`` when it is available (EXIF/ICC kept, atomic save);
otherwise a small Pillow fallback with the same behaviour.  This is the only
module of the app that touches image files."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dgp_engine.errors import InputError

OPEN_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif);;All files (*)"
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF",
                ".tiff": "TIFF", ".webp": "WEBP"}
SAVE_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif *.tiff);;WebP (*.webp)"


@dataclass
class Picture:
    """An RGB picture as the editor holds it, plus what is needed to save it faithfully."""

    pixels: np.ndarray                 # H×W×3 uint8, EXIF orientation applied
    source: Path | None = None
    info: dict = field(default_factory=dict)   # icc_profile, exif (bytes) …

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def read_picture(path: str | Path, max_megapixels: float = 150) -> Picture:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file.")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_megapixels * 1e6:
                raise InputError(
                    f"{path.name} is {w}×{h} ({w * h / 1e6:.0f} megapixels); this editor opens "
                    f"pictures up to {max_megapixels:.0f} megapixels (Settings → max_megapixels). "
                    "Crop or split it with another tool first.")
            info = {k: im.info[k] for k in ("icc_profile", "exif", "dpi") if k in im.info}
            exif = im.getexif()
            im = ImageOps.exif_transpose(im)
            if exif:
                exif.pop(0x0112, None)  # orientation is applied to the pixels now
                info["exif"] = exif.tobytes()
            rgb = _to_rgb(im)
            pixels = np.asarray(rgb, dtype=np.uint8).copy()
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        m = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(m.group(1)) / 1e6:.0f} megapixels" if m else "too many pixels"
        raise InputError(
            f"{path.name} is far larger than this editor opens ({size}; the limit is "
            f"{max_megapixels:.0f} megapixels). Crop or split it with another tool first."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{path.name} is not a picture this editor can read ({exc}).") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path.name} could not be read: the file is damaged or "
                         f"incomplete ({exc}).") from exc
    return Picture(pixels, path, info)


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray((arr / top * 255).round().astype(np.uint8)).convert("RGB")
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        arr = (arr - arr.min()) / max(1e-12, float(arr.max() - arr.min()))
        return Image.fromarray((arr * 255).round().astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


def save_picture(picture: Picture, path: str | Path, quality: int = 95) -> Path:
    """Write atomically (temp file + rename), keeping ICC profile and EXIF where the
    format allows.  The caller decides about overwriting (the UI never does it silently)."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"Cannot save as {path.suffix or 'a file without extension'}: use "
                         f"{', '.join(sorted(SAVE_FORMATS))}.")
    im = Image.fromarray(picture.pixels, "RGB")
    kw: dict = {}
    if "icc_profile" in picture.info:
        kw["icc_profile"] = picture.info["icc_profile"]
    if "exif" in picture.info and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = picture.info["exif"]
    if fmt in ("JPEG", "WEBP"):
        kw["quality"] = quality
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        im.save(tmp, format=fmt, **kw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A mask PNG as H×W uint8 (255 = area to fill); resized to ``size`` if needed."""
    try:
        with Image.open(path) as im:
            if im.mode in ("RGBA", "LA"):
                a = np.asarray(im.getchannel("A"))
                g = np.asarray(im.convert("L"))
                arr = g if a.min() == 255 else a
                m = Image.fromarray(arr)
            else:
                m = im.convert("L")
            if m.size != size:
                m = m.resize(size, Image.NEAREST)
            return np.asarray(m, dtype=np.uint8).copy()
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise InputError(f"{Path(path).name} is not a readable mask image ({exc}).") from exc


def save_mask(mask: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    Image.fromarray(mask, "L").save(path, format="PNG")
    return path

"""Reading and saving pictures for the editor, through ``dgp_engine.files.photos``
(EXIF/ICC kept, atomic save, never replacing a file unasked).  This is the only
module of the app that touches image files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from dgp_engine.errors import InputError
from dgp_engine.files import photos

OPEN_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif);;All files (*)"
SAVE_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif *.tiff);;WebP (*.webp)"


@dataclass
class Picture:
    """An RGB picture as the editor holds it (8 bits per channel, so a 100-megapixel
    photo stays at 300 MB), plus what is needed to save it faithfully."""

    pixels: np.ndarray  # H×W×3 uint8, EXIF orientation applied
    source: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)  # icc_profile, exif, dpi, alpha, format

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def read_picture(path: str | Path, max_megapixels: float = 150) -> Picture:
    """Through the engine's reader: any mode (16-bit, CMYK, palette, alpha), EXIF
    orientation applied, damaged files and decompression bombs refused clearly."""
    photo = photos.read_image(path, max_pixels=int(max_megapixels * 1e6))
    info = {
        "icc_profile": photo.icc_profile,
        "exif": photo.exif,
        "dpi": photo.info.get("dpi"),
        "alpha": photo.alpha,
        "format": photo.format,
        "bit_depth": photo.bit_depth,
    }
    return Picture(
        photos.unit_to_uint8(photo.rgb),
        Path(path),
        {k: v for k, v in info.items() if v is not None},
    )


def save_picture(
    picture: Picture, path: str | Path, *, overwrite: bool = False, quality: int = 95
) -> Path:
    """Write atomically with ICC profile, EXIF and DPI where the format allows.  An
    existing file (the opened one above all) is replaced only with ``overwrite`` —
    the UI passes it after the file dialog asked the user."""
    alpha = picture.info.get("alpha")
    if alpha is not None and alpha.shape != picture.pixels.shape[:2]:
        alpha = None  # the picture changed size (super-resolution)
    photo = photos.Photo(
        rgb=picture.pixels.astype(np.float32) / 255.0,
        alpha=alpha,
        icc_profile=picture.info.get("icc_profile"),
        exif=picture.info.get("exif"),
        info={"dpi": picture.info["dpi"]} if "dpi" in picture.info else {},
    )
    return photos.save_image(
        photo,
        path,
        overwrite=overwrite,
        quality=quality,
        sources=[picture.source] if picture.source else [],
    )


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
                m = m.resize(size, Image.Resampling.NEAREST)
            mask: np.ndarray = np.asarray(m, dtype=np.uint8).copy()
            return mask
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise InputError(f"{Path(path).name} is not a readable mask image ({exc}).") from exc


def save_mask(mask: np.ndarray, path: str | Path) -> Path:
    """Written atomically by the engine's writer (the user's umask applies)."""
    from dgp_engine.system.fileio import atomic_write

    path = Path(path)
    atomic_write(path, lambda fh: Image.fromarray(mask, "L").save(fh, format="PNG"))
    return path

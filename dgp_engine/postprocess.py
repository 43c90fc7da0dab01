"""Post-processing of restored images (DGP.md §7).

* colorization: the result keeps the original's lightness L at its full
  resolution and takes only the chroma a, b (CIELab) from the model, upsampled;
* inpainting: known pixels come from the input, the hole from the model, with a
  feathered seam;
* :func:`colour_check` tells a photo already in colour from a black-and-white one (grey
  or toned), so a colorization does not replace true colours.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from skimage import color

from .region import hole_weight, resize

#: Rows converted at a time: scikit-image's Lab conversions make several float64 copies of
#: what they are given, so a whole large photo at once costs ~100 bytes a pixel.
COLOR_BAND_ROWS = 256


def transfer_color(original: np.ndarray, colored: np.ndarray) -> np.ndarray:
    """RGB (H×W×3, [0, 1]) with L from ``original`` and a, b from ``colored``
    (any size; its chroma is resized to H×W).  Converted in bands of rows (the
    conversions are per pixel), so memory stays near the output's own size."""
    # float32 throughout: half the memory and time of float64 on large photos.
    original = np.asarray(original, dtype=np.float32)
    h, w = original.shape[:2]
    ab = _lab(np.asarray(colored, dtype=np.float32))[..., 1:]
    if ab.shape[:2] != (h, w):
        ab = resize(ab, h, w)
    out = np.empty((h, w, 3), dtype=np.float32)
    for y in range(0, h, COLOR_BAND_ROWS):
        rows = slice(y, min(h, y + COLOR_BAND_ROWS))
        lab = _lab(original[rows])
        lab[..., 1:] = ab[rows]
        with warnings.catch_warnings():  # out-of-gamut a,b are clipped, as intended
            warnings.simplefilter("ignore", UserWarning)
            rgb: np.ndarray = color.lab2rgb(lab)  # scikit-image is untyped
        out[rows] = np.clip(rgb, 0.0, 1.0)
    return out


def _lab(rgb: np.ndarray) -> np.ndarray:
    lab: np.ndarray = color.rgb2lab(np.clip(rgb, 0.0, 1.0)).astype(np.float32)
    return lab


def composite_hole(original: np.ndarray, restored: np.ndarray, hole: np.ndarray,
                   feather: int = 2) -> np.ndarray:
    """Known pixels from ``original``, the hole from ``restored`` (same size), blended
    over ``feather`` px outside the hole.  Pixels farther from the hole are copied."""
    w = hole_weight(np.asarray(hole, dtype=bool), feather)[..., None]
    original = np.asarray(original, dtype=np.float32)
    out = original * (1.0 - w) + np.asarray(restored, dtype=np.float32) * w
    return np.where(w > 0, out, original).astype(np.float32)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """The luma the colorization degradation uses (DGP.md §6), as 3 equal channels."""
    from .degradations import GRAY_WEIGHTS

    a = np.asarray(rgb, dtype=np.float32)
    g = a[..., 0] * GRAY_WEIGHTS[0] + a[..., 1] * GRAY_WEIGHTS[1] + a[..., 2] * GRAY_WEIGHTS[2]
    return np.repeat(g[..., None], 3, axis=-1)


# --- is a photo already in colour? ------------------------------------------------------------
# Measured on 600 Imagenette photos (64 px, JPEG q90) and toned copies of them (the classic
# sepia matrix, a sepia/cool split toning, a selenium-like purple-brown and a cyanotype
# blue, JPEG q75, where chroma noise is at its worst): the 99th percentile of the toned
# copies' off-tone chroma was 3.7 (sepia) – 6.1 (cyanotype), their 95th-percentile chroma at
# most 33 (cyanotype).  With the thresholds below 1 of the 2400 toned copies (a cyanotype)
# and none of the grey ones reads as colour, and 84.5 % of the clearly coloured photos
# (95th-percentile chroma > 15) do; the others are photos whose colours are all one hue
# that a toning could have (a blue sky, brown wood), which colour alone cannot tell from
# a toned print.  The same held on 200 of them enlarged to 256 px (0 % toned, 71 % of all).
#: Off-tone chroma (Lab units) above which a photo holds colours a toning does not make.
OFF_TONE_COLOUR = 7.0
#: 95th-percentile chroma above which a photo is in colour whatever its hues (toned prints
#: stay near 30: cyanotype blue is the strongest).
CHROMA_COLOUR = 40.0
#: 95th-percentile chroma above which a single hue that no toning makes (greens, cyans,
#: magentas) means colour.
CHROMA_TINTED = 15.0
#: Lab hue angles (degrees, [start, end)) of toned prints: red-browns and selenium
#: purples, sepia/brown/yellow, cyanotype and gold-toned blues.
TONING_HUES = ((330.0, 360.0), (0.0, 110.0), (220.0, 300.0))
#: The photo is measured at most this many px on its longer side (noise averages out).
COLOUR_CHECK_SIDE = 256
_BAND_L = 5.0   # lightness band width: a toning's hue may drift from shadows to highlights


@dataclass(frozen=True)
class ColourCheck:
    """Whether a photo is already in colour (true colours a colorization would replace),
    with the measures that decided it.  A black-and-white photo — grey, or toned (sepia,
    selenium, cyanotype: one hue that may drift with lightness) — is not."""

    colour: bool
    off_tone: float           # 95th percentile of chroma off the photo's tone (Lab units)
    chroma: float             # 95th percentile of chroma (Lab units)
    hue: float | None         # the photo's dominant Lab hue in degrees (None: neutral)

    @property
    def reason(self) -> str:
        """One sentence saying what was found."""
        if not self.colour:
            kind = "grey" if self.chroma < 3 else "toned"
            return (f"black and white ({kind}: chroma {self.chroma:.0f}, off-tone "
                    f"{self.off_tone:.1f})")
        if self.off_tone > OFF_TONE_COLOUR:
            why = f"colours of several hues (off-tone chroma {self.off_tone:.1f} > " \
                  f"{OFF_TONE_COLOUR:g})"
        elif self.chroma > CHROMA_COLOUR:
            why = f"strong colour (chroma {self.chroma:.0f} > {CHROMA_COLOUR:g})"
        else:
            why = f"a colour no toning makes (hue {self.hue:.0f}°, chroma {self.chroma:.0f})"
        return f"already in colour: {why}"


def colour_check(rgb: np.ndarray) -> ColourCheck:
    """Is the H×W×3 picture (float in [0, 1] or uint8) already in colour?

    Per band of lightness, the photo's tone is the mean (a, b) direction; a pixel's
    off-tone chroma is its distance from that half-line (all of its chroma when it points
    the other way), so a toning whose hue drifts from shadows to highlights stays on-tone
    while a second hue does not.  Colour when the 95th percentile of that exceeds
    :data:`OFF_TONE_COLOUR`, when the chroma itself exceeds :data:`CHROMA_COLOUR`, or when
    a chroma over :data:`CHROMA_TINTED` has a hue outside :data:`TONING_HUES`."""
    a = np.asarray(rgb)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        return ColourCheck(False, 0.0, 0.0, None)
    a = a[..., :3]
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else np.asarray(a, np.float32)
    h, w = a.shape[:2]
    scale = COLOUR_CHECK_SIDE / max(h, w)
    if scale < 1:
        a = resize(a, max(1, round(h * scale)), max(1, round(w * scale)))
    lab = _lab(a).reshape(-1, 3)
    lightness, ab = lab[:, 0], lab[:, 1:].astype(np.float64)
    chroma = np.hypot(ab[:, 0], ab[:, 1])
    off = chroma.copy()
    bands = np.clip((lightness / _BAND_L).astype(int), 0, int(100 / _BAND_L) - 1)
    for k in np.unique(bands):
        sel = bands == k
        mean = ab[sel].mean(axis=0)
        norm = float(np.hypot(*mean))
        if norm < 1e-6:
            continue  # a neutral band: all its chroma is off-tone
        u = mean / norm
        along = ab[sel] @ u
        across = np.abs(ab[sel, 0] * u[1] - ab[sel, 1] * u[0])
        off[sel] = np.where(along >= 0, across, chroma[sel])
    p_off = float(np.percentile(off, 95))
    p_chroma = float(np.percentile(chroma, 95))
    hue = None
    if chroma.sum() > 1e-6:
        mean = (ab * chroma[:, None]).sum(axis=0) / chroma.sum()
        if float(np.hypot(*mean)) > 1e-6:
            hue = float(np.degrees(np.arctan2(mean[1], mean[0])) % 360.0)
    toning_hue = hue is None or any(lo <= hue < hi for lo, hi in TONING_HUES)
    colour = (p_off > OFF_TONE_COLOUR or p_chroma > CHROMA_COLOUR
              or (p_chroma > CHROMA_TINTED and not toning_hue))
    return ColourCheck(bool(colour), p_off, p_chroma, hue)

"""Post-processing of restored images (docs/method.md#post-processing).

* colorization: the result keeps the original's lightness L at its full
  resolution and takes only the chroma a, b (CIELab) from the model, upsampled;
* inpainting: known pixels come from the input, the hole from the model, with a
  feathered seam;
* :func:`compose_into` / :class:`PhotoComposer`: any model output (the run's own, a
  jitter variation, a category, a morph frame) put back into the photo by a
  :class:`~dgp_engine.method.placement.Placement` — the one place that knows how;
* :func:`colour_check` tells a photo already in colour from a black-and-white one (grey
  or toned), so a colorization does not replace true colours.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage import color

from ..errors import CompositionError, InputError
from ..files.photos import Photo, read_image
from ..files.photos import unit_to_uint8 as to_uint8
from ..method.placement import Placement, pixels_digest
from ..method.region import blend_into, hole_weight, region_weight, resize
from ..method.taskspec import BLEND, COLOR_TRANSFER, FILL_HOLE, NEW_PICTURE, task_spec

#: Rows converted at a time: scikit-image's Lab conversions make several float64 copies of
#: what they are given, so a whole large photo at once costs ~100 bytes a pixel.
COLOR_BAND_ROWS = 256


def transfer_color(
    original: np.ndarray, colored: np.ndarray, *, lightness: np.ndarray | None = None
) -> np.ndarray:
    """RGB (H×W×3, [0, 1]) with L from ``original`` and a, b from ``colored``
    (any size; its chroma is resized to H×W).  Converted in bands of rows (the
    conversions are per pixel), so memory stays near the output's own size.
    ``lightness``: the original's L (H×W, :func:`lightness_of`), when already known."""
    # float32 throughout: half the memory and time of float64 on large photos.
    original = np.asarray(original, dtype=np.float32)
    h, w = original.shape[:2]
    ab = _lab(np.asarray(colored, dtype=np.float32))[..., 1:]
    if ab.shape[:2] != (h, w):
        ab = resize(ab, h, w)
    out = np.empty((h, w, 3), dtype=np.float32)
    for y in range(0, h, COLOR_BAND_ROWS):
        rows = slice(y, min(h, y + COLOR_BAND_ROWS))
        if lightness is None:
            lab = _lab(original[rows])
        else:
            lab = np.empty(ab[rows].shape[:2] + (3,), np.float32)
            lab[..., 0] = lightness[rows]
        lab[..., 1:] = ab[rows]
        with warnings.catch_warnings():  # out-of-gamut a,b are clipped, as intended
            warnings.simplefilter("ignore", UserWarning)
            rgb: np.ndarray = color.lab2rgb(lab)  # scikit-image is untyped
        out[rows] = np.clip(rgb, 0.0, 1.0)
    return out


def lightness_of(rgb: np.ndarray) -> np.ndarray:
    """CIELab L of an RGB picture (H×W, float32), in bands of rows as :func:`transfer_color`
    converts."""
    rgb = np.asarray(rgb, dtype=np.float32)
    out = np.empty(rgb.shape[:2], np.float32)
    for y in range(0, rgb.shape[0], COLOR_BAND_ROWS):
        rows = slice(y, min(rgb.shape[0], y + COLOR_BAND_ROWS))
        out[rows] = _lab(rgb[rows])[..., 0]
    return out


def _lab(rgb: np.ndarray) -> np.ndarray:
    lab: np.ndarray = color.rgb2lab(np.clip(rgb, 0.0, 1.0)).astype(np.float32)
    return lab


def composite_hole(
    original: np.ndarray, restored: np.ndarray, hole: np.ndarray, feather: int = 2
) -> np.ndarray:
    """Known pixels from ``original``, the hole from ``restored`` (same size), blended
    over ``feather`` px outside the hole.  Pixels farther from the hole are copied."""
    w = hole_weight(np.asarray(hole, dtype=bool), feather)[..., None]
    original = np.asarray(original, dtype=np.float32)
    out = original * (1.0 - w) + np.asarray(restored, dtype=np.float32) * w
    return np.where(w > 0, out, original).astype(np.float32)


# --- composing an output into its photo --------------------------------------------------------
def compose_step(placement: Placement) -> str:
    """How an output goes back by ``placement`` (taskspec BLEND, FILL_HOLE, COLOR_TRANSFER,
    NEW_PICTURE): as the run that made it knew, else from the task's name it records."""
    return placement.compose or task_spec(placement.task).compose


def composed_view(
    rgb: np.ndarray,
    placement: Placement,
    model_output: np.ndarray,
    *,
    lightness: np.ndarray | None = None,
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The photo rectangle the placement's view covers (its slices) and its new content
    (float32, [0, 1]) with the model's R×R ``model_output`` ([0, 1]) composed in
    (docs/method.md#post-processing): the hole filled with a feathered seam (inpainting),
    the output's colour on the photo's lightness (colorization), else the output blended
    in with a feathered edge.
    Every pixel outside it stays the photo's.  ``lightness``: the view's L, when known."""
    view, compose = placement.view, compose_step(placement)
    if compose == NEW_PICTURE:
        raise InputError(
            "A super-resolved result is a new picture: it has no place in the "
            "photo to compose into."
        )
    if placement.face is not None:
        return _composed_face(rgb, placement, model_output, compose, lightness)
    crop = view.crop(rgb)
    if compose == COLOR_TRANSFER:
        patch = transfer_color(crop, view.content(model_output), lightness=lightness)
    else:
        patch = view.from_model(model_output)
        if compose == FILL_HOLE:
            if placement.hole is None:
                raise InputError("This inpainting placement records no hole to fill.")
            patch = composite_hole(crop, patch, placement.hole, placement.feather)
    slices = (slice(view.y, view.y + view.h), slice(view.x, view.x + view.w))
    if placement.whole_photo:
        return slices, np.asarray(patch, np.float32)
    region = view.region
    assert region is not None  # views of part of a photo are square regions
    # Inpainting's composite already eases into the known pixels around the hole.
    weight = (
        np.ones((region.size, region.size), np.float32)
        if compose == FILL_HOLE
        else region_weight(region, *placement.photo_size, placement.feather)
    )
    local = dataclasses.replace(region, x=0, y=0)
    return slices, blend_into(crop, patch, local, weight)


def _composed_face(
    rgb: np.ndarray,
    placement: Placement,
    model_output: np.ndarray,
    compose: str,
    lightness: np.ndarray | None,
) -> tuple[tuple[slice, slice], np.ndarray]:
    """:func:`composed_view` for an aligned face (docs/method.md#aligned-faces): the
    model's square warped back into the photo's pixels around the face, blended in with a
    seam feathered inside the square's edges (the hole's seam for inpainting); every
    pixel outside the square keeps the photo's value exactly."""
    face = placement.face
    assert face is not None
    slices = placement.photo_slices()
    box = placement.photo_box()
    crop = np.asarray(rgb, dtype=np.float32)[slices]
    patch = face.from_model_square(model_output, box)
    weight = face.seam_weight(box, placement.feather)
    if compose == COLOR_TRANSFER:
        patch = transfer_color(crop, patch, lightness=lightness)
    elif compose == FILL_HOLE:
        if placement.hole is None:
            raise InputError("This inpainting placement records no hole to fill.")
        # the hole inside the square's unfeathered part, eased into the known pixels
        hole = placement.hole[slices] & (weight >= 1.0)
        weight = hole_weight(hole, placement.feather) * (weight > 0)
    w = weight[..., None]
    out = crop * (1.0 - w) + np.asarray(patch, dtype=np.float32) * w
    return slices, np.where(w > 0, out, crop).astype(np.float32)


def _face_new_picture(photo: Photo, placement: Placement, model_output: np.ndarray) -> Photo:
    """A super-resolved aligned face: the photo enlarged ``placement.scale`` times, the
    model's face warped into it with a feathered seam (docs/method.md#aligned-faces)."""
    face = placement.face
    assert face is not None
    f = placement.scale
    w, h = photo.size
    big = resize(photo.rgb, h * f, w * f)
    inner = dataclasses.replace(
        placement,
        photo_size=(w * f, h * f),
        face=face.scaled(f),
        feather=placement.feather * f,
        compose=BLEND,
        hole=None,
        scale=1,
    )
    slices, content = composed_view(big, inner, model_output)
    big[slices] = content
    alpha = None if photo.alpha is None else resize(photo.alpha, h * f, w * f).clip(0, 1)
    info = {k: v for k, v in photo.info.items() if k != "dpi"}
    return dataclasses.replace(photo, rgb=big, alpha=alpha, info=info)


def compose_into(photo: Photo, placement: Placement, model_output: np.ndarray) -> Photo:
    """``photo`` with the model's R×R ``model_output`` ([0, 1]) put back where
    ``placement`` says (docs/method.md#post-processing); for super-resolution the new
    picture (the output's content, the photo's alpha resized to it)."""
    _check_size(photo.size, placement)
    view = placement.view
    if compose_step(placement) == NEW_PICTURE and placement.face is not None:
        return _face_new_picture(photo, placement, model_output)
    if compose_step(placement) == NEW_PICTURE:
        out = view.content(model_output).astype(np.float32)
        ow, oh = out.shape[1], out.shape[0]
        alpha = None
        if photo.alpha is not None:
            alpha = resize(view.crop(photo.alpha), oh, ow).clip(0, 1)
        info = {k: v for k, v in photo.info.items() if k != "dpi"}
        return dataclasses.replace(photo, rgb=out, alpha=alpha, info=info)
    slices, content = composed_view(photo.rgb, placement, model_output)
    if placement.whole_photo:
        return photo.with_pixels(content)
    rgb = np.array(photo.rgb, dtype=np.float32, copy=True)
    rgb[slices] = content
    return photo.with_pixels(rgb)


def _check_size(size: tuple[int, int], placement: Placement) -> None:
    if tuple(size) != tuple(placement.photo_size):
        w, h = placement.photo_size
        raise InputError(
            f"The result was restored on a {w}×{h} photo; this one is "
            f"{size[0]}×{size[1]}. Compose it onto the photo it came from."
        )


def photo_for(
    placement: Placement, photo: Photo | None = None, *, label: str = "The result"
) -> Photo:
    """The photo to compose ``label``'s outputs onto: ``photo`` when given (it must have
    the placement's size; any pixels), else the one the placement records, read again
    from its file — refused (:class:`CompositionError`) when it is not there any more or
    its pixels changed since the run."""
    w, h = placement.photo_size
    if photo is not None:
        if photo.size != (w, h):
            raise CompositionError(
                f"{label} was restored on a {w}×{h} photo; the photo given is "
                f"{photo.width}×{photo.height}. Give the photo it was restored from "
                "(or one of the same size)."
            )
        return photo
    if not placement.photo_path:
        raise CompositionError(
            f"{label} does not record the file of the {w}×{h} photo it "
            "was restored from: give that photo."
        )
    path = Path(placement.photo_path)
    if not path.is_file():
        what = (
            "is not a picture file (a folder, device or pipe)"
            if path.exists()
            else "is not there any more"
        )
        raise CompositionError(
            f"{label} was restored from {path}, which {what}: give that "
            f"photo ({w}×{h}) from where it is now."
        )
    found = read_image(path)
    if found.size != (w, h) or (
        placement.photo_digest is not None and pixels_digest(found.rgb) != placement.photo_digest
    ):
        raise CompositionError(
            f"{path.name} has changed since {label} was restored from it "
            f"(its pixels differ): give it explicitly to compose onto it "
            "as it is now, or give the original."
        )
    return found


def same_photo(placement: Placement, photo: Photo) -> bool:
    """``photo`` has the pixels the placement's photo had (when that was recorded)."""
    return placement.photo_digest is None or pixels_digest(photo.rgb) == placement.photo_digest


def model_output_array(output: Any, resolution: int) -> np.ndarray:
    """A model output as R×R×3 float32 in [0, 1]: a [-1, 1] tensor ([3, R, R] or
    [1, 3, R, R]), a render job's Frame, or an H×W×3 uint8 / [0, 1] float array (resized
    to the model's square when it is another size, e.g. a downscaled preview)."""
    image = getattr(output, "image", output)
    if hasattr(image, "detach"):  # a torch tensor in [-1, 1], as the runs render them
        t = image.detach()
        if t.dim() == 4:
            t = t[0]
        a = ((t.permute(1, 2, 0).float().cpu().numpy() + 1) / 2).clip(0, 1)
    else:
        a = np.asarray(image)
        a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim != 3 or a.shape[2] < 3:
        raise InputError(f"A model output must be H×W×3; got shape {a.shape}.")
    a = a[..., :3]
    if a.shape[:2] != (resolution, resolution):
        a = resize(a, resolution, resolution)
    return np.ascontiguousarray(a, dtype=np.float32)


class PhotoComposer:
    """Composes model outputs of one placement into its photo, each as uint8 H×W×3 at the
    photo's size (the new picture's for super-resolution): the same pixels as
    ``to_uint8(compose_into(photo, placement, output).rgb)``, made faster for a stream of
    frames (the photo's 8-bit pixels and, for colour transfer, its lightness are computed
    once; only the placement's view is composed per frame)."""

    def __init__(self, photo: Photo, placement: Placement):
        _check_size(photo.size, placement)
        self.photo = photo
        self.placement = placement
        self.new_picture = compose_step(placement) == NEW_PICTURE
        self._base: np.ndarray | None = None
        self._lightness: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of a composed frame."""
        view = self.placement.view
        if self.new_picture and self.placement.face is not None:
            w, h = self.placement.photo_size
            return w * self.placement.scale, h * self.placement.scale
        return (view.cw, view.ch) if self.new_picture else self.placement.photo_size

    def __call__(self, output: Any) -> np.ndarray:
        out = model_output_array(output, self.placement.view.resolution)
        if self.new_picture and self.placement.face is not None:
            return to_uint8(compose_into(self.photo, self.placement, out).rgb)
        if self.new_picture:
            return to_uint8(self.placement.view.content(out))
        if self._base is None:
            self._base = to_uint8(self.photo.rgb)
            if compose_step(self.placement) == COLOR_TRANSFER:
                self._lightness = lightness_of(self.photo.rgb[self.placement.photo_slices()])
        slices, content = composed_view(
            self.photo.rgb, self.placement, out, lightness=self._lightness
        )
        frame: np.ndarray = self._base.copy()
        frame[slices] = to_uint8(content)
        return frame

    def frames(self, outputs: Iterable[Any]) -> ComposedFrames:
        """``outputs`` (e.g. a render job) composed one by one as they come."""
        return ComposedFrames(outputs, self)


class ComposedFrames:
    """An iterable of composed frames over an iterable of model outputs; its length and
    ``cancelled`` are the source's (so an export streaming a render job sees both)."""

    def __init__(self, outputs: Iterable[Any], composer: PhotoComposer):
        self.outputs = outputs
        self.composer = composer

    def __len__(self) -> int:
        return len(self.outputs)  # type: ignore[arg-type]  # a render job or a list

    def __iter__(self) -> Iterator[np.ndarray]:
        for output in self.outputs:
            yield self.composer(output)

    @property
    def cancelled(self) -> bool:
        return bool(getattr(self.outputs, "cancelled", False))


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """The luma the colorization degradation uses (docs/method.md#degradations), as 3 equal
    channels."""
    from ..method.degradations import GRAY_WEIGHTS

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
_BAND_L = 5.0  # lightness band width: a toning's hue may drift from shadows to highlights


@dataclass(frozen=True)
class ColourCheck:
    """Whether a photo is already in colour (true colours a colorization would replace),
    with the measures that decided it.  A black-and-white photo — grey, or toned (sepia,
    selenium, cyanotype: one hue that may drift with lightness) — is not."""

    colour: bool
    off_tone: float  # 95th percentile of chroma off the photo's tone (Lab units)
    chroma: float  # 95th percentile of chroma (Lab units)
    hue: float | None  # the photo's dominant Lab hue in degrees (None: neutral)

    @property
    def reason(self) -> str:
        """One sentence saying what was found."""
        if not self.colour:
            kind = "grey" if self.chroma < 3 else "toned"
            return (
                f"black and white ({kind}: chroma {self.chroma:.0f}, off-tone {self.off_tone:.1f})"
            )
        if self.off_tone > OFF_TONE_COLOUR:
            why = (
                f"colours of several hues (off-tone chroma {self.off_tone:.1f} > "
                f"{OFF_TONE_COLOUR:g})"
            )
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
    colour = (
        p_off > OFF_TONE_COLOUR
        or p_chroma > CHROMA_COLOUR
        or (p_chroma > CHROMA_TINTED and not toning_hue)
    )
    return ColourCheck(bool(colour), p_off, p_chroma, hue)

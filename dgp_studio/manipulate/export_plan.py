"""What an export of the Manipulate panel writes: every frame composed into the photo the
results were restored from — the engine's :class:`~dgp_engine.tasks.postprocess.
PhotoComposer`, the path the candidates are previewed by — or the generator's own squares
when no one photo shows them all, and why.

The editor runs a task on a crop of its picture (the working region plus a one-pixel
margin), so the engine records a result's :class:`~dgp_engine.method.placement.Placement`
relative to that crop.  :func:`place_in_picture` moves it into the whole picture when the
result arrives (with the picture's file and pixel digest), so a saved state composes onto
the photo with ``dgp morph --onto`` too, and every export here composes like the CLI's.

Plain numpy and engine code: no widgets (the panel and the dialog use it; tests too)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dgp_engine.errors import CompositionError
from dgp_engine.files.photos import Photo
from dgp_engine.method.placement import Placement, common_placement, pixels_digest
from dgp_engine.tasks.postprocess import PhotoComposer, photo_for

Bounds = tuple[int, int, int, int]


def place_in_picture(
    state: object, bounds: Bounds, pixels: np.ndarray, path: str | Path | None
) -> Placement | None:
    """Record on ``state`` where its result sits in the whole picture (``pixels``, the
    picture the run was given a ``bounds`` = (x0, y0, x1, y1) crop of, and its file):
    the engine placed it in the crop.  Returns the new placement (None: the state has
    none, or it is already placed in a picture of another size than the crop)."""
    placement: Placement | None = getattr(state, "placement", None)
    if placement is None:
        return None
    x0, y0, x1, y1 = (int(v) for v in bounds)
    h, w = pixels.shape[:2]
    if tuple(placement.photo_size) != (x1 - x0, y1 - y0):
        return None  # already placed in the picture (or not made from this crop)
    whole = (x0, y0, x1, y1) == (0, 0, w, h)
    moved = placement if whole else placement.moved(x0, y0, (w, h))
    # the whole picture's digest (the engine saw the crop only); the same pixels a
    # ``dgp`` command reads from the file, while the picture is unchanged
    digest = placement.photo_digest if whole and placement.photo_digest else pixels_digest(pixels)
    placed = moved.with_photo(path, digest)
    state.placement = placed  # type: ignore[attr-defined]  # a ReconstructionState
    return placed


@dataclass(frozen=True)
class PictureSource:
    """The editor's picture as an export sees it: its pixels now, its file, and the
    results applied to it (their bounds, the pixels they replaced and their
    placement), so the picture a result was restored from can be found again."""

    pixels: np.ndarray  # H×W×3 uint8 (the editor's own array: read only)
    path: Path | None = None
    applied: Sequence[tuple[Bounds, np.ndarray, Placement | None]] = ()

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


@dataclass(frozen=True)
class ExportPlan:
    """Where exported frames come from: composed into ``pixels`` by ``placement``, or,
    when ``why_raw`` says why not, the generator's ``resolution``-px squares."""

    resolution: int
    placement: Placement | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)  # the photo, uint8
    photo_path: Path | None = None
    why_raw: str | None = None  # one sentence: why only the raw squares
    note: str | None = None  # said beside a composed export

    @property
    def composable(self) -> bool:
        return self.placement is not None and self.pixels is not None

    @property
    def photo_size(self) -> tuple[int, int] | None:
        """(width, height) of a composed frame (the new picture's, for super-resolution)."""
        if not self.composable:
            return None
        return self.composer_size()

    def composer_size(self) -> tuple[int, int]:
        assert self.placement is not None
        from dgp_engine.method.taskspec import NEW_PICTURE, task_spec

        view = self.placement.view
        if task_spec(self.placement.task).compose == NEW_PICTURE:
            return view.cw, view.ch
        return self.placement.photo_size

    def frame_size(self, composed: bool) -> tuple[int, int]:
        size = self.photo_size if composed else None
        return size or (self.resolution, self.resolution)

    def describe(self) -> str:
        """Where composed frames go, in words."""
        if self.placement is None:
            return f"the generator's own {self.resolution}×{self.resolution} squares"
        return f"composed into {self.placement.describe()}"

    def composer(self) -> PhotoComposer:
        """The engine's composer of every frame into the photo (build it in the thread
        that composes: the photo becomes float32 here)."""
        assert self.placement is not None and self.pixels is not None
        photo = dataclasses.replace(Photo.from_array(self.pixels), path=self.photo_path)
        return PhotoComposer(photo, self.placement)


def plan_export(
    states: Sequence[object], labels: Sequence[str], resolution: int, picture: PictureSource | None
) -> ExportPlan:
    """The plan for exporting frames of ``states`` (a morph's keyframes, or the one result
    a jitter or a category sweep comes from), named ``labels``: composed into the
    editor's ``picture`` when they were restored from it, else into the photo file they
    record, else the raw squares with the reason (the engine's sentence)."""
    placements = [getattr(s, "placement", None) for s in states]
    try:
        _same_version(placements, labels)
        placement = common_placement(placements, labels)
    except CompositionError as exc:
        return ExportPlan(resolution, why_raw=str(exc))
    if picture is not None and picture.size == tuple(placement.photo_size):
        pixels, note = _as_restored(placement, picture, labels[0])
        if pixels is not None:
            return ExportPlan(resolution, placement, pixels, picture.path, note=note)
    try:
        photo = photo_for(placement, label=labels[0])  # the file it records, unchanged
    except CompositionError as exc:
        return ExportPlan(resolution, why_raw=str(exc))
    from dgp_engine.files.photos import unit_to_uint8

    return ExportPlan(resolution, placement, unit_to_uint8(photo.rgb), photo.path)


def _same_version(placements: Sequence[Placement | None], labels: Sequence[str]) -> None:
    """Results of one photo file whose pixels differ (the picture was edited between the
    runs, e.g. one result applied before the other was made) are said as such."""
    known = [(p, label) for p, label in zip(placements, labels, strict=True) if p is not None]
    for p, label in known[1:]:
        first, name = known[0]
        if (
            p.photo_path
            and p.photo_path == first.photo_path
            and p.photo_size == first.photo_size
            and p.photo_digest
            and first.photo_digest
            and p.photo_digest != first.photo_digest
        ):
            raise CompositionError(
                f"{name} and {label} were restored from different versions of "
                f"{first.photo_name} (the picture changed between their runs), so no single "
                "photo shows every frame; only the generator's own squares can be exported."
            )


def _as_restored(
    placement: Placement, picture: PictureSource, label: str
) -> tuple[np.ndarray | None, str | None]:
    """The editor's picture as ``placement``'s result was restored from it (a result
    applied since taken out again, as the candidates are previewed), with a note when
    it changed otherwise since; (None, None) when it is another photo."""
    if placement.photo_digest is None:
        return (picture.pixels, None) if _same_file(placement, picture) else (None, None)
    if pixels_digest(picture.pixels) == placement.photo_digest:
        return picture.pixels, None
    for bounds, before, applied in picture.applied:
        if applied is None or applied.difference(placement) is not None:
            continue  # not this result's own run
        x0, y0, x1, y1 = bounds
        candidate = picture.pixels.copy()
        candidate[y0:y1, x0:x1] = before
        if pixels_digest(candidate) == placement.photo_digest:
            return candidate, None
    if _same_file(placement, picture):
        return picture.pixels, (
            f"The picture has changed since {label} was restored from "
            "it: frames are composed into it as it is now."
        )
    return None, None


def _same_file(placement: Placement, picture: PictureSource) -> bool:
    if placement.photo_path is None or picture.path is None:
        return placement.photo_path is None and picture.path is None
    return Path(placement.photo_path) == Path(picture.path).absolute()

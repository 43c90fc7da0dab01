"""App state, separate from widgets: the open picture, its mask, the working
region, the result history and whether a job runs.  Widgets bind to the signals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from dgp_engine.errors import InputError
from dgp_engine.method.face_align import FaceAlignment, FacePoints, check_face_points
from dgp_engine.method.taskspec import DEFAULT_TASK, covers_whole_photo, task_spec, working_region

from ..image_files import Picture
from ..undo import ApplyCommand, Bounds, SwapCommand, TileEdit, TileRecorder, record_edit

if TYPE_CHECKING:
    from dgp_engine.method.state import ReconstructionState

#: The face points in the order the face-points tool places them.
FACE_POINT_NAMES = ("left eye", "right eye", "mouth")

FacePointList = list[tuple[float, float]]
# What a whole-picture swap (super-resolution, its undo) installs: the picture, its mask
# and its face points.
PictureAndMask = tuple[Picture, np.ndarray, FacePointList]


@dataclass(eq=False)  # an entry is itself (it holds arrays): compared by identity
class HistoryEntry:
    """One result: a layer over the picture (``after`` at ``bounds``) until it is applied,
    and what made it.  ``applied`` follows the undo stack (Undo un-applies it)."""

    title: str
    bounds: Bounds  # where the patch goes (x0, y0, x1, y1)
    before: np.ndarray  # region content before
    after: np.ndarray  # region content after compositing
    preview: np.ndarray  # the model's output (square, native resolution)
    cancelled: bool = False
    applied: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    state: ReconstructionState | None = None
    picture: np.ndarray | None = None  # a whole new picture (super-resolution)
    # another model output put into the picture as this result was (the engine's composer
    # of the run that made it; in memory only): its jitter/category/morph candidates
    compose: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)


def blend_patch(before: np.ndarray, after: np.ndarray, opacity: float) -> np.ndarray:
    """``after`` over ``before`` at ``opacity`` (what the result layer shows), uint8."""
    if opacity >= 1.0:
        return after
    if opacity <= 0.0:
        return before
    mixed = before.astype(np.float32) * (1.0 - opacity) + after.astype(np.float32) * opacity
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


class AppState(QObject):
    picture_replaced = Signal()  # a new picture (size may change)
    picture_changed = Signal(object)  # Bounds of changed pixels
    mask_changed = Signal(object)  # Bounds, or None for everything
    region_changed = Signal(object)  # (x, y, side) or None
    history_changed = Signal()
    running_changed = Signal(bool)
    resolution_changed = Signal(int)
    layer_changed = Signal()  # the result layer, its opacity or visibility
    face_points_changed = Signal(object)  # [(x, y), …]: left eye, right eye, mouth

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.picture: Picture | None = None
        self.mask: np.ndarray = np.zeros((0, 0), np.uint8)
        self.region: tuple[int, int, int] | None = None
        self.model_resolution = 128
        self.task = DEFAULT_TASK  # engine task name: its working-region rule applies
        self.history: list[HistoryEntry] = []
        # the result shown over the picture, not yet applied (non-destructive)
        self.layer: HistoryEntry | None = None
        self.layer_opacity = 1.0
        self.show_original = False  # hide the layer to see the picture under it
        self.running = False
        self.undo_stack = QUndoStack(self)
        # the face to align for a face prior (docs/method.md#aligned-faces): up to three
        # picture points, left eye, right eye, mouth, placed with the face-points tool
        self.face_points: list[tuple[float, float]] = []

    @property
    def dirty(self) -> bool:
        """Edits since the last save (or since opening)."""
        return self.has_picture and not self.undo_stack.isClean()

    # --- picture --------------------------------------------------------------
    def open_picture(self, picture: Picture) -> None:
        h, w = picture.pixels.shape[:2]
        self.picture = picture
        self.mask = np.zeros((h, w), np.uint8)
        self.history.clear()
        had_layer = self.layer is not None or self.show_original
        self.layer, self.show_original = None, False
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.region = None
        self.face_points = []
        self.picture_replaced.emit()
        self.mask_changed.emit(None)
        self.face_points_changed.emit([])
        if had_layer:  # the result toolbar and the canvas drop the old picture's layer
            self.layer_changed.emit()
        self.reset_region()
        self.history_changed.emit()

    @property
    def has_picture(self) -> bool:
        return self.picture is not None

    @property
    def size(self) -> tuple[int, int]:
        if self.picture is None:
            return 0, 0
        h, w = self.picture.pixels.shape[:2]
        return w, h

    def _picture_notify(self, bounds: Bounds) -> None:
        self.picture_changed.emit(bounds)

    def _mask_notify(self, bounds: Bounds) -> None:
        self.mask_changed.emit(bounds)

    def write_patch(self, title: str, bounds: Bounds, patch: np.ndarray) -> bool:
        """Put ``patch`` into the picture at ``bounds`` as one undoable edit."""
        assert self.picture is not None
        x0, y0, x1, y1 = bounds
        pixels = self.picture.pixels

        def edit(rec: TileRecorder) -> None:
            rec.touch(x0, y0, x1, y1)
            pixels[y0:y1, x0:x1] = patch

        cmd = record_edit(title, pixels, self._picture_notify, edit)
        if cmd is None:
            return False
        self.undo_stack.push(cmd)
        return True

    # --- mask -----------------------------------------------------------------
    def push_mask_edit(self, title: str, edit: Callable[[TileRecorder], object]) -> bool:
        """Apply ``edit(recorder)`` to the mask as one undoable step."""
        if self.picture is None:
            return False
        cmd = record_edit(title, self.mask, self._mask_notify, edit)
        if cmd is None:
            return False
        self.undo_stack.push(cmd)
        return True

    def mask_recorder(self) -> TileRecorder:
        """For edits made piecewise (brush strokes): touch, paint, then commit."""
        return TileRecorder(self.mask)

    def notify_mask(self, bounds: Bounds | None) -> None:
        if bounds is not None:
            self.mask_changed.emit(bounds)

    def commit_mask(self, title: str, rec: TileRecorder) -> bool:
        tiles = rec.tiles()
        if not tiles:
            return False
        self.undo_stack.push(TileEdit(title, self.mask, tiles, self._mask_notify))
        return True

    def fill_mask(self) -> bool:
        return self._whole_mask("Fill mask", lambda m: m.fill(255))

    def clear_mask(self) -> bool:
        return self._whole_mask("Clear mask", lambda m: m.fill(0))

    def invert_mask(self) -> bool:
        return self._whole_mask("Invert mask", lambda m: np.subtract(255, m, out=m))

    def set_mask(self, mask: np.ndarray, title: str = "Import mask") -> bool:
        return self._whole_mask(title, lambda m: np.copyto(m, mask))

    def _whole_mask(self, title: str, op: Callable[[np.ndarray], object]) -> bool:
        def edit(rec: TileRecorder) -> None:
            rec.touch_all()
            op(self.mask)

        return self.push_mask_edit(title, edit)

    def mask_bounds(self) -> Bounds | None:
        if self.mask.size == 0:
            return None
        rows = np.flatnonzero(self.mask.max(axis=1) > 127)
        if rows.size == 0:
            return None
        cols = np.flatnonzero(self.mask[rows[0] : rows[-1] + 1].max(axis=0) > 127)
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

    # --- face points (an aligned face for a face prior) ------------------------
    def _inside(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.size
        return float(min(max(0.0, x), w)), float(min(max(0.0, y), h))

    def add_face_point(self, x: float, y: float) -> bool:
        """Place the next face point (left eye, right eye, then mouth) inside the picture;
        False when all three are placed already."""
        if self.picture is None or len(self.face_points) >= len(FACE_POINT_NAMES):
            return False
        self.face_points.append(self._inside(x, y))
        self.face_points_changed.emit(list(self.face_points))
        return True

    def move_face_point(self, index: int, x: float, y: float) -> None:
        if 0 <= index < len(self.face_points):
            self.face_points[index] = self._inside(x, y)
            self.face_points_changed.emit(list(self.face_points))

    def set_face_points(
        self, points: list[tuple[float, float]] | list[list[float]], title: str = ""
    ) -> None:
        """All three points at once (a detector's, a project's), or none; with a
        ``title``, one undoable step."""
        before = list(self.face_points)
        self.face_points = [self._inside(float(p[0]), float(p[1])) for p in points][:3]
        self.face_points_changed.emit(list(self.face_points))
        if title:
            self.commit_face_points(before, title)

    def clear_face_points(self) -> None:
        if self.face_points:
            self.set_face_points([], "Clear face points")

    def commit_face_points(self, before: FacePointList, title: str) -> None:
        """Put the change of the face points since ``before`` (a click, a drag, the
        detector) on the undo stack as one step; nothing when they did not change."""
        after = list(self.face_points)
        if after != before:
            self.undo_stack.push(SwapCommand(title, before, after, self._install_face_points))

    def _install_face_points(self, points: FacePointList) -> None:
        if points != self.face_points:
            self.face_points = list(points)
            self.face_points_changed.emit(list(self.face_points))

    def next_face_point(self) -> str | None:
        """What the next click places ("left eye", …), None when all three are placed."""
        n = len(self.face_points)
        return FACE_POINT_NAMES[n] if n < len(FACE_POINT_NAMES) else None

    def face_alignment(self) -> FaceAlignment | None:
        """The aligned face the three points make (eyes given the other way round are
        swapped, as the engine does), or None while they are fewer or cannot be a face
        (:meth:`face_problem` says why)."""
        if len(self.face_points) < 3 or self.picture is None:
            return None
        try:
            points, _ = check_face_points(FacePoints(*self.face_points), self.size)
        except InputError:
            return None
        return FaceAlignment.from_points(points, self.model_resolution)

    def face_problem(self) -> str | None:
        """Why the three points are no face, in one sentence (None: they are one, or they
        are not all placed)."""
        if len(self.face_points) < 3 or self.picture is None:
            return None
        try:
            check_face_points(FacePoints(*self.face_points), self.size)
        except InputError as exc:
            return str(exc)
        return None

    # --- working region -------------------------------------------------------
    def set_model_resolution(self, res: int) -> None:
        self.model_resolution = int(res)
        self.resolution_changed.emit(self.model_resolution)

    def clamp_region(self, x: float, y: float, side: float) -> tuple[int, int, int]:
        w, h = self.size
        side = int(round(max(8, min(side, w, h))))
        x = int(round(min(max(0, x), w - side)))
        y = int(round(min(max(0, y), h - side)))
        return x, y, side

    def set_region(self, x: float, y: float, side: float) -> None:
        if self.picture is None:
            return
        region = self.clamp_region(x, y, side)
        if region != self.region:
            self.region = region
            self.region_changed.emit(region)

    def set_task(self, task: str) -> None:
        """The task to run next (an engine task name): its rule places the region."""
        self.task = task_spec(task).name

    @property
    def whole_photo(self) -> bool:
        """The task covers the whole picture at any aspect ratio (no square region)."""
        return covers_whole_photo(self.task)

    def default_region(self) -> tuple[int, int, int]:
        """The engine's working region for the task, as the CLI cuts it: around the
        mask's bounding box (the hole a third of the square, at least the model's
        resolution when the picture allows, at most half of it for super-resolution),
        the centre square without a mask."""
        if self.picture is None:
            return 0, 0, 0
        r = working_region(
            self.task,
            self.size,
            self.model_resolution,
            hole_box=self.mask_bounds(),
            always_square=True,
        )
        assert r is not None  # always_square
        return r.x, r.y, r.size

    def reset_region(self) -> None:
        if self.picture is None:
            return
        if self.whole_photo:  # no square: the task covers the whole picture
            if self.region is not None:
                self.region = None
                self.region_changed.emit(None)
            return
        self.set_region(*self.default_region())

    # --- history and the result layer ---------------------------------------
    def add_result(self, entry: HistoryEntry, apply: bool = False) -> None:
        """A new result: shown as a layer over the picture (``apply`` bakes it in)."""
        self.history.append(entry)
        if apply:
            self.apply_result(entry)
        elif not entry.applied:
            self.set_layer(entry)
        self.history_changed.emit()

    def set_layer(self, entry: HistoryEntry | None) -> None:
        """Show ``entry`` over the picture (None: no layer); applied results are not
        shown again (their pixels are in the picture)."""
        if entry is not None and entry.applied:
            entry = None
        if entry is not self.layer:
            self.layer = entry
            self.show_original = False
            self.layer_changed.emit()

    def set_layer_opacity(self, opacity: float) -> None:
        self.layer_opacity = float(min(1.0, max(0.0, opacity)))
        self.layer_changed.emit()

    def set_show_original(self, on: bool) -> None:
        if on != self.show_original:
            self.show_original = bool(on)
            self.layer_changed.emit()

    def layer_pixels(self) -> np.ndarray | None:
        """What the layer shows over its bounds (the result at the layer's opacity)."""
        e = self.layer
        if e is None or e.picture is not None:
            return None if e is None else e.picture
        return blend_patch(e.before, e.after, self.layer_opacity)

    def apply_result(self, entry: HistoryEntry) -> bool:
        """Bake ``entry`` into the picture as one undoable step that also clears the
        mask it was made with (the next stroke starts a new area).  The layer's
        opacity applies when ``entry`` is the layer."""
        if self.picture is None or entry.applied:
            return False
        title = f"Apply {entry.title}"
        children: list[QUndoCommand] = []
        if entry.picture is not None:
            old = (self.picture, self.mask, list(self.face_points))
            new_pic = Picture(
                np.ascontiguousarray(entry.picture), self.picture.source, dict(self.picture.info)
            )
            # a new picture is the old one scaled (super-resolution): so are the face's points
            (h, w), (nh, nw) = self.picture.pixels.shape[:2], entry.picture.shape[:2]
            points = [(x * nw / w, y * nh / h) for x, y in self.face_points]
            new = (new_pic, np.zeros((nh, nw), np.uint8), points)
            children.append(SwapCommand(title, old, new, self._install))
        else:
            opacity = self.layer_opacity if entry is self.layer else 1.0
            x0, y0, x1, y1 = entry.bounds
            pixels = self.picture.pixels
            patch = blend_patch(entry.before, entry.after, opacity)

            def edit(rec: TileRecorder) -> None:
                rec.touch(x0, y0, x1, y1)
                pixels[y0:y1, x0:x1] = patch

            cmd = record_edit(title, pixels, self._picture_notify, edit)
            if cmd is not None:
                children.append(cmd)
            mask = self.mask

            def clear_mask(rec: TileRecorder) -> None:
                rec.touch_all()
                mask.fill(0)

            mask_cmd = record_edit("Clear mask", mask, self._mask_notify, clear_mask)
            if mask_cmd is not None:
                children.append(mask_cmd)
        if not children:  # the result equals the picture: nothing to write
            entry.applied = True
            self.set_layer(None)
            self.history_changed.emit()
            return True
        if entry is self.layer:
            self.set_layer(None)
        self.undo_stack.push(ApplyCommand(title, children, partial(self._applied, entry)))
        return True

    def _applied(self, entry: HistoryEntry, on: bool) -> None:
        entry.applied = on
        if on and entry is self.layer:
            self.set_layer(None)
        self.history_changed.emit()

    def _install(self, value: PictureAndMask) -> None:
        self.picture, self.mask, points = value
        self.region = None
        self.face_points = list(points)
        self.face_points_changed.emit(list(self.face_points))
        if self.layer is not None:  # its bounds belong to the other picture
            self.layer = None
            self.layer_changed.emit()
        self.picture_replaced.emit()
        self.mask_changed.emit(None)
        self.reset_region()

    def set_running(self, running: bool) -> None:
        if running != self.running:
            self.running = running
            self.running_changed.emit(running)

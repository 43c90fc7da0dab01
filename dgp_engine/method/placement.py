"""Where a result sits in its photo: enough to put any other output of the same state
(a jitter variation, a category, a morph frame) into the photo exactly as the run's own
result was (docs/method.md#post-processing), long after the run.

A :class:`Placement` is plain data saved with a reconstruction state: the task (which
decides the compose step: blend, fill the hole, colour transfer, new picture), the
photo's size, path and a digest of its pixels, the model's view of it (the square
region or the fitted whole photo), the seam width and, for hole-filling tasks, the hole
inside the view.  States saved before placements existed simply have none.

The composing itself lives in :mod:`dgp_engine.tasks.postprocess` (``compose_into``,
``PhotoComposer``), the one place that knows how an output goes back into a photo.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CompositionError, InputError, StateError
from .face_align import FaceAlignment
from .region import View

#: The safetensors key of a placement's hole (its bits packed, row-major).
HOLE_TENSOR = "placement.hole"


def pixels_digest(rgb: np.ndarray) -> str:
    """SHA-256 of a picture's pixels as 8-bit RGB (float [0, 1] or uint8 H×W×3) and its
    shape: the same photo, whatever file it is read from."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    a = np.ascontiguousarray(a[..., :3])
    digest = hashlib.sha256(f"{a.shape[1]}x{a.shape[0]}:".encode())
    digest.update(a.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Placement:
    """Where the model's R×R output goes in a ``photo_size`` = (width, height) photo."""

    task: str  # engine task name (dgp_engine.method.taskspec)
    photo_size: tuple[int, int]  # (width, height) of the photo the view maps into
    view: View  # the model's view of the photo
    feather: int = 0  # seam width in photo pixels
    hole: np.ndarray | None = None  # view.h × view.w bool: the hole inside the view
    photo_path: str | None = None  # the photo's file, absolute, when it had one
    photo_digest: str | None = None  # pixels_digest of the photo
    # the task's compose step (taskspec BLEND, FILL_HOLE…) when whoever made the placement
    # had the task at hand (a run); None: looked up from ``task`` when composing (not saved)
    compose: str | None = None
    # an aligned face (docs/method.md#aligned-faces): the view is then the model's view of
    # the aligned square, and the hole (if any) is the photo's, photo-size
    face: FaceAlignment | None = None
    # a super-resolved aligned face: the new picture is the photo enlarged this many times
    # with the face composed in (1 otherwise)
    scale: int = 1

    def __post_init__(self) -> None:
        # a state file's JSON is not covered by its tensors' checksum: a view of no pixels
        # once ended in a torch traceback, one of 6000² model pixels took 3 GB to compose
        v = self.view
        w, h = self.photo_size
        if (
            min(w, h, v.w, v.h, v.resolution, v.cw, v.ch) < 1
            or min(v.ox, v.oy) < 0
            or v.ox + v.cw > v.resolution
            or v.oy + v.ch > v.resolution
            or self.feather < 0
            or self.scale not in (1, 2, 4, 8)
            or (self.scale != 1 and self.face is None)
        ):
            raise StateError(
                f"A placement's view ({v.x},{v.y} {v.w}×{v.h} → {v.cw}×{v.ch} at "
                f"{v.ox},{v.oy} of {v.resolution}², seam {self.feather}) in a "
                f"{w}×{h} photo is not one a run makes."
            )
        if self.hole is not None:
            hole = np.asarray(self.hole, dtype=bool)
            want = (h, w) if self.face is not None else (self.view.h, self.view.w)
            if hole.shape != want:
                raise StateError(
                    f"A placement's hole is {hole.shape[1]}×{hole.shape[0]}; its "
                    f"{'photo' if self.face is not None else 'view'} is {want[1]}×{want[0]}."
                )
            object.__setattr__(self, "hole", hole)
        if self.face is not None:
            if self.face.resolution != v.resolution or (v.x, v.y, v.w, v.h) != (
                0,
                0,
                v.resolution,
                v.resolution,
            ):
                raise StateError(
                    "A placement's aligned face does not match its view of the model's square."
                )
            try:
                self.face.box(self.photo_size)
            except InputError:
                raise StateError(
                    f"A placement's aligned face lies outside its {w}×{h} photo."
                ) from None
            return
        if v.x < 0 or v.y < 0 or v.x + v.w > w or v.y + v.h > h:
            raise StateError(
                f"A placement's view ({v.x},{v.y} {v.w}×{v.h}) lies outside its {w}×{h} photo."
            )

    # --- describing ----------------------------------------------------------------------
    @property
    def whole_photo(self) -> bool:
        if self.face is not None:
            return False
        return (self.view.x, self.view.y, self.view.w, self.view.h) == (0, 0, *self.photo_size)

    def photo_box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the photo pixels a composition may change
        (right/bottom exclusive): the view's rectangle, or an aligned face's bounds."""
        if self.face is not None:
            return self.face.box(self.photo_size)
        v = self.view
        return v.x, v.y, v.x + v.w, v.y + v.h

    def photo_slices(self) -> tuple[slice, slice]:
        x0, y0, x1, y1 = self.photo_box()
        return slice(y0, y1), slice(x0, x1)

    @property
    def photo_name(self) -> str:
        return Path(self.photo_path).name if self.photo_path else "an unnamed photo"

    def where(self) -> str:
        """Where in the photo, in words: "the whole photo" or "region x,y,size"."""
        if self.face is not None:
            f = self.face
            return f"the aligned face at {f.cx:.0f},{f.cy:.0f} ({f.side:.0f} px)"
        if self.whole_photo:
            return "the whole photo"
        v = self.view
        if v.w == v.h:
            return f"region {v.x},{v.y},{v.w}"
        return f"the {v.w}×{v.h} px at {v.x},{v.y}"

    def describe(self) -> str:
        w, h = self.photo_size
        return f"{self.task} of {self.where()} of {self.photo_name} ({w}×{h})"

    def difference(self, other: Placement) -> str | None:
        """Why outputs of ``self`` and ``other`` cannot share one photo composition, in
        words (None when they can: same photo, view, task, seam and hole)."""
        same_photo = (
            self.photo_digest == other.photo_digest
            if self.photo_digest and other.photo_digest
            else self.photo_path == other.photo_path
        )
        if self.photo_size != other.photo_size or not same_photo:
            return (
                f"they were restored from different photos ({self.photo_name}, "
                f"{self.photo_size[0]}×{self.photo_size[1]} and {other.photo_name}, "
                f"{other.photo_size[0]}×{other.photo_size[1]})"
            )
        if self.view != other.view or self.face != other.face or self.scale != other.scale:
            return (
                f"they were restored at different places of the photo ({self.where()} "
                f"and {other.where()})"
            )
        if self.task != other.task:
            return f"they were restored by different tasks ({self.task} and {other.task})"
        if (
            self.feather != other.feather
            or (self.hole is None) != (other.hole is None)
            or (
                self.hole is not None
                and other.hole is not None
                and not np.array_equal(self.hole, other.hole)
            )
        ):
            return "they fill different masks (or blend with different seams)"
        return None

    # --- changing -----------------------------------------------------------------------
    def moved(self, dx: int, dy: int, photo_size: tuple[int, int]) -> Placement:
        """The same placement inside a larger photo of ``photo_size`` where this one's
        photo starts at (dx, dy): the app plans a run on a crop of its picture."""
        size = (int(photo_size[0]), int(photo_size[1]))
        if self.face is not None:
            # the face stays where it is in the picture; the arrays now start dx, dy earlier
            f = self.face
            face = f.with_origin(f.ox - int(dx), f.oy - int(dy))
            hole = None
            if self.hole is not None:
                hole = np.zeros((size[1], size[0]), dtype=bool)
                h, w = self.hole.shape
                hole[int(dy) : int(dy) + h, int(dx) : int(dx) + w] = self.hole
            return dataclasses.replace(self, face=face, photo_size=size, hole=hole)
        view = dataclasses.replace(self.view, x=self.view.x + int(dx), y=self.view.y + int(dy))
        return dataclasses.replace(self, view=view, photo_size=size)

    def with_photo(self, path: str | Path | None, digest: str | None) -> Placement:
        return dataclasses.replace(
            self, photo_path=str(Path(path).absolute()) if path else None, photo_digest=digest
        )

    # --- saving -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The JSON part (the hole goes into :meth:`hole_tensor_bits`)."""
        v = self.view
        return {
            "task": self.task,
            "photo_size": list(self.photo_size),
            "view": [v.x, v.y, v.w, v.h, v.resolution, v.ox, v.oy, v.cw, v.ch],
            "feather": int(self.feather),
            "has_hole": self.hole is not None,
            "photo_path": self.photo_path,
            "photo_digest": self.photo_digest,
            **({"face": self.face.to_json()} if self.face is not None else {}),
            **({"scale": self.scale} if self.scale != 1 else {}),
        }

    def hole_bits(self) -> np.ndarray | None:
        """The hole packed 8 pixels a byte (uint8), or None."""
        if self.hole is None:
            return None
        bits: np.ndarray = np.packbits(self.hole.ravel())
        return bits

    @classmethod
    def from_json(
        cls, data: Any, hole_bits: np.ndarray | None, label: str = "The state"
    ) -> Placement:
        """The placement saved by :meth:`to_json` (and its packed hole); StateError when
        the record is damaged."""
        try:
            if not isinstance(data, dict):
                raise TypeError
            x, y, w, h, res, ox, oy, cw, ch = (int(v) for v in data["view"])
            view = View(x, y, w, h, res, ox, oy, cw, ch)
            pw, ph = (int(v) for v in data["photo_size"])
            face = FaceAlignment.from_json(data["face"]) if data.get("face") else None
            hole = None
            if data.get("has_hole"):
                if hole_bits is None:
                    raise ValueError("its hole is missing")
                if face is not None:  # an aligned face's hole is the photo's
                    w, h = pw, ph
                bits = np.asarray(hole_bits, dtype=np.uint8).reshape(-1)
                if w < 1 or h < 1 or bits.size != (w * h + 7) // 8:
                    # unpacked only when the bits are the view's: a 30000² view with a few
                    # bytes of hole once took 2 GB
                    raise ValueError(
                        f"its hole holds {bits.size * 8} pixels, not the "
                        f"{max(w, 0)}×{max(h, 0)} of its view"
                    )
                flat = np.unpackbits(bits, count=w * h)
                hole = flat.reshape(h, w).astype(bool)
            path = data.get("photo_path")
            digest = data.get("photo_digest")
            return cls(
                str(data["task"]),
                (pw, ph),
                view,
                int(data.get("feather", 0)),
                hole,
                str(path) if path else None,
                str(digest) if digest else None,
                face=face,
                scale=int(data.get("scale", 1)),
            )
        except StateError as exc:  # the record is inconsistent: say which file
            text = str(exc)
            raise StateError(f"{label} is damaged: {text[:1].lower()}{text[1:]}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"{label} is damaged: where its result sits in the photo cannot "
                f"be read ({exc or 'a bad record'})."
            ) from None


def common_placement(placements: Sequence[Placement | None], labels: Sequence[str]) -> Placement:
    """The one placement that every output of these states (e.g. a morph's keyframes,
    named ``labels``) is composed by; :class:`CompositionError` saying why when a state
    records none or they differ (photo, place, task or mask)."""
    if not placements:
        raise CompositionError("There is no result to compose.")
    for placement, label in zip(placements, labels, strict=True):
        if placement is None:
            raise CompositionError(
                f"{label} does not record where its result sits in a photo (it was saved "
                "before DGP Studio recorded that, or restored from a model-size picture), "
                "so only the generator's own square can be exported."
            )
    first = placements[0]
    assert first is not None  # checked above
    for placement, label in zip(placements[1:], labels[1:], strict=True):
        assert placement is not None
        why = first.difference(placement)
        if why is not None:
            raise CompositionError(
                f"Cannot compose this morph onto a photo: {labels[0]} and {label} — {why}, "
                "so no single photo shows every frame; only the generator's own squares "
                "can be exported."
            )
    return first

"""App state ⇄ project file (:mod:`dgp_engine.files.project`); the document controller
(:mod:`.document`) saves, opens and autosaves with these.

What a project holds of the editor: the current picture (source ``picture``), its
mask (mask ``picture``), the working region, the face points (region ``face``), the
result history (each entry's before/after/preview/whole-picture arrays as images
``h<i>.<part>`` and its ReconstructionState as state ``h<i>``) and the morph timeline
(keyframe names and settings; each keyframe is its history entry's state, or state
``k<i>`` when it came from a file).  Loading never goes through the undo stack:
an opened project starts with a clean history of edits."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dgp_engine import DGPError
from dgp_engine.files.project import Project
from dgp_engine.method.manipulate import MorphTimeline
from dgp_engine.method.state import ReconstructionState

from .image_files import Picture
from .model.state import AppState, HistoryEntry

if TYPE_CHECKING:
    from .manipulate.panel import ManipulatePanel

log = logging.getLogger(__name__)

PICTURE = "picture"
_PARTS = ("before", "after", "preview", "picture")


class NothingToOpen(ValueError):
    """The project holds no picture (e.g. a damaged file lost it)."""


def _jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it; for a dict, its JSON-safe items."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                try:
                    out[str(k)] = json.loads(json.dumps(v, allow_nan=False))
                except (TypeError, ValueError):
                    pass
            return out
        return None


@dataclass
class MorphSnapshot:
    """The manipulate panel's morph timeline: keyframe states, their names, and the
    timeline settings (``MorphTimeline.to_dict()``)."""

    keyframes: list[ReconstructionState]
    names: list[str]
    settings: dict[str, Any]


def to_project(
    state: AppState,
    title: str = "",
    extra: dict[str, Any] | None = None,
    morph: MorphSnapshot | None = None,
) -> Project:
    """A snapshot of ``state`` (arrays copied, so later edits do not change it)."""
    if state.picture is None:
        raise NothingToOpen("There is no picture to save in a project.")
    pic = state.picture
    project = Project(title=title)
    project.sources[PICTURE] = pic.pixels.copy()
    project.masks[PICTURE] = state.mask.copy()
    if state.region is not None:
        x, y, side = state.region
        project.regions.append(
            {"id": "working", "source": PICTURE, "x": int(x), "y": int(y), "side": int(side)}
        )
    if state.face_points:
        project.regions.append(
            {
                "id": "face",
                "source": PICTURE,
                "points": [[float(x), float(y)] for x, y in state.face_points],
            }
        )
    for i, e in enumerate(state.history):
        hid = f"h{i}"
        item: dict[str, Any] = {
            "id": hid,
            "title": e.title,
            "bounds": [int(v) for v in e.bounds],
            "cancelled": bool(e.cancelled),
            "applied": bool(e.applied),
            "settings": _jsonable(e.settings) or {},
            "images": {},
            "state": None,
        }
        for part in _PARTS:
            arr = getattr(e, part)
            if arr is not None:
                key = f"{hid}.{part}"
                project.images[key] = np.array(arr, copy=True)
                item["images"][part] = key
        if e.state is not None:
            project.states[hid] = e.state
            item["state"] = hid
        project.history.append(item)
    project.settings = {
        "model_resolution": int(state.model_resolution),
        "source_path": str(pic.source) if pic.source else None,
        **(_jsonable(extra) or {}),
    }
    if morph is not None and (morph.keyframes or morph.settings):
        history_ids = {
            id(e.state): f"h{i}" for i, e in enumerate(state.history) if e.state is not None
        }
        ids = []
        for k, kf in enumerate(morph.keyframes):
            sid = history_ids.get(id(kf))
            if sid is None:  # loaded from a state file: stored on its own
                sid = f"k{k}"
                project.states[sid] = kf
            ids.append(sid)
        project.timeline = {
            **(_jsonable(morph.settings) or {}),
            "keyframes": ids,
            "names": [str(n) for n in morph.names],
        }
    return project


def morph_from_project(project: Project) -> MorphSnapshot | None:
    """The saved morph timeline; keyframes a damaged file lost are left out."""
    tl = dict(project.timeline or {})
    if not tl:
        return None
    ids = list(tl.pop("keyframes", []) or [])
    names = list(tl.pop("names", []) or [])
    names += [""] * (len(ids) - len(names))
    keep = [(project.states[i], n) for i, n in zip(ids, names, strict=True) if i in project.states]
    if len(keep) < len(ids):
        log.warning("%d morph keyframe(s) could not be read from the project", len(ids) - len(keep))
    return MorphSnapshot([k for k, _ in keep], [n for _, n in keep], tl)


def history_from_project(project: Project) -> list[HistoryEntry]:
    """The history entries whose arrays survived (a damaged file may have lost some)."""
    out = []
    for item in project.history:
        imgs = {part: project.images.get(key) for part, key in item.get("images", {}).items()}
        before, after, preview = imgs.get("before"), imgs.get("after"), imgs.get("preview")
        if (
            any(v is None for v in imgs.values())
            or before is None
            or after is None
            or preview is None
        ):
            continue  # lost with a damaged file
        state_key = item.get("state")
        out.append(
            HistoryEntry(
                title=str(item.get("title", "")),
                bounds=tuple(item.get("bounds", (0, 0, 0, 0))),
                before=before,
                after=after,
                preview=preview,
                cancelled=bool(item.get("cancelled", False)),
                applied=bool(item.get("applied", False)),
                settings=dict(item.get("settings") or {}),
                state=project.states.get(state_key) if state_key else None,
                picture=imgs.get("picture"),
            )
        )
    return out


def picture_from_project(
    project: Project,
) -> tuple[Picture, np.ndarray, tuple[int, int, int] | None]:
    """The picture, its mask (empty when lost) and the saved working region."""
    pixels = project.sources.get(PICTURE)
    if pixels is None and project.sources:
        pixels = next(iter(project.sources.values()))
    if pixels is None:
        raise NothingToOpen("The project holds no picture.")
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise NothingToOpen(
            f"The project's picture has an unsupported layout ({pixels.dtype}, {pixels.shape})."
        )
    h, w = pixels.shape[:2]
    mask = project.masks.get(PICTURE)
    if mask is None or mask.shape != (h, w):
        mask = np.zeros((h, w), np.uint8)
    elif mask.dtype == np.bool_:
        mask = mask.astype(np.uint8) * 255
    source = project.settings.get("source_path")
    pic = Picture(np.ascontiguousarray(pixels), Path(source) if source else None, {})
    region = None
    for r in project.regions:
        if r.get("id") == "working":
            region = (int(r["x"]), int(r["y"]), int(r["side"]))
    return pic, np.ascontiguousarray(mask, np.uint8), region


def face_points_from_project(project: Project) -> list[tuple[float, float]]:
    """The saved face points (left eye, right eye, mouth; fewer while being placed);
    none when the project has none or they are damaged (said in the log)."""
    for r in project.regions:
        if not isinstance(r, dict) or r.get("id") != "face":
            continue
        points = _face_points(r.get("points"))
        if points is not None:
            return points
        log.warning("the project's face points are damaged and were left out: %r", r)
    return []


def _face_points(value: Any) -> list[tuple[float, float]] | None:
    """Up to three [x, y] pairs of finite numbers, or None."""
    if not isinstance(value, list) or len(value) > 3:
        return None
    out = []
    for p in value:
        if not (isinstance(p, list) and len(p) == 2):
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p):
            return None
        x, y = float(p[0]), float(p[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        out.append((x, y))
    return out


def apply_project(state: AppState, project: Project) -> None:
    """Replace the state's picture, mask, region, face points and history with the
    project's."""
    pic, mask, region = picture_from_project(project)
    history = history_from_project(project)
    state.open_picture(pic)
    np.copyto(state.mask, mask)
    state.mask_changed.emit(None)
    if region is not None:
        state.set_region(*region)
    state.set_face_points(face_points_from_project(project))
    state.history[:] = history
    state.history_changed.emit()


def morph_of(panel: ManipulatePanel | None) -> MorphSnapshot | None:
    """The Manipulate panel's morph timeline as a project holds it (None: no panel)."""
    if panel is None:
        return None
    try:
        settings = panel.timeline.timeline().to_dict()
    except DGPError:  # settings being edited into an invalid combination
        settings = {}
    return MorphSnapshot(panel.timeline.keyframes(), panel.timeline.names(), settings)


def restore_morph(panel: ManipulatePanel | None, morph: MorphSnapshot | None) -> None:
    """Put a project's morph timeline back into the Manipulate panel (emptied first)."""
    if panel is None:
        return
    panel.timeline.clear_keyframes()
    if morph is None:
        return
    if morph.settings:
        try:
            panel.timeline.set_timeline(MorphTimeline.from_dict(morph.settings))
        except (DGPError, TypeError, ValueError) as exc:
            log.warning("The project's morph settings were not restored: %s", exc)
    # they render with the panel's model: the last result's, or the one the app
    # loaded (offered to the panel on every load)
    for state, name in zip(morph.keyframes, morph.names, strict=True):
        panel.add_keyframe(state, name)

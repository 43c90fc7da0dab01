"""App state ⇄ project file (:mod:`dgp_engine.files.project`), and the main window's
project actions (Save / Open Project, autosave, crash recovery) as a mixin.

What a project holds of the editor: the current picture (source ``picture``), its
mask (mask ``picture``), the working region, the result history (each entry's
before/after/preview/whole-picture arrays as images ``h<i>.<part>`` and its
ReconstructionState as state ``h<i>``) and the morph timeline (keyframe names and
settings; each keyframe is its history entry's state, or state ``k<i>`` when it came
from a file).  Loading never goes through the undo stack:
an opened project starts with a clean history of edits."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from dgp_engine import DGPError
from dgp_engine.files.project import (
    SUFFIX,
    Autosaver,
    Project,
    ProjectDamagedError,
    ProjectError,
    find_recovery,
    load_project,
    recovered_path,
    save_project,
)
from dgp_engine.method.manipulate import MorphTimeline

from .image_files import Picture
from .model.state import AppState, HistoryEntry

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
            out = {}
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

    keyframes: list
    names: list[str]
    settings: dict[str, Any]


def to_project(state: AppState, title: str = "", extra: dict | None = None,
               morph: MorphSnapshot | None = None) -> Project:
    """A snapshot of ``state`` (arrays copied, so later edits do not change it)."""
    if state.picture is None:
        raise NothingToOpen("There is no picture to save in a project.")
    pic = state.picture
    project = Project(title=title)
    project.sources[PICTURE] = pic.pixels.copy()
    project.masks[PICTURE] = state.mask.copy()
    if state.region is not None:
        x, y, side = state.region
        project.regions.append({"id": "working", "source": PICTURE, "x": int(x), "y": int(y),
                                "side": int(side)})
    for i, e in enumerate(state.history):
        hid = f"h{i}"
        item: dict[str, Any] = {
            "id": hid, "title": e.title, "bounds": [int(v) for v in e.bounds],
            "cancelled": bool(e.cancelled), "applied": bool(e.applied),
            "settings": _jsonable(e.settings) or {}, "images": {}, "state": None}
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
        history_ids = {id(e.state): f"h{i}" for i, e in enumerate(state.history)
                       if e.state is not None}
        ids = []
        for k, kf in enumerate(morph.keyframes):
            sid = history_ids.get(id(kf))
            if sid is None:  # loaded from a state file: stored on its own
                sid = f"k{k}"
                project.states[sid] = kf
            ids.append(sid)
        project.timeline = {**(_jsonable(morph.settings) or {}), "keyframes": ids,
                            "names": [str(n) for n in morph.names]}
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
        log.warning("%d morph keyframe(s) could not be read from the project",
                    len(ids) - len(keep))
    return MorphSnapshot([k for k, _ in keep], [n for _, n in keep], tl)


def history_from_project(project: Project) -> list[HistoryEntry]:
    """The history entries whose arrays survived (a damaged file may have lost some)."""
    out = []
    for item in project.history:
        imgs = {part: project.images.get(key) for part, key in item.get("images", {}).items()}
        if any(v is None for v in imgs.values()) or "preview" not in imgs:
            continue  # lost with a damaged file
        state_key = item.get("state")
        out.append(HistoryEntry(
            title=str(item.get("title", "")), bounds=tuple(item.get("bounds", (0, 0, 0, 0))),
            before=imgs.get("before"), after=imgs.get("after"), preview=imgs["preview"],
            cancelled=bool(item.get("cancelled", False)),
            applied=bool(item.get("applied", False)),
            settings=dict(item.get("settings") or {}),
            state=project.states.get(state_key) if state_key else None,
            picture=imgs.get("picture")))
    return out


def picture_from_project(project: Project) -> tuple[Picture, np.ndarray,
                                                     tuple[int, int, int] | None]:
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
        raise NothingToOpen(f"The project's picture has an unsupported layout "
                            f"({pixels.dtype}, {pixels.shape}).")
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


def apply_project(state: AppState, project: Project) -> None:
    """Replace the state's picture, mask, region and history with the project's."""
    pic, mask, region = picture_from_project(project)
    history = history_from_project(project)
    state.open_picture(pic)
    np.copyto(state.mask, mask)
    state.mask_changed.emit(None)
    if region is not None:
        state.set_region(*region)
    state.history[:] = history
    state.history_changed.emit()


class ProjectFileActions:
    """Main-window glue for project files; expects ``state``, ``confirm``, ``inform``,
    ``ask_later``, ``show_error``, ``_may_discard``, ``_clean_save_done``,
    ``_update_title`` and
    ``statusBar()`` from the window.  Call :meth:`_init_projects` once."""

    def _init_projects(self) -> None:
        self.project_path: Path | None = None
        self._shut_down = False
        self._changes = 0          # edits and results; compared with the autosaved count
        self._autosaved_changes = 0
        self.autosaver = Autosaver(None, interval_s=60)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(60_000)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self.state.undo_stack.indexChanged.connect(self._count_change)
        self.state.history_changed.connect(self._count_change)

        panel = getattr(self, "manipulate", None)
        if panel is not None:
            panel.timeline.keyframes_changed.connect(self._count_change)
            panel.timeline.invalidated.connect(self._count_change)  # settings edited

    def _count_change(self, *_args) -> None:
        self._changes += 1

    def _morph(self) -> MorphSnapshot | None:
        panel = getattr(self, "manipulate", None)
        if panel is None:
            return None
        try:
            settings = panel.timeline.timeline().to_dict()
        except DGPError:  # settings being edited into an invalid combination
            settings = {}
        return MorphSnapshot(panel.timeline.keyframes(), panel.timeline.names(), settings)

    def _restore_morph(self, morph: MorphSnapshot | None) -> None:
        panel = getattr(self, "manipulate", None)
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

    def autosave(self, force: bool = False) -> Path | None:
        """Writes the autosave when there are changes since the last one (GUI thread:
        already computed arrays only, written as PNG / safetensors)."""
        dirty = self.state.has_picture and self._changes != self._autosaved_changes
        if not dirty or self.state.running:
            return None
        try:
            project = to_project(self.state, self._project_title(), morph=self._morph())
            out = (self.autosaver.save(project) if force
                   else self.autosaver.maybe_save(project, dirty=True))
        except (ProjectError, OSError) as exc:
            log.warning("Autosave failed: %s", exc)
            return None
        if out is not None:
            self._autosaved_changes = self._changes
            log.info("autosaved to %s", out)
        return out

    def _project_title(self) -> str:
        if self.project_path is not None:
            return self.project_path.stem
        pic = self.state.picture
        return pic.source.stem if pic is not None and pic.source else "Untitled"

    def save_project_dialog(self) -> bool:
        if not self.state.has_picture:
            self.show_error("Open a picture first: a project saves the picture, its mask, "
                            "the working region and the results.")
            return False
        suggestion = str(self.project_path or Path(self._project_title() + SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self, "Save project", suggestion,
                                              f"DGP project (*{SUFFIX})")
        if not path:
            return False
        if not path.endswith(SUFFIX):
            path += SUFFIX
        return self.save_project_to(path)

    def save_project_to(self, path: str | Path) -> bool:
        path = Path(path)
        if self.state.running:
            self.show_error("A run is in progress: wait for it or cancel it (Esc) before "
                            "saving the project.")
            return False
        try:
            save_project(to_project(self.state, path.stem, morph=self._morph()), path)
        except (ProjectError, NothingToOpen, OSError) as exc:
            msg = f"Could not save the project {path.name}: {exc}"
            self.show_error(msg)
            self.inform("Project not saved", msg)
            return False
        self.project_path = path
        self.autosaver.retarget(path)
        self._autosaved_changes = self._changes
        self.state.undo_stack.setClean()
        self._clean_save_done()  # kept autosaves of discarded work go too
        self._update_title()
        self.statusBar().showMessage(f"Saved project {path}", 4000)
        log.info("saved project %s", path)
        return True

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "",
                                              f"DGP project (*{SUFFIX});;All (*)")
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path, *, as_recovery: bool = False) -> bool:
        """Open a project; a damaged file is left untouched and its readable part is
        offered (to be saved under a new name)."""
        path = Path(path)
        if not self._may_discard():
            return False
        target: Path | None = None if as_recovery else path
        try:
            project = load_project(path)
        except ProjectDamagedError as exc:
            self.show_error(str(exc))
            if not exc.recovered.sources:
                self.inform("Project damaged", f"{exc}\n\nThe picture could not be "
                                               "recovered, so there is nothing to open.")
                return False
            if not self.confirm("Project damaged", f"{exc}\n\nOpen the recovered part? "
                                "Save it under a new name (the damaged file stays as it is)."):
                return False
            project, target = exc.recovered, None
            log.info("opening the recovered part of %s (suggested name %s)", path,
                     recovered_path(path).name)
        except ProjectError as exc:
            msg = str(exc)
            self.show_error(msg)
            self.inform("Cannot open project", msg)
            return False
        try:
            apply_project(self.state, project)
        except NothingToOpen as exc:
            msg = f"Cannot open {path.name}: {exc}"
            self.show_error(msg)
            self.inform("Cannot open project", msg)
            return False
        self._restore_morph(morph_from_project(project))
        self.save_target = None
        self.region_user_set = self.state.region is not None
        self.project_path = target
        if target is not None:
            self.autosaver.retarget(target)
        elif self.autosaver.project_path is not None:  # recovered work is untitled
            self.autosaver.discard()
            self.autosaver.project_path = None
        if target is None:  # recovered: unsaved until saved under a name
            self.state.undo_stack.resetClean()
            self._changes += 1
        self._autosaved_changes = self._changes if target is not None else -1
        self._update_title()
        self.statusBar().showMessage(f"Opened project {path.name}", 4000)
        log.info("opened project %s", path)
        return True

    def offer_recovery(self) -> None:
        """At startup: offer the newest autosave left behind by a crash (non-blocking)."""
        try:
            found = find_recovery()
        except OSError as exc:
            log.warning("Could not look for autosaves: %s", exc)
            return
        if not found:
            return
        cand = found[0]

        def restore() -> None:
            if self.open_project(cand.autosave, as_recovery=True):
                if cand.original is not None:
                    self.project_path = cand.original
                    # the next autosave rewrites the same file
                    self.autosaver = type(self.autosaver)(cand.original, interval_s=60)

        self.ask_later("Restore unsaved work?",
                       f"{cand.describe()} can be restored. Restore it now?", restore)

    def _inform_dialog(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def _ask_later_dialog(self, title: str, text: str, on_yes) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(
            lambda b: on_yes() if box.standardButton(b) == QMessageBox.StandardButton.Yes
            else None)
        box.open()

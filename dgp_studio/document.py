"""The document controller: the open picture's life on disk — open, paste, save,
masks, project files, autosave, crash recovery and unsaved changes.

Contract.  What it needs is passed in: the app state, the settings (recent files,
size limit), :class:`Prompts` (the questions it asks the user; the window answers
them, and tests replace the window's answers), the widget that parents file dialogs,
and the Manipulate panel whose morph timeline a project holds (None without one).
What it tells comes out as signals (below); it never touches the window's widgets."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QMimeData, QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog, QWidget

from dgp_engine import DGPError
from dgp_engine.errors import ProjectDamagedError, ProjectError
from dgp_engine.files.project import (
    SUFFIX,
    Autosaver,
    autosave_dir,
    find_recovery,
    load_project,
    recovered_path,
    save_project,
)

from . import image_files
from .model.state import AppState
from .project_io import (
    NothingToOpen,
    apply_project,
    morph_from_project,
    morph_of,
    restore_morph,
    to_project,
)
from .qimage import from_qimage
from .recovery import RecoveryItem, recovery_item
from .settings import Settings

if TYPE_CHECKING:
    from .manipulate.panel import ManipulatePanel

log = logging.getLogger(__name__)

AUTOSAVE_S = 60
_AUTOSAVE_END = f".autosave{SUFFIX}"


def autosave_session(picture: image_files.Picture) -> str:
    """The autosave's name for a picture outside a project: its file's stem and a digest
    of its path (two photos never share one), or the time it was pasted."""
    if picture.source is None:
        return time.strftime("pasted-%Y%m%d-%H%M%S")
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", picture.source.stem)[:40] or "picture"
    digest = hashlib.sha256(str(picture.source.resolve()).encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}"


def recovered_session(path: Path) -> str:
    """The autosave name for work opened from ``path`` without a project name: the
    autosave itself when ``path`` is one (the next autosave rewrites it), else a name
    after the damaged project."""
    if path.parent == autosave_dir() and path.name.endswith(_AUTOSAVE_END):
        return path.name[: -len(_AUTOSAVE_END)]
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", path.stem)[:40] or "project"
    digest = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:8]
    return f"{stem}-recovered-{digest}"


class Prompts(Protocol):
    """The questions the controller asks; looked up at each use (tests replace them)."""

    def confirm(self, title: str, text: str) -> bool: ...  # yes / no, blocking
    def inform(self, title: str, text: str) -> None: ...  # a message box
    def ask_save(self, title: str, text: str) -> str: ...  # save / discard / cancel
    def ask_recovery(
        self,
        items: list[RecoveryItem],  # pick one, not blocking
        restore: Callable[[RecoveryItem], None],
    ) -> None: ...


class DocumentController(QObject):
    error = Signal(str)  # one readable sentence (the window shows it)
    status = Signal(str, int)  # a status-bar message and how long it stays (ms)
    replacing = Signal()  # the picture is about to be replaced: drop what is its
    opened = Signal(bool)  # another picture replaced the document (True: a project)
    title_changed = Signal(str)  # the window title for the document
    recent_changed = Signal()  # settings.recent_files changed (and should be saved)

    def __init__(
        self,
        state: AppState,
        settings: Settings,
        prompts: Prompts,
        dialog_parent: QWidget,
        panel: ManipulatePanel | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.state, self.settings, self.prompts = state, settings, prompts
        self.dialog_parent, self.panel = dialog_parent, panel
        self.save_target: Path | None = None  # the file Save writes (chosen in Save as)
        self.project_path: Path | None = None
        self._changes = 0  # edits and results; compared with the autosaved count
        self._autosaved_changes = 0
        self._kept_autosaves: list[Path] = []  # discarded work, kept until a clean save
        self._shut_down = False
        # no picture yet: a name of its own (never an autosave left by another session)
        self.autosaver = Autosaver(
            None, interval_s=AUTOSAVE_S, session=time.strftime("untitled-%Y%m%d-%H%M%S")
        )
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_S * 1000)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        state.undo_stack.indexChanged.connect(self._count_change)
        state.undo_stack.indexChanged.connect(self._update_title)
        state.undo_stack.cleanChanged.connect(self._update_title)
        state.history_changed.connect(self._count_change)
        if panel is not None:
            panel.timeline.keyframes_changed.connect(self._count_change)
            panel.timeline.invalidated.connect(self._count_change)  # settings edited

    def _count_change(self, *_args: object) -> None:
        self._changes += 1

    # --- title ------------------------------------------------------------------------
    def title(self) -> str:
        pic = self.state.picture
        name = (
            pic.source.name
            if pic is not None and pic.source
            else ("Pasted picture" if pic is not None else "")
        )
        star = "*" if self.state.dirty else ""
        return f"{name}{star} — DGP Studio" if name else "DGP Studio"

    def _update_title(self, *_args: object) -> None:
        try:
            self.title_changed.emit(self.title())
        except RuntimeError:  # the undo stack is being destroyed with the window
            pass

    # --- pictures ---------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.dialog_parent, "Open picture", "", image_files.OPEN_FILTER
        )
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        if not self.may_discard():
            return False
        try:
            pic = image_files.read_picture(path, self.settings.max_megapixels)
        except DGPError as exc:
            self.error.emit(str(exc))
            return False
        except MemoryError:
            self.error.emit(f"{Path(path).name} is too large to open on this computer.")
            return False
        self._set_picture(pic)
        self.settings.add_recent(path)
        self.recent_changed.emit()
        return True

    def open_image(self, image: QImage) -> bool:
        """A picture without a file (pasted or dropped)."""
        if not self.may_discard():
            return False
        self._set_picture(image_files.Picture(from_qimage(image)))
        return True

    def drop(self, md: QMimeData) -> bool:
        """A drop on the window: the first local file, else an image; True when taken."""
        for url in md.urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                return True
        return md.hasImage() and self.open_image(md.imageData())

    def paste(self) -> None:
        md = QGuiApplication.clipboard().mimeData()
        if md is not None and md.hasUrls():
            for url in md.urls():
                if url.isLocalFile():
                    self.open_path(url.toLocalFile())
                    return
        img = QGuiApplication.clipboard().image()
        if img.isNull():
            self.error.emit("The clipboard holds no picture.")
            return
        self.open_image(img)

    def _set_picture(self, pic: image_files.Picture) -> None:
        self._leave_document()
        self.save_target = self.project_path = None
        self.state.open_picture(pic)
        self.autosaver = Autosaver(None, interval_s=AUTOSAVE_S, session=autosave_session(pic))
        self._autosaved_changes = self._changes
        self._update_title()
        w, h = self.state.size
        self.status.emit(f"{w}×{h}", 4000)
        log.info("opened %s (%d×%d)", pic.source or "pasted picture", w, h)
        self.opened.emit(False)

    def photo_path(self) -> Path | None:
        """The opened photo's file (exports default beside it, named after it)."""
        pic = self.state.picture
        return pic.source if pic is not None and pic.source else None

    def save(self) -> bool:
        """Save to the file chosen in Save as; the first save always asks for a name, so
        the opened file is never replaced silently."""
        if self.save_target is None:
            return self.save_as()
        return self.save_to(self.save_target, overwrite=True)  # the file chosen before

    def save_as(self) -> bool:
        if not self.state.has_picture:
            return False
        src = self.photo_path()
        suggestion = str(src.with_name(f"{src.stem}-restored.png")) if src else "restored.png"
        path, _ = QFileDialog.getSaveFileName(
            self.dialog_parent, "Save picture as", suggestion, image_files.SAVE_FILTER
        )
        if not path:
            return False
        # the Qt dialog has asked before replacing an existing file
        return self.save_to(path, overwrite=True)

    def save_to(self, path: str | Path, overwrite: bool = False) -> bool:
        if self.state.picture is None:
            return False
        try:
            image_files.save_picture(self.state.picture, path, overwrite=overwrite)
        except (DGPError, OSError) as exc:
            self.error.emit(f"Could not save {Path(path).name}: {exc}")
            return False
        self.save_target = Path(path)
        self.state.undo_stack.setClean()
        self._clean_save_done()
        self._update_title()
        self.status.emit(f"Saved {path}", 4000)
        log.info("saved %s", path)
        return True

    # --- masks ------------------------------------------------------------------------
    def import_mask(self) -> None:
        if not self.state.has_picture:
            return
        path, _ = QFileDialog.getOpenFileName(
            self.dialog_parent, "Import mask", "", "PNG (*.png);;All (*)"
        )
        if path:
            self.import_mask_from(path)

    def import_mask_from(self, path: str | Path) -> bool:
        try:
            m = image_files.read_mask(path, self.state.size)
        except DGPError as exc:
            self.error.emit(str(exc))
            return False
        return self.state.set_mask(m)

    def export_mask(self) -> None:
        if not self.state.has_picture:
            return
        src = self.photo_path()
        suggestion = str(src.with_name(f"{src.stem}-mask.png")) if src else "mask.png"
        path, _ = QFileDialog.getSaveFileName(
            self.dialog_parent, "Export mask", suggestion, "PNG (*.png)"
        )
        if path:
            image_files.save_mask(self.state.mask, path)

    # --- projects ---------------------------------------------------------------------
    def _project_title(self) -> str:
        if self.project_path is not None:
            return self.project_path.stem
        src = self.photo_path()
        return src.stem if src is not None else "Untitled"

    def save_project_dialog(self) -> bool:
        if not self.state.has_picture:
            self.error.emit(
                "Open a picture first: a project saves the picture, its mask, "
                "the working region and the results."
            )
            return False
        suggestion = str(self.project_path or Path(self._project_title() + SUFFIX))
        path, _ = QFileDialog.getSaveFileName(
            self.dialog_parent, "Save project", suggestion, f"DGP project (*{SUFFIX})"
        )
        if not path:
            return False
        if not path.endswith(SUFFIX):
            path += SUFFIX
        return self.save_project_to(path)

    def save_project_to(self, path: str | Path) -> bool:
        path = Path(path)
        if self.state.running:
            self.error.emit(
                "A run is in progress: wait for it or cancel it (Esc) before saving the project."
            )
            return False
        try:
            save_project(to_project(self.state, path.stem, morph=morph_of(self.panel)), path)
        except (ProjectError, NothingToOpen, OSError) as exc:
            msg = f"Could not save the project {path.name}: {exc}"
            self.error.emit(msg)
            self.prompts.inform("Project not saved", msg)
            return False
        self.project_path = path
        self.autosaver.retarget(path)
        self._autosaved_changes = self._changes
        self.state.undo_stack.setClean()
        self._clean_save_done()  # kept autosaves of discarded work go too
        self._update_title()
        self.status.emit(f"Saved project {path}", 4000)
        log.info("saved project %s", path)
        return True

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.dialog_parent, "Open project", "", f"DGP project (*{SUFFIX});;All (*)"
        )
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path, *, as_recovery: bool = False) -> bool:
        """Open a project; a damaged file is left untouched and its readable part is
        offered (to be saved under a new name)."""
        path = Path(path)
        if not self.may_discard():
            return False
        target: Path | None = None if as_recovery else path
        try:
            project = load_project(path)
        except ProjectDamagedError as exc:
            self.error.emit(str(exc))
            if not exc.recovered.sources:
                self.prompts.inform(
                    "Project damaged",
                    f"{exc}\n\nThe picture could not be recovered, so there is nothing to open.",
                )
                return False
            if not self.prompts.confirm(
                "Project damaged",
                f"{exc}\n\nOpen the recovered part? Save it under a "
                "new name (the damaged file stays as it is).",
            ):
                return False
            project, target = exc.recovered, None
            log.info(
                "opening the recovered part of %s (suggested name %s)",
                path,
                recovered_path(path).name,
            )
        except ProjectError as exc:
            self.error.emit(str(exc))
            self.prompts.inform("Cannot open project", str(exc))
            return False
        self._leave_document()
        try:
            apply_project(self.state, project)
        except NothingToOpen as exc:
            msg = f"Cannot open {path.name}: {exc}"
            self.error.emit(msg)
            self.prompts.inform("Cannot open project", msg)
            return False
        restore_morph(self.panel, morph_from_project(project))
        self.save_target = None
        self.project_path = target
        # recovered work is untitled: its autosave goes on in the file it came from
        self.autosaver = (
            Autosaver(target, interval_s=AUTOSAVE_S)
            if target is not None
            else Autosaver(None, interval_s=AUTOSAVE_S, session=recovered_session(path))
        )
        if target is None:  # recovered: unsaved until saved under a name
            self.state.undo_stack.resetClean()
            self._changes += 1
        self._autosaved_changes = self._changes if target is not None else -1
        self._update_title()
        self.status.emit(f"Opened project {path.name}", 4000)
        log.info("opened project %s", path)
        self.opened.emit(True)
        return True

    # --- autosave and recovery ----------------------------------------------------------
    def autosave(self, force: bool = False) -> Path | None:
        """Writes the autosave when there are changes since the last one (GUI thread:
        already computed arrays only, written as PNG / safetensors)."""
        dirty = self.state.has_picture and self._changes != self._autosaved_changes
        if not dirty or self.state.running:
            return None
        try:
            project = to_project(self.state, self._project_title(), morph=morph_of(self.panel))
            out = (
                self.autosaver.save(project)
                if force
                else self.autosaver.maybe_save(project, dirty=True)
            )
        except (ProjectError, OSError) as exc:
            log.warning("Autosave failed: %s", exc)
            return None
        if out is not None:
            self._autosaved_changes = self._changes
            log.info("autosaved to %s", out)
        return out

    def offer_recovery(self) -> None:
        """At startup: offer the autosaves left behind by a crash, each with its picture
        (non-blocking); the ones not restored stay until a clean save."""
        try:
            found = find_recovery()
        except OSError as exc:
            log.warning("Could not look for autosaves: %s", exc)
            return
        if not found:
            return

        def restore(item: RecoveryItem) -> None:
            cand = item.candidate
            if self.open_project(cand.autosave, as_recovery=True):
                if cand.original is not None:
                    self.project_path = cand.original
                    # the next autosave rewrites the same file
                    self.autosaver = Autosaver(cand.original, interval_s=AUTOSAVE_S)

        self.prompts.ask_recovery([recovery_item(c) for c in found], restore)

    # --- unsaved changes ------------------------------------------------------------------
    def resolve_unsaved(self, title: str, text: str) -> bool:
        """Save / Discard / Cancel for unsaved work; True when it is fine to go on.
        Discard keeps the work in the autosave (recoverable) until the next clean save."""
        if not (self.state.has_picture and self.state.dirty):
            return True
        answer = self.prompts.ask_save(title, text)
        if answer == "save":
            return self.save()
        if answer == "discard":
            self._keep_autosave()
            return True
        return False

    def may_discard(self) -> bool:
        """Whether the document may be replaced (asks about unsaved work)."""
        if self.state.running:
            self.error.emit("A run is in progress: cancel it (Esc) before opening another picture.")
            return False
        return self.resolve_unsaved(
            "Save changes?", "The picture has unsaved changes. Save them before opening another?"
        )

    def _keep_autosave(self) -> None:
        """Write the discarded work to the autosave and keep that file; the next
        autosaves go to a new one."""
        out = self.autosave(force=True)
        path = out if out is not None else self.autosaver.path
        if path.is_file():
            self._kept_autosaves.append(path)
        session = time.strftime("untitled-%Y%m%d-%H%M%S") + f"-{len(self._kept_autosaves)}"
        self.autosaver = Autosaver(None, interval_s=AUTOSAVE_S, session=session)

    def _leave_document(self) -> None:
        """The document is being replaced: its autosave (work not saved anywhere, such as
        results never applied) stays recoverable until the next clean save."""
        self.replacing.emit()
        path = self.autosaver.path
        if path.is_file() and path not in self._kept_autosaves:
            self._kept_autosaves.append(path)

    def _clean_save_done(self) -> None:
        """After a save: the autosave and any kept discarded work are no longer needed."""
        self.autosaver.discard()
        for path in self._kept_autosaves:
            path.unlink(missing_ok=True)
        self._kept_autosaves.clear()

    def shutdown(self) -> None:
        """Stop autosaving; closed with nothing unsaved, the autosave goes (work the
        user discarded stays recoverable until the next clean save).  Idempotent."""
        self.autosave_timer.stop()
        if not self._shut_down and not self.state.dirty:
            self.autosaver.discard()
        self._shut_down = True

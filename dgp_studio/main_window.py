"""The main window: canvas in the middle, task/run, history and log docks, menus.

It only wires parts that each own one job: the document controller (open, save,
autosave, unsaved changes: document.py), the actions, menus and toolbars
(window_actions.py), the run controller and the run view (a run's request and
lifecycle, and how it shows: run_controller.py, run_view.py), the models controller
(models_controller.py), the working-region policy (region_policy.py), and the
Manipulate panel with its candidate composer (manipulate/).  Every background job
(runs, model loads, downloads) shows in the status bar through the one job protocol
(jobs.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from dgp_engine.system import paths

from .canvas import Canvas
from .catalog import ModelCatalog
from .document import DocumentController
from .engine_session import RegionResult
from .first_run import FirstRunHint, only_bundled_installed
from .guidance import RegionHint, is_grayscale
from .history_panel import HistoryPanel
from .jobs import JobList, JobStatus
from .log_panel import LogBridge, LogPanel, attach, detach
from .model.state import AppState, HistoryEntry
from .models_controller import ModelsController
from .prompts import MessageBoxPrompts
from .region_policy import RegionPolicy
from .run_controller import RunController
from .run_panel import RunPanel
from .run_view import RunView
from .settings import Settings, apply_hub_repos
from .shortcuts import HelpSheet
from .task_panel import TaskPanel
from .wheel_guard import WheelGuard
from .window_actions import (
    MaskToolBar,
    ResultToolBar,
    build_actions,
    build_menus,
    fill_recent,
)
from .worker import ModelInfo

if TYPE_CHECKING:
    from .batch_dialog import BatchDialog
    from .manipulate.candidates import CandidateComposer
    from .manipulate.export_plan import PictureSource
    from .manipulate.panel import ManipulatePanel

log = logging.getLogger(__name__)


def forward(owner: str, name: str) -> property:
    """The attribute ``name`` of the window's ``owner`` part, read through the window."""
    return property(
        lambda window: getattr(getattr(window, owner), name), doc=f"The {owner}'s {name}."
    )


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area, so a dock fits small screens (docks add up their
    minimum sizes)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setMinimumWidth(min(420, widget.sizeHint().width() + 16))
    return area


class MainWindow(QMainWindow):
    def __init__(
        self, settings: Settings | None = None, catalog: ModelCatalog | None = None
    ) -> None:
        super().__init__()
        self.settings = settings or Settings.load()
        paths.set_cache_dir(self.settings.cache_dir or None)  # models are listed from there
        self.catalog = catalog or ModelCatalog()
        self.state = AppState(self)
        self.last_error = ""
        self._closing = False
        # The questions asked with message boxes (the document controller's Prompts, and
        # the window's): looked up here at each use, so tests replace them.
        boxes = MessageBoxPrompts(self)
        self.confirm, self.inform = boxes.confirm, boxes.inform
        self.ask_save, self.ask_recovery = boxes.ask_save, boxes.ask_recovery

        self.canvas = Canvas(self.state)
        self.canvas.set_brush(self.settings.brush_size, self.settings.brush_hardness)
        self.canvas.set_mask_opacity(self.settings.mask_opacity)
        # a slim, dismissible first-run hint above the canvas (see first_run.py)
        self.first_run_hint = FirstRunHint()
        self._hint_offered = False  # once per session
        self.batch_dialog: BatchDialog | None = None
        centre = QWidget()
        centre_lay = QVBoxLayout(centre)
        centre_lay.setContentsMargins(0, 0, 0, 0)
        centre_lay.setSpacing(0)
        centre_lay.addWidget(self.first_run_hint)
        self.region_hint = RegionHint()  # the working region explained on first show
        self.region_hint.dismissed.connect(self._region_explained)
        centre_lay.addWidget(self.region_hint)
        centre_lay.addWidget(self.canvas, 1)
        self.setCentralWidget(centre)
        self.setAcceptDrops(True)
        self.setWindowTitle("DGP Studio")
        self.setAccessibleName("DGP Studio")

        self.task_panel = TaskPanel(self.catalog.names(), self.settings.device)
        self.task_panel.set_models(self.catalog.names(), self.catalog.unusable())
        self.task_panel.settings.precision = self.settings.precision  # a preference
        self.region = RegionPolicy(
            self.state, lambda: self.canvas.tool, self.task_panel.set_region_note, self
        )
        self.run_panel = RunPanel()
        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.addWidget(self.task_panel)
        side_lay.addWidget(self.run_panel)
        side_lay.addStretch(1)
        self.task_dock = self._dock("Task", scrolling(side), Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_panel = HistoryPanel(self.state)
        self.history_dock = self._dock(
            "History", self.history_panel, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.log_panel = LogPanel()
        self.log_dock = self._dock("Log", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.history_dock, self.log_dock)
        # the right docks (Task, Manipulate) run the window's full height, History and Log
        # sit under the canvas only
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.log_bridge = LogBridge(self)
        self.log_bridge.record.connect(self.log_panel.append_record)
        attach(self.log_bridge)
        self.manipulate, self.candidates = self._install_manipulate()

        self.document = DocumentController(
            self.state, self.settings, self, self, self.manipulate, self
        )
        d = self.document
        d.error.connect(self.show_error)
        d.status.connect(self.statusBar().showMessage)
        d.title_changed.connect(self.setWindowTitle)
        d.replacing.connect(self._drop_picture_state)
        d.opened.connect(self._document_opened)
        d.recent_changed.connect(self._recent_changed)

        # by id; it hides QWidget.actions() (the list), which nothing calls on the window
        self.actions: dict[str, QAction] = build_actions(self)  # type: ignore[assignment]
        docks = [self.task_dock, self.history_dock, self.log_dock]
        if self.manipulate is not None:
            docks.insert(1, self.manipulate.dock)
        self.recent_menu = build_menus(self, self.actions, docks)
        self._fill_recent()
        self.mask_toolbar = MaskToolBar(self.actions, self.canvas, self.settings, self)
        self.addToolBar(self.mask_toolbar)
        self.result_toolbar = ResultToolBar(self.actions, self.state, self.canvas, self)
        self.addToolBarBreak()
        self.addToolBar(self.result_toolbar)
        self.run_tool = self.result_toolbar.run_tool
        self.result_label = self.result_toolbar.result_label
        self.layer_opacity = self.result_toolbar.layer_opacity
        self.set_tool("brush")
        self.zoom_label = QLabel("")
        self.jobs = JobList(self)  # every background job: runs, model loads, downloads
        self.job_status = JobStatus(self.jobs)
        self.statusBar().addPermanentWidget(self.job_status)
        self.statusBar().addPermanentWidget(self.zoom_label)

        self.runs = RunController(
            self.state,
            self.task_panel.settings,
            self.catalog,
            self.settings.engine_threads,
            self.settings.preview_fps,
            self,
        )
        self.runs.job_added.connect(self.jobs.add)
        self.runs.warning.connect(self._on_warning)
        self.run_view = RunView(
            self.runs,
            self.run_panel,
            self.canvas,
            self.state,
            self.actions,
            self.show_error,
            lambda title, text: self.confirm(title, text),
            self,
        )
        self.run_view.starting.connect(self._run_starting)
        self.run_view.result_ready.connect(self._on_result)
        self.run_view.ended.connect(self._run_ended)
        if self.manipulate is not None:
            self.manipulate.job_added.connect(self.jobs.add)
            self.manipulate.photo_path = self.document.photo_path
            self.manipulate.picture_source = self.picture_source

        self.models = ModelsController(
            self.catalog, self.task_panel, self.runs, self.state, self, self
        )
        m = self.models
        m.ready.connect(self._on_model_ready)
        m.error.connect(self.show_error)
        m.status.connect(self.statusBar().showMessage)
        m.job_started.connect(self.jobs.add)  # transfers show in the status bar
        m.installed_changed.connect(self._models_installed)
        self.first_run_hint.download_requested.connect(m.download)
        self.task_panel.task.currentTextChanged.connect(
            lambda _label: self.region.task_changed(self.task_panel.task_name())
        )
        self.history_panel.apply_requested.connect(self.state.apply_result)
        self.history_panel.show_requested.connect(self.state.set_layer)
        self.history_panel.selected.connect(self._history_selected)
        self.state.region_changed.connect(self._region_changed)
        self.state.running_changed.connect(lambda on: self.task_panel.setEnabled(not on))
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.canvas.frame_item.setVisible(False)
        self.wheel_guard = WheelGuard(self)  # the wheel scrolls panels, never their values
        self.wheel_guard.guard(self)
        self._restore_geometry()
        if self.settings.hub_repos:
            apply_hub_repos(self.settings.hub_repos)
        QTimer.singleShot(0, self.models.load_current)

    # --- construction ---------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        dock.setAccessibleName(f"{title} panel")
        self.addDockWidget(area, dock)
        return dock

    def _install_manipulate(self) -> tuple[ManipulatePanel | None, CandidateComposer | None]:
        """The Manipulate panel (jitter, category transfer, morph) as a tab beside the Task
        dock, so it has the window's full height (at the bottom, beside History, it was
        ~150 px at 1280×800); it renders in its own thread, started when first used."""
        try:
            from .manipulate.candidates import CandidateComposer
            from .manipulate.panel import install_manipulate_panel
        except ImportError as exc:  # the panel is optional
            log.info("no Manipulate panel: %s", exc)
            return None, None
        panel = install_manipulate_panel(self, area=Qt.DockWidgetArea.RightDockWidgetArea)
        panel.dock.setWidget(scrolling(panel))  # still fits screens smaller than that
        self.tabifyDockWidget(self.task_dock, panel.dock)
        self.task_dock.raise_()
        candidates = CandidateComposer(self.state, panel, self)
        candidates.error.connect(self.show_error)
        candidates.message.connect(self.statusBar().showMessage)
        return panel, candidates

    # --- the document (the controller's, kept here for app.py, scripts and tests) -------
    project_path = forward("document", "project_path")
    autosave_timer = forward("document", "autosave_timer")
    open_path = forward("document", "open_path")
    paste = forward("document", "paste")
    save = forward("document", "save")
    save_to = forward("document", "save_to")
    import_mask_from = forward("document", "import_mask_from")
    save_project_to = forward("document", "save_project_to")
    open_project = forward("document", "open_project")
    autosave = forward("document", "autosave")
    offer_recovery = forward("document", "offer_recovery")

    def _drop_picture_state(self) -> None:
        """The picture is being replaced: what belongs to it goes (its candidates, its
        result in the Manipulate panel with the keyframes and previews, the last run's
        preview)."""
        if self.candidates is not None:
            self.candidates.forget()
            self.candidates.panel.reset()
        self.run_panel.clear()

    def _document_opened(self, project: bool) -> None:
        """Another picture (or project) replaced the document."""
        self.region.document_opened(project)
        if project:
            return
        pic = self.state.picture
        if (
            pic is not None
            and is_grayscale(pic.pixels)
            and self.task_panel.task_name() != "colorize"
        ):
            # a black-and-white photo: colorizing it is what it most likely wants
            self.task_panel.task.setCurrentText("Colorize")
            w, h = self.state.size
            self.statusBar().showMessage(f"{w}×{h}, black and white: Colorize is selected", 6000)
        if not self._hint_offered and only_bundled_installed():
            # once per session, with only the bundled demo prior installed: say what it is
            # for and offer the ImageNet download (a bar above the canvas, never a dialog)
            self._hint_offered = True
            self.first_run_hint.offer()

    def _recent_changed(self) -> None:
        self._fill_recent()
        self._save_settings()

    def _fill_recent(self) -> None:
        fill_recent(self.recent_menu, self.settings.recent_files, self.document.open_path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.document.drop(event.mimeData()):
            event.acceptProposedAction()

    # --- tools, view and the working region -----------------------------------------
    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        for k in ("brush", "eraser", "rect", "lasso", "frame", "face"):
            self.actions[k].setChecked(k == tool)
        self.canvas.setFocus()

    def show_mask(self, on: bool) -> None:
        self.canvas.set_mask_opacity(self.settings.mask_opacity if on else 0.0)

    def set_split_view(self, on: bool) -> None:
        self.canvas.set_split_mode(bool(on) and self.state.layer is not None)

    def apply_layer(self) -> bool:
        """Bake the result layer into the picture (one undoable step)."""
        if self.state.layer is None:
            return False
        return self.state.apply_result(self.state.layer)

    @property
    def region_user_set(self) -> bool:
        return self.region.user_set

    def reset_region(self) -> None:
        self.region.reset()

    def _region_changed(self, region: tuple[int, int, int] | None) -> None:
        self.canvas.frame_item.setVisible(region is not None)
        if not self.settings.region_explained:
            # shown with the square until "Got it"; a whole-photo task has no square
            self.region_hint.setVisible(region is not None)

    def _region_explained(self) -> None:
        self.settings.region_explained = True
        self._save_settings()

    # --- models (the models controller's) and the other tool windows ------------------
    model_dialog = forward("models", "dialog")
    show_models = forward("models", "show_dialog")
    use_model = forward("models", "use")

    def _on_model_ready(self, info: ModelInfo) -> None:
        if self.manipulate is not None:  # keyframes opened before any run render with it
            self.manipulate.offer_prior(info.prior)
        self.region.task_changed(self.task_panel.task_name())

    def _models_installed(self) -> None:
        if self.first_run_hint.isVisible() and not only_bundled_installed():
            self.first_run_hint.setVisible(False)  # a real prior is installed now

    def show_batch(self) -> None:
        """File → Batch…: a whole folder as a resumable batch job (not modal)."""
        from .batch_dialog import BatchDialog

        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(self)
            self.batch_dialog.job_started.connect(self.jobs.add)  # shown in the status bar
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        self.batch_dialog.activateWindow()

    def show_settings(self) -> bool:
        from .settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.settings, self)
        if dlg.exec() != SettingsDialog.DialogCode.Accepted:
            return False
        self.apply_settings()
        return True

    def apply_settings(self) -> None:
        """Use changed settings now: threads at the next run (set inside the worker
        thread), the precision for the next run, the device as the new default, the
        cache folder (models listed again), hub repositories in the registry."""
        self.runs.set_threads(self.settings.engine_threads)
        self.task_panel.settings.precision = self.settings.precision
        if paths.cache_dir() != self.settings.resolved_cache_dir():
            paths.set_cache_dir(self.settings.cache_dir or None)
            self.models.refresh()
        if self.task_panel.device.findText(self.settings.device) >= 0:
            self.task_panel.device.setCurrentText(self.settings.device)
        apply_hub_repos(self.settings.hub_repos)
        self._save_settings()

    # --- running (the run view's; kept here for scripts and tests) -----------------------
    build_request = forward("run_view", "build_request")
    run_task = forward("run_view", "run_task")
    cancel_run = forward("run_view", "cancel_run")

    def _on_result(self, result: RegionResult, entry: HistoryEntry) -> None:
        pic = self.state.picture
        if pic is not None and entry.state is not None:
            # the engine placed the result in the run's crop: in the whole picture, a
            # saved state composes onto the photo (``dgp morph --onto``) and exports do
            from .manipulate.export_plan import place_in_picture

            place_in_picture(entry.state, entry.bounds, pic.pixels, self.document.photo_path())
        if self.candidates is not None:  # the new result is the one to manipulate
            self.candidates.show_result(entry, result.prior)

    def picture_source(self) -> PictureSource | None:
        """The picture as the Manipulate panel's exports compose into it: its pixels, its
        file, and the results applied to it (newest first) with the pixels they replaced."""
        from .manipulate.export_plan import PictureSource

        pic = self.state.picture
        if pic is None:
            return None
        applied = [
            (e.bounds, e.before, getattr(e.state, "placement", None))
            for e in reversed(self.state.history)
            if e.applied and e.picture is None and e.state is not None
        ]
        return PictureSource(pic.pixels, self.document.photo_path(), applied)

    def _history_selected(self, entry: HistoryEntry | None) -> None:
        if self.candidates is not None:  # the result selected is the one to manipulate
            self.candidates.show_result(entry, self.candidates.panel.prior)

    def _run_ended(self) -> None:
        if self._closing:
            self.close()

    def _on_warning(self, message: str) -> None:
        log.warning(message)
        self.statusBar().showMessage(message, 8000)

    def _run_starting(self) -> None:
        self.last_error = ""

    def show_error(self, message: str) -> None:
        """Readable message in the run panel and status bar, full text in the log."""
        self.last_error = message
        log.warning(message)
        self.run_panel.status.setText(f"<span style='color:#e55'>{message}</span>")
        self.statusBar().showMessage(message, 10000)

    # --- dialogs and closing --------------------------------------------------
    def show_help(self) -> None:
        HelpSheet(self).open()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.state.running:
            if not self._closing and not self.confirm(
                "Stop the run?", "A reconstruction is running. Cancel it and quit?"
            ):
                event.ignore()
                return
            self._closing = True
            self.runs.cancel()
            event.ignore()  # closes again when the worker reports back
            return
        if not self.document.resolve_unsaved(
            "Save changes?", "The picture has unsaved changes. Save them before quitting?"
        ):
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the worker thread and save settings (idempotent)."""
        if self.manipulate is not None:
            self.manipulate.shutdown()
        self.models.stop()  # the engine leaves nothing half-installed
        if self.batch_dialog is not None:
            self.batch_dialog.stop_and_wait()  # pictures back to pending, journal intact
        self.runs.stop()
        detach(self.log_bridge)
        self.document.shutdown()
        self._save_settings()
        QSettings("dgp-studio", "dgp-studio").setValue("geometry", self.saveGeometry())

    def _save_settings(self) -> None:
        try:
            self.settings.device = self.task_panel.device.currentText()
            self.settings.save()
        except OSError as exc:
            log.warning("Could not save settings: %s", exc)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not getattr(self, "_docks_sized", False):
            self._docks_sized = True  # history/manipulate/log tabs: a quarter of the height
            self.resizeDocks(
                [self.history_dock], [max(180, self.height() // 4)], Qt.Orientation.Vertical
            )

    def _restore_geometry(self) -> None:
        g = QSettings("dgp-studio", "dgp-studio").value("geometry")
        if g is not None:
            try:
                self.restoreGeometry(g)
                return
            except TypeError:
                pass
        self.resize(1280, 800)

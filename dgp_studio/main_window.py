"""The main window: canvas in the middle, task/run, history and log docks, menus.

It only glues widgets to the app state and to the run controller (which owns a
run's request and lifecycle); the logic lives in model/, mask_tools, run_controller,
engine_session and worker.  Every background job (runs, model loads, downloads)
shows in the status bar through the one job protocol (jobs.py)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dgp_engine import DGPError
from dgp_engine.system import paths

from . import image_files
from .canvas import Canvas
from .catalog import ModelCatalog
from .engine_session import NEW_PICTURE, RegionRequest, RegionResult
from .first_run import FirstRunHint, only_bundled_installed
from .guidance import RegionHint, is_grayscale, region_note
from .history_panel import HistoryPanel
from .jobs import JobList, JobStatus
from .log_panel import LogBridge, LogPanel, attach, detach
from .model.state import AppState, HistoryEntry
from .project_io import ProjectFileActions
from .qimage import from_qimage
from .run_controller import RunController
from .run_panel import RunPanel
from .settings import Settings
from .shortcuts import HelpSheet, key
from .task_panel import TaskPanel
from .worker import ModelInfo, Progress

log = logging.getLogger(__name__)


def apply_hub_repos(repos: dict[str, str]) -> None:
    """Point registered models at the repositories named in the settings."""
    try:
        from dgp_engine.priors import registry

        for name, repo in repos.items():
            try:
                if registry.source_settings(name).repo_id != repo:
                    registry.set_source(name, repo_id=repo)
            except DGPError as exc:
                log.warning("Hub repository for %s not applied: %s", name, exc)
    except (ImportError, AttributeError) as exc:  # an older registry without sources
        log.warning("Hub repositories not applied: %s", exc)


class MainWindow(QMainWindow, ProjectFileActions):
    def __init__(self, settings: Settings | None = None, catalog: ModelCatalog | None = None):
        super().__init__()
        self.settings = settings or Settings.load()
        paths.set_cache_dir(self.settings.cache_dir or None)  # models are listed from there
        self.catalog = catalog or ModelCatalog()
        self.state = AppState(self)
        self.save_target: Path | None = None
        self.last_error = ""
        self.region_user_set = False
        self._closing = False
        # Asks the user yes/no; tests replace it.
        self.confirm = self._confirm_dialog
        # Tells the user something (a message box); tests replace it.
        self.inform = self._inform_dialog
        # Asks yes/no without blocking, calls back on yes; tests replace it.
        self.ask_later = self._ask_later_dialog
        # Asks Save / Discard / Cancel about unsaved work ("save", "discard" or "cancel");
        # tests replace it.
        self.ask_save = self._ask_save_dialog
        self._kept_autosaves: list[Path] = []  # discarded work, kept until a clean save

        self.canvas = Canvas(self.state)
        self.canvas.set_brush(self.settings.brush_size, self.settings.brush_hardness)
        self.canvas.set_mask_opacity(self.settings.mask_opacity)
        # a slim, dismissible first-run hint above the canvas (see first_run.py)
        self.first_run_hint = FirstRunHint()
        self.first_run_hint.download_requested.connect(self.download_model)
        self._hint_offered = False  # once per session
        self.model_dialog = None  # one Models dialog, kept while a transfer runs
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
        self.task_panel.settings.precision = self.settings.precision  # a preference
        self.run_panel = RunPanel()
        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.addWidget(self.task_panel)
        side_lay.addWidget(self.run_panel)
        side_lay.addStretch(1)
        # scrollable, so the window fits small screens (docks add their minimum sizes)
        self.task_dock = self._dock("Task", self._scrolling(side),
                                    Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_panel = HistoryPanel(self.state)
        self.history_dock = self._dock("History", self.history_panel,
                                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self.log_panel = LogPanel()
        self.log_dock = self._dock("Log", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.history_dock, self.log_dock)
        self.log_bridge = LogBridge(self)
        self.log_bridge.record.connect(self.log_panel.append_record)
        attach(self.log_bridge)

        self.actions: dict[str, QAction] = {}
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.zoom_label = QLabel("")
        self.jobs = JobList(self)  # every background job: runs, model loads, downloads
        self.job_status = JobStatus(self.jobs)
        self.statusBar().addPermanentWidget(self.job_status)
        self.statusBar().addPermanentWidget(self.zoom_label)

        self.manipulate = self._install_manipulate()
        self._init_projects()
        self.runs = RunController(self.state, self.task_panel.settings, self.catalog,
                                  self.settings.engine_threads, self.settings.preview_fps, self)
        r = self.runs
        r.job_added.connect(self.jobs.add)
        r.model_ready.connect(self._on_model_ready)
        r.run_started.connect(self._on_run_started)
        r.progress.connect(self._on_progress)
        r.frame.connect(self._on_frame)
        r.finished.connect(self._on_finished)
        r.failed.connect(self._on_failed)
        r.warning.connect(self._on_warning)
        if self.manipulate is not None:
            self.manipulate.job_added.connect(self.jobs.add)
            self.manipulate.photo_path = self._photo_path
            self.manipulate.candidate_shown.connect(self._show_candidate)
            self.manipulate.apply_requested.connect(self._apply_candidate)
            self.manipulate.back_requested.connect(self._back_to_result)
        self._candidate_base: HistoryEntry | None = None  # the run candidates come from
        self._compose = None  # the engine's composer of that run (model output → crop)

        self.task_panel.model_selected.connect(self._load_model)
        self.task_panel.task.currentTextChanged.connect(self._task_changed)
        self.task_panel.manage_models.connect(self.show_models)
        self.run_panel.run_clicked.connect(self.run_task)
        self.run_panel.pause_clicked.connect(self.pause_run)
        self.run_panel.resume_clicked.connect(self.resume_run)
        self.run_panel.cancel_clicked.connect(self.cancel_run)
        self.history_panel.apply_requested.connect(self.state.apply_result)
        self.history_panel.show_requested.connect(self.state.set_layer)
        self.state.layer_changed.connect(self._layer_changed)
        self.state.resolution_changed.connect(lambda _r: self._update_region_note())
        self.state.undo_stack.indexChanged.connect(self._after_edit)
        self.state.undo_stack.cleanChanged.connect(self._clean_changed)
        self.state.region_changed.connect(self._region_changed)
        self.state.running_changed.connect(self._running_changed)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.canvas.brush_changed.connect(self._brush_changed)
        self.canvas.frame_item.setVisible(False)
        self._running_changed(False)
        self._layer_changed()
        self._restore_geometry()
        if self.settings.hub_repos:
            apply_hub_repos(self.settings.hub_repos)
        if self.task_panel.model.currentText():
            QTimer.singleShot(0, lambda: self._load_model(self.task_panel.model.currentText()))

    # --- construction ---------------------------------------------------------
    @staticmethod
    def _scrolling(widget: QWidget) -> QScrollArea:
        area = QScrollArea()
        area.setWidget(widget)
        area.setWidgetResizable(True)
        area.setFrameShape(QScrollArea.Shape.NoFrame)
        area.setMinimumWidth(min(420, widget.sizeHint().width() + 16))
        return area

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        dock.setAccessibleName(f"{title} panel")
        self.addDockWidget(area, dock)
        return dock

    def _install_manipulate(self):
        """The Manipulate panel (jitter, category transfer, morph) as a dock beside
        History; it renders in its own thread, started when first used."""
        try:
            from .manipulate.panel import install_manipulate_panel
        except ImportError as exc:  # the panel is optional
            log.info("no Manipulate panel: %s", exc)
            return None
        panel = install_manipulate_panel(self, area=Qt.DockWidgetArea.BottomDockWidgetArea)
        panel.dock.setWidget(self._scrolling(panel))  # its full height fits small screens
        self.tabifyDockWidget(self.history_dock, panel.dock)
        self.history_dock.raise_()
        return panel

    def _action(self, ident: str, text: str, slot, shortcut: bool = True) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(key(ident))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.triggered.connect(slot)
        self.addAction(a)
        self.actions[ident] = a
        return a

    def _build_actions(self) -> None:
        st, c = self.state, self.canvas
        self._action("open", "&Open…", self.open_dialog)
        self._action("paste", "&Paste picture", self.paste)
        self._action("save", "&Save", self.save)
        self._action("save_as", "Save / Export &as…", self.save_as)
        self._action("open_project", "Open Pro&ject…", self.open_project_dialog)
        self._action("save_project", "Save Pro&ject…", self.save_project_dialog)
        self._action("quit", "&Quit", self.close)
        self._action("import_mask", "&Import mask…", self.import_mask, shortcut=False)
        self._action("export_mask", "&Export mask…", self.export_mask, shortcut=False)
        undo = st.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(key("undo"))
        redo = st.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([key("redo"), QKeySequence("Ctrl+Y")])
        self.addAction(undo)
        self.addAction(redo)
        self.actions["undo"], self.actions["redo"] = undo, redo
        self._action("fill_mask", "&Fill mask", st.fill_mask)
        self._action("clear_mask", "&Clear mask", st.clear_mask)
        self._action("invert_mask", "&Invert mask", st.invert_mask)
        self._action("reset_region", "Working region around the &mask", self.reset_region)
        for tool, label in (("brush", "&Brush"), ("eraser", "&Eraser"), ("rect", "&Rectangle"),
                            ("lasso", "&Lasso"), ("frame", "Working &region")):
            a = self._action(tool, label, lambda _=False, t=tool: self.set_tool(t))
            a.setCheckable(True)
        self._action("smaller", "Smaller brush", lambda: c.grow_brush(1 / 1.2))
        self._action("bigger", "Bigger brush", lambda: c.grow_brush(1.2))
        self._action("softer", "Softer brush",
                     lambda: c.set_brush(hardness=c.brush_hardness - 0.1))
        self._action("harder", "Harder brush",
                     lambda: c.set_brush(hardness=c.brush_hardness + 0.1))
        tm = self._action("toggle_mask", "Show &mask", self._toggle_mask)
        tm.setCheckable(True)
        tm.setChecked(True)
        self._action("zoom_in", "Zoom &in", lambda: c.zoom_by(1.25))
        self._action("zoom_out", "Zoom &out", lambda: c.zoom_by(0.8))
        self._action("fit", "&Fit to window", c.fit)
        self._action("actual", "&Actual size", c.actual_size)
        run = self._action("run", "&Run", self.run_task)
        run.setShortcuts([key("run"), QKeySequence("Ctrl+Enter")])
        run.setToolTip("Run the task (Ctrl+Enter)")
        self._action("apply_result", "&Apply result to picture", self.apply_layer)
        orig = self._action("show_original", "Show &original", self.state.set_show_original)
        orig.setCheckable(True)
        orig.setToolTip("Hide the result layer to see the picture under it (O)")
        split = self._action("split_view", "&Split before | after", self.set_split_view)
        split.setCheckable(True)
        split.setToolTip("Before on the left of the line, the result on the right; drag "
                         "the line on the canvas (Shift+O)")
        self._action("pause", "&Pause / resume", self.run_panel.pause_button.click)
        self._action("cancel", "&Cancel", self.cancel_run)
        self._action("help", "&Keyboard shortcuts", self.show_help)
        self._action("models", "&Download or import…", self.show_models, shortcut=False)
        self._action("preferences", "&Settings…", self.show_settings)
        self.tool_group = QButtonGroup(self)

    def _build_menus(self) -> None:
        a = self.actions
        mb = self.menuBar()
        f = mb.addMenu("&File")
        for k in ("open",):
            f.addAction(a[k])
        self.recent_menu = f.addMenu("Open &recent")
        self._fill_recent()
        for k in ("paste", "save", "save_as"):
            f.addAction(a[k])
        f.addSeparator()
        f.addAction(a["open_project"])
        f.addAction(a["save_project"])
        f.addSeparator()
        f.addAction(a["import_mask"])
        f.addAction(a["export_mask"])
        f.addSeparator()
        f.addAction("&Batch…", self.show_batch)
        f.addSeparator()
        f.addAction(a["quit"])
        e = mb.addMenu("&Edit")
        for k in ("undo", "redo", None, "fill_mask", "clear_mask", "invert_mask", None,
                  "reset_region"):
            e.addSeparator() if k is None else e.addAction(a[k])
        t = mb.addMenu("&Tools")
        for k in ("brush", "eraser", "rect", "lasso", "frame", None, "smaller", "bigger",
                  "softer", "harder"):
            t.addSeparator() if k is None else t.addAction(a[k])
        v = mb.addMenu("&View")
        for k in ("zoom_in", "zoom_out", "fit", "actual", None, "toggle_mask",
                  "show_original", "split_view"):
            v.addSeparator() if k is None else v.addAction(a[k])
        for dock in (self.task_dock, self.history_dock, self.log_dock):
            v.addAction(dock.toggleViewAction())
        r = mb.addMenu("&Run")
        for k in ("run", "pause", "cancel", "apply_result"):
            r.addAction(a[k])
        e.addSeparator()
        e.addAction(a["preferences"])
        m = mb.addMenu("&Models")
        m.addAction(a["models"])
        h = mb.addMenu("&Help")
        h.addAction(a["help"])

    def _build_toolbar(self) -> None:
        tb = QToolBar("Mask tools", self)
        tb.setObjectName("mask-tools")
        tb.setAccessibleName("Mask tools")
        for k in ("brush", "eraser", "rect", "lasso", "frame"):
            btn = QToolButton()
            btn.setDefaultAction(self.actions[k])
            btn.setAccessibleName(self.actions[k].text().replace("&", ""))
            tb.addWidget(btn)
        tb.addSeparator()
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, 1000)
        self.size_spin.setValue(self.canvas.brush_size)
        self.size_spin.setAccessibleName("Brush size")
        self.size_spin.setToolTip("Brush size ([ and ])")
        self.size_spin.valueChanged.connect(lambda v: self.canvas.set_brush(size=v))
        self.hard_slider = self._slider("Brush hardness", int(self.canvas.brush_hardness * 100))
        self.hard_slider.valueChanged.connect(lambda v: self.canvas.set_brush(hardness=v / 100))
        self.opacity_slider = self._slider("Mask opacity", int(self.settings.mask_opacity * 100))
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        for label, w in (("Size", self.size_spin), ("Hardness", self.hard_slider),
                         ("Mask opacity", self.opacity_slider)):
            box = QWidget()
            lay = QHBoxLayout(box)
            lay.setContentsMargins(4, 0, 4, 0)
            lay.addWidget(QLabel(label))
            lay.addWidget(w)
            box.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
            tb.addWidget(box)
        for k in ("fill_mask", "clear_mask", "invert_mask"):
            tb.addAction(self.actions[k])
        self.addToolBar(tb)
        self._build_result_toolbar()
        self.set_tool("brush")

    def _build_result_toolbar(self) -> None:
        """Run, the primary action, always in sight; then the result layer: its opacity,
        the original under it, the split view and Apply."""
        tb = QToolBar("Run and result", self)
        tb.setObjectName("run-result")
        tb.setAccessibleName("Run and result")
        self.run_tool = QToolButton()
        self.run_tool.setDefaultAction(self.actions["run"])
        self.run_tool.setText("▶ Run")
        self.run_tool.setAccessibleName("Run task")
        self.run_tool.setStyleSheet("QToolButton { font-weight: bold; padding: 2px 10px; }")
        tb.addWidget(self.run_tool)
        self.cancel_tool = QToolButton()
        self.cancel_tool.setDefaultAction(self.actions["cancel"])
        self.cancel_tool.setAccessibleName("Cancel the run")
        tb.addWidget(self.cancel_tool)
        tb.addSeparator()
        self.result_label = QLabel("No result")
        self.result_label.setAccessibleName("Result layer")
        self.result_label.setContentsMargins(4, 0, 4, 0)
        tb.addWidget(self.result_label)
        self.layer_opacity = self._slider("Result opacity", 100)
        self.layer_opacity.setToolTip("Opacity of the result over the picture")
        self.layer_opacity.valueChanged.connect(lambda v: self.state.set_layer_opacity(v / 100))
        box = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.addWidget(QLabel("Opacity"))
        lay.addWidget(self.layer_opacity)
        box.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        tb.addWidget(box)
        for k, name in (("show_original", "Show original"), ("split_view", "Split view"),
                        ("apply_result", "Apply result to picture")):
            btn = QToolButton()
            btn.setDefaultAction(self.actions[k])
            btn.setText(self.actions[k].text().replace("&", "").replace(" result to picture",
                                                                        ""))
            btn.setAccessibleName(name)
            tb.addWidget(btn)
        self.addToolBarBreak()
        self.addToolBar(tb)
        self.result_toolbar = tb

    @staticmethod
    def _slider(name: str, value: int) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(0, 100)
        s.setValue(value)
        s.setFixedWidth(90)
        s.setAccessibleName(name)
        return s

    # --- tools and view -------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        for k in ("brush", "eraser", "rect", "lasso", "frame"):
            self.actions[k].setChecked(k == tool)
        self.canvas.setFocus()

    def _brush_changed(self, size: int, hardness: float) -> None:
        self.size_spin.blockSignals(True)
        self.size_spin.setValue(size)
        self.size_spin.blockSignals(False)
        self.hard_slider.blockSignals(True)
        self.hard_slider.setValue(int(round(hardness * 100)))
        self.hard_slider.blockSignals(False)
        self.settings.brush_size, self.settings.brush_hardness = size, hardness

    def _opacity_changed(self, v: int) -> None:
        self.settings.mask_opacity = v / 100
        if self.actions["toggle_mask"].isChecked():
            self.canvas.set_mask_opacity(v / 100)

    def _toggle_mask(self, on: bool) -> None:
        self.canvas.set_mask_opacity(self.settings.mask_opacity if on else 0.0)

    def reset_region(self) -> None:
        self.region_user_set = False
        self.state.reset_region()

    def _region_changed(self, region) -> None:
        self.canvas.frame_item.setVisible(region is not None)
        if self.canvas.tool == "frame":
            self.region_user_set = True
        self._update_region_note()
        if not self.settings.region_explained:
            # shown with the square until "Got it"; a whole-photo task has no square
            self.region_hint.setVisible(region is not None)

    def _region_explained(self) -> None:
        self.settings.region_explained = True
        self._save_settings()

    def _update_region_note(self) -> None:
        st = self.state
        text = region_note(st.task, st.region, st.model_resolution) if st.has_picture else ""
        self.task_panel.set_region_note(text, warning=text.startswith("⚠"))

    # --- the result layer -------------------------------------------------------
    def _layer_changed(self) -> None:
        e = self.state.layer
        on = e is not None
        for k in ("apply_result", "show_original", "split_view"):
            self.actions[k].setEnabled(on)
        self.layer_opacity.setEnabled(on)
        self.actions["show_original"].setChecked(on and self.state.show_original)
        if not on and self.actions["split_view"].isChecked():
            self.actions["split_view"].setChecked(False)
            self.canvas.set_split_mode(False)
        self.layer_opacity.blockSignals(True)
        self.layer_opacity.setValue(int(round(self.state.layer_opacity * 100)))
        self.layer_opacity.blockSignals(False)
        self.result_label.setText(f"Result: {e.title}" if on else "No result")

    # --- candidates from the Manipulate panel, composed like results -----------------
    def _candidate_entry(self, image: np.ndarray, note: str, state=None) -> HistoryEntry | None:
        base, compose = self._candidate_base, self._compose
        if base is None or compose is None or self.state.picture is None:
            return None
        x0, y0, x1, y1 = base.bounds
        w, h = self.state.size
        if base.picture is None and (x1 > w or y1 > h):
            self.show_error("The picture changed size since this result: run the task again "
                            "to use its candidates.")
            return None
        # the panel's view of it was composed by the render thread (same composer)
        composed = self.manipulate.shown(image) if self.manipulate is not None \
            else compose(image)
        title = f"{base.title.split(' · ')[0]} · {note}"
        if base.picture is not None:  # super-resolution: a new picture
            return HistoryEntry(title, base.bounds, base.before, composed, image,
                                settings=dict(base.settings), state=state, picture=composed)
        before = self.state.picture.pixels[y0:y1, x0:x1].copy()
        return HistoryEntry(title, base.bounds, before, composed, image,
                            settings=dict(base.settings), state=state)

    def _show_candidate(self, image: np.ndarray, note: str) -> None:
        entry = self._candidate_entry(image, note)
        if entry is not None:
            self.state.set_layer(entry)  # shown over the picture, not in History yet

    def _apply_candidate(self, state, note: str, image: np.ndarray) -> None:
        entry = self._candidate_entry(image, note, state)
        if entry is None:
            return
        self.state.add_result(entry)
        self.state.apply_result(entry)
        self.statusBar().showMessage(f"Applied {note} to the picture (Ctrl+Z undoes it)", 6000)

    def _back_to_result(self) -> None:
        self.state.set_layer(self._candidate_base)  # None once it was applied

    def apply_layer(self) -> bool:
        """Bake the result layer into the picture (one undoable step)."""
        if self.state.layer is None:
            return False
        return self.state.apply_result(self.state.layer)

    def set_split_view(self, on: bool) -> None:
        self.canvas.set_split_mode(bool(on) and self.state.layer is not None)

    def _after_edit(self, _index: int) -> None:
        if self.state.has_picture and not self.region_user_set:
            self.state.reset_region()
        self._update_title()

    def _clean_changed(self, _clean: bool) -> None:
        try:
            self._update_title()
        except RuntimeError:  # the undo stack is being destroyed with the window
            pass

    def _update_title(self) -> None:
        pic = self.state.picture
        name = pic.source.name if pic is not None and pic.source else (
            "Pasted picture" if pic is not None else "")
        star = "*" if self.state.dirty else ""
        self.setWindowTitle(f"{name}{star} — DGP Studio" if name else "DGP Studio")

    # --- files ----------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open picture", "", image_files.OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        if not self._may_discard():
            return False
        try:
            pic = image_files.read_picture(path, self.settings.max_megapixels)
        except DGPError as exc:
            self.show_error(str(exc))
            return False
        except MemoryError:
            self.show_error(f"{Path(path).name} is too large to open on this computer.")
            return False
        self._set_picture(pic)
        self.settings.add_recent(path)
        self._fill_recent()
        self._save_settings()
        return True

    def _set_picture(self, pic: image_files.Picture) -> None:
        self.save_target = None
        self._candidate_base = self._compose = None  # candidates belong to the old picture
        if self.manipulate is not None:
            self.manipulate.composite = None
        self.region_user_set = False
        self.state.open_picture(pic)
        if self.project_path is not None:  # a picture replaces the project
            self.autosaver.discard()
            self.autosaver.project_path = self.project_path = None
        self._autosaved_changes = self._changes
        self._update_title()
        w, h = self.state.size
        self.statusBar().showMessage(f"{w}×{h}", 4000)
        if is_grayscale(pic.pixels) and self.task_panel.task_name() != "colorize":
            # a black-and-white photo: colorizing it is what it most likely wants
            self.task_panel.task.setCurrentText("Colorize")
            self.statusBar().showMessage(f"{w}×{h}, black and white: Colorize is selected",
                                         6000)
        log.info("opened %s (%d×%d)", pic.source or "pasted picture", w, h)
        self._offer_real_prior()

    def _offer_real_prior(self) -> None:
        """Once per session, with only the bundled demo prior installed: say what it is
        for and offer the ImageNet download (a bar above the canvas, never a dialog)."""
        if self._hint_offered or not only_bundled_installed():
            return
        self._hint_offered = True
        self.first_run_hint.offer()

    def paste(self) -> None:
        cb = QGuiApplication.clipboard()
        md = cb.mimeData()
        if md is not None and md.hasUrls():
            for url in md.urls():
                if url.isLocalFile():
                    self.open_path(url.toLocalFile())
                    return
        img = cb.image()
        if img.isNull():
            self.show_error("The clipboard holds no picture.")
            return
        if not self._may_discard():
            return
        self._set_picture(image_files.Picture(from_qimage(img)))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for f in self.settings.recent_files:
            a = self.recent_menu.addAction(f)
            a.triggered.connect(lambda _=False, p=f: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        md = event.mimeData()
        for url in md.urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return
        if md.hasImage() and self._may_discard():
            self._set_picture(image_files.Picture(from_qimage(md.imageData())))
            event.acceptProposedAction()

    def save(self) -> bool:
        """Save to the file chosen in Save as; the first save always asks for a name, so
        the opened file is never replaced silently."""
        if self.save_target is None:
            return self.save_as()
        return self.save_to(self.save_target, overwrite=True)  # the file chosen before

    def save_as(self) -> bool:
        if not self.state.has_picture:
            return False
        src = self.state.picture.source
        suggestion = str(src.with_name(f"{src.stem}-restored.png")) if src else "restored.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save picture as", suggestion,
                                              image_files.SAVE_FILTER)
        if not path:
            return False
        # the Qt dialog has asked before replacing an existing file
        return self.save_to(path, overwrite=True)

    def save_to(self, path: str | Path, overwrite: bool = False) -> bool:
        if not self.state.has_picture:
            return False
        try:
            image_files.save_picture(self.state.picture, path, overwrite=overwrite)
        except (DGPError, OSError) as exc:
            self.show_error(f"Could not save {Path(path).name}: {exc}")
            return False
        self.save_target = Path(path)
        self.state.undo_stack.setClean()
        self._clean_save_done()
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        log.info("saved %s", path)
        return True

    def import_mask(self) -> None:
        if not self.state.has_picture:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import mask", "", "PNG (*.png);;All (*)")
        if path:
            self.import_mask_from(path)

    def import_mask_from(self, path: str | Path) -> bool:
        try:
            m = image_files.read_mask(path, self.state.size)
        except DGPError as exc:
            self.show_error(str(exc))
            return False
        return self.state.set_mask(m)

    def _photo_path(self) -> Path | None:
        """The opened photo's file (exports default beside it, named after it)."""
        pic = self.state.picture
        return pic.source if pic is not None and pic.source else None

    def export_mask(self) -> None:
        if not self.state.has_picture:
            return
        src = self._photo_path()
        suggestion = str(src.with_name(f"{src.stem}-mask.png")) if src else "mask.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export mask", suggestion, "PNG (*.png)")
        if path:
            image_files.save_mask(self.state.mask, path)

    # --- models ---------------------------------------------------------------
    def _load_model(self, name: str) -> None:
        if name and not self.state.running:
            self.runs.load_model(name, self.task_panel.settings.device)

    def _task_changed(self, _label: str = "") -> None:
        self.state.set_task(self.task_panel.task_name())  # the engine's region rule
        if self.state.has_picture and (not self.region_user_set or self.state.whole_photo
                                       or self.state.region is None):
            self.state.reset_region()
        self._update_region_note()

    def _on_model_ready(self, info: ModelInfo) -> None:
        if self.manipulate is not None:  # keyframes opened before any run render with it
            self.manipulate.offer_prior(info.prior)
        self.task_panel.set_class_names(info.class_names)
        self.state.set_model_resolution(info.resolution)
        self._task_changed()
        self.statusBar().showMessage(f"Model {info.name}: {info.resolution} px, "
                                     f"{len(info.class_names)} classes, on {info.device}", 5000)

    def show_models(self) -> None:
        """The Models dialog; not modal, so editing goes on during a long download."""
        from .model_dialog import ModelDialog

        if self.model_dialog is None:
            dlg = self.model_dialog = ModelDialog(self)
            dlg.models_changed.connect(self._models_changed)
            dlg.use_model.connect(self.use_model)
            dlg.job_started.connect(self.jobs.add)  # transfers show in the status bar
        else:
            self.model_dialog.refresh()
        self.model_dialog.show()
        self.model_dialog.raise_()
        self.model_dialog.activateWindow()

    def download_model(self, name: str) -> None:
        """Start downloading ``name`` in the Models dialog (progress, Stop, resume)."""
        self.show_models()
        self.model_dialog.download(name)

    def use_model(self, name: str) -> None:
        if self.state.running:
            self.show_error("A run is in progress: change the model when it has finished.")
            return
        if self.task_panel.model.findText(name) < 0:
            self._models_changed()
        self.task_panel.model.setCurrentText(name)

    def show_batch(self) -> None:
        """File → Batch…: a whole folder as a resumable batch job (not modal)."""
        from .batch_dialog import BatchDialog

        if getattr(self, "batch_dialog", None) is None:
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
            self._models_changed()
        if self.task_panel.device.findText(self.settings.device) >= 0:
            self.task_panel.device.setCurrentText(self.settings.device)
        apply_hub_repos(self.settings.hub_repos)
        self._save_settings()

    def _models_changed(self) -> None:
        self.catalog.refresh()
        self.task_panel.set_models(self.catalog.names())
        if self.first_run_hint.isVisible() and not only_bundled_installed():
            self.first_run_hint.setVisible(False)  # a real prior is installed now

    # --- running (the run controller owns the request and its lifecycle) ---------
    def build_request(self) -> RegionRequest:
        return self.runs.build_request()

    def run_task(self) -> bool:
        if self.state.running:
            return False
        try:
            request = self.build_request()
        except DGPError as exc:
            self.show_error(str(exc))
            return False
        self.last_error = ""
        self.run_panel.set_running(True)
        self.runs.start(request)
        return True

    def pause_run(self) -> None:
        self.runs.pause()

    def resume_run(self) -> None:
        self.runs.resume()

    def cancel_run(self) -> None:
        if self.runs.cancel():
            self.run_panel.status.setText("Cancelling…")

    def _running_changed(self, running: bool) -> None:
        self.task_panel.setEnabled(not running)
        self.actions["run"].setEnabled(not running)
        self.actions["pause"].setEnabled(running)
        self.actions["cancel"].setEnabled(running)

    def _on_run_started(self) -> None:
        self.run_panel.status.setText("Running…")

    def _on_progress(self, p: Progress) -> None:
        self.run_panel.show_progress(p)

    def _on_frame(self, rgb: np.ndarray) -> None:
        self.run_panel.show_frame(rgb)
        req = self.runs.request
        if req is not None and req.region is not None and req.task not in NEW_PICTURE:
            rx, ry, side = req.region  # where the run works, even if the frame moved since
            self.canvas.show_preview(rgb, (req.bounds[0] + rx, req.bounds[1] + ry, side))

    def _on_finished(self, result: RegionResult, entry: HistoryEntry | None) -> None:
        self.canvas.hide_preview()
        if entry is None:
            self.run_panel.finish("Finished")
            return
        if self.manipulate is not None and result.prior is not None:
            # candidates are composed into the photo as this run's output was
            self._candidate_base, self._compose = entry, result.compose
            self.manipulate.composite = result.compose
            self.manipulate.set_result(result.prior, result.state, entry.title)
        step = result.state.progress.get("step", 0)
        self.run_panel.finish(
            "Cancelled — the last frame is a result layer you may still apply" if
            result.cancelled else f"Done in {step} iterations: the result is a layer over "
            "the picture — Apply (Ctrl+Shift+Enter) bakes it in, O shows the original")
        if self._closing:
            self.close()

    def _on_failed(self, message: str) -> None:
        self.canvas.hide_preview()
        if self.run_panel.running:
            self.run_panel.finish("Stopped")
        self.show_error(message)
        if self._closing:
            self.close()

    def _on_warning(self, message: str) -> None:
        log.warning(message)
        self.statusBar().showMessage(message, 8000)

    def show_error(self, message: str) -> None:
        """Readable message in the run panel and status bar, full text in the log."""
        self.last_error = message
        log.warning(message)
        self.run_panel.status.setText(f"<span style='color:#e55'>{message}</span>")
        self.statusBar().showMessage(message, 10000)

    # --- dialogs and closing --------------------------------------------------
    def _confirm_dialog(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes

    def _ask_save_dialog(self, title: str, text: str) -> str:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setInformativeText("Discarded work stays in the autosave until your next save, "
                               "so it can still be recovered.")
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(
                    QMessageBox.StandardButton(answer), "cancel")

    def _resolve_unsaved(self, title: str, text: str) -> bool:
        """Save / Discard / Cancel for unsaved work; True when it is fine to go on.
        Discard keeps the work in the autosave (recoverable) until the next clean save."""
        if not (self.state.has_picture and self.state.dirty):
            return True
        answer = self.ask_save(title, text)
        if answer == "save":
            return self.save()
        if answer == "discard":
            self._keep_autosave()
            return True
        return False

    def _keep_autosave(self) -> None:
        """Write the discarded work to the autosave and keep that file; the next
        autosaves go to a new one."""
        from dgp_engine.files.project import Autosaver

        out = self.autosave(force=True)
        path = out if out is not None else self.autosaver.path
        if path.is_file():
            self._kept_autosaves.append(path)
        session = time.strftime("untitled-%Y%m%d-%H%M%S") + f"-{len(self._kept_autosaves)}"
        self.autosaver = Autosaver(None, interval_s=60, session=session)

    def _clean_save_done(self) -> None:
        """After a save: the autosave and any kept discarded work are no longer needed."""
        self.autosaver.discard()
        for path in self._kept_autosaves:
            path.unlink(missing_ok=True)
        self._kept_autosaves.clear()

    def _may_discard(self) -> bool:
        if self.state.running:
            self.show_error("A run is in progress: cancel it (Esc) before opening another "
                            "picture.")
            return False
        return self._resolve_unsaved(
            "Save changes?", "The picture has unsaved changes. Save them before opening "
                             "another?")

    def show_help(self) -> None:
        HelpSheet(self).open()

    def closeEvent(self, event) -> None:
        if self.state.running:
            if not self._closing and not self.confirm(
                    "Stop the run?", "A reconstruction is running. Cancel it and quit?"):
                event.ignore()
                return
            self._closing = True
            self.runs.cancel()
            event.ignore()  # closes again when the worker reports back
            return
        if not self._resolve_unsaved("Save changes?", "The picture has unsaved changes. "
                                                      "Save them before quitting?"):
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the worker thread and save settings (idempotent)."""
        if self.manipulate is not None:
            self.manipulate.shutdown()
        if self.model_dialog is not None:
            self.model_dialog.stop()  # the engine leaves nothing half-installed
        if getattr(self, "batch_dialog", None) is not None:
            self.batch_dialog.stop_and_wait()  # pictures back to pending, journal intact
        self.runs.stop()
        detach(self.log_bridge)
        self.autosave_timer.stop()
        if not self._shut_down and not self.state.dirty:
            # closed with nothing unsaved: the autosave is no longer needed (work the user
            # discarded stays recoverable until the next clean save)
            self.autosaver.discard()
        self._shut_down = True
        self._save_settings()
        QSettings("dgp-studio", "dgp-studio").setValue("geometry", self.saveGeometry())

    def _save_settings(self) -> None:
        try:
            self.settings.device = self.task_panel.device.currentText()
            self.settings.save()
        except OSError as exc:
            log.warning("Could not save settings: %s", exc)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not getattr(self, "_docks_sized", False):
            self._docks_sized = True  # history/manipulate/log tabs: a quarter of the height
            self.resizeDocks([self.history_dock], [max(180, self.height() // 4)],
                             Qt.Orientation.Vertical)

    def _restore_geometry(self) -> None:
        g = QSettings("dgp-studio", "dgp-studio").value("geometry")
        if g is not None:
            try:
                self.restoreGeometry(g)
                return
            except TypeError:
                pass
        self.resize(1280, 800)

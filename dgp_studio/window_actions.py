"""The main window's actions, menus and toolbars: what each command is called, its
shortcut (from :mod:`.shortcuts`), what it does and where it shows.

:func:`build_actions` makes the window's actions (its slots, its document's and its
canvas's), :func:`build_menus` the menu bar; :class:`MaskToolBar` and
:class:`ResultToolBar` own their controls and keep them in step with the canvas and
the app state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolBar,
    QToolButton,
    QWidget,
)

from .canvas import Canvas
from .help_dialogs import show_about, show_guide
from .model.state import AppState
from .settings import Settings
from .shortcuts import key

if TYPE_CHECKING:
    from .main_window import MainWindow

TOOLS = (
    ("brush", "&Brush"),
    ("eraser", "&Eraser"),
    ("rect", "&Rectangle"),
    ("lasso", "&Lasso"),
    ("frame", "Working &region"),
    ("face", "&Face points"),
)


def _action(
    window: MainWindow,
    actions: dict[str, QAction],
    ident: str,
    text: str,
    slot: Callable[..., object],
    shortcut: bool = True,
) -> QAction:
    a = QAction(text, window)
    if shortcut:
        a.setShortcut(key(ident))
    a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    a.triggered.connect(slot)
    window.addAction(a)
    actions[ident] = a
    return a


def build_actions(window: MainWindow) -> dict[str, QAction]:
    """Every command of the window as a QAction (shortcuts work in the whole window).
    Parts the window makes after its actions (runs, models) are looked up when used."""
    st, c, doc = window.state, window.canvas, window.document
    actions: dict[str, QAction] = {}

    def add(ident: str, text: str, slot: Callable[..., object], shortcut: bool = True) -> QAction:
        return _action(window, actions, ident, text, slot, shortcut)

    add("open", "&Open…", doc.open_dialog)
    add("paste", "&Paste picture", doc.paste)
    add("save", "&Save", doc.save)
    add("save_as", "Save / Export &as…", doc.save_as)
    add("open_project", "Open Pro&ject…", doc.open_project_dialog)
    add("save_project", "Save Pro&ject…", doc.save_project_dialog)
    add("quit", "&Quit", window.close)
    add("import_mask", "&Import mask…", doc.import_mask, shortcut=False)
    add("export_mask", "&Export mask…", doc.export_mask, shortcut=False)
    undo = st.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcut(key("undo"))
    redo = st.undo_stack.createRedoAction(window, "&Redo")
    redo.setShortcuts([key("redo"), QKeySequence("Ctrl+Y")])
    window.addAction(undo)
    window.addAction(redo)
    actions["undo"], actions["redo"] = undo, redo
    add("fill_mask", "&Fill mask", st.fill_mask)
    add("clear_mask", "&Clear mask", st.clear_mask)
    add("invert_mask", "&Invert mask", st.invert_mask)
    add("reset_region", "Working region around the &mask", window.reset_region)
    for tool, label in TOOLS:
        add(tool, label, lambda _=False, t=tool: window.set_tool(t)).setCheckable(True)
    add("clear_face", "Clear face &points", st.clear_face_points)
    add("smaller", "Smaller brush", lambda: c.grow_brush(1 / 1.2))
    add("bigger", "Bigger brush", lambda: c.grow_brush(1.2))
    add("softer", "Softer brush", lambda: c.set_brush(hardness=c.brush_hardness - 0.1))
    add("harder", "Harder brush", lambda: c.set_brush(hardness=c.brush_hardness + 0.1))
    tm = add("toggle_mask", "Show &mask", window.show_mask)
    tm.setCheckable(True)
    tm.setChecked(True)
    add("zoom_in", "Zoom &in", lambda: c.zoom_by(1.25))
    add("zoom_out", "Zoom &out", lambda: c.zoom_by(0.8))
    add("fit", "&Fit to window", c.fit)
    add("actual", "&Actual size", c.actual_size)
    run = add("run", "&Run", lambda: window.run_task())
    run.setShortcuts([key("run"), QKeySequence("Ctrl+Enter")])
    run.setToolTip("Run the task (Ctrl+Enter)")
    add("apply_result", "&Apply result to picture", window.apply_layer)
    orig = add("show_original", "Show &original", st.set_show_original)
    orig.setCheckable(True)
    orig.setToolTip("Hide the result layer to see the picture under it (O)")
    split = add("split_view", "&Split before | after", window.set_split_view)
    split.setCheckable(True)
    split.setToolTip(
        "Before on the left of the line, the result on the right; drag "
        "the line on the canvas (Shift+O)"
    )
    add("pause", "&Pause / resume", window.run_panel.pause_button.click)
    # Esc asks first once a run has gone on a while (window.run_view.cancel_from_key); the
    # menu entry and the toolbar button are deliberate and cancel at once
    cancel = add("cancel", "&Cancel\tEsc", lambda: window.cancel_run(), shortcut=False)
    cancel.setIconText("Cancel")
    QShortcut(
        key("cancel"),
        window,
        lambda: window.run_view.cancel_from_key(),
        context=Qt.ShortcutContext.WindowShortcut,
    )
    add("guide", "&Guide", lambda: show_guide(window), shortcut=False)
    add("help", "&Keyboard shortcuts", window.show_help)
    add("about", "&About DGP Studio", lambda: show_about(window), shortcut=False)
    add("models", "&Download or import…", lambda: window.show_models(), shortcut=False)
    add("preferences", "&Settings…", window.show_settings)
    return actions


def build_menus(
    window: MainWindow, actions: dict[str, QAction], docks: Iterable[QDockWidget]
) -> QMenu:
    """The menu bar; returns File → Open recent (the window fills it)."""
    a = actions
    mb = window.menuBar()

    def fill(menu: QMenu, keys: Iterable[str | None]) -> None:
        for k in keys:
            menu.addSeparator() if k is None else menu.addAction(a[k])

    f = mb.addMenu("&File")
    f.addAction(a["open"])
    recent = f.addMenu("Open &recent")
    fill(
        f,
        (
            "paste",
            "save",
            "save_as",
            None,
            "open_project",
            "save_project",
            None,
            "import_mask",
            "export_mask",
            None,
        ),
    )
    f.addAction("&Batch…", window.show_batch)
    fill(f, (None, "quit"))
    e = mb.addMenu("&Edit")
    fill(e, ("undo", "redo", None, "fill_mask", "clear_mask", "invert_mask", None, "reset_region"))
    t = mb.addMenu("&Tools")
    fill(
        t,
        (
            "brush",
            "eraser",
            "rect",
            "lasso",
            "frame",
            "face",
            "clear_face",
            None,
            "smaller",
            "bigger",
            "softer",
            "harder",
        ),
    )
    v = mb.addMenu("&View")
    fill(
        v,
        (
            "zoom_in",
            "zoom_out",
            "fit",
            "actual",
            None,
            "toggle_mask",
            "show_original",
            "split_view",
        ),
    )
    for dock in docks:
        v.addAction(dock.toggleViewAction())
    fill(mb.addMenu("&Run"), ("run", "pause", "cancel", "apply_result"))
    fill(e, (None, "preferences"))
    fill(mb.addMenu("&Models"), ("models",))
    fill(mb.addMenu("&Help"), ("guide", "help", None, "about"))
    return recent


def fill_recent(menu: QMenu, files: list[str], open_path: Callable[[str], object]) -> None:
    """File → Open recent: one entry per file, newest first."""
    menu.clear()
    for f in files:
        menu.addAction(f).triggered.connect(lambda _=False, p=f: open_path(p))
    menu.setEnabled(bool(files))


def slider(name: str, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(0, 100)
    s.setValue(value)
    s.setFixedWidth(90)
    s.setAccessibleName(name)
    return s


def labelled(label: str, widget: QWidget) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(4, 0, 4, 0)
    lay.addWidget(QLabel(label))
    lay.addWidget(widget)
    box.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
    return box


def tool_button(action: QAction, name: str, text: str | None = None) -> QToolButton:
    btn = QToolButton()
    btn.setDefaultAction(action)
    if text is not None:
        btn.setText(text)
    btn.setAccessibleName(name)
    return btn


class MaskToolBar(QToolBar):
    """The mask tools, brush size and hardness, the mask's opacity and the whole-mask
    edits; the controls follow the canvas's brush (keys [ ] change it too)."""

    def __init__(
        self,
        actions: dict[str, QAction],
        canvas: Canvas,
        settings: Settings,
        parent: QWidget | None = None,
    ):
        super().__init__("Mask tools", parent)
        self.actions_, self.canvas, self.settings = actions, canvas, settings
        self.setObjectName("mask-tools")
        self.setAccessibleName("Mask tools")
        for k, _label in TOOLS:
            self.addWidget(tool_button(actions[k], actions[k].text().replace("&", "")))
        self.addSeparator()
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, 1000)
        self.size_spin.setValue(canvas.brush_size)
        self.size_spin.setAccessibleName("Brush size")
        self.size_spin.setToolTip("Brush size ([ and ])")
        self.size_spin.valueChanged.connect(lambda v: canvas.set_brush(size=v))
        self.hard_slider = slider("Brush hardness", int(canvas.brush_hardness * 100))
        self.hard_slider.valueChanged.connect(lambda v: canvas.set_brush(hardness=v / 100))
        self.opacity_slider = slider("Mask opacity", int(settings.mask_opacity * 100))
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        for label, w in (
            ("Size", self.size_spin),
            ("Hardness", self.hard_slider),
            ("Mask opacity", self.opacity_slider),
        ):
            self.addWidget(labelled(label, w))
        for k in ("fill_mask", "clear_mask", "invert_mask"):
            self.addAction(actions[k])
        canvas.brush_changed.connect(self._brush_changed)

    def _brush_changed(self, size: int, hardness: float) -> None:
        for w, v in ((self.size_spin, size), (self.hard_slider, int(round(hardness * 100)))):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        self.settings.brush_size, self.settings.brush_hardness = size, hardness

    def _opacity_changed(self, v: int) -> None:
        self.settings.mask_opacity = v / 100
        if self.actions_["toggle_mask"].isChecked():
            self.canvas.set_mask_opacity(v / 100)


class ResultToolBar(QToolBar):
    """Run, the primary action, always in sight; then the result layer: its name and
    opacity, the original under it, the split view and Apply."""

    def __init__(
        self,
        actions: dict[str, QAction],
        state: AppState,
        canvas: Canvas,
        parent: QWidget | None = None,
    ):
        super().__init__("Run and result", parent)
        self.actions_, self.state, self.canvas = actions, state, canvas
        self.setObjectName("run-result")
        self.setAccessibleName("Run and result")
        self.run_tool = tool_button(actions["run"], "Run task", "▶ Run")
        self.run_tool.setStyleSheet("QToolButton { font-weight: bold; padding: 2px 10px; }")
        self.addWidget(self.run_tool)
        self.cancel_tool = tool_button(actions["cancel"], "Cancel the run")
        self.addWidget(self.cancel_tool)
        self.addSeparator()
        self.result_label = QLabel("No result")
        self.result_label.setAccessibleName("Result layer")
        self.result_label.setContentsMargins(4, 0, 4, 0)
        self.addWidget(self.result_label)
        self.layer_opacity = slider("Result opacity", 100)
        self.layer_opacity.setToolTip("Opacity of the result over the picture")
        self.layer_opacity.valueChanged.connect(lambda v: state.set_layer_opacity(v / 100))
        self.addWidget(labelled("Opacity", self.layer_opacity))
        for k, name in (
            ("show_original", "Show original"),
            ("split_view", "Split view"),
            ("apply_result", "Apply result to picture"),
        ):
            text = actions[k].text().replace("&", "").replace(" result to picture", "")
            self.addWidget(tool_button(actions[k], name, text))
        state.layer_changed.connect(self.layer_changed)
        self.layer_changed()

    def layer_changed(self) -> None:
        """The result layer's controls follow the layer (none: disabled)."""
        a, e = self.actions_, self.state.layer
        on = e is not None
        for k in ("apply_result", "show_original", "split_view"):
            a[k].setEnabled(on)
        self.layer_opacity.setEnabled(on)
        a["show_original"].setChecked(on and self.state.show_original)
        if not on and a["split_view"].isChecked():
            a["split_view"].setChecked(False)
            self.canvas.set_split_mode(False)
        self.layer_opacity.blockSignals(True)
        self.layer_opacity.setValue(int(round(self.state.layer_opacity * 100)))
        self.layer_opacity.blockSignals(False)
        self.result_label.setText(f"Result: {e.title}" if e is not None else "No result")

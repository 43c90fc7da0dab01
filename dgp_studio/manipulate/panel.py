"""The Manipulate panel: jitter variations, category transfer and the morph timeline
for the current reconstruction result, plus animation export.

Self-contained: give it a result with :meth:`ManipulatePanel.set_result`, add morph
keyframes with :meth:`add_keyframe`, and listen to :attr:`adopted` for a state the
user chose to keep.  All rendering runs in the panel's own render thread
(:class:`~.render_worker.RenderThread`), started on first use; call
:meth:`shutdown` before the application quits (``install_manipulate_panel`` wires
that to the main window's close and the application's ``aboutToQuit``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QMainWindow, QPushButton, QSlider, QSpinBox, QTabWidget,
                               QVBoxLayout, QWidget)

from dgp_engine import Prior
from dgp_engine.animation import ExportProgress
from dgp_engine.manipulate import MorphTimeline
from dgp_engine.state import ReconstructionState

from .export_dialog import ExportDialog, ExportSettings
from .render_worker import (LAYERS, Adopt, ExportAnimation, JobEnded, LoadState, RenderedFrame,
                            RenderJitter, RenderMorphAt, RenderMorphTimeline, RenderResult,
                            RenderThread, RenderTransfer)
from .timeline import MorphTimelineWidget
from .widgets import ImageView, VariationGrid

log = logging.getLogger(__name__)

SIGMA_STEPS = 100     # slider units per 1.0 of σ
AMOUNT_STEPS = 100    # slider units for a full category transfer


class ManipulatePanel(QWidget):
    """Jitter, category and morph controls for one reconstruction result."""

    adopted = Signal(ReconstructionState, str)  # the adopted state, a short description
    message = Signal(str)              # status/error text (also shown in the panel)
    job_added = Signal(object)         # a long render (export, morph) as a jobs.Job

    def __init__(self, parent: QWidget | None = None, *, variations: int = 8,
                 threads: int | None = None):
        super().__init__(parent)
        self.setAccessibleName("Manipulate panel")
        self.threads = threads
        self.engine: RenderThread | None = None
        self.prior: Prior | None = None
        self.state = None
        self.result_name = "result"
        self._gen: dict[str, int] = {}           # latest generation per channel
        self.last_frame: dict[str, RenderedFrame] = {}
        self.variation_params: dict[int, dict] = {}
        self.export_dialog: ExportDialog | None = None
        # the opened photo's file (the main window sets it): exports default beside it
        self.photo_path: Callable[[], Path | None] = lambda: None
        self._export_named_for: Path | None = None

        self.preview = ImageView(self, minimum=160)
        self.preview.setAccessibleName("Manipulation preview")
        self.status = QLabel("No result yet: run a task, then play with it here.")
        self.status.setWordWrap(True)

        # --- jitter ---------------------------------------------------------------------
        self.sigma = QSlider(Qt.Orientation.Horizontal)
        self.sigma.setRange(0, 2 * SIGMA_STEPS)
        self.sigma.setValue(SIGMA_STEPS // 2)
        self.sigma.setAccessibleName("Jitter sigma")
        self.sigma_label = QLabel()
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.new_seed = QPushButton("New seed")
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(variations)
        self.layers = QComboBox()
        self.layers.setAccessibleName("Jittered layers")
        for key, title in LAYERS.items():
            self.layers.addItem(title, key)
        self._jitter_request: dict | None = None   # σ, seed, layers of the grid shown
        self.grid = VariationGrid(self)
        self.grid.chosen.connect(self.adopt_variation)
        self.sigma.valueChanged.connect(self._jitter_changed)
        self.seed.valueChanged.connect(self._jitter_changed)
        self.count.valueChanged.connect(self._jitter_changed)
        self.layers.currentIndexChanged.connect(self._jitter_changed)
        self.new_seed.clicked.connect(lambda: self.seed.setValue(self.seed.value() + 1))
        jitter = QWidget()
        form = QFormLayout(jitter)
        srow = QHBoxLayout()
        srow.addWidget(self.sigma, 1)
        srow.addWidget(self.sigma_label)
        form.addRow("σ", srow)
        seedrow = QHBoxLayout()
        seedrow.addWidget(self.seed, 1)
        seedrow.addWidget(self.new_seed)
        form.addRow("Seed", seedrow)
        form.addRow("Layers", self.layers)
        form.addRow("Variations", self.count)
        form.addRow(self.grid)

        # --- category ---------------------------------------------------------------------
        self.category = QComboBox()
        self.category.setAccessibleName("Category")
        self.category.setEditable(True)
        self.category.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.category_slider = QSlider(Qt.Orientation.Horizontal)
        self.category_slider.setAccessibleName("Category slider")
        self.amount = QSlider(Qt.Orientation.Horizontal)
        self.amount.setRange(0, AMOUNT_STEPS)
        self.amount.setValue(AMOUNT_STEPS)
        self.amount.setAccessibleName("Transfer amount")
        self.amount_label = QLabel()
        self.adopt_category = QPushButton("Use this category")
        self.category.currentIndexChanged.connect(self._category_picked)
        self.category_slider.valueChanged.connect(self._category_slid)
        self.amount.valueChanged.connect(self._transfer_changed)
        self.adopt_category.clicked.connect(self.adopt_transfer)
        category = QWidget()
        cform = QFormLayout(category)
        cform.addRow("Class", self.category)
        cform.addRow("", self.category_slider)
        arow = QHBoxLayout()
        arow.addWidget(self.amount, 1)
        arow.addWidget(self.amount_label)
        cform.addRow("Amount", arow)
        cform.addRow(self.adopt_category)
        self.latency = QLabel()
        cform.addRow(self.latency)

        # --- morph ------------------------------------------------------------------------
        self.timeline = MorphTimelineWidget(self)
        self.timeline.scrub_requested.connect(self._scrub)
        self.timeline.render_requested.connect(self._render_timeline)
        self.timeline.frame_shown.connect(self.preview.set_image)
        self.timeline.add_current_requested.connect(self._add_current_keyframe)
        self.timeline.add_file_requested.connect(self._browse_keyframe)
        self.timeline.adopt_requested.connect(self.adopt_morph)
        self.timeline.keyframes_changed.connect(self._keyframes_changed)
        self.timeline.invalidated.connect(self._timeline_invalidated)
        self.export_button = QPushButton("Export animation…")
        self.export_button.clicked.connect(self.show_export_dialog)
        morph = QWidget()
        mlay = QVBoxLayout(morph)
        mlay.addWidget(self.timeline)
        mlay.addWidget(self.export_button)

        self.tabs = QTabWidget()
        self.tabs.addTab(jitter, "Jitter")
        self.tabs.addTab(category, "Category")
        self.tabs.addTab(morph, "Morph")
        self.tabs.currentChanged.connect(self._tab_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.tabs)
        layout.addWidget(self.status)
        self._update_labels()
        self._set_enabled(False)

    # --- public API ---------------------------------------------------------------------
    def set_result(self, prior: Prior, state: ReconstructionState,
                   name: str = "result") -> None:
        """Manipulate this reconstruction state (rendered with ``prior``); re-renders the
        variations and the category preview for it."""
        same_model = prior is self.prior
        self.prior, self.state, self.result_name = prior, state, name
        if not same_model:
            names = list(getattr(prior, "class_names", []) or [])
            n = int(prior.config.n_classes)
            names = [names[i] if i < len(names) else f"class {i}" for i in range(n)]
            for w in (self.category, self.category_slider):
                w.blockSignals(True)
            self.category.clear()
            self.category.addItems([f"{i}: {names[i]}" for i in range(n)])
            self.category_slider.setRange(0, n - 1)
            for w in (self.category, self.category_slider):
                w.blockSignals(False)
        cid = int(getattr(state, "class_id", 0))
        self._set_category(cid)
        self._set_enabled(True)
        self._submit(RenderResult(prior, state))
        self._jitter_changed()
        self.status.setText(f"Manipulating {name}.")

    def add_keyframe(self, state, name: str = "", prior=None) -> None:
        """Add a morph keyframe (a restored result or a loaded state)."""
        if prior is not None and self.prior is None:
            self.prior = prior
        self.timeline.add_keyframe(state, name)

    def offer_prior(self, prior: Prior | None) -> None:
        """The app loaded a model: keyframes opened before any run render with it (a
        model already set by a result stays)."""
        if prior is not None and self.prior is None:
            self.prior = prior
            self._keyframes_changed()

    def add_keyframe_file(self, path: str | Path, name: str = "") -> None:
        """Load a saved .dgp state (in the render thread) and add it as a keyframe."""
        self._submit(LoadState(str(path), name))

    def shutdown(self) -> None:
        """Stop playback and the render thread (waits for it)."""
        self.timeline.pause()
        if self.engine is not None:
            self.engine.stop()
            self.engine = None

    # --- plumbing -----------------------------------------------------------------------
    def _engine(self) -> RenderThread:
        if self.engine is None:
            self.engine = RenderThread(self.threads, parent=self)
            w = self.engine
            w.frame.connect(self._on_frame)
            w.job_ended.connect(self._on_job_ended)
            w.failed.connect(self._on_failed)
            w.state_ready.connect(self._on_state_ready)
            w.export_progress.connect(self._on_export_progress)
            w.export_finished.connect(self._on_export_finished)
            w.export_failed.connect(self._on_export_failed)
            w.job_added.connect(self.job_added)
        return self.engine

    def _submit(self, request) -> int:
        gen = self._engine().submit(request)
        self._gen[request.channel] = gen
        return gen

    def _current(self, channel: str, generation: int) -> bool:
        return self._gen.get(channel) == generation

    def _set_enabled(self, on: bool) -> None:
        for w in (self.sigma, self.seed, self.new_seed, self.count, self.layers, self.category,
                  self.category_slider, self.amount, self.adopt_category):
            w.setEnabled(on)

    def _update_labels(self) -> None:
        self.sigma_label.setText(f"{self.sigma_value:.2f}")
        self.amount_label.setText(f"{self.amount.value()}%")

    @property
    def sigma_value(self) -> float:
        return self.sigma.value() / SIGMA_STEPS

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.message.emit(text)

    # --- jitter -------------------------------------------------------------------------
    def _jitter_changed(self, *_) -> None:
        self._update_labels()
        if self.state is None:
            return
        n = self.count.value()
        self.grid.reset(n)
        self.variation_params.clear()
        self._jitter_request = {"sigma": self.sigma_value, "seed": self.seed.value(),
                                "layers": self.layers.currentData()}
        self._submit(RenderJitter(self.prior, self.state, n, **self._jitter_request))

    @Slot(int)
    def adopt_variation(self, index: int) -> None:
        """Make variation ``index`` of the grid shown the current result."""
        if index not in self.variation_params or self.state is None:
            return
        self._submit(Adopt(self.prior, "jitter", {"variation": index, **self._jitter_request},
                           state=self.state))

    # --- category -----------------------------------------------------------------------
    def _set_category(self, cid: int) -> None:
        for w in (self.category, self.category_slider):
            w.blockSignals(True)
        self.category.setCurrentIndex(cid)
        self.category_slider.setValue(cid)
        for w in (self.category, self.category_slider):
            w.blockSignals(False)

    def _category_picked(self, index: int) -> None:
        if index < 0:
            return
        self.category_slider.blockSignals(True)
        self.category_slider.setValue(index)
        self.category_slider.blockSignals(False)
        self._transfer_changed()

    def _category_slid(self, value: int) -> None:
        self.category.blockSignals(True)
        self.category.setCurrentIndex(value)
        self.category.blockSignals(False)
        self._transfer_changed()

    def transfer_target(self) -> tuple[int, float]:
        return self.category_slider.value(), self.amount.value() / AMOUNT_STEPS

    def _transfer_changed(self, *_) -> None:
        self._update_labels()
        if self.state is None:
            return
        target, amount = self.transfer_target()
        self._submit(RenderTransfer(self.prior, self.state, target, amount))

    @Slot()
    def adopt_transfer(self) -> None:
        if self.state is None:
            return
        target, amount = self.transfer_target()
        self._submit(Adopt(self.prior, "transfer", {"target": target, "amount": amount},
                           state=self.state))

    # --- morph --------------------------------------------------------------------------
    def _morph_inputs(self):
        return self.timeline.keyframes(), self.timeline.names()

    def _keyframes_changed(self) -> None:
        n = len(self.timeline.keyframes())
        self.export_button.setEnabled(n >= 2 or self.state is not None)
        if n >= 2 and self.prior is not None:
            self._scrub(self.timeline.position)

    def _timeline_invalidated(self) -> None:
        if self.engine is not None:
            self.engine.cancel("play")  # its frames are for the old settings

    def _scrub(self, t: float) -> None:
        keyframes, names = self._morph_inputs()
        if len(keyframes) < 2 or self.prior is None:
            return
        self._submit(RenderMorphAt(self.prior, keyframes, names,
                                   self.timeline.easing.currentText(), t))

    def _render_timeline(self, timeline: MorphTimeline) -> None:
        keyframes, names = self._morph_inputs()
        if len(keyframes) < 2 or self.prior is None:
            self.timeline.render_finished()
            return
        self._submit(RenderMorphTimeline(self.prior, keyframes, names, timeline))

    def _add_current_keyframe(self) -> None:
        if self.state is None:
            self._say("There is no result to add: run a task first.")
            return
        self.timeline.add_keyframe(self.state, self.result_name)

    def _browse_keyframe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a saved state as keyframe", "",
                                              "DGP states (*.dgp);;All files (*)")
        if path:
            self.add_keyframe_file(path)

    @Slot(float)
    def adopt_morph(self, t: float) -> None:
        keyframes, names = self._morph_inputs()
        if len(keyframes) < 2 or self.prior is None:
            return
        self._submit(Adopt(self.prior, "morph", {"t": t}, keyframes=keyframes, names=names,
                           easing=self.timeline.easing.currentText()))

    def _tab_changed(self, index: int) -> None:
        # the preview shows what the visible tab renders
        channel = {0: "result", 1: "transfer", 2: "scrub"}.get(index)
        frame = self.last_frame.get(channel or "")
        if frame is not None:
            self.preview.set_image(frame.image)

    # --- export -------------------------------------------------------------------------
    def show_export_dialog(self) -> ExportDialog:
        if self.export_dialog is None:
            self.export_dialog = ExportDialog(self)
            self.export_dialog.export_button.clicked.connect(
                lambda: self.start_export(self.export_dialog.settings()))
            self.export_dialog.cancel_button.clicked.connect(self.cancel_export)
        photo = self.photo_path()
        if photo is not None and photo != self._export_named_for:
            # beside the opened photo, named after it (once per photo: an edit stays)
            self.export_dialog.suggest_beside(photo)
            self._export_named_for = photo
        self.export_dialog.show()
        return self.export_dialog

    def start_export(self, settings: ExportSettings) -> bool:
        dialog = self.export_dialog or self.show_export_dialog()
        timeline = self.timeline.timeline()
        keyframes, names = self._morph_inputs()
        if settings.source == "morph" and (len(keyframes) < 2 or self.prior is None):
            dialog.failed("Add at least two keyframes to export a morph.", False)
            return False
        if settings.source == "walk" and self.state is None:
            dialog.failed("There is no result to jitter: run a task first.", False)
            return False
        if not settings.path:
            dialog.failed("Choose a file to export to.", False)
            return False
        total = timeline.frame_count if settings.source == "morph" else timeline.frames
        self._submit(ExportAnimation(self.prior, settings.path, settings.source, keyframes,
                                     names, timeline, self.state, self.sigma_value,
                                     self.seed.value(), settings.format, settings.scale,
                                     settings.size))
        dialog.started(total)
        return True

    @Slot()
    def cancel_export(self) -> None:
        if self.engine is not None:
            self.engine.cancel("export")

    # --- replies from the render thread -----------------------------------------------
    @Slot(RenderedFrame)
    def _on_frame(self, f: RenderedFrame) -> None:
        if not self._current(f.channel, f.generation):
            return
        self.last_frame[f.channel] = f
        if f.channel == "result":
            if self.tabs.currentIndex() == 0:
                self.preview.set_image(f.image)
        elif f.channel == "jitter":
            self.variation_params[f.index] = f.params
            req = self._jitter_request or {}
            self.grid.set_image(f.index, f.image,
                                f"Variation {f.index + 1} (σ {req.get('sigma', 0):.2f}, "
                                f"seed {req.get('seed')}): click to use it")
        elif f.channel == "transfer":
            self.preview.set_image(f.image)
            self.latency.setText(f"{f.elapsed * 1000:.0f} ms per frame")
        elif f.channel == "scrub":
            self.timeline.show_scrub_frame(f.image)
        elif f.channel == "play":
            self.timeline.add_frame(f.index, f.image)

    @Slot(JobEnded)
    def _on_job_ended(self, end: JobEnded) -> None:
        if end.channel == "play" and self._current("play", end.generation):
            self.timeline.render_finished()

    @Slot(str, str)
    def _on_failed(self, channel: str, message: str) -> None:
        if channel == "play":
            self.timeline.render_finished()
            self.timeline.pause()
        self._say(message)

    @Slot(str, ReconstructionState, object)
    def _on_state_ready(self, channel: str, state: ReconstructionState, info: dict) -> None:
        if channel == "load":
            self.timeline.add_keyframe(state, info.get("name", ""))
            self._say(f"Added keyframe {info.get('name', '')}.")
            return
        note = info.get("note", "")
        self._say(f"Adopted {note}.")
        self.adopted.emit(state, note)
        if self.prior is not None:
            self.set_result(self.prior, state, note or self.result_name)

    @Slot(ExportProgress)
    def _on_export_progress(self, report: ExportProgress) -> None:
        if self.export_dialog is not None:
            self.export_dialog.report(report.done, report.total, report.elapsed)

    @Slot(str)
    def _on_export_finished(self, path: str) -> None:
        self._say(f"Exported {path}.")
        if self.export_dialog is not None:
            self.export_dialog.finished_ok(path)

    @Slot(str, bool)
    def _on_export_failed(self, message: str, cancelled: bool) -> None:
        self._say("Export cancelled: nothing was written." if cancelled else message)
        if self.export_dialog is not None:
            self.export_dialog.failed(message, cancelled)


class _ShutdownOnClose(QObject):
    def __init__(self, panel: ManipulatePanel, parent: QObject):
        super().__init__(parent)
        self.panel = panel

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 — Qt override
        if event.type() == QEvent.Type.Close:
            self.panel.shutdown()
        return False


def install_manipulate_panel(main_window: QMainWindow, *,
                             area=Qt.DockWidgetArea.RightDockWidgetArea,
                             **kwargs) -> ManipulatePanel:
    """Add a Manipulate panel as a dock of ``main_window``; its render thread stops when
    the window closes or the application quits."""
    panel = ManipulatePanel(**kwargs)
    dock = QDockWidget("Manipulate", main_window)
    dock.setObjectName("dock-Manipulate")
    dock.setAccessibleName("Manipulate panel")
    dock.setWidget(panel)
    main_window.addDockWidget(area, dock)
    panel.dock = dock  # type: ignore[attr-defined]
    main_window.installEventFilter(_ShutdownOnClose(panel, main_window))
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(panel.shutdown)
    return panel

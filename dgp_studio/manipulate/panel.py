"""The Manipulate panel: jitter variations, category transfer and the morph timeline
for the current reconstruction result, plus animation export.

Self-contained: give it a result with :meth:`ManipulatePanel.set_result`, add morph
keyframes with :meth:`add_keyframe`, and listen to :attr:`adopted` for a state the
user chose to keep.  Candidates (a jitter variation, a category, a morph position) are
shown composited into the photo when the owner sets :attr:`ManipulatePanel.composite`;
clicking a variation only selects it (:attr:`candidate_shown`); "Apply to picture"
(:attr:`apply_requested`), "Add as keyframe" and "Back to the original result" act on
the candidate of the visible tab.  All rendering runs in the panel's own render thread
(:class:`~.render_worker.RenderThread`), started on first use; call
:meth:`shutdown` before the application quits (``install_manipulate_panel`` wires
that to the main window's close and the application's ``aboutToQuit``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dgp_engine import Prior
from dgp_engine.files.animation import ExportProgress
from dgp_engine.method.manipulate import MorphTimeline
from dgp_engine.method.state import ReconstructionState

from .export_dialog import ExportDialog, ExportSettings
from .export_plan import ExportPlan, PictureSource, plan_export
from .render_worker import (
    LAYERS,
    Adopt,
    ExportAnimation,
    JobEnded,
    LoadState,
    RenderedFrame,
    RenderJitter,
    RenderMorphAt,
    RenderMorphTimeline,
    RenderResult,
    RenderThread,
    RenderThumbnail,
    RenderTransfer,
    Request,
)
from .timeline import MorphTimelineWidget
from .widgets import ImageView, VariationGrid

log = logging.getLogger(__name__)

SIGMA_STEPS = 100  # slider units per 1.0 of σ
# Render channels whose frames are shown in the photo (composed by the render thread);
# timeline playback and exports keep the model's raw frames.
INTERACTIVE = ("result", "jitter", "transfer", "scrub")
AMOUNT_STEPS = 100  # slider units for a full category transfer


class ManipulatePanel(QWidget):
    """Jitter, category and morph controls for one reconstruction result."""

    dock: QDockWidget  # the dock it is shown in (set by install_manipulate_panel)
    adopted = Signal(ReconstructionState, str)  # the adopted state, a short description
    # a candidate to show over the picture: its model output (uint8) and a description
    candidate_shown = Signal(np.ndarray, str)
    # "Apply to picture": the candidate's state, description and model output (uint8)
    apply_requested = Signal(ReconstructionState, str, np.ndarray)
    back_requested = Signal()  # "Back to the original result"
    message = Signal(str)  # status/error text (also shown in the panel)
    job_added = Signal(object)  # a long render (export, morph) as a jobs.Job

    def __init__(
        self, parent: QWidget | None = None, *, variations: int = 8, threads: int | None = None
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName("Manipulate panel")
        self.threads = threads
        self.engine: RenderThread | None = None
        self.prior: Prior | None = None
        self.state: ReconstructionState | None = None
        self.result_name = "result"
        self._gen: dict[str, int] = {}  # latest generation per channel
        self.model_note = ""  # the last warning about states of other weights (said once)
        self.last_frame: dict[str, RenderedFrame] = {}
        self.variation_params: dict[int, dict[str, Any]] = {}
        self.variation_frames: dict[int, np.ndarray] = {}  # raw model outputs
        self.export_dialog: ExportDialog | None = None
        # the opened photo's file (the main window sets it): exports default beside it
        self.photo_path: Callable[[], Path | None] = lambda: None
        # the editor's picture (the main window sets it): exports compose into it
        self.picture_source: Callable[[], PictureSource | None] = lambda: None
        self._export_named_for: Path | None = None
        # model output → the photo's crop with it composed in (the owner sets it): what
        # previews and thumbnails show, so candidates are seen in the photo
        self.composite: Callable[[np.ndarray], np.ndarray] | None = None
        self._composited: dict[int, np.ndarray] = {}  # id(frame) → composited, recent
        self.original: tuple[ReconstructionState, str] | None = None  # the run's result
        self.class_names: list[str] = []  # the classes the category tab offers
        self._classes_of: Prior | None = None  # the model they are of
        self._thumbs: dict[int, ReconstructionState] = {}  # thumbnail renders by generation
        self.selected: int | None = None  # the variation picked in the grid
        self._pending_adopt: tuple[str, np.ndarray | None] | None = None

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
        self.seed.setRange(0, 2**31 - 1)
        self.new_seed = QPushButton("New seed")
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(variations)
        self.layers = QComboBox()
        self.layers.setAccessibleName("Jittered layers")
        for key, title in LAYERS.items():
            self.layers.addItem(title, key)
        self._jitter_request: dict[str, Any] | None = None  # σ, seed, layers of the grid shown
        self.grid = VariationGrid(self)
        self.grid.chosen.connect(self.select_variation)
        self.thumb_size = QSlider(Qt.Orientation.Horizontal)
        self.thumb_size.setAccessibleName("Thumbnail size")
        self.thumb_size.setToolTip("Zoom the variation thumbnails")
        self.thumb_size.setRange(48, 320)
        self.thumb_size.setValue(self.grid.thumb)
        self.thumb_size.valueChanged.connect(self.grid.set_thumb)
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
        form.addRow("Thumbnails", self.thumb_size)
        form.addRow(self.grid)

        # --- category ---------------------------------------------------------------------
        self.category = QComboBox()
        self.category.setAccessibleName("Category")
        self.category.setEditable(True)
        self.category.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.category_slider = QSlider(Qt.Orientation.Horizontal)
        self.category_slider.setAccessibleName("Category slider")
        self.category_slider.setRange(0, 0)  # the model's classes, once a model is known
        self.category_name = QLabel("")  # the slider's class, by name
        self.category_name.setAccessibleName("Category name")
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
        crow = QHBoxLayout()
        crow.addWidget(self.category_slider, 1)
        crow.addWidget(self.category_name)
        cform.addRow("", crow)
        arow = QHBoxLayout()
        arow.addWidget(self.amount, 1)
        arow.addWidget(self.amount_label)
        cform.addRow("Amount", arow)
        cform.addRow(self.adopt_category)
        # said instead of offering classes when the model has none (an unconditional
        # StyleGAN2)
        self.category_note = QLabel("")
        self.category_note.setWordWrap(True)
        self.category_note.setVisible(False)
        cform.addRow(self.category_note)
        self.latency = QLabel()
        cform.addRow(self.latency)

        # --- morph ------------------------------------------------------------------------
        self.timeline = MorphTimelineWidget(self)
        self.timeline.scrub_requested.connect(self._scrub)
        self.timeline.render_requested.connect(self._render_timeline)
        self.timeline.frame_shown.connect(self._show_morph_frame)
        self.timeline.add_current_requested.connect(self._add_current_keyframe)
        self.timeline.add_file_requested.connect(self._browse_keyframe)
        self.timeline.adopt_requested.connect(self.adopt_morph)
        self.timeline.keyframes_changed.connect(self._keyframes_changed)
        self.timeline.invalidated.connect(self._timeline_invalidated)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip(
            "The morph, a jitter walk, a category sweep or the variations, composed into the photo"
        )
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
        # what to do with the candidate of the visible tab
        self.apply_button = QPushButton("Apply to picture")
        self.apply_button.setAccessibleName("Apply candidate to picture")
        self.apply_button.setToolTip("Compose this candidate into the picture (undoable)")
        self.keyframe_button = QPushButton("Add as keyframe")
        self.keyframe_button.setAccessibleName("Add candidate as keyframe")
        self.back_button = QPushButton("Back to the original result")
        self.back_button.setAccessibleName("Back to the original result")
        self.apply_button.clicked.connect(lambda: self.use_candidate("apply"))
        self.keyframe_button.clicked.connect(lambda: self.use_candidate("keyframe"))
        self.back_button.clicked.connect(self.back_to_original)
        actions = QHBoxLayout()
        for b in (self.apply_button, self.keyframe_button, self.back_button):
            actions.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.tabs)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        self._update_labels()
        self._set_enabled(False)

    # --- public API ---------------------------------------------------------------------
    def set_result(
        self, prior: Prior, state: ReconstructionState, name: str = "result", original: bool = True
    ) -> None:
        """Manipulate this reconstruction state (rendered with ``prior``); re-renders the
        variations and the category preview for it.  ``original``: a run's result, the
        one "Back to the original result" returns to."""
        if original:
            self.original = (state, name)
        self.selected = None
        same_model = prior is self.prior
        self.prior, self.state, self.result_name = prior, state, name
        if not same_model or self._classes_of is not prior:
            self._set_classes(prior)
        cid = int(getattr(state, "class_id", 0))
        self._set_category(cid)
        self._set_enabled(True)
        self._submit(RenderResult(prior, state))
        self._jitter_changed()
        self.status.setText(f"Manipulating {name}.")
        self._warn_other_model()

    def add_keyframe(
        self,
        state: ReconstructionState,
        name: str = "",
        prior: Prior | None = None,
        thumbnail: np.ndarray | None = None,
    ) -> str:
        """Add a morph keyframe (a restored result or a loaded state) with a thumbnail
        (rendered when not given); returns the distinct name it got."""
        if prior is not None and self.prior is None:
            self.prior = prior
        name = self.timeline.add_keyframe(state, name, thumbnail)
        if thumbnail is None:
            self._render_thumbnail(state)
        return name

    def offer_prior(self, prior: Prior | None) -> None:
        """The app loaded a model: the category tab lists its classes and keyframes
        opened before any run render with it (a result already shown keeps its model)."""
        if prior is None or (self.state is not None and self.prior is not None):
            return
        self.prior = prior
        self._set_classes(prior)
        self._set_category(0)
        for row, state in enumerate(self.timeline.keyframes()):
            if not self.timeline.has_thumbnail(row):
                self._render_thumbnail(state)
        self._keyframes_changed()

    def _set_classes(self, prior: Prior) -> None:
        """The category picker and slider offer ``prior``'s classes, by name."""
        names = list(getattr(prior, "class_names", []) or [])
        n = int(prior.n_classes)
        self.class_names = [names[i] if i < len(names) else f"class {i}" for i in range(n)]
        self._classes_of = prior
        for w in (self.category, self.category_slider):
            w.blockSignals(True)
        self.category.clear()
        self.category.addItems([f"{i}: {c}" for i, c in enumerate(self.class_names)])
        self.category_slider.setRange(0, max(0, n - 1))
        for w in (self.category, self.category_slider):
            w.blockSignals(False)
        self._show_category_name()
        self.category_note.setText(
            ""
            if n
            else f"{prior.name} is an unconditional model: it has no classes to move "
            "the result to (jitter and morph work)."
        )
        self.category_note.setVisible(not n)
        self._set_category_enabled(self.state is not None)

    def _show_category_name(self) -> None:
        i = self.category_slider.value()
        name = self.class_names[i] if 0 <= i < len(self.class_names) else ""
        self.category_name.setText(name)
        self.category_slider.setToolTip(f"Class {i}: {name}" if name else "")

    def _render_thumbnail(self, state: ReconstructionState) -> None:
        if self.prior is not None:
            self._thumbs[self._submit(RenderThumbnail(self.prior, state))] = state

    def add_keyframe_file(self, path: str | Path, name: str = "") -> None:
        """Load a saved .dgp state (in the render thread) and add it as a keyframe."""
        self._submit(LoadState(str(path), name))

    def reset(self) -> None:
        """Another picture was opened: forget this one's result, candidates, keyframes
        and previews (the model and its classes stay; a running export goes on)."""
        if self.engine is not None:
            for channel in ("result", "jitter", "transfer", "scrub", "play", "adopt", "thumb"):
                self.engine.cancel(channel)
        self.timeline.pause()
        self.timeline.clear_keyframes()
        self.state = self.original = self.composite = None
        self.result_name, self.selected = "result", None
        self._jitter_request = self._pending_adopt = None
        for d in (
            self._composited,
            self.last_frame,
            self.variation_params,
            self.variation_frames,
            self._thumbs,
        ):
            d.clear()
        self.grid.reset(0)
        self.preview.set_image(None)
        self.latency.setText("")
        self._set_enabled(False)
        self.status.setText("No result yet: run a task, then play with it here.")

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

    def _submit(self, request: Request) -> int:
        if request.channel in INTERACTIVE:  # composed in the render thread, not here
            request.composite = self.composite
        gen = self._engine().submit(request)
        self._gen[request.channel] = gen
        return gen

    def _current(self, channel: str, generation: int) -> bool:
        return self._gen.get(channel) == generation

    def _set_enabled(self, on: bool) -> None:
        for w in (
            self.sigma,
            self.seed,
            self.new_seed,
            self.count,
            self.layers,
            self.apply_button,
            self.keyframe_button,
            self.back_button,
        ):
            w.setEnabled(on)
        self._set_category_enabled(on)

    def _set_category_enabled(self, on: bool) -> None:
        """The category controls, when the model has classes to offer."""
        on = on and bool(self.class_names)
        for w in (self.category, self.category_slider, self.amount, self.adopt_category):
            w.setEnabled(on)

    # --- candidates ----------------------------------------------------------------------
    def shown(self, image: np.ndarray) -> np.ndarray:
        """``image`` (a model output) as it would sit in the photo, when the owner says
        how (else the raw image); the last few are kept."""
        if self.composite is None:
            return image
        key = id(image)
        if key not in self._composited:  # frames come composed; this is the fallback
            self._remember_shown(image, self.composite(image))
        return self._composited[key]

    def _remember_shown(self, image: np.ndarray, shown: np.ndarray) -> None:
        if len(self._composited) > 4 * max(8, self.count.value()):
            self._composited.clear()
        self._composited[id(image)] = shown

    def candidate(self) -> tuple[str, dict[str, Any], np.ndarray | None] | None:
        """The visible tab's candidate: (kind, adopt parameters, model output)."""
        tab = self.tabs.currentIndex()
        if tab == 0:
            if self.selected is None or self.selected not in self.variation_params:
                return None
            frame = self.grid.images.get(self.selected)
            return (
                "jitter",
                {"variation": self.selected, **(self._jitter_request or {})},
                self.variation_frames.get(self.selected, frame),
            )
        if tab == 1:
            if not self.class_names:
                return None  # an unconditional model: no category candidate
            target, amount = self.transfer_target()
            f = self.last_frame.get("transfer")
            return "transfer", {"target": target, "amount": amount}, None if f is None else f.image
        if len(self.timeline.keyframes()) < 2:
            return None
        f = self.last_frame.get("scrub")
        return "morph", {"t": self.timeline.position}, None if f is None else f.image

    def use_candidate(self, purpose: str) -> bool:
        """ "apply" (into the picture; the candidate becomes the base) or "keyframe" (added
        to the morph timeline; the base stays)."""
        found = self.candidate()
        if found is None or self.prior is None:
            self._say(
                "Pick a candidate first: click a variation, move the category "
                "slider, or scrub the morph."
            )
            return False
        kind, params, image = found
        self._pending_adopt = (purpose, image)
        if kind == "morph":
            keyframes, names = self._morph_inputs()
            self._submit(
                Adopt(
                    self.prior,
                    "morph",
                    params,
                    keyframes=keyframes,
                    names=names,
                    easing=self.timeline.easing.currentText(),
                )
            )
        else:
            self._submit(Adopt(self.prior, kind, params, state=self.state))
        return True

    @Slot()
    def back_to_original(self) -> None:
        """The run's own result again: the base, the grid and the picture's layer."""
        if self.original is None or self.prior is None:
            return
        state, name = self.original
        self.set_result(self.prior, state, name, original=False)
        self.back_requested.emit()
        self._say(f"Back to {name}.")

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
    def _jitter_changed(self, *_: object) -> None:
        self._update_labels()
        if self.state is None:
            return
        n = self.count.value()
        self.grid.reset(n)
        self.variation_params.clear()
        self.variation_frames.clear()
        self.selected = None
        self._jitter_request = {
            "sigma": self.sigma_value,
            "seed": self.seed.value(),
            "layers": self.layers.currentData(),
        }
        assert self.prior is not None  # offered with every state
        self._submit(RenderJitter(self.prior, self.state, n, **self._jitter_request))

    @Slot(int)
    def select_variation(self, index: int) -> None:
        """Pick variation ``index``: shown in the preview and over the picture; the base
        stays until "Apply to picture"."""
        image = self.variation_frames.get(index)
        if image is None:
            return
        self.selected = index
        self.grid.mark(index)
        self.preview.set_image(self.shown(image))
        req = self._jitter_request or {}
        note = f"jitter σ={req.get('sigma', 0):.3g} seed={req.get('seed')} #{index}"
        self.candidate_shown.emit(image, note)
        self._say(
            f"Variation {index + 1} is shown on the picture: Apply to picture, Add as "
            "keyframe, or Back to the original result."
        )

    @Slot(int)
    def adopt_variation(self, index: int) -> None:
        """Make variation ``index`` of the grid shown the current result."""
        if index not in self.variation_params or self.state is None:
            return
        assert self.prior is not None and self._jitter_request is not None  # set with the grid
        self._submit(
            Adopt(
                self.prior, "jitter", {"variation": index, **self._jitter_request}, state=self.state
            )
        )

    # --- category -----------------------------------------------------------------------
    def _set_category(self, cid: int) -> None:
        for w in (self.category, self.category_slider):
            w.blockSignals(True)
        self.category.setCurrentIndex(cid)
        self.category_slider.setValue(cid)
        for w in (self.category, self.category_slider):
            w.blockSignals(False)
        self._show_category_name()

    def _category_picked(self, index: int) -> None:
        if index < 0:
            return
        self.category_slider.blockSignals(True)
        self.category_slider.setValue(index)
        self.category_slider.blockSignals(False)
        self._show_category_name()
        self._transfer_changed()

    def _category_slid(self, value: int) -> None:
        self.category.blockSignals(True)
        self.category.setCurrentIndex(value)
        self.category.blockSignals(False)
        self._show_category_name()
        self._transfer_changed()

    def transfer_target(self) -> tuple[int, float]:
        return self.category_slider.value(), self.amount.value() / AMOUNT_STEPS

    def _transfer_changed(self, *_: object) -> None:
        self._update_labels()
        if self.state is None or not self.class_names:
            return
        target, amount = self.transfer_target()
        assert self.prior is not None  # offered with every state
        self._submit(RenderTransfer(self.prior, self.state, target, amount))

    @Slot()
    def adopt_transfer(self) -> None:
        if self.state is None:
            return
        if not self.class_names:
            self._say(self.category_note.text())
            return
        target, amount = self.transfer_target()
        assert self.prior is not None  # offered with every state
        self._submit(
            Adopt(self.prior, "transfer", {"target": target, "amount": amount}, state=self.state)
        )

    # --- morph --------------------------------------------------------------------------
    def _morph_inputs(self) -> tuple[list[ReconstructionState], list[str]]:
        return self.timeline.keyframes(), self.timeline.names()

    def _warn_other_model(self) -> None:
        """States restored with other weights than the loaded model's (a project or a
        .dgp file of another model with the same shapes, an older file without a model
        checksum) are rendered with it anyway — refusing would leave no way to look at
        them — and the panel says so once (the status line and the log)."""
        if self.prior is None:
            return
        checked = list(zip(self.timeline.keyframes(), self.timeline.names(), strict=True))
        if self.state is not None:
            checked.insert(0, (self.state, self.result_name))
        notes = []
        for state, name in checked:
            note = state.model_warning(
                self.prior.name,
                self.prior.checksum,
                allow_mismatch=True,
                label=name or "A keyframe",
            )
            if note and note not in notes:
                notes.append(note)
        text = " ".join(notes)
        if text and text != self.model_note:
            log.warning("%s", text)
            self._say(text)
        self.model_note = text

    def _keyframes_changed(self) -> None:
        self._warn_other_model()
        n = len(self.timeline.keyframes())
        self.export_button.setEnabled(n >= 2 or self.state is not None)
        if n >= 2 and self.prior is not None:
            self._scrub(self.timeline.position)
        self._refresh_export_plan()

    def _timeline_invalidated(self) -> None:
        if self.engine is not None:
            self.engine.cancel("play")  # its frames are for the old settings
        self._refresh_export_plan()  # the frame count the export dialog says

    def _scrub(self, t: float) -> None:
        keyframes, names = self._morph_inputs()
        if len(keyframes) < 2 or self.prior is None:
            return
        self._submit(
            RenderMorphAt(self.prior, keyframes, names, self.timeline.easing.currentText(), t)
        )

    def _render_timeline(self, timeline: MorphTimeline) -> None:
        keyframes, names = self._morph_inputs()
        if len(keyframes) < 2 or self.prior is None:
            self.timeline.render_finished()
            return
        self._submit(RenderMorphTimeline(self.prior, keyframes, names, timeline))

    def _add_current_keyframe(self) -> None:
        """The result shown (the one selected in History, or a candidate adopted from
        it) as a keyframe, with its picture as the thumbnail."""
        if self.state is None:
            self._say("There is no result to add: run a task first.")
            return
        f = self.last_frame.get("result")
        shown = f is not None and self._current("result", f.generation)
        name = self.add_keyframe(
            self.state, self.result_name, thumbnail=f.image if f is not None and shown else None
        )
        self._say(f"Added keyframe {name}.")

    def _browse_keyframe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Add a saved state as keyframe", "", "DGP states (*.dgp);;All files (*)"
        )
        if path:
            self.add_keyframe_file(path)

    @Slot(float)
    def adopt_morph(self, t: float) -> None:
        keyframes, names = self._morph_inputs()
        if len(keyframes) < 2 or self.prior is None:
            return
        self._submit(
            Adopt(
                self.prior,
                "morph",
                {"t": t},
                keyframes=keyframes,
                names=names,
                easing=self.timeline.easing.currentText(),
            )
        )

    @Slot(object)
    def _show_morph_frame(self, image: np.ndarray) -> None:
        self.preview.set_image(self.shown(image))  # in the photo, not the raw square

    def _tab_changed(self, index: int) -> None:
        # the preview shows what the visible tab renders
        channel = {0: "result", 1: "transfer", 2: "scrub"}.get(index)
        frame = self.last_frame.get(channel or "")
        if frame is not None:
            self.preview.set_image(self.shown(frame.image))

    # --- export -------------------------------------------------------------------------
    def show_export_dialog(self) -> ExportDialog:
        if self.export_dialog is None:
            self.export_dialog = ExportDialog(self)
            self.export_dialog.export_button.clicked.connect(
                lambda: self.start_export(self.export_dialog.settings())
            )
            self.export_dialog.cancel_button.clicked.connect(self.cancel_export)
            self.export_dialog.source_changed.connect(self._refresh_export_plan)
        photo = self.photo_path()
        if photo is not None and photo != self._export_named_for:
            # beside the opened photo, named after it (once per photo: an edit stays)
            self.export_dialog.suggest_beside(photo)
            self._export_named_for = photo
        self.export_dialog.show()
        self._refresh_export_plan()
        return self.export_dialog

    def export_plan(self, source: str = "morph") -> ExportPlan:
        """Where ``source``'s frames can be composed: the morph's keyframes, or the
        result the jitter and the category sweep come from, into the photo they were
        restored from (:func:`~.export_plan.plan_export`)."""
        resolution = self.prior.resolution if self.prior is not None else 0
        if source == "morph":
            states, labels = self._morph_inputs()
            if len(states) < 2:
                return ExportPlan(
                    resolution, why_raw="Add at least two keyframes to export a morph."
                )
        elif self.state is None:
            return ExportPlan(resolution, why_raw="There is no result: run a task first.")
        else:
            states, labels = [self.state], [self.result_name]
        return plan_export(states, labels, resolution, self.picture_source())

    def export_count(self, source: str) -> int:
        """Frames (tiles for the grid) that ``source`` exports with today's settings."""
        timeline = self.timeline.timeline()
        return {"morph": timeline.frame_count, "grid": self.count.value()}.get(
            source, timeline.frames
        )

    def _refresh_export_plan(self, *_: object, force: bool = False) -> None:
        """The dialog says what the chosen source exports now (while it is open)."""
        dialog = self.export_dialog
        if dialog is None or dialog.running or not (force or dialog.isVisible()):
            return
        source = dialog.source_key
        dialog.set_plan(
            self.export_plan(source), self.export_count(source), self.timeline.timeline().fps
        )

    def start_export(self, settings: ExportSettings) -> bool:
        dialog = self.export_dialog or self.show_export_dialog()
        keyframes, names = self._morph_inputs()
        if settings.source == "morph" and (len(keyframes) < 2 or self.prior is None):
            dialog.failed("Add at least two keyframes to export a morph.", False)
            return False
        still = self.timeline.still_morph() if settings.source == "morph" else None
        if still is not None:  # it would be a one-frame animation
            dialog.failed(still, False)
            return False
        if settings.source != "morph" and self.state is None:
            dialog.failed("There is no result to jitter: run a task first.", False)
            return False
        if settings.source == "sweep" and not self.class_names:
            dialog.failed(self.category_note.text() or "The model has no classes.", False)
            return False
        if not settings.path:
            dialog.failed("Choose a file to export to.", False)
            return False
        self._refresh_export_plan(force=True)  # the picture or keyframes may have changed
        if dialog.problem is not None:  # e.g. larger than an export takes unasked
            dialog.failed(dialog.problem, False)
            return False
        replace_frames = False
        folder = Path(settings.path)
        if (
            settings.format == "png-sequence"
            and folder.is_dir()
            and any(folder.glob("frame_*.png"))
        ):
            if not self.ask_replace_frames(folder):
                dialog.failed(
                    f"{folder} already holds frame_*.png files: choose a new or empty folder.",
                    False,
                )
                return False
            replace_frames = True
        request = self.export_request(settings, dialog.plan)
        request.replace_frames = replace_frames
        self._submit(request)
        dialog.started(self.export_count(settings.source))
        return True

    def ask_replace_frames(self, folder: Path) -> bool:
        """Whether the user lets a PNG sequence replace the ``frame_*.png`` files already
        in ``folder`` (and remove those past the new sequence's end)."""
        answer = QMessageBox.question(
            self,
            "Replace the frames?",
            f"{folder} already holds frame_*.png files. Replace them with this export "
            "(frames past its end are removed)?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def export_request(
        self, settings: ExportSettings, plan: ExportPlan | None = None
    ) -> ExportAnimation:
        """The render thread's export job for ``settings``: each frame composed into the
        photo by the engine's :class:`~dgp_engine.tasks.postprocess.PhotoComposer` (the
        path the candidates are previewed by) when ``settings.composed``, at the photo's
        resolution or the size chosen; else the generator's own squares."""
        keyframes, names = self._morph_inputs()
        plan = plan or self.export_plan(settings.source)
        composed = settings.composed and plan.composable
        if composed and plan.pixels is not None:  # a snapshot: the picture may change
            plan = dataclasses.replace(plan, pixels=plan.pixels.copy())
        target, amount = self.transfer_target()
        assert self.prior is not None  # exports are offered once a model is
        return ExportAnimation(
            self.prior,
            settings.path,
            settings.source,
            keyframes,
            names,
            self.timeline.timeline(),
            self.state,
            self.sigma_value,
            self.seed.value(),
            None if settings.format == "picture" else settings.format,
            settings.scale,
            settings.size,
            plan=plan if composed else None,
            composed=composed,
            max_side=settings.max_side,
            even=settings.even,
            target=target,
            amount=amount,
            count=self.count.value(),
            layers=self.layers.currentData(),
        )

    @Slot()
    def cancel_export(self) -> None:
        if self.engine is not None:
            self.engine.cancel("export")

    # --- replies from the render thread -----------------------------------------------
    @Slot(RenderedFrame)
    def _on_frame(self, f: RenderedFrame) -> None:
        if f.channel == "thumb":
            state = self._thumbs.pop(f.generation, None)
            if state is not None:
                self.timeline.set_thumbnail(state, f.image)
            return
        if not self._current(f.channel, f.generation):
            return
        self.last_frame[f.channel] = f
        if f.shown is not None:
            self._remember_shown(f.image, f.shown)
        if f.channel == "result":
            if self.tabs.currentIndex() == 0 and self.selected is None:
                self.preview.set_image(self.shown(f.image))
        elif f.channel == "jitter":
            self.variation_params[f.index] = f.params
            self.variation_frames[f.index] = f.image
            req = self._jitter_request or {}
            self.grid.set_image(
                f.index,
                f.image,
                f"Variation {f.index + 1} (σ {req.get('sigma', 0):.2f}, "
                f"seed {req.get('seed')}): click to see it on the picture",
                shown=self.shown(f.image) if self.composite else None,
            )
        elif f.channel == "transfer":
            self.preview.set_image(self.shown(f.image))
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
    def _on_state_ready(
        self, channel: str, state: ReconstructionState, info: dict[str, Any]
    ) -> None:
        if channel == "load":
            name = self.add_keyframe(state, info.get("name", ""))
            self._say(f"Added keyframe {name}.")
            return
        if self.original is None:
            return  # made for a picture that was closed since
        note = info.get("note", "")
        pending, self._pending_adopt = self._pending_adopt, None
        if pending is not None and pending[0] == "keyframe":  # the base stays as it is
            name = self.add_keyframe(state, note, thumbnail=pending[1])
            self._say(f"Added {name} as a keyframe.")
            return
        self._say(f"Adopted {note}.")
        self.adopted.emit(state, note)
        if pending is not None and pending[1] is not None:
            self.apply_requested.emit(state, note, pending[1])
        if self.prior is not None:
            self.set_result(self.prior, state, note or self.result_name, original=False)

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
    def __init__(self, panel: ManipulatePanel, parent: QObject) -> None:
        super().__init__(parent)
        self.panel = panel

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 — Qt override
        if event.type() == QEvent.Type.Close:
            self.panel.shutdown()
        return False


def install_manipulate_panel(
    main_window: QMainWindow,
    *,
    area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
    **kwargs: Any,
) -> ManipulatePanel:
    """Add a Manipulate panel as a dock of ``main_window``; its render thread stops when
    the window closes or the application quits."""
    panel = ManipulatePanel(**kwargs)
    dock = QDockWidget("Manipulate", main_window)
    dock.setObjectName("dock-Manipulate")
    dock.setAccessibleName("Manipulate panel")
    dock.setWidget(panel)
    main_window.addDockWidget(area, dock)
    panel.dock = dock
    main_window.installEventFilter(_ShutdownOnClose(panel, main_window))
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(panel.shutdown)
    return panel

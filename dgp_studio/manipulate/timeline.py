"""The morph timeline: keyframes, scrubbing, playback and the timing settings.

The widget holds no engine objects beyond the keyframe states it lists; it asks
for frames with signals (``scrub_requested(t)``, ``render_requested(timeline)``)
and is fed rendered uint8 frames back (``show_scrub_frame``, ``add_frame``).
Playback runs off a frame cache for the current settings, rendered in the
background as it plays.  Each keyframe has a distinct name and a thumbnail; two
keyframes that are the same result are pointed out (a morph between them stands still,
and a morph of nothing but one result is a single still frame)."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dgp_engine import DGPError
from dgp_engine.method.manipulate import MorphTimeline, easing_names
from dgp_engine.method.state import ReconstructionState

from ..qimage import to_pixmap

SCRUB_STEPS = 1000
STATE_ROLE = Qt.ItemDataRole.UserRole
THUMB = 40  # keyframe thumbnail side (px)


def same_result(a: ReconstructionState, b: ReconstructionState) -> bool:
    """Whether two reconstruction states render the same picture: the same object, or
    the same latent, class embedding and fine-tuned weights (names and notes aside)."""
    if a is b:
        return True
    try:
        if a.use_in != b.use_in or a.weight_delta.keys() != b.weight_delta.keys():
            return False
        pairs = [(a.z, b.z), (a.embedding, b.embedding)] + [
            (a.weight_delta[k], b.weight_delta[k]) for k in a.weight_delta
        ]
    except AttributeError:  # not a reconstruction state
        return False
    return all(x.shape == y.shape and torch.equal(x.cpu(), y.cpu()) for x, y in pairs)


def unique_name(name: str, taken: list[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``… when a keyframe already has it."""
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


class MorphTimelineWidget(QWidget):
    scrub_requested = Signal(float)  # t in [0, 1]
    render_requested = Signal(object)  # MorphTimeline: render every frame of it
    keyframes_changed = Signal()
    invalidated = Signal()  # rendered frames no longer match the settings
    frame_shown = Signal(object)  # H×W×3 uint8 shown as the preview
    add_current_requested = Signal()
    add_file_requested = Signal()
    adopt_requested = Signal(float)  # t

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.keyframe_list = QListWidget()
        self.keyframe_list.setAccessibleName("Keyframes")
        self.keyframe_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.keyframe_list.setIconSize(QSize(THUMB, THUMB))
        self.keyframe_list.setMinimumHeight(2 * THUMB + 12)
        self.keyframe_list.setMaximumHeight(3 * (THUMB + 6) + 8)
        self.keyframe_list.model().rowsMoved.connect(self._keyframes_edited)
        self.add_current = QPushButton("Add current result")
        self.add_file = QPushButton("Add state file…")
        self.remove = QPushButton("Remove")
        self.add_current.clicked.connect(self.add_current_requested)
        self.add_file.clicked.connect(self.add_file_requested)
        self.remove.clicked.connect(self._remove_selected)

        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setRange(0, SCRUB_STEPS)
        self.scrub.setAccessibleName("Morph position")
        self.scrub.valueChanged.connect(self._scrubbed)
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._play_toggled)
        self.adopt = QPushButton("Use this frame")
        self.adopt.clicked.connect(lambda: self.adopt_requested.emit(self.position))
        self.position_label = QLabel("t = 0")
        # two keyframes that are the same result (the morph between them stands still)
        self.warning = QLabel("")
        self.warning.setAccessibleName("Keyframe warning")
        self.warning.setWordWrap(True)
        self.warning.setVisible(False)

        self.frames = QSpinBox()
        self.frames.setRange(2, 2000)
        self.frames.setValue(48)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1, 120)
        self.fps.setValue(24)
        self.easing = QComboBox()
        self.easing.addItems(easing_names())
        self.easing.setCurrentText("ease-in-out")
        self.hold_start = QSpinBox()
        self.hold_end = QSpinBox()
        for s in (self.hold_start, self.hold_end):
            s.setRange(0, 500)
        self.pingpong = QCheckBox("Ping-pong loop")
        self.summary = QLabel()
        for w in (self.frames, self.hold_start, self.hold_end):
            w.valueChanged.connect(self._settings_changed)
        self.fps.valueChanged.connect(self._settings_changed)
        self.easing.currentTextChanged.connect(self._settings_changed)
        self.pingpong.toggled.connect(self._settings_changed)

        buttons = QHBoxLayout()
        for b in (self.add_current, self.add_file, self.remove):
            buttons.addWidget(b)
        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addWidget(self.scrub, 1)
        transport.addWidget(self.position_label)
        # two settings a row: the whole panel fits a 1280×800 window's dock
        form = QFormLayout()
        self.fps.setAccessibleName("Frames per second")
        self.frames.setAccessibleName("Frames")
        form.addRow("Frames", self._row(self.frames, QLabel("fps"), self.fps))
        form.addRow("Easing", self._row(self.easing, self.pingpong))
        form.addRow(
            "Hold frames", self._row(QLabel("start"), self.hold_start, QLabel("end"), self.hold_end)
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.keyframe_list)
        layout.addWidget(self.warning)
        layout.addLayout(buttons)
        layout.addLayout(transport)
        layout.addWidget(self.adopt)
        layout.addLayout(form)
        layout.addWidget(self.summary)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.cache: dict[int, np.ndarray] = {}
        self.play_index = 0
        self.rendering = False
        self._times: list[float] = []
        self._settings_changed()
        self._keyframes_edited()

    @staticmethod
    def _row(*widgets: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        for w in widgets:
            row.addWidget(w)
        return row

    # --- keyframes ----------------------------------------------------------------------
    def add_keyframe(
        self, state: ReconstructionState, name: str = "", thumbnail: np.ndarray | None = None
    ) -> str:
        """Add ``state`` under ``name`` (made distinct from the other keyframes' names);
        returns the name it got."""
        name = unique_name(
            name or f"Keyframe {chr(ord('A') + self.keyframe_list.count())}", self.names()
        )
        item = QListWidgetItem(name)
        item.setData(STATE_ROLE, state)
        self.keyframe_list.addItem(item)
        if thumbnail is not None:
            self.set_thumbnail(state, thumbnail)
        self._keyframes_edited()
        return name

    def set_thumbnail(self, state: ReconstructionState, image: np.ndarray) -> None:
        """Show ``image`` (uint8 H×W×3) beside every keyframe holding ``state``."""
        icon = QIcon(
            to_pixmap(image).scaled(
                THUMB,
                THUMB,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        for i in range(self.keyframe_list.count()):
            item = self.keyframe_list.item(i)
            if item.data(STATE_ROLE) is state:
                item.setIcon(icon)

    def has_thumbnail(self, row: int) -> bool:
        return not self.keyframe_list.item(row).icon().isNull()

    def identical(self) -> list[tuple[str, str]]:
        """Pairs of keyframe names that are the same result."""
        states, names = self.keyframes(), self.names()
        return [
            (names[i], names[j])
            for i in range(len(states))
            for j in range(i + 1, len(states))
            if same_result(states[i], states[j])
        ]

    def distinct_count(self) -> int:
        """How many different results the keyframes hold."""
        kept: list[ReconstructionState] = []
        for s in self.keyframes():
            if not any(same_result(s, k) for k in kept):
                kept.append(s)
        return len(kept)

    def still_morph(self) -> str | None:
        """Why a morph of these keyframes would be a single still frame (None: it moves)."""
        if len(self.keyframes()) >= 2 and self.distinct_count() < 2:
            return (
                "The keyframes are all the same result, so the morph would be one still "
                "frame: select another result in History and add it."
            )
        return None

    def _check_identical(self) -> None:
        text = self.still_morph()
        if text is None:
            pairs = self.identical()
            if pairs:
                a, b = pairs[0]
                text = f"{a} and {b} are the same result: the morph stands still between them."
        self.warning.setText(f"<span style='color:#e8a33d'>⚠ {text}</span>" if text else "")
        self.warning.setToolTip(text or "")
        self.warning.setVisible(bool(text))

    def keyframes(self) -> list[ReconstructionState]:
        return [
            self.keyframe_list.item(i).data(STATE_ROLE) for i in range(self.keyframe_list.count())
        ]

    def names(self) -> list[str]:
        return [self.keyframe_list.item(i).text() for i in range(self.keyframe_list.count())]

    def clear_keyframes(self) -> None:
        self.keyframe_list.clear()
        self._keyframes_edited()

    def _remove_selected(self) -> None:
        for item in self.keyframe_list.selectedItems():
            self.keyframe_list.takeItem(self.keyframe_list.row(item))
        self._keyframes_edited()

    def _keyframes_edited(self, *_: object) -> None:
        self.invalidate()
        self._check_identical()
        ready = self.keyframe_list.count() >= 2
        for w in (self.scrub, self.play_button, self.adopt):
            w.setEnabled(ready)
        if not ready:
            self.pause()
        self.keyframes_changed.emit()

    # --- settings -----------------------------------------------------------------------
    def timeline(self) -> MorphTimeline:
        return MorphTimeline(
            frames=self.frames.value(),
            fps=self.fps.value(),
            easing=self.easing.currentText(),
            hold_start=self.hold_start.value(),
            hold_end=self.hold_end.value(),
            pingpong=self.pingpong.isChecked(),
        )

    def set_timeline(self, timeline: MorphTimeline) -> None:
        self.frames.setValue(int(timeline.frames))
        self.fps.setValue(float(timeline.fps))
        self.easing.setCurrentText(timeline.easing)
        self.hold_start.setValue(int(timeline.hold_start))
        self.hold_end.setValue(int(timeline.hold_end))
        self.pingpong.setChecked(bool(timeline.pingpong))

    def _settings_changed(self, *_: object) -> None:
        try:
            tl = self.timeline()
        except DGPError as exc:
            self.summary.setText(str(exc))
            return
        self.summary.setText(f"{tl.frame_count} frames · {tl.duration:.2f} s at {tl.fps:g} fps")
        self.timer.setInterval(max(1, round(1000 / tl.fps)))
        self.invalidate()
        if self.scrub.isEnabled() and not self.timer.isActive():
            self.scrub_requested.emit(self.position)  # easing changes the frame shown

    def invalidate(self) -> None:
        """Forget rendered frames (keyframes or settings changed)."""
        self.cache.clear()
        self.rendering = False
        self.invalidated.emit()
        try:
            self._times = self.timeline().times()
        except DGPError:
            self._times = []
        self.play_index = min(self.play_index, max(0, len(self._times) - 1))
        if self.timer.isActive() and self._times:
            self._request_render()

    # --- scrubbing and playback -----------------------------------------------------------
    @property
    def position(self) -> float:
        return self.scrub.value() / SCRUB_STEPS

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_position(self, t: float) -> None:
        self.scrub.setValue(round(min(1.0, max(0.0, t)) * SCRUB_STEPS))

    def _scrubbed(self, value: int) -> None:
        self.position_label.setText(f"t = {value / SCRUB_STEPS:.3f}")
        if self.scrub.signalsBlocked():
            return
        self.pause()  # dragging takes over from playback
        self.scrub_requested.emit(value / SCRUB_STEPS)

    def play(self) -> None:
        self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    def _play_toggled(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "Play")
        if not on:
            self.timer.stop()
            return
        if len(self.keyframes()) < 2 or not self._times:
            self.play_button.setChecked(False)
            return
        if len(self.cache) < len(self._times) and not self.rendering:
            self._request_render()
        self.timer.start()

    def _request_render(self) -> None:
        self.rendering = True
        self.render_requested.emit(self.timeline())

    @Slot(int, object)
    def add_frame(self, index: int, image: np.ndarray) -> None:
        """A frame of the timeline render (``index`` into ``timeline().times()``)."""
        self.cache[index] = image

    def render_finished(self) -> None:
        self.rendering = False

    def _tick(self) -> None:
        if not self._times:
            return
        i = self.play_index % len(self._times)
        image = self.cache.get(i)
        if image is None:
            self.position_label.setText("rendering…")
            return  # wait for the background render
        self.frame_shown.emit(image)
        self.scrub.blockSignals(True)
        self.set_position(self._times[i])
        self.scrub.blockSignals(False)
        self.position_label.setText(f"frame {i + 1}/{len(self._times)}")
        self.play_index = (i + 1) % len(self._times)

    def show_scrub_frame(self, image: np.ndarray) -> None:
        if not self.playing:
            self.frame_shown.emit(image)

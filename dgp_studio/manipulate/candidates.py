"""Candidates of the Manipulate panel (a jitter variation, a category, a morph position)
composed into the photo like results: shown as the result layer, applied as a result.

Contract.  In: the app state and the panel; :meth:`CandidateComposer.show_result` with
the result to manipulate (a new run's, or the one selected in History: the panel renders
it and "Add current result" adds it as a keyframe), :meth:`forget` when the picture is
replaced.  Out: :attr:`error` and :attr:`message` sentences; the candidates themselves
go into the app state."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from dgp_engine import Prior
from dgp_engine.method.state import ReconstructionState

from ..model.state import AppState, HistoryEntry
from .panel import ManipulatePanel

Composer = Callable[[np.ndarray], np.ndarray]


def result_name(entry: HistoryEntry, class_names: list[str]) -> str:
    """A result as a keyframe is named: task · class · the time it was made."""
    task = entry.title.split(" · ")[0]
    cid = getattr(entry.state, "class_id", None)
    if cid is not None and cid < 0:
        cls = "no class"  # an unconditional model's result
    else:
        cls = class_names[cid] if cid is not None and cid < len(class_names) else f"class {cid}"
    made = getattr(entry.state, "created", None) or time.time()
    return f"{task} · {cls} · {time.strftime('%H:%M:%S', time.localtime(made))}"


class CandidateComposer(QObject):
    error = Signal(str)  # one readable sentence
    message = Signal(str, int)  # a status-bar message and how long it stays (ms)

    def __init__(self, state: AppState, panel: ManipulatePanel, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.panel = state, panel
        self.base: HistoryEntry | None = None  # the result candidates come from
        self.compose: Composer | None = None  # the engine's composer of that run
        panel.candidate_shown.connect(self.show_candidate)
        panel.apply_requested.connect(self.apply_candidate)
        panel.back_requested.connect(self.back_to_result)

    def set_base(self, entry: HistoryEntry, compose: Composer | None) -> None:
        """Candidates come from ``entry`` now and are composed as it was."""
        self.base, self.compose = entry, compose
        self.panel.composite = compose

    def show_result(self, entry: HistoryEntry | None, prior: Prior | None) -> bool:
        """Manipulate ``entry`` (rendered with ``prior``): the panel shows it, its
        candidates are composed as it was, and it is the keyframe "Add current result"
        adds (a BigGAN or a StyleGAN2 result alike).  False when it cannot be (no
        reconstruction state, or no model yet)."""
        if entry is None or entry.state is None or prior is None:
            return False
        if self.base is entry and self.panel.state is entry.state:
            return True  # already shown (a run's result is also selected in History)
        self.set_base(entry, entry.compose)
        names = list(getattr(prior, "class_names", []) or [])
        n = int(prior.n_classes)
        names += [f"class {i}" for i in range(len(names), n)]
        self.panel.set_result(prior, entry.state, result_name(entry, names))
        return True

    def forget(self) -> None:
        """The picture was replaced: candidates belong to the old one."""
        self.base = self.compose = None
        self.panel.composite = None

    def entry(
        self, image: np.ndarray, note: str, state: ReconstructionState | None = None
    ) -> HistoryEntry | None:
        """The candidate ``image`` (a model output) as a result of the base's run."""
        base, compose = self.base, self.compose
        if base is None or compose is None or self.state.picture is None:
            return None
        x0, y0, x1, y1 = base.bounds
        w, h = self.state.size
        if base.picture is None and (x1 > w or y1 > h):
            self.error.emit(
                "The picture changed size since this result: run the task again "
                "to use its candidates."
            )
            return None
        composed = self.panel.shown(image)  # the render thread composed it (same composer)
        title = f"{base.title.split(' · ')[0]} · {note}"
        if base.picture is not None:  # super-resolution: a new picture
            return HistoryEntry(
                title,
                base.bounds,
                base.before,
                composed,
                image,
                settings=dict(base.settings),
                state=state,
                picture=composed,
                compose=compose,
            )
        before = self.state.picture.pixels[y0:y1, x0:x1].copy()
        return HistoryEntry(
            title,
            base.bounds,
            before,
            composed,
            image,
            settings=dict(base.settings),
            state=state,
            compose=compose,
        )

    def show_candidate(self, image: np.ndarray, note: str) -> None:
        entry = self.entry(image, note)
        if entry is not None:
            self.state.set_layer(entry)  # shown over the picture, not in History yet

    def apply_candidate(self, state: ReconstructionState, note: str, image: np.ndarray) -> None:
        entry = self.entry(image, note, state)
        if entry is None:
            return
        region = self.state.region
        self.state.add_result(entry)
        self.state.apply_result(entry)  # clears the mask, so the region would follow it away
        if region is not None and entry.picture is None and self.state.region != region:
            self.state.set_region(*region)  # the candidate's region: the next one goes there
        self.message.emit(f"Applied {note} to the picture (Ctrl+Z undoes it)", 6000)

    def back_to_result(self) -> None:
        self.state.set_layer(self.base)  # None once it was applied

"""Where the working region goes: around the mask after every edit until the user
places it with the frame tool (F), around the mask again on Ctrl+R, by the task's
rule when the task changes (none for a whole-photo task), and the note under the task
that says where the task works."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from .guidance import region_note
from .model.state import AppState


class RegionPolicy(QObject):
    def __init__(
        self,
        state: AppState,
        tool: Callable[[], str],
        show_note: Callable[[str, bool], None],
        parent: QObject | None = None,
    ) -> None:
        """``tool``: the canvas's current tool; ``show_note(text, warning)``: where the
        note goes."""
        super().__init__(parent)
        self.state, self.tool, self.show_note = state, tool, show_note
        self.user_set = False  # the user placed the region: edits no longer move it
        state.region_changed.connect(self._region_changed)
        state.resolution_changed.connect(lambda _r: self.update_note())
        state.undo_stack.indexChanged.connect(self._after_edit)
        state.face_points_changed.connect(lambda _p: self.update_note())

    def reset(self) -> None:
        """Around the mask again (Ctrl+R)."""
        self.user_set = False
        self.state.reset_region()

    def document_opened(self, project: bool) -> None:
        """A new picture's region follows its mask; a project's saved region stays."""
        self.user_set = project and self.state.region is not None

    def task_changed(self, task: str) -> None:
        st = self.state
        st.set_task(task)  # the engine's region rule
        if st.has_picture and (not self.user_set or st.whole_photo or st.region is None):
            st.reset_region()
        self.update_note()

    def _region_changed(self, _region: tuple[int, int, int] | None) -> None:
        if self.tool() == "frame":
            self.user_set = True
        self.update_note()

    def _after_edit(self, _index: int) -> None:
        try:
            if self.state.has_picture and not self.user_set:
                self.state.reset_region()
            self.update_note()  # the mask in the region decides what the note advises
        except RuntimeError:  # the undo stack is being destroyed with the window (its
            pass  # clear() says the index changed): nothing to place

    def update_note(self) -> None:
        st = self.state
        text = (
            region_note(st.task, st.region, st.model_resolution, st.mask) if st.has_picture else ""
        )
        if st.has_picture and len(st.face_points) == 3:
            problem = st.face_problem()
            text = (
                f"⚠ {problem}"
                if problem
                else "Works on the aligned face the three face points mark (Shift+P clears "
                "them to work on a square region)."
            )
        self.show_note(text, text.startswith("⚠"))

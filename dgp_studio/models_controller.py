"""Which models the app offers and which one is loaded: the task panel's model list
(refreshed when models are installed or removed), loading the chosen model in the
engine's thread, what a loaded model sets (its classes, its resolution), and the
Models dialog (download, import, use).

Contract.  In: the catalog, the task panel, the run controller (it loads models on the
engine's lane), the app state, and the widget that parents the Models dialog.  Out:
:attr:`ready` with each loaded model's info, :attr:`error` and :attr:`status`
sentences, :attr:`job_started` for each transfer (the status bar lists it), and
:attr:`installed_changed` when the list of installed models changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from .catalog import ModelCatalog
from .model.state import AppState
from .run_controller import RunController
from .task_panel import TaskPanel
from .worker import ModelInfo

if TYPE_CHECKING:
    from .model_dialog import ModelDialog


class ModelsController(QObject):
    ready = Signal(ModelInfo)  # a model was loaded (after its classes are set)
    error = Signal(str)
    status = Signal(str, int)  # a status-bar message and how long it stays (ms)
    job_started = Signal(object)  # a transfer of the Models dialog (a jobs.Job)
    installed_changed = Signal()

    def __init__(
        self,
        catalog: ModelCatalog,
        task_panel: TaskPanel,
        runs: RunController,
        state: AppState,
        dialog_parent: QWidget,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.catalog, self.task_panel, self.runs, self.state = catalog, task_panel, runs, state
        self.dialog_parent = dialog_parent
        self.dialog: ModelDialog | None = None  # one Models dialog, kept while a transfer runs
        task_panel.model_selected.connect(self.load)
        task_panel.manage_models.connect(self.show_dialog)
        runs.model_ready.connect(self._on_model_ready)

    def load(self, name: str) -> None:
        """Load ``name`` in the engine's thread (not during a run)."""
        if name and not self.state.running:
            self.runs.load_model(name, self.task_panel.settings.device)

    def load_current(self) -> None:
        self.load(self.task_panel.model.currentText())

    def _on_model_ready(self, info: ModelInfo) -> None:
        self.task_panel.set_class_names(info.class_names)
        self.state.set_model_resolution(info.resolution)
        self.ready.emit(info)
        self.status.emit(
            f"Model {info.name}: {info.resolution} px, "
            f"{len(info.class_names)} classes, on {info.device}",
            5000,
        )

    def refresh(self) -> None:
        """Models were installed or removed (or the cache folder moved): list them again."""
        self.catalog.refresh()
        self.task_panel.set_models(self.catalog.names(), self.catalog.unusable())
        self.installed_changed.emit()

    def use(self, name: str) -> None:
        """Work with ``name`` now (selected in the task panel, which loads it)."""
        if self.state.running:
            self.error.emit("A run is in progress: change the model when it has finished.")
            return
        if self.task_panel.model.findText(name) < 0:
            self.refresh()
        why = self.task_panel.unusable.get(name)
        if why is not None:
            self.error.emit(f"{name}: {why}")
            return
        self.task_panel.model.setCurrentText(name)

    def show_dialog(self) -> ModelDialog:
        """The Models dialog; not modal, so editing goes on during a long download."""
        from .model_dialog import ModelDialog

        if self.dialog is None:
            dlg = self.dialog = ModelDialog(self.dialog_parent)
            dlg.models_changed.connect(self.refresh)
            dlg.use_model.connect(self.use)
            dlg.job_started.connect(self.job_started)
        else:
            self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def download(self, name: str) -> None:
        """Start downloading ``name`` in the Models dialog (progress, Stop, resume)."""
        self.show_dialog().download(name)

    def stop(self) -> None:
        """Stop a running transfer (the engine leaves nothing half-installed)."""
        if self.dialog is not None:
            self.dialog.stop()

"""The task panel: what to run (task, model, class, preset, quality, seed, device)."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from dgp_engine import InputError, Preset, load_preset, preset_names
from dgp_engine.taskspec import (
    DEFAULT_TASK,
    default_preset_name,
    menu_tasks,
    task_by_label,
    task_spec,
)

from .engine_session import available_devices

AUTO_CLASS = "auto"
QUALITY = [(0.02, "Draft"), (0.1, "Quick"), (0.3, "Balanced"), (1.0, "Full (paper)")]


class TaskPanel(QWidget):
    model_selected = Signal(str)
    manage_models = Signal()

    def __init__(self, model_names: list[str], device: str = "auto", parent=None):
        super().__init__(parent)
        self._custom_presets: dict[str, Preset] = {}
        self._class_names: list[str] = []
        form = QFormLayout(self)

        self.task = QComboBox()
        self.task.addItems([spec.label for spec in menu_tasks()])
        self.task.setAccessibleName("Task")
        self.task.setCurrentText(task_spec(DEFAULT_TASK).label)
        form.addRow("&Task", self.task)

        self.model = QComboBox()
        self.model.setAccessibleName("Model")
        self.model.addItems(model_names)
        self.manage = QPushButton("…")
        self.manage.setToolTip("Download or import models")
        self.manage.setAccessibleName("Download or import models")
        row = QHBoxLayout()
        row.addWidget(self.model, 1)
        row.addWidget(self.manage)
        form.addRow(self._label("&Model", self.model), row)

        self.class_edit = QLineEdit(AUTO_CLASS)
        self.class_edit.setAccessibleName("Class")
        self.class_edit.setPlaceholderText("auto, or type to search class names")
        self._completer_model = QStringListModel([AUTO_CLASS])
        completer = QCompleter(self._completer_model, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.class_edit.setCompleter(completer)
        form.addRow("C&lass", self.class_edit)

        self.preset = QComboBox()
        self.preset.setAccessibleName("Preset")
        self.preset.addItems(preset_names())
        form.addRow("&Preset", self.preset)

        self.quality = QSlider(Qt.Orientation.Horizontal)
        self.quality.setAccessibleName("Quality")
        self.quality.setRange(0, len(QUALITY) - 1)
        self.quality.setValue(1)
        self.quality.setPageStep(1)
        self.quality_label = QLabel()
        qrow = QHBoxLayout()
        qrow.addWidget(self.quality, 1)
        qrow.addWidget(self.quality_label)
        form.addRow(self._label("&Quality", self.quality), qrow)

        self.iterations = QSpinBox()
        self.iterations.setAccessibleName("Iterations")
        self.iterations.setRange(1, 100000)
        self.iterations.setToolTip("Total optimisation iterations (edits the quality scale)")
        form.addRow("&Iterations", self.iterations)

        self.seed = QSpinBox()
        self.seed.setAccessibleName("Seed")
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("S&eed", self.seed)

        self.device = QComboBox()
        self.device.setAccessibleName("Device")
        self.device.addItems(available_devices())
        if device not in available_devices():
            self.device.addItem(device)
        self.device.setCurrentText(device)
        form.addRow("&Device", self.device)

        self.task.currentTextChanged.connect(self._task_changed)
        self.preset.currentTextChanged.connect(self._update_iterations)
        self.quality.valueChanged.connect(self._update_iterations)
        self.model.currentTextChanged.connect(self.model_selected)
        self.model.currentTextChanged.connect(self._pick_default_preset)
        self.model.currentTextChanged.connect(self._registry_class_names)
        self.manage.clicked.connect(self.manage_models)
        self._task_changed(self.task.currentText())

    @staticmethod
    def _label(text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(buddy)  # Alt+letter focuses the control
        return label

    # --- presets --------------------------------------------------------------
    def add_preset(self, name: str, preset: Preset, select: bool = True) -> None:
        """A preset that is not a shipped file (tests, user TOML files)."""
        self._custom_presets[name] = preset
        if self.preset.findText(name) < 0:
            self.preset.addItem(name)
        if select:
            self.preset.setCurrentText(name)
        self._update_iterations()

    def base_preset(self) -> Preset:
        name = self.preset.currentText()
        return self._custom_presets[name] if name in self._custom_presets else load_preset(name)

    def preset_for_run(self) -> Preset:
        """The chosen preset scaled to the iterations box."""
        base = self.base_preset()
        return base.scaled(self.iterations.value() / max(1, base.total_iterations))

    def _update_iterations(self, *_args) -> None:
        factor, label = QUALITY[self.quality.value()]
        self.quality_label.setText(label)
        try:
            total = self.base_preset().total_iterations
        except Exception:  # noqa: BLE001 — a broken preset file shows in the run error
            return
        self.iterations.setValue(max(1, round(total * factor)))

    def _task_changed(self, _label: str) -> None:
        self._pick_default_preset()

    def _pick_default_preset(self, *_args) -> None:
        """The engine's default preset for this task and model (e.g. the bundled model's
        own schedule), as the CLI runs it, unless a custom preset is chosen."""
        preset = default_preset_name(self.task_name(), self.model.currentText() or None)
        if self.preset.currentText() not in self._custom_presets \
                and self.preset.findText(preset) >= 0:
            self.preset.setCurrentText(preset)
        self._update_iterations()

    # --- classes --------------------------------------------------------------
    def set_class_names(self, names: list[str]) -> None:
        self._class_names = list(names)
        self._completer_model.setStringList([AUTO_CLASS] + [f"{i}: {n}"
                                                             for i, n in enumerate(names)])
        try:
            self.class_id()
        except InputError:  # a class of the previous model
            self.class_edit.setText(AUTO_CLASS)

    def class_choices(self) -> list[str]:
        """What the class field offers: "auto", then "index: name" per class."""
        return self._completer_model.stringList()

    def _registry_class_names(self, name: str) -> None:
        """An installed model's classes at once (the loaded prior confirms them later)."""
        if not name:
            return
        from dgp_engine import DGPError, registry

        try:
            names = registry.class_names(name)
        except (DGPError, OSError):  # not a registry model (e.g. added at run time)
            return
        self.set_class_names(names)

    def class_id(self) -> int | None:
        """None for "auto"; raises InputError with a hint for unknown text."""
        text = self.class_edit.text().strip()
        if not text or text.lower() == AUTO_CLASS:
            return None
        head = text.split(":", 1)[0].strip()
        if head.isdigit():
            idx = int(head)
            if self._class_names and not 0 <= idx < len(self._class_names):
                raise InputError(f"Class {idx} is out of range for this model "
                                 f"(0..{len(self._class_names) - 1}).")
            return idx
        from dgp_engine.classes import resolve_class

        return resolve_class(text, self._class_names)

    def task_name(self) -> str:
        """The engine's name of the chosen task."""
        spec = task_by_label(self.task.currentText())
        return (spec or task_spec(DEFAULT_TASK)).name

    def set_models(self, names: list[str]) -> None:
        current = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(names)
        if current in names:
            self.model.setCurrentText(current)
        self.model.blockSignals(False)
        if self.model.currentText() != current:
            self._pick_default_preset()
            self._registry_class_names(self.model.currentText())

    def settings_dict(self) -> dict:
        return {"task": self.task.currentText(), "model": self.model.currentText(),
                "class": self.class_edit.text(), "preset": self.preset.currentText(),
                "iterations": self.iterations.value(), "seed": self.seed.value(),
                "device": self.device.currentText()}

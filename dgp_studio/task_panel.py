"""The task panel: what to run (task, model, class, preset, quality, seed, device).

Its widgets are bound both ways to a :class:`~.model.task_settings.TaskSettings`, which
holds the values and the rules (default preset, iterations from quality, classes)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QStandardItemModel
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

from dgp_engine import Preset
from dgp_engine.method.taskspec import DEFAULT_TASK, menu_tasks, task_by_label, task_spec

from .engine_session import available_devices
from .model.task_settings import AUTO_CLASS, QUALITY, TaskSettings

__all__ = ["AUTO_CLASS", "QUALITY", "TaskPanel"]


class TaskPanel(QWidget):
    model_selected = Signal(str)
    manage_models = Signal()

    def __init__(
        self,
        model_names: list[str],
        device: str = "auto",
        settings: TaskSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or TaskSettings(self)
        form = QFormLayout(self)

        self.task = QComboBox()
        self.task.addItems([spec.label for spec in menu_tasks()])
        self.task.setAccessibleName("Task")
        self.task.setCurrentText(task_spec(DEFAULT_TASK).label)
        form.addRow("&Task", self.task)
        # where the task works, and a warning when the region will come back soft
        self.region_note = QLabel("")
        self.region_note.setAccessibleName("Working region note")
        self.region_note.setWordWrap(True)
        self.region_note.setVisible(False)
        form.addRow("", self.region_note)

        self.model = QComboBox()
        self.model.setAccessibleName("Model")
        self.model.addItems(model_names)
        self.unusable: dict[str, str] = {}  # listed but not offered, and why
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
        # checked as you type: an unknown class says so at once, with classes that fit
        self.class_hint = QLabel("")
        self.class_hint.setAccessibleName("Class check")
        self.class_hint.setWordWrap(True)
        self.class_hint.setVisible(False)
        form.addRow("", self.class_hint)

        self.preset = QComboBox()
        self.preset.setAccessibleName("Preset")
        self.preset.addItems(self.settings.preset_names())
        form.addRow("&Preset", self.preset)

        self.quality = QSlider(Qt.Orientation.Horizontal)
        self.quality.setAccessibleName("Quality")
        self.quality.setRange(0, len(QUALITY) - 1)
        self.quality.setPageStep(1)
        self.quality.setToolTip(
            "A share of the preset's iterations: Draft and Quick for a first look, Full for "
            "the whole schedule. It starts at Quick, or at Full for presets that run in "
            "seconds (the bundled model's); once you move it, it stays."
        )
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

        self._bind()
        self.model.currentTextChanged.connect(self.model_selected)
        self.manage.clicked.connect(self.manage_models)

    @staticmethod
    def _label(text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(buddy)  # Alt+letter focuses the control
        return label

    # --- binding ------------------------------------------------------------------------
    def _bind(self) -> None:
        """Widgets → settings and settings → widgets; the widgets' values win at start."""
        s = self.settings
        s.task = self.task_name()
        s.model = self.model.currentText()
        s.device = self.device.currentText()
        s.class_text = self.class_edit.text()
        s.seed = self.seed.value()
        self.task.currentTextChanged.connect(self._task_edited)
        self.model.currentTextChanged.connect(self._model_edited)
        self.class_edit.textChanged.connect(self._class_edited)
        self.preset.currentTextChanged.connect(self._preset_edited)
        self.quality.valueChanged.connect(self._quality_edited)
        self.iterations.valueChanged.connect(self._iterations_edited)
        self.seed.valueChanged.connect(self._seed_edited)
        self.device.currentTextChanged.connect(self._device_edited)
        s.task_changed.connect(self._show_task)
        s.model_changed.connect(self._show_model)
        s.model_changed.connect(self._registry_class_names)
        s.class_text_changed.connect(self._show_class)
        s.preset_changed.connect(self._show_preset)
        s.presets_changed.connect(self._show_presets)
        s.quality_changed.connect(self._show_quality)
        s.iterations_changed.connect(self.iterations.setValue)
        s.seed_changed.connect(self.seed.setValue)
        s.device_changed.connect(self._show_device)
        s.class_names_changed.connect(self._show_class_names)
        self._show_preset(s.preset)
        self._show_quality(s.quality)
        self.iterations.setValue(s.iterations)

    def _task_edited(self, label: str) -> None:
        self.settings.task = self.task_name()

    def _model_edited(self, name: str) -> None:
        self.settings.model = name

    def _class_edited(self, text: str) -> None:
        self.settings.class_text = text
        self.validate_class()

    def validate_class(self) -> bool:
        """Check the class text now; an unknown one turns the field red and lists
        classes that fit (or the first ones).  True when the text is valid."""
        from dgp_engine import DGPError

        try:
            self.settings.class_id()
        except DGPError as exc:
            self.class_edit.setStyleSheet("QLineEdit { border: 1px solid #e55; }")
            self.class_hint.setText(
                f"<span style='color:#e55'>{exc}</span><br>" + self._class_suggestions()
            )
            self.class_hint.setVisible(True)
            return False
        self.class_edit.setStyleSheet("")
        self.class_hint.setVisible(False)
        return True

    def _class_suggestions(self, limit: int = 8) -> str:
        names = self.settings.class_names
        if not names:
            return "Type auto or a class number."
        words = [w for w in self.class_edit.text().lower().replace(":", " ").split() if w]
        fits = [f"{i}: {n}" for i, n in enumerate(names) if any(w in n.lower() for w in words)]
        shown = fits[:limit] or [f"{i}: {n}" for i, n in enumerate(names[:limit])]
        more = len(fits or names) - len(shown)
        head = "Classes that fit: " if fits else f"This model's {len(names)} classes: "
        return head + ", ".join(shown) + (f" … and {more} more" if more > 0 else "")

    def set_region_note(self, text: str, warning: bool = False) -> None:
        colour = "#e8a33d" if warning else "#9aa"
        self.region_note.setText(f"<span style='color:{colour}'>{text}</span>" if text else "")
        self.region_note.setToolTip(text)
        self.region_note.setVisible(bool(text))

    def _preset_edited(self, name: str) -> None:
        if name:
            self.settings.preset = name

    def _quality_edited(self, value: int) -> None:
        self.settings.choose_quality(value)

    def _iterations_edited(self, value: int) -> None:
        self.settings.iterations = value

    def _seed_edited(self, value: int) -> None:
        self.settings.seed = value

    def _device_edited(self, name: str) -> None:
        self.settings.device = name

    def _show_task(self, name: str) -> None:
        self.task.setCurrentText(task_spec(name).label)

    def _show_model(self, name: str) -> None:
        if self.model.findText(name) >= 0:
            self.model.setCurrentText(name)

    def _show_class(self, text: str) -> None:
        if self.class_edit.text() != text:
            self.class_edit.setText(text)

    def _show_preset(self, name: str) -> None:
        if self.preset.findText(name) < 0:
            self.preset.addItem(name)
        self.preset.setCurrentText(name)

    def _show_presets(self) -> None:
        for name in self.settings.preset_names():
            if self.preset.findText(name) < 0:
                self.preset.addItem(name)

    def _show_quality(self, value: int) -> None:
        self.quality.blockSignals(True)  # the model's change, not the user's choice
        self.quality.setValue(value)
        self.quality.blockSignals(False)
        self.quality_label.setText(QUALITY[value][1])

    def _show_device(self, name: str) -> None:
        if self.device.findText(name) < 0:
            self.device.addItem(name)
        self.device.setCurrentText(name)

    def _show_class_names(self, _names: list[str]) -> None:
        self._completer_model.setStringList(self.settings.class_choices())
        self.validate_class()  # the same text may be valid for one model, not another

    # --- presets (kept for callers: the settings model holds them) --------------------
    def add_preset(self, name: str, preset: Preset, select: bool = True) -> None:
        """A preset that is not a shipped file (tests, user TOML files)."""
        self.settings.add_preset(name, preset, select)

    def base_preset(self) -> Preset:
        return self.settings.base_preset()

    def preset_for_run(self) -> Preset:
        """The chosen preset scaled to the iterations box."""
        return self.settings.preset_for_run()

    # --- classes --------------------------------------------------------------
    def set_class_names(self, names: list[str]) -> None:
        self.settings.set_class_names(names)

    @property
    def _class_names(self) -> list[str]:
        return self.settings.class_names

    def class_choices(self) -> list[str]:
        """What the class field offers: "auto", then "index: name" per class."""
        return self._completer_model.stringList()

    def _registry_class_names(self, name: str) -> None:
        """An installed model's classes at once (the loaded prior confirms them later)."""
        if not name:
            return
        from dgp_engine import DGPError
        from dgp_engine.priors import registry

        try:
            names = registry.class_names(name)
        except (DGPError, OSError):  # not a registry model (e.g. added at run time)
            return
        self.set_class_names(names)

    def class_id(self) -> int | None:
        """None for "auto"; raises InputError with a hint for unknown text."""
        return self.settings.class_id()

    def task_name(self) -> str:
        """The engine's name of the chosen task."""
        spec = task_by_label(self.task.currentText())
        return (spec or task_spec(DEFAULT_TASK)).name

    def set_models(self, names: list[str], unusable: dict[str, str] | None = None) -> None:
        """The models offered; those in ``unusable`` (name → why: StyleGAN2 priors, which
        DGP does not run on yet) are listed greyed out with the reason as their tooltip,
        and never chosen."""
        unusable = unusable or {}
        current = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(names)
        items = self.model.model()
        assert isinstance(items, QStandardItemModel)  # a QComboBox's own model
        for i, name in enumerate(names):
            why = unusable.get(name)
            if why is not None:
                items.item(i).setEnabled(False)  # a QStandardItemModel's item
                self.model.setItemData(i, why, Qt.ItemDataRole.ToolTipRole)
        usable = [n for n in names if n not in unusable]
        if current in usable:
            self.model.setCurrentText(current)
        elif self.model.currentText() in unusable:
            self.model.setCurrentIndex(names.index(usable[0]) if usable else -1)
        self.model.blockSignals(False)
        self.unusable = dict(unusable)
        self.settings.model = self.model.currentText()

    def settings_dict(self) -> dict[str, Any]:
        return self.settings.as_dict()

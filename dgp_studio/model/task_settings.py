"""What to run, as an observable model: the task panel binds its widgets to it and the
run controller reads the request from it, so the rules (the engine's default preset
for a task and model, iterations from the quality scale, class names) are testable
without a window.

Each property emits ``<name>_changed`` with its new value when it changes (like
krita-ai-diffusion's ``model/properties.py``); setting the same value again is
silent, so a widget and the model can bind both ways without loops."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, Signal

from dgp_engine import InputError, Preset, load_preset, preset_names
from dgp_engine.method.taskspec import DEFAULT_TASK, default_preset_name, task_spec

T = TypeVar("T")

AUTO_CLASS = "auto"
#: The quality slider: a factor on the preset's iterations and its name ("Full": all of
#: the preset, the published schedule for a published one).
QUALITY = [(0.02, "Draft"), (0.1, "Quick"), (0.3, "Balanced"), (1.0, "Full")]
#: Where the scale starts: "Quick", or "Full" for a preset whose whole schedule is sized
#: for interactive use (``interactive = true`` in its TOML: the bundled model's presets,
#: seconds on a CPU), until the user moves the slider.
DEFAULT_QUALITY = 1
FULL_QUALITY = len(QUALITY) - 1


class Observable(Generic[T]):
    """A property that emits ``<name>_changed(value)`` on its object when it changes."""

    def __init__(self, default: T):
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        value: T = obj.__dict__.get(self.name, self.default)
        return value

    def __set__(self, obj: Any, value: T) -> None:
        if obj.__dict__.get(self.name, self.default) == value:
            return
        obj.__dict__[self.name] = value
        getattr(obj, f"{self.name}_changed").emit(value)


class TaskSettings(QObject):
    task_changed = Signal(str)  # the engine's task name (dgp_engine.method.taskspec)
    model_changed = Signal(str)
    class_text_changed = Signal(str)  # "auto", "index: name", a name or an index
    preset_changed = Signal(str)  # a shipped preset's name or a custom one
    quality_changed = Signal(int)  # index into QUALITY
    iterations_changed = Signal(int)
    seed_changed = Signal(int)
    device_changed = Signal(str)
    precision_changed = Signal(str)  # dgp_engine.method.compute.PRECISIONS (a preference)
    presets_changed = Signal()  # a custom preset was added
    class_names_changed = Signal(list)

    task = Observable(DEFAULT_TASK)
    model = Observable("")
    class_text = Observable(AUTO_CLASS)
    preset = Observable("")
    quality = Observable(DEFAULT_QUALITY)
    iterations = Observable(1)
    seed = Observable(0)
    device = Observable("auto")
    precision = Observable("auto")

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.custom_presets: dict[str, Preset] = {}
        self.class_names: list[str] = []
        self.quality_chosen = False  # the user moved the quality scale: keep it
        # the rules, before any widget listens
        self.task_changed.connect(self._pick_default_preset)
        self.model_changed.connect(self._pick_default_preset)
        self.preset_changed.connect(self._update_iterations)
        self.quality_changed.connect(self._update_iterations)
        self._pick_default_preset()

    # --- presets ----------------------------------------------------------------------
    def preset_names(self) -> list[str]:
        return preset_names() + [n for n in self.custom_presets if n not in preset_names()]

    def add_preset(self, name: str, preset: Preset, select: bool = True) -> None:
        """A preset that is not a shipped file (tests, user TOML files)."""
        self.custom_presets[name] = preset
        self.presets_changed.emit()
        if select:
            self.preset = name
        self._update_iterations()

    def base_preset(self) -> Preset:
        name = self.preset
        return self.custom_presets[name] if name in self.custom_presets else load_preset(name)

    def preset_for_run(self) -> Preset:
        """The chosen preset scaled to the iterations."""
        base = self.base_preset()
        return base.scaled(self.iterations / max(1, base.total_iterations))

    def quality_label(self) -> str:
        return QUALITY[self.quality][1]

    def choose_quality(self, value: int) -> None:
        """The user's pick on the quality scale: from now on it stays when the task or
        model changes (else the scale follows the default preset, see DEFAULT_QUALITY)."""
        self.quality_chosen = True
        self.quality = value
        self._update_iterations()  # the scale applies again, even if unchanged

    def default_quality(self) -> int:
        """Where the scale starts for the chosen preset (DEFAULT_QUALITY)."""
        try:
            interactive = self.base_preset().extra.get("interactive") is True
        except Exception:  # noqa: BLE001 — a broken preset file shows in the run error
            return DEFAULT_QUALITY
        return FULL_QUALITY if interactive else DEFAULT_QUALITY

    def _update_iterations(self, *_args: Any) -> None:
        factor = QUALITY[self.quality][0]
        try:
            total = self.base_preset().total_iterations
        except Exception:  # noqa: BLE001 — a broken preset file shows in the run error
            return
        self.iterations = max(1, round(total * factor))

    def _pick_default_preset(self, *_args: Any) -> None:
        """The engine's default preset for this task and model (e.g. the bundled model's
        own schedule), as the CLI runs it, unless a custom preset is chosen."""
        name = default_preset_name(self.task, self.model or None, self._model_family())
        if self.preset not in self.custom_presets and name in self.preset_names():
            self.preset = name
        if not self.quality_chosen:
            self.quality = self.default_quality()
        self._update_iterations()

    def _model_family(self) -> str | None:
        """The installed model's family (its presets differ: stylegan2_* for a
        StyleGAN2), None when the model is not an installed one (the bundled model, a
        folder)."""
        if not self.model:
            return None
        from dgp_engine.errors import DGPError
        from dgp_engine.priors import registry

        try:
            record = registry.installed(self.model)
        except (DGPError, OSError, ValueError):
            return None
        return record.family if record is not None else None

    # --- classes ----------------------------------------------------------------------
    def set_class_names(self, names: list[str]) -> None:
        self.class_names = list(names)
        self.class_names_changed.emit(list(self.class_names))
        try:
            self.class_id()
        except InputError:  # a class of the previous model
            self.class_text = AUTO_CLASS

    def class_choices(self) -> list[str]:
        """What the class field offers: "auto", then "index: name" per class."""
        return [AUTO_CLASS] + [f"{i}: {n}" for i, n in enumerate(self.class_names)]

    def class_id(self) -> int | None:
        """None for "auto"; raises InputError with a hint for unknown text."""
        text = self.class_text.strip()
        if not text or text.lower() == AUTO_CLASS:
            return None
        head = text.split(":", 1)[0].strip()
        if head.isdigit():
            idx = int(head)
            if self.class_names and not 0 <= idx < len(self.class_names):
                raise InputError(
                    f"Class {idx} is out of range for this model (0..{len(self.class_names) - 1})."
                )
            return idx
        from dgp_engine.priors.classes import resolve_class

        return resolve_class(text, self.class_names)

    # --- saved with every result --------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "task": task_spec(self.task).label,
            "model": self.model,
            "class": self.class_text,
            "preset": self.preset,
            "iterations": self.iterations,
            "seed": self.seed,
            "device": self.device,
            "precision": self.precision,
        }

"""Reconstruction presets: per-stage schedules under the reference code's names.

Presets are data: TOML files in ``resources/presets`` (and any file a user
points to).  ``ft_num`` entries may be the string ``"all"`` (every trainable
generator group, resolved against the model at run time).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import PresetError
from ..system.fileio import read_small_file

_PER_STAGE = (
    "iterations",
    "ft_num",
    "lr_ratio",
    "G_lrs",
    "z_lrs",
    "w_D_loss",
    "w_mse",
    "use_in",
    "ftr_num",
)


@dataclass(frozen=True)
class Preset:
    iterations: tuple[int, ...]
    ft_num: tuple[int | str, ...]
    lr_ratio: tuple[float, ...]
    G_lrs: tuple[float, ...]
    z_lrs: tuple[float, ...]
    w_D_loss: tuple[float, ...]
    w_mse: tuple[float, ...]
    use_in: tuple[bool, ...]
    ftr_num: tuple[int, ...]
    w_nll: float = 0.02
    select_num: int = 500
    sample_std: float = 0.5
    update_embed: bool = False
    update_G: bool = True
    stop_mse: float = 0.0
    warm_up: int = 0
    name: str = "custom"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preset:
        """Build from a dict of the reference's names; unknown keys are ignored.
        A scalar given for a per-stage field is repeated over all stages."""
        if not isinstance(d, dict) or "iterations" not in d:
            raise PresetError("A preset needs at least 'iterations' (a list, one entry per stage).")
        iters = d["iterations"]
        iters = list(iters) if isinstance(iters, (list, tuple)) else [iters]
        n = len(iters)
        if n == 0:
            raise PresetError("The preset has no stages: 'iterations' is empty.")
        defaults = {
            "ft_num": "all",
            "lr_ratio": 1.0,
            "G_lrs": 0.0,
            "z_lrs": 0.0,
            "w_D_loss": 1.0,
            "w_mse": 0.0,
            "use_in": False,
            "ftr_num": 8,
        }
        kw: dict[str, Any] = {}
        for key in _PER_STAGE:
            value = d.get(key, defaults.get(key))
            seq = list(value) if isinstance(value, (list, tuple)) else [value] * n
            if len(seq) != n:
                raise PresetError(
                    f"Preset field '{key}' has {len(seq)} entries but "
                    f"'iterations' has {n} stages; give one per stage."
                )
            kw[key] = tuple(seq)
        try:
            kw["iterations"] = tuple(_nonneg_int(v, "iterations") for v in kw["iterations"])
            kw["ft_num"] = tuple(
                v if v == "all" else _nonneg_int(v, "ft_num") for v in kw["ft_num"]
            )
            kw["ftr_num"] = tuple(max(1, _nonneg_int(v, "ftr_num")) for v in kw["ftr_num"])
            kw["use_in"] = tuple(_boolean(v, "use_in") for v in kw["use_in"])
            for key in ("lr_ratio", "G_lrs", "z_lrs", "w_D_loss", "w_mse"):
                kw[key] = tuple(_nonneg_float(v, key) for v in kw[key])
            scalars = {
                f.name: f
                for f in dataclasses.fields(cls)
                if f.name not in _PER_STAGE and f.name != "extra"
            }
            for key, f in scalars.items():
                if key in d:
                    default: Any = f.default  # every scalar preset field has one
                    kind = type(default)
                    if kind is bool:
                        kw[key] = _boolean(d[key], key)
                    elif kind is int:
                        kw[key] = _nonneg_int(d[key], key)
                    elif kind is float:
                        kw[key] = _nonneg_float(d[key], key)
                    else:
                        kw[key] = str(d[key])
        except (TypeError, ValueError) as exc:
            raise PresetError(f"Preset value is invalid: {exc}") from exc
        if sum(kw["iterations"]) == 0:
            raise PresetError("The preset runs 0 iterations in total; give at least one.")
        kw["extra"] = {
            k: v for k, v in d.items() if k not in {f.name for f in dataclasses.fields(cls)}
        }
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @property
    def num_stages(self) -> int:
        return len(self.iterations)

    @property
    def total_iterations(self) -> int:
        return sum(self.iterations)

    def scaled(self, factor: float) -> Preset:
        """The same schedule with every stage's iteration count scaled (≥ 1 each)."""
        if not math.isfinite(factor) or not all(math.isfinite(i * factor) for i in self.iterations):
            raise PresetError(
                f"The iteration scale must give a finite count of iterations, not {factor}."
            )
        iters = tuple(max(1, round(i * factor)) if i else 0 for i in self.iterations)
        return dataclasses.replace(self, iterations=iters)

    def replace(self, **changes: Any) -> Preset:
        """The preset with ``changes``; its other keys (``extra``: a StyleGAN2 preset's
        family settings, the task) kept."""
        return Preset.from_dict({**self.extra, **self.to_dict(), **changes})

    def ft_groups(self, stage: int, num_groups: int) -> int:
        v = self.ft_num[stage]
        return num_groups if v == "all" else min(int(v), num_groups)


def _nonneg_int(v: Any, name: str) -> int:
    # inf and nan (TOML writes them) are floats int() cannot take: refused, not an OverflowError
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, float))
        or not math.isfinite(v)
        or float(v) != int(v)
        or v < 0
    ):
        raise ValueError(f"{name} must be a whole number ≥ 0, got {v!r}")
    return int(v)


def _nonneg_float(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {x!r}")
    return x


def _boolean(v: Any, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ValueError(f"{name} must be true or false, got {v!r}")


def preset_names() -> list[str]:
    folder = resources.files("dgp_resources.presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name_or_path: str | Path) -> Preset:
    """A shipped preset by name (e.g. ``"colorization"``) or a TOML file path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():  # a device or FIFO is refused, not searched
        label = path.stem
        try:
            text = read_small_file(path).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PresetError(
                f"Preset {label!r} is not valid TOML: {path} is not UTF-8 text (byte {exc.start})."
            ) from None
        except OSError as exc:
            raise PresetError(f"Could not read the preset {path}: {exc.strerror or exc}.") from None
    else:
        res = resources.files("dgp_resources.presets").joinpath(f"{name_or_path}.toml")
        if not res.is_file():
            raise PresetError(
                f"Unknown preset {str(name_or_path)!r}. Shipped presets: "
                f"{', '.join(preset_names())}; or give a .toml file path."
            )
        text, label = res.read_text(encoding="utf-8"), str(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"Preset {label!r} is not valid TOML: {exc}") from exc
    data.setdefault("name", label)
    return Preset.from_dict(data)

"""What a batch job is made of: the inputs of a folder, their masks, their output names.

    settings = BatchSettings(task="colorize", input_dir=..., output_dir=..., model="bundled")
    plan = plan_batch(settings)          # InputError / OutputError for a bad folder
    for item in plan.items: item.rel, item.output, item.mask

Inputs are every picture under ``input_dir`` (sub-folders included, hidden files and
folders left out), in a stable order.  Outputs mirror them under ``output_dir``: the
same relative path and name, in the input's format when it can be written, else PNG.
With ``save_state`` the reconstruction goes beside the output as ``<input name>.dgp``.

Masks (inpaint, hybrid): one shared mask file (``mask``), or one per picture by a
naming rule — ``<stem><mask_suffix>.<any picture type>`` beside the picture (default
suffix ``_mask``; such files are masks, not inputs), or, with ``masks_dir``, the file
of the same relative path and stem under that folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError
from ..files.photos import FORMATS
from ..method.compute import check_precision
from ..method.loop import check_seed
from ..method.taskspec import TaskSpec, task_spec
from ..system.fileio import file_kind, name_too_long

# Picture types the batch picks up (Pillow reads them all); outputs use FORMATS.
INPUT_EXTENSIONS = frozenset(FORMATS) | {".gif", ".jfif", ".jpe", ".tga", ".ppm", ".pgm"}
DEFAULT_MASK_SUFFIX = "_mask"
# Batch bookkeeping inside the output folder (journal, lock, thumbnails).
WORK_DIR = ".dgp-batch"
CONTACT_SHEET = "contact-sheet.html"


@dataclass(frozen=True)
class BatchSettings:
    """One batch job: what to run on which folder.  The fields in :meth:`result_settings`
    decide the pixels and are checked on resume; the others only say how to run."""

    task: str
    input_dir: Path
    output_dir: Path
    model: str = "bundled"
    preset: str | None = None
    iterations_scale: float | None = None
    class_spec: str = "auto"
    seed: int = 0
    exact: bool = False
    factor: int | None = None
    feather: int | None = None
    mask: Path | None = None  # one mask for every picture
    masks_dir: Path | None = None  # masks by relative path under this folder
    mask_suffix: str = DEFAULT_MASK_SUFFIX
    save_state: bool = False
    # colorize: also pictures already in colour (their true colours are replaced); by
    # default they are skipped with the reason (postprocess.colour_check)
    recolor: bool = False
    # how to run (not checked on resume: a picture that ran out of memory can be retried
    # with another device or precision without redoing the others)
    device: str | None = None
    threads: int | None = None
    precision: str = "auto"  # one of dgp_engine.method.compute.PRECISIONS
    overwrite: bool = False

    def __post_init__(self) -> None:
        spec = task_spec(self.task)  # the batch's one lookup of its task by name
        object.__setattr__(self, "task", spec.name)
        object.__setattr__(self, "_spec", spec)
        for name in ("input_dir", "output_dir", "mask", "masks_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser().absolute())
        # the name, and whether it goes with exact, checked now; what a worker's own device
        # cannot compute in stops that worker
        object.__setattr__(self, "precision", check_precision(self.precision, self.exact))
        check_seed(self.seed)  # every picture would fail on it: refused before any work
        if self.recolor and self.task != "colorize":
            raise InputError(
                "--recolor only applies to colorize (it colorizes photos that "
                "are already in colour)."
            )

    @property
    def spec(self) -> TaskSpec:
        """The task (looked up once, at construction)."""
        spec: TaskSpec = self.__dict__["_spec"]
        return spec

    @property
    def uses_mask(self) -> bool:
        return self.spec.uses_mask

    def result_settings(self, model_id: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
        """Everything that decides an output, as plain JSON data (the journal keeps it).
        ``recolor`` is there only when set, so a job journalled before it existed resumes."""
        spec = self.spec
        return ({"recolor": True} if self.recolor else {}) | {
            "task": self.task,
            "model": model_id,
            "preset": preset,
            "class": str(self.class_spec),
            "seed": int(self.seed),
            "exact": bool(self.exact),
            "factor": self.factor if spec.new_picture else None,
            "feather": self.feather,
            "mask": (
                str(self.mask)
                if self.mask
                else f"{self.masks_dir}/<name>"
                if self.masks_dir
                else f"<name>{self.mask_suffix}"
            )
            if spec.uses_mask
            else None,
            "save_state": bool(self.save_state),
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatchSettings:
        return cls(**d)


def settings_digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def describe_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old → new`` for every setting that differs (nested dicts flattened)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += describe_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} → {b!r}")
    return out


@dataclass
class BatchItem:
    rel: str  # input path relative to the input folder, '/'-separated
    source: Path  # the input file
    output: Path  # where the result goes
    state: Path | None = None  # where the reconstruction goes (--save-state)
    mask: Path | None = None  # its mask file (inpaint, hybrid)
    skip_reason: str | None = None  # decided at planning: not run (e.g. no mask)


@dataclass
class BatchPlan:
    items: list[BatchItem]
    ignored: list[str] = field(default_factory=list)  # files that are not pictures

    def notes(self) -> list[str]:
        if not self.ignored:
            return []
        shown = ", ".join(self.ignored[:5]) + (" …" if len(self.ignored) > 5 else "")
        return [f"{len(self.ignored)} file(s) that are not pictures left out: {shown}"]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_folders(settings: BatchSettings) -> None:
    """Refuse folders that cannot work, before anything is written."""
    src, out = settings.input_dir, settings.output_dir
    if not src.exists():
        raise InputError(f"The input folder {src} does not exist.")
    if not src.is_dir():
        raise InputError(f"{src} is a file; give the folder of pictures to restore.")
    if _inside(out, src):
        raise OutputError(
            f"The output folder {out} is inside the input folder {src}: its "
            "results would be taken for inputs. Choose a folder outside it."
        )
    if _inside(src, out):
        raise OutputError(
            f"The input folder {src} is inside the output folder {out}: results "
            "and the job's own files would be written among other files "
            "there. Choose an output folder that does not contain the input "
            "folder."
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; give a folder for the results.")
    if settings.masks_dir is not None and not settings.masks_dir.is_dir():
        raise InputError(f"The mask folder {settings.masks_dir} does not exist.")
    if settings.mask is not None and not settings.mask.is_file():
        raise InputError(
            f"Mask file {settings.mask} "
            + (
                "is not a picture file (a folder, device or pipe)."
                if settings.mask.exists()
                else "does not exist."
            )
        )
    if settings.mask is not None and settings.masks_dir is not None:
        raise InputError("Give either one mask for all pictures or a mask folder, not both.")


def prepare_output_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Could not create the output folder {out}: {exc.strerror or exc}."
        ) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"No permission to write into the output folder {out}.")


def output_problem(path: Path, out_dir: Path) -> str | None:
    """Why the output ``path`` (under ``out_dir``) cannot be written, found before any work
    is spent on it — a name too long for the file system, a file where one of its
    sub-folders must go, a folder that takes no new files, a folder or device under its
    name — else None."""
    too_long = name_too_long(path)
    if too_long:
        return too_long
    folder = out_dir
    for part in path.parent.relative_to(out_dir).parts:
        folder = folder / part
        if folder.is_dir():
            continue
        if os.path.lexists(folder):
            return (
                f"{folder.relative_to(out_dir).as_posix()} in the output folder is a "
                "file where a folder of results must go"
            )
        folder = folder.parent  # missing: created when the result is written
        break
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in {folder}"
    if path.is_dir():
        return f"{path.relative_to(out_dir).as_posix()} in the output folder is a folder"
    if os.path.lexists(path) and path.exists() and not path.is_file():
        return (
            f"{path.relative_to(out_dir).as_posix()} in the output folder is not a "
            "regular file (a device, pipe or socket)"
        )
    return None


def output_name(name: str) -> str:
    """The output file name for an input called ``name``: the same, or .png when the
    input's type cannot be written."""
    suffix = Path(name).suffix.lower()
    return name if suffix in FORMATS else f"{Path(name).stem}.png"


def not_a_picture_file(path: Path) -> str | None:
    """Why ``path`` is not read at all — not a regular file (a device, FIFO or socket; a
    symlink is judged by its target), or no longer there — else None."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({file_kind(mode)}): only picture files are read"
    return None


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return found


def _mask_index(files: list[Path], src: Path, suffix: str) -> dict[tuple[Path, str], Path]:
    """Mask files beside the pictures by the naming rule: (folder, picture stem) → mask."""
    index: dict[tuple[Path, str], Path] = {}
    if not suffix:
        return index
    for f in files:
        if f.suffix.lower() in INPUT_EXTENSIONS and f.stem.endswith(suffix):
            index[(f.parent, f.stem[: -len(suffix)])] = f
    return index


def _find_in(folder: Path, rel: str) -> Path | None:
    """The picture of ``rel``'s stem (any picture type) under ``folder``."""
    stem = Path(rel).with_suffix("")
    base = folder / stem
    if not base.parent.is_dir():
        return None
    for f in sorted(base.parent.iterdir()):
        if f.stem == base.name and f.suffix.lower() in INPUT_EXTENSIONS and f.is_file():
            return f
    return None


def plan_batch(settings: BatchSettings) -> BatchPlan:
    """Find the inputs and decide every output name; refuses a folder without pictures."""
    check_folders(settings)
    src, out = settings.input_dir, settings.output_dir
    files = _walk(src)
    if not files:
        raise InputError(f"The input folder {src} is empty: there is nothing to restore.")
    spec = settings.spec
    per_picture_masks = spec.uses_mask and settings.mask is None and settings.masks_dir is None
    beside = _mask_index(files, src, settings.mask_suffix) if per_picture_masks else {}
    mask_files = set(beside.values())
    shared = settings.mask.resolve() if settings.mask else None
    items: list[BatchItem] = []
    ignored: list[str] = []
    taken: dict[Path, str] = {}
    for f in files:
        rel = f.relative_to(src).as_posix()
        if f.suffix.lower() not in INPUT_EXTENSIONS:
            ignored.append(rel)
            continue
        if f in mask_files or (shared is not None and f.resolve() == shared):
            continue
        rel_out = Path(rel).with_name(output_name(Path(rel).name))
        item = BatchItem(
            rel=rel,
            source=f,
            output=out / rel_out,
            state=(out / f"{rel}.dgp") if settings.save_state else None,
        )
        item.skip_reason = not_a_picture_file(f)
        if item.output in taken and item.skip_reason is None:
            item.skip_reason = (
                f"its output name {rel_out.as_posix()} is also the output of "
                f"{taken[item.output]}; rename one of them"
            )
        if item.skip_reason is None:
            taken.setdefault(item.output, rel)
        if spec.uses_mask:
            if settings.mask is not None:
                item.mask = settings.mask
            elif settings.masks_dir is not None:
                item.mask = _find_in(settings.masks_dir, rel)
            else:
                item.mask = beside.get((f.parent, f.stem))
            if item.mask is None and spec.needs_mask and item.skip_reason is None:
                where = (
                    f"{settings.masks_dir}/{Path(rel).with_suffix('.png').as_posix()}"
                    if settings.masks_dir
                    else f"{Path(rel).stem}{settings.mask_suffix}.png beside it"
                )
                item.skip_reason = f"no mask found (expected {where})"
        items.append(item)
    if not items:
        shown = ", ".join(ignored[:5]) + (" …" if len(ignored) > 5 else "")
        raise InputError(
            f"The input folder {src} holds no pictures: {len(ignored)} other "
            f"file(s) ({shown}). Pictures are "
            f"{' '.join(sorted(INPUT_EXTENSIONS))} files."
        )
    return BatchPlan(items, ignored)


def model_family(folder: Path) -> str | None:
    """The family of the model in ``folder`` (``stylegan2``, ``biggan-pytorch`` …), None
    when its config cannot be read (loading the model says why)."""
    from ..errors import DGPError
    from ..priors.checkpoint import read_prior_config
    from ..priors.family import family_of

    try:
        return family_of(read_prior_config(folder))
    except (DGPError, OSError):
        return None


def model_identity(model: str) -> tuple[dict[str, Any], Path]:
    """The model as the journal records it (its name and a digest of its config, so a
    model folder replaced under the same name counts as a change) and its folder."""
    from ..priors import registry

    path = Path(model).expanduser()
    if path.is_dir():
        folder, name = path.absolute(), path.name
    else:
        folder, name = registry.resolve_model_dir(str(model))
    config = folder / "config.json"
    digest = hashlib.sha256(config.read_bytes()).hexdigest()[:16] if config.is_file() else None
    return {"name": name, "source": str(model), "config": digest}, folder

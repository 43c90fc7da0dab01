"""Model registry: which GAN priors exist, where their weights come from, which are installed.

Three layers of data, read fresh on every call (they are small):

* ``resources/models/registry.toml`` (shipped): the known models — ``bundled`` and the
  paper's ImageNet BigGANs — with architecture, class list, native resolution and a
  Hugging Face Hub source whose repository the user fills in.
* ``<config dir>/models.toml`` (the user's): per-model source overrides (repo id,
  revision, endpoint, file names, SHA-256), extra downloadable models, and the
  SHA-256 of each file as first downloaded (trust on first use).
* ``<cache dir>/models/<name>/model.json``: one install record per pulled or imported
  model, written last when the model folder is complete, so a folder without it is
  never treated as installed.

Fetching and converting weights lives in :mod:`dgp_engine.priors.hub`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import CheckpointError, DGPError, RegistryError
from ..models import BigGANConfig
from ..models.stylegan2 import StyleGAN2Config
from ..system import paths
from ..system.fileio import atomic_write_text
from .family import (
    STYLEGAN2,
    PriorConfig,
    check_alignment,
    config_from_dict,
    config_table,
    family_of,
    n_classes,
    recorded_alignment,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

ROLES = ("G", "D")
#: File names of converted weights inside an installed model folder.
WEIGHT_FILES = {"G": "G_ema.safetensors", "D": "D.safetensors"}
RECORD_FILE = "model.json"
USER_FILE = "models.toml"
RECORD_FORMAT = 1
BUNDLED = "bundled"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SOURCE_FIELDS = ("endpoint", "repo_id", "revision", "G", "D", "G_sha256", "D_sha256", "format")
#: Checkpoint layouts a source can serve (converted to ours on install). A StyleGAN2
#: entry's source serves StudioGAN's StyleGAN2 files ("studiogan").
SOURCE_FORMATS = ("biggan-pytorch", "studiogan")


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class HubSource:
    """Where a model's two checkpoint files live on a Hugging Face Hub (or a mirror)."""

    repo_id: str = ""
    revision: str = "main"
    endpoint: str = ""  # empty: huggingface.co (or HF_ENDPOINT)
    G: str = "G_ema.pth"
    D: str = "D.pth"
    G_sha256: str = ""  # empty: unknown; the first download's hash is recorded
    D_sha256: str = ""
    format: str = "biggan-pytorch"  # or "studiogan" (converted on install)

    @property
    def configured(self) -> bool:
        return bool(self.repo_id.strip())

    def filename(self, role: str) -> str:
        return self.G if role == "G" else self.D

    def sha256(self, role: str) -> str:
        return (self.G_sha256 if role == "G" else self.D_sha256).strip().lower()

    @property
    def has_patterns(self) -> bool:
        """G/D name files by glob patterns, resolved by listing the repository."""
        return any(c in self.G + self.D for c in "*?[")

    def pin_key(self) -> str:
        """Identity of a pattern source, used to remember what its first pull resolved."""
        host = self.endpoint.rstrip("/") or "hf"
        return f"{host}|{self.repo_id}@{self.revision}|{self.G}|{self.D}"

    def key(self, role: str) -> str:
        """Identity of one remote file, used to remember the SHA-256 first seen for it."""
        host = self.endpoint.rstrip("/") or "hf"
        return f"{host}|{self.repo_id}@{self.revision}/{self.filename(role)}"

    def describe(self) -> str:
        if not self.configured:
            return "no download source set"
        where = f"{self.endpoint.rstrip('/')}/" if self.endpoint else "hf:"
        return f"{where}{self.repo_id}@{self.revision}"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelEntry:
    """One model the registry knows, with the user's settings applied."""

    name: str
    title: str
    kind: str  # "bundled" | "download" | "imported"
    classes: str = "imagenet"  # "imagenet" or a file name inside the model folder
    #: The BigGAN architecture; None for "bundled" before it is installed and for
    #: StyleGAN2 models (whose architecture is ``stylegan2``).
    config: BigGANConfig | None = None
    source: HubSource | None = None
    expect: dict[str, int] = field(default_factory=dict)  # g_keys, d_keys, g_elements, ...
    user_defined: bool = False
    licence: str = ""
    about: str = ""  # what the model is good for, in one sentence
    class_names: tuple[str, ...] = ()  # inline class list (written as classes.txt)
    listed_bytes: int | None = None  # what a pull transfers (registry data)
    stylegan2: StyleGAN2Config | None = None  # the architecture of a StyleGAN2 model
    alignment: str = ""  # "ffhq" for a face prior (docs/method.md#aligned-faces), else ""

    @property
    def architecture(self) -> PriorConfig | None:
        """The model's architecture, whichever family it is."""
        return self.stylegan2 if self.stylegan2 is not None else self.config

    @property
    def family(self) -> str:
        """``biggan-pytorch``, ``studiogan`` (BigGANs) or ``stylegan2``."""
        arch = self.architecture
        return family_of(arch) if arch is not None else "biggan-pytorch"

    @property
    def n_classes(self) -> int | None:
        """Classes of the generator (0: unconditional); None when unknown."""
        arch = self.architecture
        return n_classes(arch) if arch is not None else None

    @property
    def resolution(self) -> int | None:
        arch = self.architecture
        return arch.resolution if arch is not None else None

    @property
    def download_bytes(self) -> int | None:
        """What a pull transfers (the registry's figure, else the two float32
        checkpoints' rough size), for the UI."""
        if self.listed_bytes:
            return self.listed_bytes
        if "g_elements" in self.expect and "d_elements" in self.expect:
            return 4 * (self.expect["g_elements"] + self.expect["d_elements"])
        return None

    @property
    def installed_bytes(self) -> int | None:
        """Rough size once installed (StudioGAN weights are kept as float16)."""
        if "g_elements" in self.expect and "d_elements" in self.expect:
            width = (
                2
                if self.source is not None
                and self.source.format == "studiogan"
                or self.stylegan2 is not None
                else 4
            )
            return width * (self.expect["g_elements"] + self.expect["d_elements"])
        return None


@dataclass(frozen=True)
class InstalledModel:
    """A complete model folder in the user cache (or the bundled one)."""

    name: str
    folder: Path
    config: PriorConfig
    record: dict[str, Any]

    @property
    def family(self) -> str:
        return family_of(self.config)

    @property
    def licence(self) -> str:
        """The terms recorded at install (e.g. NVIDIA's for its pickles); "" if none."""
        return str(self.record.get("licence") or "")

    @property
    def alignment(self) -> str:
        """ "ffhq" when the model is a face prior, recorded at install; "" otherwise (and
        for every record written before face priors)."""
        return recorded_alignment(self.record)

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        files: dict[str, dict[str, Any]] = self.record.get("files", {})
        return files

    @property
    def origin(self) -> dict[str, Any]:
        origin: dict[str, Any] = self.record.get("origin", {})
        return origin

    @property
    def size_bytes(self) -> int:
        return sum(int(f.get("size", 0)) for f in self.files.values())

    @property
    def damaged(self) -> bool:
        """The install record is unreadable or of no known format (a half-written or
        hand-edited ``model.json``): the folder cannot be trusted to hold this model."""
        return self.record.get("format") != RECORD_FORMAT or not isinstance(
            self.record.get("files"), dict
        )


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``dgp models list``."""

    name: str
    title: str
    kind: str
    state: str  # "bundled" | "installed" | "not installed" | "missing" | "damaged"
    resolution: int | None
    folder: Path | None
    source: str
    size_bytes: int | None
    licence: str = ""
    about: str = ""
    download_bytes: int | None = None  # what a pull transfers (None: unknown / no source)
    downloadable: bool = False  # has a Hub source that `pull` can use
    family: str = "biggan-pytorch"  # biggan-pytorch, studiogan (BigGANs) or stylegan2
    alignment: str = ""  # "ffhq": a face prior, restored on aligned faces; "" otherwise

    @property
    def face(self) -> str:
        """The face prior's kind in words ("faces, FFHQ-aligned"), "" for other priors."""
        return f"faces, {self.alignment.upper()}-aligned" if self.alignment else ""

    @property
    def usable(self) -> bool:
        return self.state in ("bundled", "installed")


# --------------------------------------------------------------------------- small helpers


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"{name!r} is not a valid model name: use 1-64 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit."
        )
    return name


def bundled_model_dir() -> Path:
    # One name per joinpath: Python 3.10's Traversable.joinpath takes a single child.
    return Path(str(resources.files("dgp_resources").joinpath("models").joinpath(BUNDLED)))


def model_dir(name: str) -> Path:
    """Where a pulled/imported model lives (whether or not it is installed)."""
    return paths.models_dir() / validate_name(name)


def user_file() -> Path:
    return paths.config_dir() / USER_FILE


def downloads_dir() -> Path:
    """Hugging Face cache layout for files being pulled (emptied after conversion)."""
    return paths.cache_dir() / "downloads"


# --------------------------------------------------------------------------- shipped + user data


def _shipped() -> dict[str, Any]:
    text = (
        resources.files("dgp_resources")
        .joinpath("models")
        .joinpath("registry.toml")
        .read_text("utf-8")
    )
    data: dict[str, Any] = tomllib.loads(text)
    if data.get("schema") != 1:
        raise RegistryError(
            "resources/models/registry.toml has an unknown schema; reinstall DGP Studio."
        )
    models: dict[str, Any] = data.get("models", {})
    return models


def _read_user() -> dict[str, Any]:
    file = user_file()
    if not file.is_file():
        return {}
    try:
        data: dict[str, Any] = tomllib.loads(file.read_text(encoding="utf-8"))
        return data
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(
            f"{file} could not be read ({exc}): fix it or delete it to return to the defaults."
        ) from exc


def _write_user(data: dict[str, Any]) -> None:
    user_file().parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        user_file(),
        "# Model sources and recorded checksums of DGP Studio "
        "(edit with `dgp models source`).\n" + tomli_w.dumps(data),
    )


def _source_from(
    table: dict[str, Any] | None, base: HubSource | None = None, where: str = ""
) -> HubSource:
    values = (base or HubSource()).to_dict()
    for key, value in (table or {}).items():
        if key not in _SOURCE_FIELDS:
            raise RegistryError(
                f"{where}: unknown source setting {key!r} (known: {', '.join(_SOURCE_FIELDS)})."
            )
        if not isinstance(value, str):
            raise RegistryError(f"{where}: source setting {key} must be a string.")
        values[key] = value.strip()
    if values["format"] not in SOURCE_FORMATS:
        raise RegistryError(f"{where}: source format must be one of {', '.join(SOURCE_FORMATS)}.")
    for role in ROLES:
        sha = values[f"{role}_sha256"].lower()
        if sha and not _SHA256.match(sha):
            raise RegistryError(f"{where}: {role}_sha256 must be 64 hexadecimal digits or empty.")
        values[f"{role}_sha256"] = sha
    return HubSource(**values)


def _config_from(table: Any, where: str) -> PriorConfig:
    """A BigGAN config (BigGAN-PyTorch flag names), or a StyleGAN2 one when the table
    says ``family = "stylegan2"`` (StyleGAN2Config's names)."""
    if not isinstance(table, dict):
        raise RegistryError(f"{where} needs a config table with the BigGAN-PyTorch settings.")
    try:
        return config_from_dict(table)
    except CheckpointError as exc:
        raise RegistryError(f"{where}: {exc}") from exc


def _bundled_config() -> BigGANConfig | None:
    folder = bundled_model_dir()
    if not (folder / "config.json").is_file():
        return None
    from .checkpoint import read_config

    try:
        return read_config(folder)
    except CheckpointError as exc:
        log.warning("bundled model config unreadable: %s", exc)
        return None


def _entry_from(
    name: str, table: dict[str, Any], user: dict[str, Any], where: str, user_defined: bool = False
) -> ModelEntry:
    kind = table.get("kind", "download")
    config: BigGANConfig | None = None
    style: StyleGAN2Config | None = None
    if kind == BUNDLED:
        config = _bundled_config()
    else:
        arch = _config_from(table.get("config"), where)
        res = table.get("resolution")
        if res is not None and res != arch.resolution:
            raise RegistryError(
                f"{where}: resolution {res} disagrees with its config ({arch.resolution})."
            )
        if isinstance(arch, StyleGAN2Config):
            style = arch
        else:
            config = arch
    source = None
    if kind != BUNDLED:
        source = _source_from(table.get("source"), where=where)
        override = (user.get("models", {}).get(name) or {}).get("source")
        if override and not user_defined:
            source = _source_from(override, base=source, where=f"{user_file()} [{name}]")
        if style is not None and source.format != "studiogan":
            raise RegistryError(
                f"{where}: a StyleGAN2 model is downloaded as StudioGAN's "
                'files: its source format must be "studiogan".'
            )
    classes_of = (
        style.c_dim if style is not None else (config.n_classes if config is not None else None)
    )
    expect = {
        k: int(v) for k, v in table.items() if k in ("g_keys", "d_keys", "g_elements", "d_elements")
    }
    names = table.get("class_names") or ()
    if names and (
        not isinstance(names, list)
        or not all(isinstance(n, str) for n in names)
        or (classes_of is not None and len(names) != classes_of)
    ):
        raise RegistryError(f"{where}: class_names must list one name per class.")
    listed = table.get("download_bytes")
    return ModelEntry(
        name=name,
        title=str(table.get("title", name)),
        kind=kind,
        classes=str(table.get("classes", "classes.txt" if names else "imagenet")),
        config=config,
        source=source,
        expect=expect,
        user_defined=user_defined,
        licence=str(table.get("licence", "")),
        about=str(table.get("about", "")),
        class_names=tuple(names),
        listed_bytes=int(listed) if listed else None,
        stylegan2=style,
        alignment=_table_alignment(table, where),
    )


def _table_alignment(table: dict[str, Any], where: str) -> str:
    try:
        return check_alignment(table.get("alignment"))
    except CheckpointError as exc:
        raise RegistryError(f"{where}: {exc}") from None


def entries(strict: str | None = None) -> dict[str, ModelEntry]:
    """Every known model: shipped ones, the user's own downloadable ones, and models
    imported under a new name (from their install records). A broken entry of the user's
    is skipped with a warning, unless its name is ``strict`` (then its error is raised)."""
    user = _read_user()
    out: dict[str, ModelEntry] = {}
    for name, table in _shipped().items():
        out[name] = _entry_from(name, table, user, f"registry.toml [models.{name}]")
    for name, table in (user.get("models") or {}).items():
        if name in out:
            continue  # only source overrides for shipped models
        try:
            validate_name(name)
            out[name] = _entry_from(
                name, table, user, f"{user_file()} [models.{name}]", user_defined=True
            )
        except RegistryError as exc:  # one bad entry must not hide every other model
            if strict == name:
                raise
            log.warning("ignoring model %s: %s", name, exc)
    for installed in _installed_records():
        if installed.name not in out:
            arch = installed.config
            out[installed.name] = ModelEntry(
                name=installed.name,
                title=installed.record.get("title") or installed.name,
                kind="imported",
                classes=installed.record.get("classes", "imagenet"),
                config=arch if isinstance(arch, BigGANConfig) else None,
                stylegan2=arch if isinstance(arch, StyleGAN2Config) else None,
                user_defined=True,
                licence=installed.licence,
                alignment=installed.alignment,
            )
    return out


def get_entry(name: str) -> ModelEntry:
    known = entries(strict=name)
    if name not in known:
        raise RegistryError(
            f"{name!r} is not a known model: use one of {', '.join(known)} "
            "(`dgp models list`), or import files under a new name."
        )
    return known[name]


def _no_source(entry: ModelEntry) -> RegistryError:
    if entry.kind == BUNDLED:
        return RegistryError(f"{entry.name} ships with DGP Studio and has no download source.")
    return RegistryError(
        f"{entry.name} was imported from files and has no download source: "
        "import it again to update it."
    )


def source_settings(name: str) -> HubSource:
    entry = get_entry(name)
    if entry.source is None:
        raise _no_source(entry)
    return entry.source


def set_source(name: str, **changes: str | None) -> HubSource:
    """Change where ``name`` is downloaded from (what the settings dialog edits).

    Keys: endpoint, repo_id, revision, G, D, G_sha256, D_sha256. Returns the effective
    source. An empty string restores the shipped default of that key; None leaves it."""
    entry = get_entry(name)
    if entry.source is None:
        raise _no_source(entry)
    user = _read_user()
    models = user.setdefault("models", {})
    table = models.setdefault(name, {})
    target = table.setdefault("source", {})
    for key, value in changes.items():
        if key not in _SOURCE_FIELDS:
            raise RegistryError(
                f"unknown source setting {key!r} (known: {', '.join(_SOURCE_FIELDS)})."
            )
        if value is None:
            continue
        if str(value).strip() == "":
            target.pop(key, None)  # back to the default
        else:
            target[key] = str(value).strip()
    _source_from(target, where=f"{user_file()} [{name}]")  # validate before writing
    if not target and not entry.user_defined:
        table.pop("source", None)
        if not table:
            models.pop(name)
    _write_user(user)
    return source_settings(name)


def reset_source(name: str) -> HubSource:
    """Forget the user's source overrides of a shipped model."""
    entry = get_entry(name)
    if entry.user_defined:
        raise RegistryError(f"{name} is your own model; edit or remove it in {user_file()}.")
    user = _read_user()
    (user.get("models") or {}).pop(name, None)
    _write_user(user)
    return source_settings(name)


def add_model(
    name: str, config: PriorConfig, source: HubSource, title: str = "", classes: str = "imagenet"
) -> ModelEntry:
    """Register a downloadable model of the user's own (stored in the user's models.toml);
    a StyleGAN2 one is downloaded as StudioGAN's files (``source.format`` "studiogan")."""
    validate_name(name)
    if name in entries() and not get_entry(name).user_defined:
        raise RegistryError(f"{name} is a built-in model name; choose another name.")
    if isinstance(config, StyleGAN2Config) and source.format != "studiogan":
        raise RegistryError(
            f"{name}: a StyleGAN2 model is downloaded as StudioGAN's files: "
            'its source format must be "studiogan".'
        )
    user = _read_user()
    user.setdefault("models", {})[name] = {
        "title": title or name,
        "kind": "download",
        "classes": classes,
        "config": config_table(config),
        "source": {k: v for k, v in source.to_dict().items() if v},
    }
    _source_from(source.to_dict(), where=name)
    _write_user(user)
    return get_entry(name)


def recorded_sha256(source: HubSource, role: str) -> str:
    return str((_read_user().get("recorded_sha256") or {}).get(source.key(role), ""))


def record_sha256(source: HubSource, role: str, sha256: str) -> None:
    """Remember the SHA-256 of a file as first downloaded (trust on first use)."""
    user = _read_user()
    user.setdefault("recorded_sha256", {})[source.key(role)] = sha256
    _write_user(user)


def forget_recorded_sha256(source: HubSource, role: str | None = None) -> None:
    user = _read_user()
    table = user.get("recorded_sha256") or {}
    for r in ROLES if role is None else (role,):
        table.pop(source.key(r), None)
    _write_user(user)


def pinned(source: HubSource) -> dict[str, Any] | None:
    """What the first pull of a pattern source resolved: commit, G/D paths, SHA-256s and
    sizes (None before that)."""
    pin = (_read_user().get("pinned") or {}).get(source.pin_key())
    ok = isinstance(pin, dict) and all(
        isinstance(pin.get(k), str) and pin.get(k) for k in ("commit", "G", "D")
    )
    return pin if ok else None


def record_pin(source: HubSource, pin: dict[str, Any]) -> None:
    user = _read_user()
    user.setdefault("pinned", {})[source.pin_key()] = pin
    _write_user(user)


def forget_pin(source: HubSource) -> None:
    user = _read_user()
    (user.get("pinned") or {}).pop(source.pin_key(), None)
    _write_user(user)


def expected_sha256(source: HubSource, role: str) -> tuple[str, str]:
    """(sha256, why) a download must match: the configured value, else the one recorded
    at first download, else ("", "unknown")."""
    if source.sha256(role):
        return source.sha256(role), "configured"
    seen = recorded_sha256(source, role)
    return (seen, "recorded at first download") if seen else ("", "unknown")


# --------------------------------------------------------------------------- installed models


def read_install_record(folder: Path) -> dict[str, Any] | None:
    file = folder / RECORD_FILE
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"format": -1}
    return record if isinstance(record, dict) else {"format": -1}


def installed(name: str) -> InstalledModel | None:
    """The install record of a pulled/imported model, or None if it is not installed."""
    folder = model_dir(name)
    record = read_install_record(folder)
    if record is None:
        return None
    config: PriorConfig
    try:
        config = config_from_dict(record.get("config") or {})
    except DGPError:
        config = BigGANConfig()
    return InstalledModel(name=name, folder=folder, config=config, record=record)


def _installed_records() -> list[InstalledModel]:
    root = paths.models_dir()
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not folder.name.startswith(".") and _NAME.match(folder.name):
            model = installed(folder.name)
            if model is not None:
                out.append(model)
    return out


def resolve_model_dir(name: str) -> tuple[Path, str]:
    """Folder of a registered model (for :func:`dgp_engine.priors.load.load_prior`).

    Raises CheckpointError saying how to get the model when it is not installed."""
    if name == BUNDLED:
        folder = bundled_model_dir()
        if (folder / "config.json").is_file():
            return folder, name
        raise CheckpointError(
            "The bundled model is not installed with this copy of DGP Studio: "
            "reinstall DGP Studio, or pull or import another model."
        )
    if _NAME.match(name or ""):
        model = installed(name)
        if model is not None:
            return model.folder, name
    known = entries()
    if name in known:
        files = (
            "--g model=G_ema-…pth --d model=D-…pth"
            if known[name].family == STYLEGAN2
            else "--g G_ema.pth --d D.pth"
        )
        raise CheckpointError(
            f"{name} is not installed yet: run `dgp models pull {name}` or "
            f"`dgp models import {name} {files}`."
        )
    raise CheckpointError(
        f"{name!r} is neither a folder nor a known model name: use a folder "
        f"with config.json + G/D weights, or one of {', '.join(known)}."
    )


def class_names(name: str) -> list[str]:
    """The class names of a model (its own classes.txt, or ImageNet's 1000; none for an
    unconditional StyleGAN2)."""
    from .checkpoint import read_class_names, read_prior_config

    folder, _ = resolve_model_dir(name)
    config = read_prior_config(folder)
    if isinstance(config, StyleGAN2Config):
        from .stylegan2_prior import class_names as stylegan2_class_names

        return stylegan2_class_names(folder, config)
    return read_class_names(folder, config)


def list_models() -> list[ModelStatus]:
    """Every known model with its state, for ``dgp models list`` and the app's model menu."""
    rows = []
    for entry in entries().values():
        if entry.kind == BUNDLED:
            folder = bundled_model_dir()
            present = (folder / "config.json").is_file()
            size = (
                sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if present else None
            )
            rows.append(
                ModelStatus(
                    entry.name,
                    entry.title,
                    entry.kind,
                    "bundled" if present else "missing",
                    entry.resolution,
                    folder if present else None,
                    "ships with DGP Studio",
                    size,
                    licence=entry.licence,
                    about=entry.about,
                    family=entry.family,
                )
            )
            continue
        model = installed(entry.name)
        source = entry.source.describe() if entry.source else "imported files"
        download_bytes = entry.download_bytes if entry.source else None
        downloadable = bool(entry.source and entry.source.configured)
        if model is not None and model.damaged:
            again = f"run `dgp models pull {entry.name}`" if downloadable else "import it again"
            rows.append(
                ModelStatus(
                    entry.name,
                    entry.title,
                    entry.kind,
                    "damaged",
                    entry.resolution,
                    model.folder,
                    f"install record {RECORD_FILE} unreadable: {again}",
                    None,
                    licence=entry.licence,
                    about=entry.about,
                    download_bytes=download_bytes,
                    downloadable=downloadable,
                    family=entry.family,
                )
            )
        elif model is not None:
            origin = model.origin
            how = (
                "imported files"
                if origin.get("kind") == "import"
                else f"pulled from {origin.get('repo_id', '?')}@{origin.get('revision', '?')}"
            )
            rows.append(
                ModelStatus(
                    entry.name,
                    entry.title,
                    entry.kind,
                    "installed",
                    model.config.resolution,
                    model.folder,
                    how,
                    model.size_bytes,
                    licence=entry.licence or model.licence,
                    about=entry.about,
                    download_bytes=download_bytes,
                    downloadable=downloadable,
                    family=model.family,
                    alignment=model.alignment or entry.alignment,
                )
            )
        else:
            rows.append(
                ModelStatus(
                    entry.name,
                    entry.title,
                    entry.kind,
                    "not installed",
                    entry.resolution,
                    None,
                    source,
                    entry.download_bytes,
                    licence=entry.licence,
                    about=entry.about,
                    download_bytes=download_bytes,
                    downloadable=downloadable,
                    family=entry.family,
                    alignment=entry.alignment,
                )
            )
    return rows

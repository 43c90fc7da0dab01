"""Getting model weights into the user cache, and keeping that cache consistent.

* :func:`pull` downloads a registered model's G and D through ``huggingface_hub``
  (offline first: each file is looked up with ``local_files_only=True`` before any
  network call; a source given by patterns is resolved by :mod:`.listing` and then
  pinned), checks their SHA-256, then installs them like :func:`import_files`.
* :func:`import_files` converts checkpoint files the user already has (the authors'
  pickled ``.pth`` or StudioGAN's, read with ``weights_only=True``, or ``.safetensors``)
  after checking every key and shape against the model's architecture
  (:mod:`.check`) and that no value is implausible (flipped bits, values that
  float16 cannot hold: :func:`.checkpoint.implausible_value`). StudioGAN's StyleGAN2
  files are recognised by their names and installed as a StyleGAN2 prior
  (:mod:`.stylegan2_prior`); :func:`import_pickle` does the same for NVIDIA's network
  pickles, read without running any of their code.
* :func:`verify`, :func:`remove`.

Below this module: :mod:`.store` (folders appear whole or not at all, cleanup of
interrupted operations), :mod:`.progress` (progress and cancel), :mod:`.checkpoint`
(reading files). Above it: :mod:`.hub_async` (the same operations for asyncio/qasync).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, DGPError, DownloadError, OperationCancelled, RegistryError
from ..models import BigGANConfig
from ..models.stylegan2 import StyleGAN2Config
from ..system import paths
from ..system.fileio import atomic_write_text, read_small_file
from . import listing, registry, store, studiogan
from . import stylegan2_prior as sg2p
from .check import ROLE_FLAG, ROLE_NAME, check_safetensors_header, check_state_dict
from .checkpoint import (
    as_ours,
    find_weight_files,
    implausible_value,
    read_config,
    read_prior_config,
    read_state_dict,
)
from .family import (
    STYLEGAN2,
    PriorConfig,
    alignment_from_name,
    check_alignment,
    config_dict,
    config_from_dict,
    family_of,
)
from .progress import ProgressCallback, Reporter, bar_class, sha256_file
from .registry import (
    BUNDLED,
    RECORD_FILE,
    RECORD_FORMAT,
    ROLES,
    WEIGHT_FILES,
    InstalledModel,
    ModelEntry,
)
from .store import cleanup

log = logging.getLogger(__name__)

_DISK_MARGIN = 64 << 20


# --------------------------------------------------------------------------- install (shared)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _unshared(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors with no storage shared between keys (safetensors refuses
    shared storage; a pickled state dict may tie or alias tensors)."""
    seen: set[int] = set()
    out = {}
    for key, value in sd.items():
        value = value.contiguous()
        ptr = value.untyped_storage().data_ptr()
        if ptr in seen or (
            value.untyped_storage().nbytes() != value.numel() * value.element_size()
        ):
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def _half_weights(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weight matrices and kernels as float16 (half the disk, read back as float32);
    vectors — biases, BN statistics, spectral-norm u/v, gains — stay float32."""
    return {
        k: v.half() if v.is_floating_point() and v.dim() >= 2 and k.endswith(".weight") else v
        for k, v in sd.items()
    }


def _read_as_ours(
    file: Path, role: str, config: BigGANConfig, source_format: str | None
) -> dict[str, torch.Tensor]:
    """A checkpoint file's tensors under our names, refusing a file of the other family
    than ``config`` (or than the source says it serves) with what to do instead."""
    sd, fmt = as_ours(read_state_dict(file), role, file.name)
    want = source_format or config.family
    if fmt != want or fmt != config.family:
        what = (
            "a StudioGAN BigGAN checkpoint"
            if fmt == "studiogan"
            else "a BigGAN-PyTorch checkpoint (the authors' format)"
        )
        other = [
            n
            for n, e in registry.entries().items()
            if e.kind == "download"
            and e.config is not None
            and e.config.family == fmt
            and (e.config.resolution, e.config.n_classes) == (config.resolution, config.n_classes)
        ]
        hint = (
            f"import it as {other[0]}"
            if other
            else "import it under a new name (with --config for its architecture)"
        )
        raise CheckpointError(
            f"{file.name} is {what}, but this model expects "
            f"{'StudioGAN' if want == 'studiogan' else 'BigGAN-PyTorch'} "
            f"files: {hint}."
        )
    return sd


def _checked_role(
    files: dict[str, Path],
    role: str,
    config: PriorConfig,
    name: str,
    reporter: Reporter,
    *,
    source_format: str | None = None,
    source_hint: str | None = None,
    has_config_file: bool = False,
) -> dict[str, torch.Tensor]:
    """The ``role`` file's tensors under our names (a StyleGAN2's under its networks'
    own), checked name by name and shape by shape against ``config`` (CheckpointError
    saying what to do otherwise)."""
    src = files[role]
    index = ROLES.index(role)
    reporter.report("read", src.name, 0, src.stat().st_size, index, len(ROLES))
    other_label = files["G"].name if role == "D" else None
    if isinstance(config, StyleGAN2Config):  # a StudioGAN StyleGAN2 pair
        sd = sg2p.read_studiogan_role(src, role)
        reporter.check()
        fix = (
            f"point {name}'s source at the right files ({source_hint})"
            if source_hint
            else "import it under a new name"
        )
        sg2p.check_role(
            sd, role, config, label=src.name, model=name, fix=fix, other_label=other_label
        )
        return sd
    sd = _read_as_ours(src, role, config, source_format)
    reporter.check()
    check_state_dict(
        sd,
        role,
        config,
        label=src.name,
        model=name,
        other_label=other_label,
        source_hint=source_hint,
        has_config_file=has_config_file,
    )
    return sd


def _install(
    name: str,
    title: str,
    config: PriorConfig,
    files: dict[str, Path],
    origin: dict[str, Any],
    reporter: Reporter,
    *,
    classes: str = "imagenet",
    classes_file: Path | None = None,
    has_config_file: bool = False,
    source_hint: str | None = None,
    class_names: tuple[str, ...] = (),
    source_format: str | None = None,
    checked: dict[str, dict[str, torch.Tensor]] | None = None,
    licence: str = "",
    alignment: str = "",
) -> InstalledModel:
    """Check, convert to safetensors and atomically install a G/D pair as ``name``.
    StudioGAN checkpoints are renamed to our layout and stored with float16 weights, as
    are StyleGAN2 networks (under their own names); optimizer state and metadata are not
    kept. ``checked`` holds the state dicts of roles already read and checked (taken out
    of it here). ``licence``: terms to record with the model (shown by ``dgp models``);
    ``alignment``: "ffhq" to record the model as a face prior."""
    from safetensors.torch import save_file

    checked = checked if checked is not None else {}
    try:
        with store.staged_folder(name) as staging:
            record_files: dict[str, dict[str, Any]] = {}
            for i, role in enumerate(ROLES):
                sd = (
                    checked.pop(role)
                    if role in checked
                    else _checked_role(
                        files,
                        role,
                        config,
                        name,
                        reporter,
                        source_format=source_format,
                        source_hint=source_hint,
                        has_config_file=has_config_file,
                    )
                )
                out = staging / WEIGHT_FILES[role]
                stored = _half_weights(sd) if family_of(config) in ("studiogan", STYLEGAN2) else sd
                problem = implausible_value(sd, stored)
                if problem:
                    raise CheckpointError(
                        f"{files[role].name} is damaged: {problem}; {name} was not installed, "
                        "download or copy the file again."
                    )
                sd = stored
                reporter.report("write", out.name, 0, None, i, len(ROLES))
                save_file(
                    _unshared(sd),
                    str(out),
                    metadata={"format": "pt", "dgp_role": role, "dgp_model": name},
                )
                del sd
                with open(out, "rb+") as fh:
                    os.fsync(fh.fileno())
                record_files[WEIGHT_FILES[role]] = {
                    "role": role,
                    "size": out.stat().st_size,
                    "sha256": sha256_file(out, reporter, i, len(ROLES)),
                }
            atomic_write_text(
                staging / "config.json", json.dumps(config_dict(config), indent=2) + "\n"
            )
            if classes_file is not None:
                shutil.copyfile(classes_file, staging / "classes.txt")
                classes = "classes.txt"
            elif class_names:
                atomic_write_text(staging / "classes.txt", "\n".join(class_names) + "\n")
                classes = "classes.txt"
            record = {
                "format": RECORD_FORMAT,
                "name": name,
                "title": title,
                "classes": classes,
                "family": family_of(config),
                "config": config_dict(config),
                "files": record_files,
                "origin": origin,
                "installed_at": _now(),
            }
            if licence:
                record["licence"] = licence
            if alignment:
                record["alignment"] = alignment
            reporter.check()
            atomic_write_text(staging / RECORD_FILE, json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        if store.disk_full(exc):
            need = sum(f.stat().st_size for f in set(files.values()))  # a pickle holds both
            raise CheckpointError(
                f"The disk holding {paths.models_dir()} is full: free some space (the "
                f"model needs about {store.mb(need)}) and try again."
            ) from exc
        raise
    target = registry.model_dir(name)
    log.info("installed %s in %s", name, target)
    return InstalledModel(name, target, config, record)


# --------------------------------------------------------------------------- import


def import_files(
    name: str,
    g: str | Path,
    d: str | Path,
    *,
    config: BigGANConfig | str | Path | dict[str, Any] | StyleGAN2Config | None = None,
    title: str = "",
    classes: str | Path | None = None,
    conv_clamp: float | str | None = "",
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    alignment: str | None = None,
) -> InstalledModel:
    """Convert a generator/discriminator pair the user has into an installed model.

    ``name`` is a registered model (its architecture is known) or a new name, which then
    needs ``config``: a BigGANConfig, a dict of BigGAN-PyTorch flags, a JSON file of
    them, or a StudioGAN run's YAML config. StudioGAN checkpoints are recognised by their
    keys (a new name needs no config: their tensors say it) and converted. Source files
    are checked against any SHA-256 configured for the model.

    StudioGAN's StyleGAN2 files (``model=G_ema-…pth`` + ``model=D-…pth``) are recognised
    by their tensor names and installed as a StyleGAN2 prior. Their files do not record
    two settings, which a new name therefore needs: ``conv_clamp`` (256 for runs trained
    with mixed precision, ``-mpc``; None or "none" otherwise; "" = not given) and the
    minibatch-std group size, from the run's YAML given as ``config``.

    ``alignment``: "ffhq" records the model as a face prior, "none" as not one; None
    takes the registered model's (none for a new name)."""
    registry.validate_name(name)
    if name == BUNDLED:
        raise RegistryError(
            "The bundled model ships with DGP Studio: import your files under another name."
        )
    reporter = Reporter(name, progress, cancel)
    files = {"G": Path(g).expanduser(), "D": Path(d).expanduser()}
    for role, file in files.items():
        if not file.is_file():
            what = "is not a file (a folder, device or pipe)" if file.exists() else "does not exist"
            raise CheckpointError(
                f"{file} {what}: pass the {ROLE_NAME[role]} file "
                f"({'G_ema.pth' if role == 'G' else 'D.pth'}) with "
                f"{ROLE_FLAG[role]}."
            )
    if files["G"].resolve() == files["D"].resolve():
        raise CheckpointError(
            "--g and --d name the same file: pass G_ema.pth with --g and D.pth with --d."
        )
    known = registry.entries()
    entry: ModelEntry | None = known.get(name)
    face = (
        check_alignment(alignment)
        if alignment is not None
        else (entry.alignment if entry is not None else "")
    )
    if _is_stylegan2_import(files["G"], entry, name):
        return _import_stylegan2(
            name, files, entry, config, conv_clamp, title, classes, reporter, face
        )
    if conv_clamp != "":
        raise CheckpointError(
            f"--conv-clamp is a StyleGAN2 setting, and {files['G'].name} is "
            "not a StyleGAN2 generator: drop --conv-clamp."
        )
    if isinstance(config, StyleGAN2Config):
        raise CheckpointError(
            f"The config given describes a StyleGAN2, but "
            f"{files['G'].name} is not a StyleGAN2 generator."
        )
    given = _config_arg(config)
    if entry is not None and entry.kind == "download":
        cfg = entry.config
        assert cfg is not None  # only the bundled entry may lack one (registry._entry_from)
        if given is not None and given != cfg:
            raise RegistryError(
                f"{name} has a fixed architecture ({cfg.describe()}): drop --config to import "
                f"into {name}, or import your model under a new name."
            )
        has_config_file = False
    else:
        has_config_file = False
        previous = registry.installed(name) if entry is not None else None
        cfg = given or (
            previous.config
            if previous is not None and isinstance(previous.config, BigGANConfig)
            else None
        )
        if cfg is None:
            cfg = _studiogan_config_of(files)  # their tensors say what they are
            has_config_file = cfg is not None
        if cfg is None:
            raise RegistryError(
                f"{name} is not a registered model, so its architecture is unknown: pass "
                "--config with a JSON file of its BigGAN-PyTorch settings (resolution, G_ch, "
                "D_ch, ...), or import into one of "
                f"{', '.join(n for n, e in known.items() if e.kind == 'download')}."
            )
        has_config_file = has_config_file if given is None else True
    title = title or (entry.title if entry is not None else name)
    sources = _source_files(files, entry, name, reporter)
    classes_file = None
    if classes is not None:
        classes_file = Path(classes).expanduser()
        _check_classes_file(classes_file, cfg.n_classes)
    origin = {"kind": "import", "files": sources, "imported_at": _now()}
    return _install(
        name,
        title,
        cfg,
        files,
        origin,
        reporter,
        classes=entry.classes if entry is not None else "imagenet",
        classes_file=classes_file,
        has_config_file=has_config_file,
        class_names=entry.class_names if entry is not None else (),
        alignment=face,
    )


def _source_files(
    files: dict[str, Path], entry: ModelEntry | None, name: str, reporter: Reporter
) -> dict[str, dict[str, Any]]:
    """Path, SHA-256 and size of each file an import reads, for the install record;
    a file that differs from a SHA-256 configured for the model is refused."""
    sources: dict[str, dict[str, Any]] = {}
    for i, role in enumerate(ROLES):
        sha = sha256_file(files[role], reporter, i, len(ROLES))
        if entry is not None and entry.source is not None:
            # Only a configured checksum binds local files; one recorded at a first
            # download only describes what that mirror served.
            want, why = entry.source.sha256(role), "configured"
            if want and want != sha:
                raise CheckpointError(
                    f"{files[role].name} has SHA-256 {sha[:12]}…, not the {why} {want[:12]}… "
                    f"for {name}'s {ROLE_NAME[role]}: use the right file, or clear "
                    f"{role}_sha256 with `dgp models source {name} --{role.lower()}-sha256 ''` "
                    "if you trust this one."
                )
        sources[role] = {
            "path": str(files[role].resolve()),
            "sha256": sha,
            "size": files[role].stat().st_size,
        }
    return sources


def _is_stylegan2_import(g_file: Path, entry: ModelEntry | None, name: str) -> bool:
    """Whether an import of ``g_file`` as ``name`` is a StyleGAN2 one: a registered model
    says so by its family, otherwise the generator file's tensor names do."""
    if entry is not None and entry.kind == "download":
        if entry.family == STYLEGAN2:
            return True
        keys = sg2p.probe_keys(g_file)
        if keys is not None and sg2p.is_stylegan2_keys(keys):
            raise CheckpointError(
                f"{g_file.name} holds a StyleGAN2 network, but {name} is a BigGAN model: "
                "import it under a new name (`dgp models import NEW-NAME --g "
                f"{sg2p.G_FILE_HINT} --d {sg2p.D_FILE_HINT} --conv-clamp 256|none`)."
            )
        return False
    keys = sg2p.probe_keys(g_file)
    return keys is not None and sg2p.is_stylegan2_keys(keys)


def _import_stylegan2(
    name: str,
    files: dict[str, Path],
    entry: ModelEntry | None,
    config: Any,
    conv_clamp: float | str | None,
    title: str,
    classes: str | Path | None,
    reporter: Reporter,
    alignment: str = "",
) -> InstalledModel:
    """:func:`import_files` for StudioGAN's StyleGAN2 files."""
    for i, role in enumerate(ROLES):
        reporter.report("read", files[role].name, 0, files[role].stat().st_size, i, len(ROLES))
    g_sd = sg2p.read_studiogan_role(files["G"], "G")
    d_sd = sg2p.read_studiogan_role(files["D"], "D")
    reporter.check()
    if entry is not None and entry.kind == "download":
        cfg = entry.stylegan2
        assert cfg is not None  # a download entry of family stylegan2 has one
        if config is not None:
            raise RegistryError(
                f"{name} has a fixed architecture ({cfg.describe()}): drop "
                f"--config to import into {name}, or import your model "
                "under a new name."
            )
        if conv_clamp != "" and sg2p.conv_clamp_setting(conv_clamp) != cfg.conv_clamp:
            raise RegistryError(
                f"{name} runs with conv_clamp {cfg.conv_clamp}: drop "
                f"--conv-clamp to import into {name}, or import your model "
                "under a new name."
            )
    else:
        cfg = _stylegan2_import_config(g_sd, d_sd, files, config, conv_clamp)
    sg2p.check_role(g_sd, "G", cfg, label=files["G"].name, model=name)
    sg2p.check_role(d_sd, "D", cfg, label=files["D"].name, model=name, other_label=files["G"].name)
    sources = _source_files(files, entry, name, reporter)
    classes_file = None
    if classes is not None:
        classes_file = Path(classes).expanduser()
        _check_classes_file(classes_file, cfg.c_dim)
    origin = {"kind": "import", "format": "studiogan", "files": sources, "imported_at": _now()}
    return _install(
        name,
        title or (entry.title if entry is not None else name),
        cfg,
        files,
        origin,
        reporter,
        classes=entry.classes if entry is not None else "",
        classes_file=classes_file,
        class_names=entry.class_names if entry is not None else (),
        checked={"G": g_sd, "D": d_sd},
        licence=entry.licence if entry is not None and entry.licence else sg2p.LICENCE_STUDIOGAN,
        alignment=alignment,
    )


def _stylegan2_import_config(
    g_sd: dict[str, torch.Tensor],
    d_sd: dict[str, torch.Tensor],
    files: dict[str, Path],
    config: Any,
    conv_clamp: float | str | None,
) -> StyleGAN2Config:
    """The architecture of StudioGAN StyleGAN2 files imported under a new name: their
    tensors, the run's YAML (``config``) and ``conv_clamp``; or a whole StyleGAN2 config
    (object, dict or JSON file with ``"family": "stylegan2"``)."""
    full: StyleGAN2Config | None = None
    yaml_file: Path | None = None
    if isinstance(config, StyleGAN2Config):
        full = config
    elif isinstance(config, dict):
        arch = config_from_dict(config)
        if not isinstance(arch, StyleGAN2Config):
            raise CheckpointError(
                f"{files['G'].name} is a StyleGAN2 generator, but the config "
                "given describes a BigGAN."
            )
        full = arch
    elif config is not None:
        file = Path(config).expanduser()
        if file.suffix.lower() in (".yaml", ".yml"):
            yaml_file = file
        else:
            try:
                data = json.loads(read_small_file(file).decode("utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CheckpointError(
                    f"Could not read the config {file} ({exc}): pass the StudioGAN run's YAML file."
                ) from exc
            return _stylegan2_import_config(
                g_sd, d_sd, files, data if isinstance(data, dict) else {"family": None}, conv_clamp
            )
    if full is not None:
        if conv_clamp != "":
            full = dataclasses.replace(full, conv_clamp=sg2p.conv_clamp_setting(conv_clamp))
        return full
    settings = sg2p.read_yaml_settings(yaml_file) if yaml_file is not None else {}
    group = settings.get("mbstd_group_size")
    if group is None:
        raise CheckpointError(
            "StudioGAN's StyleGAN2 checkpoints do not record the discriminator's "
            "minibatch-std group size: pass the run's YAML config with --config (it gives "
            "d_epilogue_mbstd_group_size)."
        )
    if conv_clamp == "":
        raise CheckpointError(
            "StudioGAN's StyleGAN2 checkpoints do not record whether the run was trained with "
            "mixed precision (-mpc), which clamps layer outputs at ±256: pass --conv-clamp 256 "
            "if it was (StudioGAN's AFHQv2 StyleGAN2 runs were), --conv-clamp none if not."
        )
    return sg2p.studiogan_config(
        g_sd,
        d_sd,
        conv_clamp=sg2p.conv_clamp_setting(conv_clamp),
        mbstd_group_size=int(group),
        yaml_settings=settings,
        yaml_name=yaml_file.name if yaml_file else "",
        label=files["G"].name,
    )


def import_pickle(
    name: str,
    pkl: str | Path,
    *,
    title: str = "",
    classes: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    alignment: str | None = None,
) -> InstalledModel:
    """Install the G_ema and D of an NVIDIA stylegan2-ada-pytorch network pickle
    (``network-snapshot-*.pkl``) as the StyleGAN2 prior ``name``. The pickle is read by a
    restricted unpickler that never runs the code such files embed; a file with anything
    but StyleGAN2 networks (other classes, other globals, no discriminator, G and D of
    different sizes), or a damaged one, is refused by name and nothing is installed. The
    architecture comes from the networks' recorded constructor settings; NVIDIA's licence
    is recorded with the model. ``alignment``: "ffhq" records a face prior, "none" not
    one; None guesses from the file's name (ffhq.pkl, metfaces.pkl… are faces)."""
    registry.validate_name(name)
    if name == BUNDLED:
        raise RegistryError(
            "The bundled model ships with DGP Studio: import your files under another name."
        )
    reporter = Reporter(name, progress, cancel)
    file = Path(pkl).expanduser()
    face = check_alignment(alignment) if alignment is not None else alignment_from_name(file.name)
    if not file.is_file():
        raise CheckpointError(
            f"{file} does not exist: pass NVIDIA's network pickle "
            "(network-snapshot-….pkl) with --pkl."
        )
    entry = registry.entries().get(name)
    if entry is not None and entry.kind == "download":
        raise RegistryError(
            f"{name} is a registered model with files of its own: import the "
            "pickle under a new name."
        )
    sha = sha256_file(file, reporter)
    reporter.report("read", file.name, 0, file.stat().st_size)
    weights = sg2p.read_network_pickle(file)
    reporter.check()
    cfg = weights.config
    classes_file = None
    if classes is not None:
        classes_file = Path(classes).expanduser()
        _check_classes_file(classes_file, cfg.c_dim)
    source = {"path": str(file.resolve()), "sha256": sha, "size": file.stat().st_size}
    origin = {
        "kind": "import",
        "format": "nvidia-pickle",
        "files": {"G": source, "D": source},
        "imported_at": _now(),
    }
    return _install(
        name,
        title or name,
        cfg,
        {"G": file, "D": file},
        origin,
        reporter,
        classes="",
        classes_file=classes_file,
        checked={"G": weights.G_ema, "D": weights.D},
        licence=sg2p.LICENCE_NVIDIA,
        alignment=face,
    )


def _studiogan_config_of(files: dict[str, Path]) -> BigGANConfig | None:
    """The architecture of a StudioGAN G/D pair read from its tensors (None when the
    generator file is not StudioGAN's)."""
    g = read_state_dict(files["G"])
    if not studiogan.is_studiogan(g):
        return None
    as_ours(g, "G", files["G"].name)  # refuses other StudioGAN architectures by name
    d = read_state_dict(files["D"])
    as_ours(d, "D", files["D"].name)
    return studiogan.infer_config(g, d)


def _config_arg(config: BigGANConfig | str | Path | dict[str, Any] | None) -> BigGANConfig | None:
    if config is None or isinstance(config, BigGANConfig):
        return config
    if isinstance(config, dict):
        return BigGANConfig.from_dict(config)
    file = Path(config).expanduser()
    if file.is_dir():
        return read_config(file)
    if file.suffix.lower() in (".yaml", ".yml"):
        return studiogan.config_from_yaml(file)
    try:
        data = json.loads(read_small_file(file).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"Could not read the config {file} ({exc}): pass a JSON file of "
            "BigGAN-PyTorch settings."
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{file} must hold a JSON object of BigGAN-PyTorch settings.")
    return BigGANConfig.from_dict(data)


def _check_classes_file(file: Path, n_classes: int) -> None:
    if n_classes == 0:
        raise CheckpointError(
            f"The model is unconditional (it has no classes): drop --classes {file.name}."
        )
    try:
        names = [ln for ln in read_small_file(file).decode("utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"Could not read the class list {file} ({exc}).") from exc
    if len(names) != n_classes:
        raise CheckpointError(
            f"{file.name} lists {len(names)} class names but the model has "
            f"{n_classes} classes: give one name per line, in class "
            "order."
        )


# --------------------------------------------------------------------------- pull


def offline_mode() -> bool:
    """Whether huggingface_hub was told to stay offline (HF_HUB_OFFLINE)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return env.strip().upper() in ("1", "ON", "YES", "TRUE") or bool(
        getattr(constants, "HF_HUB_OFFLINE", False)
    )


def _where(source: registry.HubSource) -> str:
    host = source.endpoint.rstrip("/") or os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return host


def _hub_error(
    exc: BaseException, entry: ModelEntry, role: str, src: registry.HubSource | None = None
) -> DownloadError:
    """One sentence for anything huggingface_hub raised while fetching (or, with role "",
    listing) a model's files."""
    from huggingface_hub import utils as hf

    src = src or entry.source
    assert src is not None
    fname = src.filename(role) if role else "the file list"
    fix = f"`dgp models source {entry.name} ...` or the model settings"
    if isinstance(exc, getattr(hf, "GatedRepoError", ())):
        return DownloadError(
            f"The repository {src.repo_id} is gated: accept its terms on the "
            "Hub and log in with `hf auth login`, then pull again."
        )
    if isinstance(exc, hf.RepositoryNotFoundError):
        return DownloadError(
            f"There is no repository {src.repo_id} at {_where(src)} (or it is "
            f"private): check the repo id in {fix}."
        )
    pinned = entry.source is not None and entry.source.has_patterns and src is not entry.source
    if isinstance(exc, hf.RevisionNotFoundError) and pinned:
        return DownloadError(
            f"The commit {src.revision[:12]} that {entry.name} was pinned to is no longer in "
            f"{src.repo_id} (its history was rewritten): run `dgp models pull {entry.name} "
            "--update` to resolve the files again."
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return DownloadError(
            f"{src.repo_id} has no revision {src.revision!r}: set an existing "
            f"branch, tag or commit in {fix}."
        )
    if isinstance(exc, hf.EntryNotFoundError) and not isinstance(exc, FileNotFoundError):
        page = listing.page_url(src.endpoint, src.repo_id, "main")
        if not role:
            folder = listing.literal_prefix(src.G) or "its top folder"
            return DownloadError(
                f"{src.repo_id} has no folder {folder} (moved or deleted): the publisher "
                f"may have moved its runs; see {page}."
            )
        if entry.source is not None and entry.source.has_patterns:
            return DownloadError(
                f"{src.repo_id}@{src.revision[:12]} has no file {fname} any more (moved or "
                f"deleted): look for it again with `dgp models pull {entry.name} --update` "
                f"(or Download in the Models dialog), or see {page}."
            )
        return DownloadError(
            f"{src.repo_id}@{src.revision} has no file {fname}: set the "
            f"{ROLE_NAME[role]} file name in {fix}."
        )
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return DownloadError(
            f"{fname} of {entry.name} is not downloaded yet and Hugging Face "
            "offline mode (HF_HUB_OFFLINE) is on: unset it and pull again, or "
            "import files you have with `dgp models import`."
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return DownloadError(
            f"{_where(src)} answered HTTP {status} for {src.repo_id}/{fname}: "
            "try again later, or check the source in the model settings."
        )
    if isinstance(exc, OSError) and store.disk_full(exc):
        return DownloadError(
            f"The disk holding {registry.downloads_dir()} is full: free some "
            f"space and pull {entry.name} again."
        )
    return DownloadError(
        f"Could not reach {_where(src)} to fetch {fname} ({type(exc).__name__}: "
        f"{exc}): check your internet connection or proxy and pull again, or "
        "import files you have with `dgp models import`."
    )


def _cached_path(**hub_kwargs: Any) -> Path | None:
    """The file from the download cache, without any network call (offline first)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub import utils as hf

    try:
        return Path(hf_hub_download(**hub_kwargs, local_files_only=True))
    except (
        hf.LocalEntryNotFoundError,
        hf.EntryNotFoundError,
        FileNotFoundError,
        hf.OfflineModeIsEnabled,
    ):
        return None


def _drop_cached(path: Path) -> None:
    """Delete one downloaded file from the cache (its snapshot link and its blob)."""
    with contextlib.suppress(OSError):
        blob = path.resolve() if path.is_symlink() else None
        path.unlink()
        if blob is not None:
            blob.unlink()


def _fetch(
    entry: ModelEntry,
    src: registry.HubSource,
    role: str,
    reporter: Reporter,
    index: int,
    offline: bool,
    etag_timeout: float,
) -> tuple[Path, str, bool, str | None]:
    """(local path, sha256, came from the network, commit) of one source file, checked
    against the expected SHA-256."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    fname = src.filename(role)
    endpoint = src.endpoint.rstrip("/") or None
    hub_kwargs: dict[str, Any] = dict(
        repo_id=src.repo_id,
        filename=fname,
        revision=src.revision,
        cache_dir=str(registry.downloads_dir()),
        endpoint=endpoint,
    )
    want, why = registry.expected_sha256(src, role)

    def checked(path: Path) -> str:
        sha = sha256_file(path, reporter, index, len(ROLES))
        if want and sha != want:
            _drop_cached(path)  # so the next pull fetches it again instead of failing forever
            raise DownloadError(
                f"{fname} from {src.repo_id}@{src.revision} has SHA-256 {sha[:12]}…, not the "
                f"{why} {want[:12]}…: the mirror serves a different file; if you trust it, "
                f"clear the checksum with `dgp models source {entry.name} "
                f"--{role.lower()}-sha256 ''` and pull again, otherwise use another source."
            )
        return sha

    cached = _cached_path(**hub_kwargs)
    if cached is not None:
        try:
            return cached, checked(cached), False, None
        except DownloadError:
            if offline:
                raise
            log.warning("cached %s did not match its checksum; downloading it again", fname)
    if offline:
        raise DownloadError(
            f"{fname} of {entry.name} is not downloaded yet and DGP Studio is offline "
            "(HF_HUB_OFFLINE is set): connect and pull again, or import files you have with "
            "`dgp models import`."
        )
    reporter.check()
    url = hf_hub_url(src.repo_id, fname, revision=src.revision, endpoint=endpoint)
    try:
        # One quick HEAD without retries: a clear answer for a wrong repo/file or no network
        # in seconds, and the size for the disk-space check.
        meta = get_hf_file_metadata(url, timeout=etag_timeout, endpoint=endpoint)
    except Exception as exc:  # mapped to one sentence below; nothing is cached yet
        raise _hub_error(exc, entry, role, src) from exc
    size = getattr(meta, "size", None)
    if size:
        for folder in (registry.downloads_dir(), paths.models_dir()):
            free = store.free_bytes(folder)
            need = (2 * size if folder == paths.models_dir() else size) + _DISK_MARGIN
            if free is not None and free < need:
                raise DownloadError(
                    f"Not enough disk space for {fname} ({store.mb(size)}): {folder} "
                    f"has {store.mb(free)} free and needs about {store.mb(need)}; "
                    "free some space (or move the cache with DGP_STUDIO_HOME) and pull again."
                )
    try:
        # The bar reports bytes and raises OperationCancelled on cancel, mid-file.
        path = Path(
            hf_hub_download(
                **hub_kwargs,
                etag_timeout=etag_timeout,
                tqdm_class=bar_class(reporter, fname, index, len(ROLES)),
            )
        )
    except OperationCancelled:
        raise
    except Exception as exc:
        raise _hub_error(exc, entry, role, src) from exc
    reporter.check()
    return path, checked(path), True, getattr(meta, "commit_hash", None)


def pull(
    name: str,
    *,
    force: bool = False,
    update: bool = False,
    offline: bool | None = None,
    keep_download: bool = False,
    etag_timeout: float = 10.0,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> InstalledModel:
    """Download ``name``'s G and D from its Hub source, check, convert and install them.

    Already installed from the same source → returned at once, no network (``force``
    re-installs). A source given by patterns is resolved by listing the repository at
    the first pull and pinned (commit, paths, SHA-256) for every later one; ``update``
    forgets the pin and resolves again. Each file is first looked up in the download
    cache without network. The generator is downloaded and checked before the (larger)
    discriminator is fetched. ``offline`` defaults to HF_HUB_OFFLINE. Downloads are deleted
    after conversion unless ``keep_download``: the cache keeps only the converted model. A
    file that fails its check or conversion stays in the download cache, so pulling again
    (after fixing the source or updating DGP Studio) does not download it again."""
    entry = registry.get_entry(name)
    if entry.kind == BUNDLED:
        raise DownloadError("The bundled model ships inside DGP Studio and needs no download.")
    if entry.source is None or entry.kind == "imported":
        raise DownloadError(
            f"{name} was imported from files and has no download source: "
            "import it again to update it."
        )
    pattern_src = entry.source
    if not pattern_src.configured:
        raise DownloadError(
            f"{name} has no download source yet (we cannot vouch for a public mirror): set "
            f"its Hugging Face repo with `dgp models source {name} --repo-id OWNER/REPO` or in "
            f"the model settings, or import files you have with `dgp models import {name} "
            "--g G_ema.pth --d D.pth`."
        )
    config = entry.architecture
    assert config is not None  # a download entry has one (registry._entry_from)
    reporter = Reporter(name, progress, cancel)
    cleanup()
    offline = offline_mode() if offline is None else offline
    if update and pattern_src.has_patterns:
        registry.forget_pin(pattern_src)
    src = _pinned_source(pattern_src) if pattern_src.has_patterns else pattern_src
    current = registry.installed(name)
    if (
        current is not None
        and not force
        and not update
        and src is not None
        and _same_source(current, src)
        and _files_present(current)
    ):
        return current
    resolved = None
    if src is None:
        resolved, src = _resolve(entry, pattern_src, offline, etag_timeout, reporter)
    total = _planned_bytes(pattern_src, resolved)
    reporter.report("plan", f"{src.filename('G')} + {src.filename('D')}", 0, total, 0, 1)
    fetched: dict[str, Path] = {}
    checked: dict[str, dict[str, torch.Tensor]] = {}
    origin_files: dict[str, dict[str, Any]] = {}
    commit = None
    hint = f"{src.describe()}; `dgp models source {name} ...`"
    for i, role in enumerate(ROLES):
        reporter.check()
        path, sha, downloaded, head_commit = _fetch(
            entry, src, role, reporter, i, offline, etag_timeout
        )
        commit = commit or head_commit
        fetched[role] = path
        origin_files[role] = {
            "name": src.filename(role),
            "sha256": sha,
            "size": path.stat().st_size,
            "downloaded": downloaded,
        }
        if role == "G":
            # The generator is the small file (StudioGAN's D carries its optimizer state:
            # 1.2 GB at 256 px): a wrong or unreadable G fails before D is downloaded.
            try:
                checked["G"] = _checked_role(
                    fetched, "G", config, name, reporter, source_format=src.format, source_hint=hint
                )
            except CheckpointError as exc:
                raise CheckpointError(f"{exc} {_kept_note(fetched, src.filename('D'))}") from exc
    origin: dict[str, Any] = {
        "kind": "hub",
        "endpoint": src.endpoint,
        "repo_id": src.repo_id,
        "revision": src.revision,
        "commit": commit or _cached_commit(fetched["G"]),
        "format": src.format,
        "files": origin_files,
        "pulled_at": _now(),
    }
    if pattern_src.has_patterns:
        origin["patterns"] = {
            "G": pattern_src.G,
            "D": pattern_src.D,
            "revision": pattern_src.revision,
        }
    try:
        model = _install(
            name,
            entry.title,
            config,
            fetched,
            origin,
            reporter,
            classes=entry.classes,
            class_names=entry.class_names,
            source_format=src.format,
            source_hint=hint,
            checked=checked,
            licence=entry.licence,
            alignment=entry.alignment,
        )
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} {_kept_note(fetched)}") from exc
    if pattern_src.has_patterns:
        # Pinned only now that the files proved to be a valid model.
        registry.record_pin(
            pattern_src,
            {
                "commit": src.revision,
                "G": src.G,
                "D": src.D,
                "G_sha256": origin_files["G"]["sha256"],
                "D_sha256": origin_files["D"]["sha256"],
                "G_size": origin_files["G"]["size"],
                "D_size": origin_files["D"]["size"],
                "resolved_at": _now(),
            },
        )
    else:
        # Trust on first use: remember what we got, now that it proved to be a valid model.
        for role in ROLES:
            if not registry.expected_sha256(src, role)[0]:
                registry.record_sha256(src, role, origin_files[role]["sha256"])
    if not keep_download:
        for path in fetched.values():
            _drop_cached(path)
    return model


def _kept_note(fetched: dict[str, Path], not_fetched: str | None = None) -> str:
    """What a failed pull leaves: nothing installed, the downloads kept for the next try."""
    size = 0
    for path in fetched.values():
        with contextlib.suppress(OSError):
            size += path.stat().st_size
    skipped = (
        f", and the discriminator ({not_fetched.rsplit('/', 1)[-1]}) was not downloaded"
        if not_fetched
        else ""
    )
    return (
        f"Nothing was installed{skipped}; what was downloaded ({store.mb(size)}) "
        f"stays in {registry.downloads_dir()} for the next pull, which will not fetch it "
        "again (delete that folder to free the space or to fetch the files anew)."
    )


def _pinned_source(src: registry.HubSource) -> registry.HubSource | None:
    """The exact files an earlier pull of a pattern source resolved (None: not yet)."""
    pin = registry.pinned(src)
    if pin is None:
        return None
    return dataclasses.replace(
        src,
        revision=pin["commit"],
        G=pin["G"],
        D=pin["D"],
        G_sha256=str(pin.get("G_sha256", "")),
        D_sha256=str(pin.get("D_sha256", "")),
    )


def _resolve(
    entry: ModelEntry, src: registry.HubSource, offline: bool, timeout: float, reporter: Reporter
) -> tuple[listing.Resolved, registry.HubSource]:
    """List the repository and pick the run's G and D for a pattern source."""
    folder = listing.literal_prefix(src.G)
    page = listing.page_url(src.endpoint, src.repo_id, src.revision, folder)
    if offline:
        raise DownloadError(
            f"{entry.name} is not downloaded yet and DGP Studio is offline (HF_HUB_OFFLINE "
            "is set): connect and pull again, or import files you have with "
            f"`dgp models import {entry.name} --g model=G_ema-…pth --d model=D-…pth`."
        )
    reporter.report("list", f"{src.repo_id}/{folder}", 0, None)
    try:
        commit = listing.commit_of(src.endpoint, src.repo_id, src.revision, timeout)
        files = listing.list_files(src.endpoint, src.repo_id, commit, folder, timeout)
    except Exception as exc:  # mapped to one sentence
        raise _hub_error(exc, entry, "", src) from exc
    reporter.check()
    chosen = listing.choose(files, src.G, src.D)
    if chosen is None:
        raise DownloadError(
            f"No run of {entry.name} was found in {src.repo_id}: nothing there matches "
            f"{src.G.rsplit('/', 1)[0]}/ with both a generator and a discriminator file (not "
            f"every StudioGAN run is published). See {page} and, if the files are there "
            f"under other names, point {entry.name} at them with `dgp models source "
            f"{entry.name} --g-file PATH --d-file PATH`."
        )
    g, d = chosen
    resolved = listing.Resolved(commit, g, d)
    log.info("%s: resolved %s and %s at %s", entry.name, g.path, d.path, commit)
    return resolved, dataclasses.replace(
        src,
        revision=commit,
        G=g.path,
        D=d.path,
        G_sha256=src.G_sha256 or g.sha256,
        D_sha256=src.D_sha256 or d.sha256,
    )


def _planned_bytes(src: registry.HubSource, resolved: listing.Resolved | None) -> int | None:
    if resolved is not None:
        return resolved.download_bytes or None
    pin = registry.pinned(src) if src.has_patterns else None
    if pin:
        return int(pin.get("G_size", 0)) + int(pin.get("D_size", 0)) or None
    return None


def _cached_commit(path: Path) -> str | None:
    # .../snapshots/<commit>/<file>
    parent = path.parent
    return parent.name if parent.parent.name == "snapshots" else None


def _same_source(model: InstalledModel, src: registry.HubSource) -> bool:
    o = model.origin
    if o.get("kind") == "import":
        return True  # files the user gave us win over the Hub until they pull --force
    return (o.get("repo_id"), o.get("revision"), o.get("endpoint", "")) == (
        src.repo_id,
        src.revision,
        src.endpoint,
    ) and all((o.get("files", {}).get(r, {}).get("name") == src.filename(r)) for r in ROLES)


def _files_present(model: InstalledModel) -> bool:
    return all(
        (model.folder / f).is_file()
        and (model.folder / f).stat().st_size == int(meta.get("size", -1))
        for f, meta in model.files.items()
    ) and bool(model.files)


# --------------------------------------------------------------------------- verify / remove


@dataclass
class VerifyResult:
    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    folder: Path | None = None

    def summary(self) -> str:
        return f"{self.name}: OK" if self.ok else f"{self.name}: " + " ".join(self.problems)


def verify(
    names: list[str] | str | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[VerifyResult]:
    """Check installed models: files present, SHA-256 as recorded, keys and shapes as the
    config says, values plausible (:func:`.checkpoint.implausible_value`). ``None``: every
    installed model (and the bundled one if present)."""
    cleanup()
    if isinstance(names, str):
        names = [names]
    if names is None:
        names = [s.name for s in registry.list_models() if s.usable]
    return [_verify_one(n, Reporter(n, progress, cancel)) for n in names]


def _verify_one(name: str, reporter: Reporter) -> VerifyResult:
    if name == BUNDLED:
        return _verify_bundled(reporter)
    try:
        registry.validate_name(name)
    except RegistryError as exc:
        return VerifyResult(name, False, [str(exc)])
    model = registry.installed(name)
    if model is None:
        known = name in registry.entries()
        return VerifyResult(
            name,
            False,
            [
                f"not installed: run `dgp models pull {name}` or `dgp models import {name} ...`."
                if known
                else "no such model (see `dgp models list`)."
            ],
        )
    again = (
        f"run `dgp models pull {name} --force` or import it again"
        if model.origin.get("kind") == "hub"
        else "import it again"
    )
    problems = []
    if model.record.get("format") != RECORD_FORMAT:
        return VerifyResult(name, False, [f"{RECORD_FILE} is unreadable: {again}."], model.folder)
    config: PriorConfig
    try:
        config = read_prior_config(model.folder)
        if config != model.config:
            problems.append(f"config.json differs from {RECORD_FILE}: {again}.")
    except CheckpointError as exc:
        problems.append(f"{exc} ({again}).")
        config = model.config
    roles_seen = set()
    items = list(model.files.items())
    for i, (fname, meta) in enumerate(items):
        file = model.folder / fname
        roles_seen.add(meta.get("role"))
        if not file.exists():
            problems.append(f"{fname} is missing: {again}.")
            continue
        if not file.is_file():  # a folder, a device or a FIFO (perhaps through a link)
            problems.append(f"{fname} is not a regular file: {again}.")
            continue
        if file.stat().st_size != meta.get("size"):
            problems.append(
                f"{fname} has {file.stat().st_size} bytes, not the "
                f"{meta.get('size')} installed: {again}."
            )
            continue
        sha = sha256_file(file, reporter, i, len(items))
        if sha != meta.get("sha256"):
            problems.append(
                f"{fname} changed since it was installed (SHA-256 {sha[:12]}… ≠ "
                f"{str(meta.get('sha256'))[:12]}…): {again}."
            )
            continue
        try:
            if isinstance(config, StyleGAN2Config):
                sg2p.check_safetensors_header(file, meta.get("role", "G"), config)
            else:
                check_safetensors_header(file, meta.get("role", "G"), config)
            problem = implausible_value(read_state_dict(file))
            if problem:
                problems.append(f"{fname} is damaged: {problem}; {again}.")
        except CheckpointError as exc:
            problems.append(f"{exc} {again[0].upper() + again[1:]}.")
    if roles_seen != set(ROLES):
        problems.append(f"{RECORD_FILE} does not list both G and D: {again}.")
    return VerifyResult(name, not problems, problems, model.folder)


def _verify_bundled(reporter: Reporter) -> VerifyResult:
    folder = registry.bundled_model_dir()
    try:
        config = read_config(folder)
        files = dict(zip(ROLES, find_weight_files(folder), strict=True))
        for i, role in enumerate(ROLES):
            reporter.report("verify", files[role].name, 0, files[role].stat().st_size, i, 2)
            sd = read_state_dict(files[role])
            check_state_dict(sd, role, config, label=files[role].name, model=BUNDLED)
            problem = implausible_value(sd)
            if problem:
                raise CheckpointError(f"{files[role].name} is damaged: {problem}.")
    except CheckpointError as exc:
        return VerifyResult(BUNDLED, False, [f"{exc} Reinstall DGP Studio."], folder)
    return VerifyResult(BUNDLED, True, [], folder)


def remove(name: str, *, downloads: bool = True) -> Path:
    """Delete an installed model (and, with ``downloads``, any cached download of its
    source files). Returns the folder that was removed."""
    if name == BUNDLED:
        raise RegistryError("The bundled model is part of DGP Studio and cannot be removed.")
    registry.validate_name(name)
    cleanup()
    model = registry.installed(name)
    target = registry.model_dir(name)
    if model is None and not target.exists():
        raise RegistryError(f"{name} is not installed; nothing to remove.")
    store.remove_folder(name)  # one rename: gone for every reader
    if downloads:
        with contextlib.suppress(DGPError):
            src = registry.get_entry(name).source
            if src is not None and src.configured:
                folder = registry.downloads_dir() / ("models--" + src.repo_id.replace("/", "--"))
                shutil.rmtree(folder, ignore_errors=True)
    return target

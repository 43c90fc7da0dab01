"""Model folders and checkpoint files: what a folder holds, read as our BigGAN's tensors.

A model folder holds a generator and its discriminator in one of two layouts:

* ours / BigGAN-PyTorch's: ``config.json`` (BigGAN-PyTorch flag names) + ``G_ema``/``G``
  (optionally ``_<suffix>``) + ``D``, as ``.pth`` or ``.safetensors``;
* StudioGAN's, as its trainer writes a run: ``model=G_ema-best-weights-step=N.pth`` (or
  ``G``/``current``) + ``model=D-...pth``, with the run's YAML config as
  ``studiogan.yaml`` (or ``config.yaml``) or none, then the architecture is read from
  the tensors. A ``config.json`` beside them wins.

Pickled files are read with ``torch.load(weights_only=True)``: tensors and plain
containers/numbers/strings only, never code — plus, for that read only, numpy float64
scalars, which StudioGAN's trainer stores in every D file (``best_fid``). This module sits
below ``prior`` and ``registry`` and imports neither.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import pickle
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..models import BigGANConfig
from . import studiogan
from .family import PriorConfig, config_from_dict, is_stylegan2_dict

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.txt"
#: Keys that DGP adds to BigGAN-PyTorch's generator; released checkpoints lack them.
OPTIONAL_G_KEYS = re.compile(r"^blocks\.\d+\.0\.in[12]\.(weight|bias)$")
FORMATS = ("biggan-pytorch", "studiogan")


@dataclass
class FolderWeights:
    """A folder's G and D state dicts under our names, with their architecture."""

    config: BigGANConfig
    G: dict[str, torch.Tensor]
    D: dict[str, torch.Tensor]
    files: tuple[Path, Path]
    format: str


def read_config(folder: Path) -> BigGANConfig:
    """The architecture of a model folder: its config.json, else (StudioGAN layout) the
    run's YAML, else what the StudioGAN tensors say."""
    cfg_file = folder / CONFIG_FILE
    if not cfg_file.is_file():
        if _studiogan_files(folder) is not None:
            return _studiogan_config(folder)
        raise CheckpointError(
            f"{folder} has no config.json. Add one with the BigGAN-PyTorch flags "
            "(resolution, G_ch, D_ch, dim_z, shared_dim, hier, n_classes, G_attn, D_attn, SN_eps)."
        )
    try:
        data = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{cfg_file} must hold a JSON object of BigGAN settings")
    if is_stylegan2_dict(data):
        raise CheckpointError(
            f"{folder.name} holds a StyleGAN2 model, and this part of DGP "
            "Studio reads BigGAN models only."
        )
    return BigGANConfig.from_dict(data)


def read_prior_config(folder: Path) -> PriorConfig:
    """The architecture of a model folder of either family: a StyleGAN2 config.json
    (``"family": "stylegan2"``), else what :func:`read_config` reads."""
    cfg_file = folder / CONFIG_FILE
    try:
        data = json.loads(cfg_file.read_text(encoding="utf-8")) if cfg_file.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_file} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and is_stylegan2_dict(data):
        return config_from_dict(data)
    return read_config(folder)


def _studiogan_files(folder: Path) -> tuple[Path, Path] | None:
    def pick(patterns: tuple[str, ...]) -> Path | None:
        for pattern in patterns:
            found = sorted(folder.glob(pattern), key=_step_of)
            if found:
                return found[-1]
        return None

    g, d = pick(studiogan.G_FILES), pick(studiogan.D_FILES)
    return (g, d) if g is not None and d is not None else None


def _step_of(path: Path) -> int:
    m = re.search(r"step=(\d+)", path.name)
    return int(m.group(1)) if m else -1


def _studiogan_yaml(folder: Path) -> Path | None:
    for name in studiogan.YAML_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _studiogan_config(
    folder: Path,
    g_sd: dict[str, torch.Tensor] | None = None,
    d_sd: dict[str, torch.Tensor] | None = None,
) -> BigGANConfig:
    yaml_file = _studiogan_yaml(folder)
    if yaml_file is not None:
        return studiogan.config_from_yaml(yaml_file)
    if g_sd is None or d_sd is None:
        files = _studiogan_files(folder)
        assert files is not None
        g_sd, d_sd = read_state_dict(files[0]), read_state_dict(files[1])
    return studiogan.infer_config(g_sd, d_sd)


def find_weight_files(folder: Path) -> tuple[Path, Path]:
    def pick(stems: list[str]) -> Path | None:
        for stem in stems:
            for ext in (".safetensors", ".pth"):
                exact = folder / f"{stem}{ext}"
                if exact.is_file():
                    return exact
            for ext in (".safetensors", ".pth"):
                suffixed = sorted(folder.glob(f"{stem}_*{ext}"))
                if suffixed:
                    return suffixed[0]
        return None

    g = pick(["G_ema", "G"])
    d = pick(["D"])
    if g is None or d is None:
        sg = _studiogan_files(folder)
        if sg is not None:
            return sg
    missing = [n for n, f in (("G_ema.pth (or G.pth)", g), ("D.pth", d)) if f is None]
    if missing:
        raise CheckpointError(
            f"{folder} is missing {' and '.join(missing)}. DGP needs both the generator and "
            "its discriminator; put them next to config.json (safetensors also accepted)."
        )
    return g, d  # type: ignore[return-value]


def read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (``.safetensors``, or a ``.pth`` holding a state dict
    or a dict with ``state_dict`` — StudioGAN's optimizer state and metadata are dropped),
    as float32 where floating point."""
    sd: Any  # whatever the file holds: checked below
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(file))
        else:
            sd = _torch_load(file)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise CheckpointError(
                f"{file.name} holds pickled Python objects besides tensors, which could run "
                "code when loaded; DGP Studio never loads those. Use the original checkpoint "
                "from the model's publisher, or re-save its state dict with torch.save."
            ) from exc
        raise CheckpointError(_unreadable(file, exc)) from exc
    except Exception as exc:  # torch/safetensors raise many kinds for damaged files
        raise CheckpointError(_unreadable(file, exc)) from exc
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{file.name} does not hold a state dict of tensors")
    check_stored_sizes(sd, file.name)
    out = {str(k): v.float() if v.is_floating_point() else v for k, v in sd.items()}
    bad = sorted(
        k for k, v in out.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())
    )
    if bad:  # such weights render black pictures without a word
        raise CheckpointError(
            f"{file.name} is damaged: {', '.join(bad[:3])} hold non-finite "
            "values (NaN or infinity). Download or copy it again."
        )
    return out


# --- sizes: tensors that claim more values than their file stores --------------------------
def check_stored_sizes(tensors: Mapping[str, Any], label: str) -> None:
    """Refuse (CheckpointError) a tensor whose size and strides claim more values than its
    storage holds — overlapping strides (stride 0: one value repeated). No checkpoint a
    trainer writes has one, and the first copy, cast or finiteness check of it allocates
    what it claims: a 4 MB ``.pth`` (or a 1 KB network pickle) with one stride-0
    20000×20000 tensor once took 3 GB to refuse, and claims are unbounded."""
    for key, t in tensors.items():
        if not isinstance(t, torch.Tensor) or t.numel() == 0:
            continue
        stored = t.untyped_storage().nbytes() // max(1, t.element_size()) - t.storage_offset()
        if t.numel() > stored:
            raise CheckpointError(
                f"{label} was refused: its tensor {key} claims {t.numel():,} values of shape "
                f"{tuple(t.shape)} but the file stores {max(0, stored):,} for it (a damaged or "
                "crafted file: a trained network's tensors never repeat values this way)."
            )


# --- plausibility: values no GAN prior holds (flipped bits, damaged copies) ---------------
#: A value more than this many times its tensor's 90th percentile of |w| is refused.
OUTLIER_FACTOR = 1000.0
#: Tensors with fewer values (σ estimates, tiny biases) get only the absolute ceilings.
OUTLIER_MIN_VALUES = 64
#: No weight, bias, gain, BN statistic or σ estimate of a BigGAN, and no weight, bias,
#: noise strength, constant or average w of a StyleGAN2, comes near this.
VALUE_CEILING = 1e6
#: Spectral-norm vectors (``u0``, ``v0``) are unit vectors, or N(0, 1) draws before training.
SN_VECTOR_CEILING = 100.0
_PERCENTILE_SAMPLE = 1 << 16
#: Tensor names (last part) that hold floating-point values in every network we read.
_FLOAT_LEAVES = frozenset(
    {
        "weight",
        "bias",
        "gain",
        "u0",
        "v0",
        "sv0",
        "stored_mean",
        "stored_var",
        "const",
        "w_avg",
        "noise_strength",
    }
)


def implausible_value(
    sd: Mapping[str, torch.Tensor], stored: Mapping[str, torch.Tensor] | None = None
) -> str | None:
    """What makes a BigGAN or StyleGAN2 state dict implausible (a clause naming the
    tensor), or None.

    Weights, biases, gains, σ estimates and BN statistics stored as integers are refused
    (a cast would turn them into a model that cannot run). Checked per floating-point
    tensor:

    * finite, and finite in ``stored`` (the same tensors as they will be written: e.g.
      float16, where 1e30 becomes infinity and the model could never be used);
    * spectral-norm vectors ``u0``/``v0`` within ±100 (they are unit vectors, or N(0, 1)
      draws in an untrained model);
    * every other value within ±1e6, BN running variances ≥ 0;
    * tensors of 64 values or more: max |w| ≤ 1000 × the 90th percentile of |w|, and a
      matrix or kernel (2 dimensions or more) not all zeros.

    Why the last rule: every weight of a spectrally normalised layer is divided by the
    layer's σ = max singular value of W ≥ max |w|, so one huge entry makes σ huge and the
    rest of the layer ~0 — no training produces that; the other tensors (class embedding,
    biases, BN statistics) are as smooth.  The 90th percentile is a scale that a few
    damaged values cannot move, unlike the RMS or the maximum (a single outlier of size M
    among n values drives max/RMS only to √n), and it stays positive when many channels
    are dead (unlike the median).  Measured max / 90th percentile: at most 12.6 in the
    reference BigGAN-PyTorch parity weights (blocks.0.0.conv2.weight), 3.5 in the bundled
    model, the three StudioGAN reference models, seeded ``build_prior`` models (32–256 px,
    ch 8–32) and PyTorch-default-initialised ones; the spectral-norm vectors (hence their
    own ceiling) reach 1400 in the parity weights, where power iteration has concentrated
    them on a few entries.  StyleGAN2 has no spectral norm, but the same holds: its
    weights are stored at unit scale (equalised learning rate: N(0, 1) at init, scaled
    by 1/√fan_in when used), and weight demodulation divides each output channel by its
    norm, so one huge entry silences the rest of its channel.  Measured: at most 2.7 in
    the four StyleGAN2 reference models (StudioGAN's and NVIDIA's, ``stylegan2_small``)
    and 3.4 in a freshly initialised full-size 256 px StyleGAN2 (b4.fc.weight).  A float16
    exponent bit flipped in a typical weight multiplies it by 2¹⁶ (float32: 2¹²⁸), tens of
    thousands of times over the limit; smaller flips (×2…×256) go unnoticed, and do
    little harm.  The percentile is taken on an evenly strided sample of at most 65,536
    values, so the check costs about one pass over the weights."""
    for key, value in sd.items():
        leaf = key.rsplit(".", 1)[-1]
        if not value.is_floating_point() and leaf in _FLOAT_LEAVES and value.numel():
            # load_state_dict casts them without a word: a file of int64 "weights" (floats
            # cut to whole numbers, mostly 0) imported and verified OK, then every run
            # failed with "weights hold NaN or inf"
            return (
                f"{key} holds {_dtype_name(value)} whole numbers where a network holds "
                "floating-point weights"
            )
        if not value.is_floating_point() or value.numel() == 0:
            continue
        flat = value.detach().reshape(-1)
        lo, hi = (float(x) for x in torch.aminmax(flat))  # NaN anywhere makes both NaN
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return f"{key} holds non-finite values (NaN or infinity)"
        peak = max(-lo, hi)
        if peak == 0.0 and value.dim() >= 2 and flat.numel() >= OUTLIER_MIN_VALUES:
            # a zeroed kernel or matrix (a zero-filled copy): spectral norm divides it by
            # its largest singular value, 0, and demodulation by its norm, 0
            return (
                f"{key} holds only zeros, which no trained or initialised GAN layer "
                "has (a zero-filled or damaged copy)"
            )
        kept = stored.get(key) if stored is not None else None
        if (
            kept is not None
            and kept.is_floating_point()
            and kept.dtype != value.dtype
            and not all(math.isfinite(float(x)) for x in torch.aminmax(kept.reshape(-1)))
        ):
            return (
                f"{key} holds {peak:.3g}, which becomes infinity in {_dtype_name(kept)} "
                "(the precision it is stored in)"
            )
        if leaf in ("u0", "v0"):
            if peak > SN_VECTOR_CEILING:
                return (
                    f"{key} holds {peak:.4g}, but it is a spectral-norm vector (unit "
                    f"length, entries within ±{SN_VECTOR_CEILING:g})"
                )
            continue
        if peak > VALUE_CEILING:
            return f"{key} holds {peak:.4g}, far beyond any weight of a GAN (±{VALUE_CEILING:g})"
        if leaf == "stored_var" and lo < 0:
            return f"{key} holds a negative BN running variance ({lo:.4g})"
        if flat.numel() < OUTLIER_MIN_VALUES or peak == 0.0:
            continue
        step = max(1, flat.numel() // _PERCENTILE_SAMPLE)
        sample = flat[::step].float().abs()
        typical = float(sample.kthvalue(max(1, int(0.9 * sample.numel()))).values)
        if typical > 0 and peak > OUTLIER_FACTOR * typical:
            return (
                f"{key} holds {peak:.4g} while 90 % of its values are below "
                f"{typical:.2g}, an outlier that no trained or initialised GAN has "
                "and flipped bits make"
            )
    return None


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _unreadable(file: Path, exc: BaseException) -> str:
    """One sentence for a weights file that torch/safetensors cannot read: an empty file
    says so, anything else gets the first clause of the library's message at most (PyTorch's
    run on for several sentences; an empty file's EOFError says nothing at all)."""
    try:
        empty = file.stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        return f"{file.name} is empty (0 bytes): download or copy it again."
    text = (str(exc).strip().splitlines() or [""])[0]
    reason = text.split(". ")[0].rstrip(".")[:120]
    detail = f" ({reason})" if reason else ""
    return (
        f"Could not read {file.name}: the file is damaged or incomplete{detail}; download "
        "or copy it again."
    )


def _torch_load(file: Path) -> Any:
    with numpy_floats_allowed():
        try:  # zip-format checkpoints map their tensors: optimizer state is never paged in
            return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc).lower():
                raise
            return torch.load(file, map_location="cpu", weights_only=True)


# --- numpy float64 scalars in pickles (StudioGAN's best_fid) -------------------------------
# A numpy scalar pickles as scalar(dtype, raw bytes), the dtype as dtype("f8", False, True)
# followed by a BUILD of its state. The allow-list maps the names a file may use to the
# checked stand-ins below; BUILD is allowed on float64 dtypes only.
_FLOAT64 = np.dtype(np.float64)
_SCALAR_NAMES = (
    "numpy._core.multiarray.scalar",  # numpy 2
    "numpy.core.multiarray.scalar",
)  # numpy 1.x: StudioGAN's 2022 files
_ALLOW_LOCK = threading.Lock()


def _refuse(what: str) -> pickle.UnpicklingError:
    # torch.load turns this into its "Weights only load failed" error: refused as any
    # other object besides tensors
    return pickle.UnpicklingError(f"weights_only: {what} is not a numpy float64")


def _float64_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype[Any]:
    """numpy.dtype as a pickle calls it, for the float64 dtype only."""
    if not isinstance(spec, str) or spec not in ("f8", "<f8", "float64"):
        raise _refuse(f"the dtype {spec!r}")
    return np.dtype(spec, align=bool(align), copy=bool(copy))


def _float64_scalar(dtype: Any, data: Any = None) -> np.float64:
    """numpy's scalar reconstructor, for float64 values given as their 8 raw bytes."""
    if (
        not isinstance(dtype, np.dtype)
        or dtype != _FLOAT64
        or not isinstance(data, bytes)
        or len(data) != _FLOAT64.itemsize
    ):
        raise _refuse(f"a numpy scalar made of {dtype!r} and {type(data).__name__}")
    return np.frombuffer(data, dtype=dtype)[0].copy()  # type: ignore[no-any-return]


def numpy_float_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` needs to read numpy float64 scalars: the
    scalar reconstructor under numpy 2's and numpy 1's module names, ``numpy.dtype`` and
    the float64 dtype's class — each a checked stand-in that builds nothing else."""
    return [
        *((_float64_scalar, name) for name in _SCALAR_NAMES),
        (_float64_dtype, "numpy.dtype"),
        type(_FLOAT64),
    ]


@contextmanager
def numpy_floats_allowed() -> Iterator[None]:
    """Allow :func:`numpy_float_globals` for the reads inside this block only. torch's
    allow-list is one per process: the lock keeps another thread from removing it
    mid-read."""
    with _ALLOW_LOCK, torch.serialization.safe_globals(numpy_float_globals()):
        yield


def family_of(sd: dict[str, torch.Tensor]) -> str:
    """Which BigGAN family a state dict holds, StudioGAN's names or ours: spectral-norm
    layers with a stored v (``weight_v``/``v0``) are StudioGAN's, with a logged sigma
    (``sv0``) BigGAN-PyTorch's."""
    if studiogan.is_studiogan(sd) or any(k.endswith(".v0") for k in sd):
        return "studiogan"
    return "biggan-pytorch"


def as_ours(
    sd: dict[str, torch.Tensor], role: str, label: str
) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict under our names, its family). StudioGAN networks other than the
    BigGAN G/D that DGP uses are refused with what they are."""
    if not studiogan.is_studiogan(sd):
        return sd, family_of(sd)
    found, what = studiogan.identify(sd)
    if found is None:
        raise CheckpointError(
            f"{label} is {what}; DGP needs a BigGAN (big_resnet) generator and its discriminator."
        )
    if found != role:
        raise CheckpointError(
            f"{label} holds {what}, not a {studiogan.describe_role(role)}: pass the generator "
            "(model=G_ema-…pth) with --g and the discriminator (model=D-…pth) with --d."
        )
    return studiogan.to_ours(sd, role), "studiogan"


def read_folder(folder: Path) -> FolderWeights:
    """Config and both networks' tensors of a model folder, under our names."""
    has_config = (folder / CONFIG_FILE).is_file()
    config = read_config(folder) if has_config or _studiogan_files(folder) is None else None
    g_file, d_file = find_weight_files(folder)
    g_raw, d_raw = read_state_dict(g_file), read_state_dict(d_file)
    g_sd, g_fmt = as_ours(g_raw, "G", g_file.name)
    d_sd, d_fmt = as_ours(d_raw, "D", d_file.name)
    if g_fmt != d_fmt:
        raise CheckpointError(
            f"{g_file.name} is a {g_fmt} checkpoint but {d_file.name} is a {d_fmt} one: "
            "put the generator and the discriminator of the same model together."
        )
    if config is None:
        config = _studiogan_config(folder, g_raw, d_raw)
    del g_raw, d_raw
    if g_fmt == "studiogan" and config.family != "studiogan":
        raise CheckpointError(
            f"{folder / CONFIG_FILE} describes a BigGAN-PyTorch model but the weights are "
            'StudioGAN\'s: add "family": "studiogan" and "BN_eps": 0.0001 to it, or '
            "delete it to read the architecture from the StudioGAN files."
        )
    if g_fmt == "biggan-pytorch" and config.family == "studiogan":
        raise CheckpointError(
            f"{folder.name}'s config describes a StudioGAN model but {g_file.name} is a "
            "BigGAN-PyTorch checkpoint: fix the config's family."
        )
    return FolderWeights(config, g_sd, d_sd, (g_file, d_file), g_fmt)


def key_mismatch(
    sd: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    optional: re.Pattern[str] | None = None,
) -> str | None:
    """How the tensors ``sd`` differ from the names and shapes a network ``expected``
    (missing, unexpected, of the wrong shape; a few of each named), or None when they fit.
    Keys matching ``optional`` may be missing."""
    missing = [k for k in expected if k not in sd and not (optional and optional.match(k))]
    unexpected = [k for k in sd if k not in expected]
    wrong = [
        f"{k}: file {tuple(sd[k].shape)} vs model {expected[k]}"
        for k in expected
        if k in sd and tuple(sd[k].shape) != tuple(expected[k])
    ]
    parts = [
        f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "",
        f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})" if unexpected else "",
        f"{len(wrong)} of the wrong shape (e.g. {'; '.join(wrong[:2])})" if wrong else "",
    ]
    return "; ".join(p for p in parts if p) or None


def load_strict(
    net: torch.nn.Module,
    sd: dict[str, torch.Tensor],
    file: Path,
    config: BigGANConfig,
    optional: re.Pattern[str] | None = None,
) -> None:
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    detail = key_mismatch(sd, expected, optional)
    if detail:
        raise CheckpointError(
            f"{file.name} does not fit the expected config ({config.describe()}): {detail}. "
            "Check config.json (resolution, G_ch/D_ch) against the checkpoint you have."
        )
    net.load_state_dict(sd, strict=False)


def read_class_names(folder: Path, config: BigGANConfig) -> list[str]:
    """The model's own ``classes.txt`` if present, else ImageNet names for 1000 classes."""
    own = folder / CLASSES_FILE
    if own.is_file():
        names = [ln.strip() for ln in own.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(names) == config.n_classes:
            return names
        log.warning(
            "%s lists %d names for %d classes; ignoring it", own, len(names), config.n_classes
        )
    if config.n_classes == 1000:
        from .classes import imagenet_class_names

        return imagenet_class_names()
    return [f"class {i}" for i in range(config.n_classes)]


def update_digest(digest: hashlib._Hash, prefix: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Feed ``tensors`` (names under ``prefix``, dtypes, shapes, values) to ``digest``, in
    name order: the same bytes whatever container the tensors came from."""
    for k in sorted(tensors):
        t = tensors[k].detach().cpu()
        digest.update(f"{prefix}/{k}:{t.dtype}:{tuple(t.shape)};".encode())
        t = t.reshape(-1)  # contiguous, and 0-d tensors can be viewed as bytes
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def tensors_digest(*state_dicts: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over tensors, whatever container they came in: the identity of a set of
    weights (or of a state's tensors)."""
    digest = hashlib.sha256()
    for index, sd in enumerate(state_dicts):
        update_digest(digest, str(index), sd)
    return digest.hexdigest()


def installed_digest(folder: Path) -> str | None:
    """The weights' identity from an install record (``model.json``: the SHA-256 of each
    converted file), without reading the weights; None when the folder has none."""
    try:
        record = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        files = record["files"]
        parts = sorted(f"{name}={meta['sha256']}" for name, meta in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else None


# --- installed weights: checked against their install record at every load ----------------
VERIFIED_FILE = ".verified.json"  # beside model.json: {name: {size, mtime_ns, ctime_ns, sha256}}
_HASH_CHUNK = 8 << 20


def _stat_key(file: Path) -> dict[str, int]:
    st = file.stat()
    # ctime cannot be set back by a user (utime sets it to now): a file rewritten and given
    # its old mtime still looks changed.
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
    }


def _sha256(file: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_installed_files(folder: Path, name: str | None = None) -> list[str]:
    """Check the files an install record (``model.json``) lists against their recorded size
    and SHA-256 before they are loaded; raises CheckpointError naming the first file that
    differs and what to do. A folder without a record (the bundled model, a folder of
    one's own) is not checked. Hashes are remembered in ``.verified.json`` beside the record
    under the file's size, mtime, ctime and inode, so a later load of unchanged files reads
    no weights twice (best effort: an unwritable folder is simply hashed every time).
    Returns the names that were hashed now (empty when all came from the cache)."""
    name = name or folder.name
    try:
        record = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"The install record of {name} ({folder / 'model.json'}) is "
            f"unreadable ({exc}): run `dgp models verify {name}`, then pull "
            "or import the model again."
        ) from exc
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict):
        return []
    again = (
        f"run `dgp models verify {name}`, then `dgp models pull {name} --force` or "
        "import its files again"
    )
    cache_file = folder / VERIFIED_FILE
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
        cache = cache if isinstance(cache, dict) else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        cache = {}
    hashed: list[str] = []
    fresh: dict[str, Any] = {}
    for fname, meta in files.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
            continue
        want = meta["sha256"].lower()
        file = folder / str(fname)
        try:
            key = _stat_key(file)
        except OSError:
            raise CheckpointError(
                f"{fname} of the model {name} is missing from {folder}: {again}."
            ) from None
        if isinstance(meta.get("size"), int) and key["size"] != meta["size"]:
            raise CheckpointError(
                f"{fname} of the model {name} has {key['size']} bytes, not "
                f"the {meta['size']} installed: the weights were altered or "
                f"damaged after installation; {again}."
            )
        seen = cache.get(str(fname))
        if (
            isinstance(seen, dict)
            and seen.get("sha256") == want
            and all(seen.get(k) == v for k, v in key.items())
        ):
            fresh[str(fname)] = seen
            continue
        try:
            got = _sha256(file)
        except OSError as exc:
            raise CheckpointError(f"Could not read {file}: {exc.strerror or exc}.") from exc
        hashed.append(str(fname))
        if got != want:
            raise CheckpointError(
                f"{fname} of the model {name} changed since it was installed (SHA-256 "
                f"{got[:12]}… instead of {want[:12]}…): the weights were altered or damaged "
                f"and are not used; {again}."
            )
        fresh[str(fname)] = {**key, "sha256": want}
    if hashed:
        from ..system.fileio import atomic_write  # fileio sits below this module

        try:
            atomic_write(cache_file, json.dumps(fresh, indent=1).encode("utf-8"))
        except OSError as exc:  # a read-only models folder: check again next time
            log.debug("could not remember the verified hashes in %s: %s", cache_file, exc)
    return hashed

"""StyleGAN2 weights from NVIDIA network pickles and StudioGAN checkpoints, read safely.

NVIDIA's ``network-snapshot-*.pkl`` / ``ffhq.pkl`` are pickles of whole modules whose
classes are rebuilt by ``torch_utils.persistence._reconstruct_persistent_obj``, which
``exec``s the source text stored in the file: a normal unpickler runs whatever code the
file carries. :func:`read_network_pickle` never does. Its unpickler knows a fixed list of
globals (the formats' own, ``reference/stylegan2_small/README.md``), and the persistent-
object constructor it maps is ours: it returns the class name and the stored module
state and leaves the source text alone. Storages are read from their legacy
``torch.save`` bytes by ``torch.load(weights_only=True)``. Anything else in the file is
refused with a sentence, before any object of it is used.

StudioGAN publishes its StyleGAN2 runs as ``model=G_ema-…pth`` / ``model=D-…pth``
(``torch.save`` zip files); :func:`read_studiogan` reads them with
``torch.load(weights_only=True)`` plus, for that read only, numpy float64 scalars (its
``best_fid``) through the checked stand-ins of :func:`.checkpoint.numpy_floats_allowed`.

Both give a :class:`StyleGAN2Weights`: our config and flat state dicts under the
checkpoints' own names; :func:`build_networks` makes the modules (strict load).
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..errors import CheckpointError
from ..models import stylegan2 as sg2
from ..models.stylegan2 import StyleGAN2Config
from ..system.fileio import read_small_file
from .checkpoint import check_stored_sizes, key_mismatch, numpy_floats_allowed

# --------------------------------------------------------------------------- results


@dataclass
class StyleGAN2Weights:
    """What a StyleGAN2 checkpoint holds, under the checkpoint's tensor names.

    ``G`` is the non-averaged generator when the files have it (training snapshots);
    ``info`` holds plain metadata (NVIDIA ``training_set_kwargs``; StudioGAN step,
    run name, best FID)."""

    config: StyleGAN2Config
    G_ema: dict[str, torch.Tensor]
    D: dict[str, torch.Tensor]
    G: dict[str, torch.Tensor] | None
    source: str
    files: tuple[Path, ...]
    info: dict[str, Any] = field(default_factory=dict)


def check_state_dict(
    net: nn.Module, sd: dict[str, torch.Tensor], what: str, config: StyleGAN2Config
) -> None:
    """Refuse a state dict that does not fit ``net`` exactly (names and shapes)."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    detail = key_mismatch(sd, expected)
    if detail:
        raise CheckpointError(
            f"{what} does not fit the architecture read for it ({config.describe()}): {detail}."
        )


def build_networks(
    weights: StyleGAN2Weights,
    ema: bool = True,
) -> tuple[sg2.Generator, sg2.Discriminator]:
    """G (G_ema unless ``ema`` is False) and D with the weights loaded, in eval mode."""
    g_sd = weights.G_ema if ema else weights.G
    if g_sd is None:
        raise CheckpointError(f"{weights.files[0].name} holds no non-averaged generator.")
    G, D = sg2.build(weights.config, "meta")
    check_state_dict(G, g_sd, "The generator", weights.config)
    check_state_dict(D, weights.D, "The discriminator", weights.config)
    # assign: the modules take the loaded tensors instead of filling random ones
    G.load_state_dict(g_sd, strict=True, assign=True)
    D.load_state_dict(weights.D, strict=True, assign=True)
    return G.eval(), D.eval()


# --------------------------------------------------------------------------- NVIDIA pickles

#: NVIDIA's class name for each of our module classes (a pickle's persistent objects must
#: have exactly these at exactly our modules' paths).
_NVIDIA_CLASS = {
    sg2.Generator: "Generator",
    sg2.MappingNetwork: "MappingNetwork",
    sg2.FullyConnected: "FullyConnectedLayer",
    sg2.SynthesisNetwork: "SynthesisNetwork",
    sg2.SynthesisBlock: "SynthesisBlock",
    sg2.ModulatedConv: "SynthesisLayer",
    sg2.ToRGB: "ToRGBLayer",
    sg2.Discriminator: "Discriminator",
    sg2.DiscriminatorBlock: "DiscriminatorBlock",
    sg2.Conv2dLayer: "Conv2dLayer",
    sg2.DiscriminatorEpilogue: "DiscriminatorEpilogue",
    sg2.MinibatchStd: "MinibatchStdLayer",
}
#: Class names that only other generations of NVIDIA's (and derived) GANs have.
_OTHER_FAMILIES = {
    "SynthesisInput": "a StyleGAN3 network (alias-free generator)",
    "SuperresGenerator": "a StyleGAN-XL network",
    "ProjectedDiscriminator": "a StyleGAN-XL / Projected GAN network",
    "MultiScaleD": "a StyleGAN-XL / Projected GAN network",
    "F_RandomProj": "a StyleGAN-XL / Projected GAN network",
    "SingleDisc": "a StyleGAN-XL / Projected GAN network",
}
#: StyleGAN3 synthesis layers are named L<index>_<size>_<channels>.
_SG3_LAYER = re.compile(r"^L\d+_\d+_\d+$")
_NUMERIC_DTYPE_KINDS = "biufc"


@dataclass(frozen=True)
class PersistentObject:
    """A module of a network pickle: its class name and stored ``__dict__``; the class's
    source text is never kept nor run."""

    class_name: str
    state: dict[str, Any]


class EasyDict(dict[str, Any]):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access)."""


class _DtypeSpec:
    """Stands in for ``numpy.dtype(...)``: only the type code and byte order are kept."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True):
        if not isinstance(code, str) or len(code) > 8:
            raise CheckpointError("the pickle names a numpy type that is not a plain number")
        try:
            dtype = np.dtype(code)
        except TypeError as exc:
            raise CheckpointError(f"the pickle names an unknown numpy type {code!r}") from exc
        if dtype.kind not in _NUMERIC_DTYPE_KINDS:
            raise CheckpointError(f"the pickle holds numpy values of type {code!r}, not numbers")
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_scalar(spec: Any, data: Any = None) -> Any:
    if (
        not isinstance(spec, _DtypeSpec)
        or not isinstance(data, bytes)
        or len(data) != spec.dtype.itemsize
    ):
        raise CheckpointError("the pickle holds a malformed numpy number")
    return np.frombuffer(data, dtype=spec.dtype)[0]


def _persistent_object(meta: Any) -> PersistentObject:
    if (
        not isinstance(meta, dict)
        or meta.get("type") != "class"
        or not isinstance(meta.get("class_name"), str)
        or not isinstance(meta.get("state"), dict)
    ):
        raise CheckpointError("the pickle holds a persistent object of an unknown layout")
    return PersistentObject(meta["class_name"], meta["state"])


def _load_storage(data: Any) -> Any:
    if not isinstance(data, bytes):
        raise CheckpointError("the pickle holds a tensor storage that is not bytes")
    storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise CheckpointError("the pickle holds a tensor storage of an unknown kind")
    return storage


def _rebuild_tensor(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    hooks: Any,
    metadata: Any = None,
) -> torch.Tensor:
    if (
        not isinstance(storage, torch.TypedStorage)
        or not isinstance(offset, int)
        or not isinstance(size, tuple)
        or not isinstance(stride, tuple)
        or len(size) != len(stride)
        or not all(isinstance(v, int) and v >= 0 for v in (*size, *stride))
    ):
        raise CheckpointError("the pickle holds a malformed tensor")
    # the bytes behind the typed storage (its public accessors warn of deprecation)
    raw = storage._untyped_storage
    itemsize = torch.empty(0, dtype=storage.dtype).element_size()
    extent = offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) + 1
    # overlapping strides (stride 0) claim more values than stored: the copy of the tensor
    # would allocate the claim (1.6 GB from a 912-byte pickle; claims are unbounded)
    if offset < 0 or (
        math.prod(size) > 0
        and (
            extent * itemsize > raw.nbytes() or (offset + math.prod(size)) * itemsize > raw.nbytes()
        )
    ):
        raise CheckpointError("the pickle holds a tensor larger than its storage")
    return torch.empty(0, dtype=storage.dtype).set_(raw, offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any, hooks: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("the pickle holds a malformed parameter")
    return data


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("the pickle encodes text in an unexpected way")
    return text.encode("latin1")


#: (module, name) → what the unpickler hands out for it. Nothing else is resolvable.
_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,  # numpy 1.x name
    ("numpy", "dtype"): _DtypeSpec,
    ("builtins", "set"): set,  # pickle protocols < 4 store sets as set(list)
    ("__builtin__", "set"): set,  # protocol 2 writes Python 2's module names
    ("_codecs", "encode"): _latin1_bytes,  # protocol 2 stores bytes as encode(str)
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            if module.startswith("dnnlib.tflib"):
                raise CheckpointError(
                    "it is a TensorFlow-era StyleGAN pickle, which "
                    "needs TensorFlow code to read; DGP Studio reads the "
                    "PyTorch pickles of stylegan2-ada-pytorch"
                )
            raise CheckpointError(
                f"it refers to {module}.{name}, which is not part of a "
                "StyleGAN2 network pickle; the file may carry code, so "
                "it was not loaded"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError("it refers to outside objects, which network pickles never do")


def safe_unpickle(data: bytes, label: str) -> Any:
    """The objects of a network pickle, modules as :class:`PersistentObject` trees; no
    code of the file runs. Refuses (CheckpointError) a file with any other global."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except CheckpointError as exc:
        raise CheckpointError(f"{label} was refused: {exc}.") from None
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{label} was refused: a tensor storage in it refers to objects other than tensors."
            ) from None
        raise CheckpointError(
            f"Could not read {label}: the file is damaged or incomplete "
            f"({exc}). Download or copy it again."
        ) from None
    except Exception as exc:  # malformed opcode streams raise many kinds
        raise CheckpointError(
            f"Could not read {label}: the file is damaged or is not a "
            f"network pickle ({type(exc).__name__}: {exc})."
        ) from None


def _flatten(
    obj: PersistentObject, prefix: str, tensors: dict[str, torch.Tensor], classes: dict[str, str]
) -> None:
    """The module tree's tensors under state_dict names, and each module's class name."""
    state = obj.state
    if not isinstance(obj.class_name, str) or not isinstance(state, dict):
        raise CheckpointError(f"its module {prefix or '(top)'} is malformed")
    classes[prefix.rstrip(".")] = obj.class_name
    skip = state.get("_non_persistent_buffers_set") or set()
    if not isinstance(skip, (set, frozenset)) or not all(isinstance(n, str) for n in skip):
        raise CheckpointError(f"its module {prefix or '(top)'} has a malformed buffer list")
    for group in ("_parameters", "_buffers"):
        entries = state.get(group) or {}
        if not isinstance(entries, dict):
            raise CheckpointError(f"its module {prefix or '(top)'} has a malformed {group}")
        for name, value in entries.items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(name, str) or not isinstance(value, torch.Tensor):
                raise CheckpointError(
                    f"its module {prefix or '(top)'} holds a "
                    f"{type(value).__name__} among its tensors"
                )
            # a new tensor: nothing the pickle did to the object it built comes along
            tensors[prefix + name] = value.detach().clone(memory_format=torch.contiguous_format)
    modules = state.get("_modules") or {}
    if not isinstance(modules, dict):
        raise CheckpointError(f"its module {prefix or '(top)'} has malformed submodules")
    for name, sub in modules.items():
        if sub is None:
            continue
        if not isinstance(name, str) or not isinstance(sub, PersistentObject):
            raise CheckpointError(f"its module {prefix}{name} is not a network module")
        _flatten(sub, f"{prefix}{name}.", tensors, classes)


def _identify_family(classes: dict[str, str]) -> str | None:
    """What a network is when its classes or layer names say it is no StyleGAN2."""
    for name in classes.values():
        if name in _OTHER_FAMILIES:
            return _OTHER_FAMILIES[name]
    for path in classes:
        leaf = path.rsplit(".", 1)[-1]
        if path.startswith("synthesis.") and (_SG3_LAYER.match(leaf) or leaf == "input"):
            return "a StyleGAN3 network (alias-free generator)"
    return None


def _check_classes(net: nn.Module, classes: dict[str, str], role: str, label: str) -> None:
    """``label``: how to name the network in a refusal (e.g. "x.pkl's G_ema")."""
    expected = {
        path: _NVIDIA_CLASS.get(type(m), type(m).__name__) for path, m in net.named_modules()
    }
    for path, want in expected.items():
        got = classes.get(path)
        if got != want:
            where = f"its {path}" if path else "its top module"
            raise CheckpointError(
                f"{label} is not a StyleGAN2 {role}: {where} is "
                f"{'missing' if got is None else 'a ' + got}, where StyleGAN2 has a {want}."
            )
    extra = sorted(set(classes) - set(expected))
    if extra:
        raise CheckpointError(
            f"{label} has modules a StyleGAN2 {role} does not have ({', '.join(extra[:3])})."
        )


def _kwargs(obj: PersistentObject, role: str, label: str) -> dict[str, Any]:
    kw = obj.state.get("_init_kwargs")
    if not isinstance(kw, dict):
        raise CheckpointError(
            f"{label}'s {role} does not record its constructor settings (_init_kwargs)."
        )
    return dict(kw)


def _int(value: Any, what: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise CheckpointError(f"the setting {what} is {value!r}, not an integer")


def _num_or_none(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    ):
        return float(value)
    raise CheckpointError(f"the setting {what} is {value!r}, not a number")


def _sub(kw: dict[str, Any], key: str) -> dict[str, Any]:
    value = kw.pop(key, None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CheckpointError(f"the setting {key} is not a dictionary")
    return dict(value)


#: Settings that change only speed or training, never a forward pass in fp32.
_HARMLESS = {
    "channels_last",
    "fp16_channels_last",
    "fused_modconv_default",
    "w_avg_beta",
    "freeze_layers",
    "class_name",
    "num_fp16_res",
}
#: Settings read with their default when they are absent (NVIDIA's constructors').
_G_DEFAULTS = {
    "channel_base": 32768,
    "channel_max": 512,
    "conv_clamp": None,
    "architecture": "skip",
}
_D_DEFAULTS = {
    "channel_base": 32768,
    "channel_max": 512,
    "conv_clamp": None,
    "architecture": "resnet",
    "cmap_dim": None,
}


def _require(kw: dict[str, Any], key: str, allowed: tuple[Any, ...], what: str) -> None:
    value = kw.pop(key, allowed[0])
    if isinstance(value, (list, tuple)):
        value = [float(v) for v in value]
    if value not in allowed:
        raise CheckpointError(
            f"{what} sets {key}={value!r}, which DGP Studio's StyleGAN2 does not implement"
        )


def _mapping_settings(kw: dict[str, Any], w_dim: int | None, what: str) -> tuple[int, float]:
    layers = _int(kw.pop("num_layers", 8), f"{what} num_layers")
    lr = _num_or_none(kw.pop("lr_multiplier", 0.01), f"{what} lr_multiplier")
    for key in ("embed_features", "layer_features"):
        value = kw.pop(key, None)
        if value is not None and value != w_dim:
            raise CheckpointError(
                f"{what} sets {key}={value!r}, which DGP Studio's StyleGAN2 does not implement"
            )
    _require(kw, "activation", ("lrelu",), what)
    _refuse_unknown(kw, what)
    if lr is None or lr <= 0:
        raise CheckpointError(f"{what} has no valid lr_multiplier")
    return layers, lr


def _refuse_unknown(kw: dict[str, Any], what: str) -> None:
    unknown = sorted(k for k in kw if k not in _HARMLESS)
    if unknown:
        raise CheckpointError(
            f"{what} has settings DGP Studio's StyleGAN2 does not "
            f"implement: {', '.join(map(str, unknown))}"
        )


def config_from_init_kwargs(
    g_kwargs: dict[str, Any],
    d_kwargs: dict[str, Any],
) -> StyleGAN2Config:
    """Our config from the generator's and discriminator's constructor settings."""
    g = dict(g_kwargs)
    d = dict(d_kwargs)
    z_dim, w_dim = _int(g.pop("z_dim", None), "z_dim"), _int(g.pop("w_dim", None), "w_dim")
    c_dim = _int(g.pop("c_dim", 0), "c_dim")
    res = _int(g.pop("img_resolution", None), "img_resolution")
    channels = _int(g.pop("img_channels", 3), "img_channels")
    g_layers, g_lr = _mapping_settings(_sub(g, "mapping_kwargs"), w_dim, "the generator's mapping")
    synth = _sub(g, "synthesis_kwargs")
    synth.update(g)  # the stylegan3 repository passes synthesis settings at the top level
    synth = {**_G_DEFAULTS, **synth}
    _require(synth, "architecture", ("skip",), "the generator")
    _require(synth, "resample_filter", ([1.0, 3.0, 3.0, 1.0],), "the generator")
    _require(synth, "use_noise", (True,), "the generator")
    _require(synth, "activation", ("lrelu",), "the generator")
    _require(synth, "kernel_size", (3,), "the generator")
    g_base = _int(synth.pop("channel_base"), "channel_base")
    g_max = _int(synth.pop("channel_max"), "channel_max")
    g_clamp = _num_or_none(synth.pop("conv_clamp"), "conv_clamp")
    fp16 = _int(synth.get("num_fp16_res", 0), "num_fp16_res")
    _refuse_unknown(synth, "the generator")

    d = {**_D_DEFAULTS, **d}
    d_c_dim = _int(d.pop("c_dim", 0), "the discriminator's c_dim")
    if (
        _int(d.pop("img_resolution", None), "the discriminator's img_resolution") != res
        or _int(d.pop("img_channels", 3), "img_channels") != channels
    ):
        raise CheckpointError(
            "the generator and the discriminator are made for different image sizes"
        )
    _require(d, "architecture", ("resnet",), "the discriminator")
    d_base = _int(d.pop("channel_base"), "channel_base")
    d_max = _int(d.pop("channel_max"), "channel_max")
    d_clamp = _num_or_none(d.pop("conv_clamp"), "conv_clamp")
    cmap = d.pop("cmap_dim")
    cmap_dim = None if cmap is None else _int(cmap, "cmap_dim")
    block = _sub(d, "block_kwargs")
    _require(block, "activation", ("lrelu",), "the discriminator")
    _require(block, "resample_filter", ([1.0, 3.0, 3.0, 1.0],), "the discriminator")
    _require(block, "architecture", ("resnet",), "the discriminator")
    _refuse_unknown(block, "the discriminator's blocks")
    d_layers, d_lr = _mapping_settings(
        _sub(d, "mapping_kwargs"), cmap_dim, "the discriminator's mapping"
    )
    epi = _sub(d, "epilogue_kwargs")
    group = epi.pop("mbstd_group_size", 4)
    mbstd = None if group is None else _int(group, "mbstd_group_size")
    mbstd_channels = _int(epi.pop("mbstd_num_channels", 1), "mbstd_num_channels")
    _require(epi, "activation", ("lrelu",), "the discriminator")
    _refuse_unknown(epi, "the discriminator's epilogue")
    _refuse_unknown(d, "the discriminator")
    if (g_base, g_max) != (d_base, d_max):
        raise CheckpointError(
            "the generator and the discriminator have different channel "
            "settings, which DGP Studio's StyleGAN2 does not support"
        )
    if g_clamp != d_clamp:
        raise CheckpointError(
            "the generator and the discriminator clamp at different "
            "values, which DGP Studio's StyleGAN2 does not support"
        )
    return StyleGAN2Config(
        resolution=res,
        z_dim=z_dim,
        w_dim=w_dim,
        c_dim=c_dim,
        d_c_dim=None if d_c_dim == c_dim else d_c_dim,
        img_channels=channels,
        channel_base=g_base,
        channel_max=g_max,
        mapping_layers=g_layers,
        mapping_lr=g_lr,
        d_mapping_layers=d_layers,
        d_mapping_lr=d_lr,
        cmap_dim=cmap_dim,
        conv_clamp=g_clamp,
        mbstd_group_size=mbstd,
        mbstd_channels=mbstd_channels,
        d_head="nvidia",
        num_fp16_res=fp16,
    )


def _plain(value: Any, depth: int = 0) -> Any:
    """Metadata as plain JSON-like values (numpy numbers as floats/ints)."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(type(value).__name__)


def _finite(sd: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    out = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    bad = sorted(
        k for k, v in out.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())
    )
    if bad:  # such weights render black pictures without a word
        raise CheckpointError(
            f"{what} is damaged: {', '.join(bad[:3])} hold non-finite values (NaN or infinity)."
        )
    return out


def read_network_pickle(file: Path) -> StyleGAN2Weights:
    """G_ema, G (when present) and D of an NVIDIA stylegan2-ada-pytorch network pickle,
    with the architecture from their recorded constructor settings. No code of the file
    runs; a file with anything but the format's own objects is refused."""
    file = Path(file)
    label = file.name
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"Could not read {file}: {exc.strerror or exc}.") from exc
    if data.startswith(b"PK\x03\x04"):
        raise CheckpointError(
            f"{label} is a zip archive (a torch.save checkpoint such as "
            "StudioGAN's model=…pth), not an NVIDIA network pickle."
        )
    top = safe_unpickle(data, label)
    try:
        return _network_weights(top, data, file)
    except CheckpointError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # objects of allowed types in places or shapes the format never puts them
        raise CheckpointError(
            f"{label} is not a well-formed StyleGAN2 network pickle ({type(exc).__name__}: {exc})."
        ) from None


def _network_weights(top: Any, data: bytes, file: Path) -> StyleGAN2Weights:
    label = file.name
    if not isinstance(top, dict):
        raise CheckpointError(
            f"{label} is not a network pickle: it holds a "
            f"{type(top).__name__}, not a dictionary of networks."
        )
    nets: dict[str, PersistentObject] = {}
    for key in ("G_ema", "G", "D"):
        value = top.get(key)
        if value is not None and not isinstance(value, PersistentObject):
            raise CheckpointError(f"{label}'s {key} is not a network.")
        if value is not None:
            nets[key] = value
    if "D" not in nets:
        raise CheckpointError(
            f"{label} holds no discriminator (D); DGP needs the generator "
            "and its discriminator: use a training snapshot or a pickle "
            "that has both (G_ema and D)."
        )
    if "G_ema" not in nets and "G" not in nets:
        raise CheckpointError(f"{label} holds no generator (G_ema or G).")
    flat: dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]] = {}
    for key, obj in nets.items():
        tensors: dict[str, torch.Tensor] = {}
        classes: dict[str, str] = {}
        try:
            _flatten(obj, "", tensors, classes)
        except RecursionError:
            raise CheckpointError(
                f"{label}'s {key} is nested too deeply to be a network."
            ) from None
        except CheckpointError as exc:
            raise CheckpointError(f"{label}'s {key} is malformed: {exc}.") from None
        other = _identify_family(classes)
        if other is not None:
            raise CheckpointError(
                f"{label} holds {other}, not StyleGAN2; DGP Studio reads "
                "StyleGAN2 (stylegan2-ada-pytorch) pickles."
            )
        flat[key] = (tensors, classes)
    g_key = "G_ema" if "G_ema" in nets else "G"
    for key, want in ((g_key, "Generator"), ("D", "Discriminator")):
        if nets[key].class_name != want:
            raise CheckpointError(
                f"{label}'s {key} is a {nets[key].class_name}, not a StyleGAN2 {want}."
            )
    try:
        config = config_from_init_kwargs(
            _kwargs(nets[g_key], "generator", label), _kwargs(nets["D"], "discriminator", label)
        )
    except CheckpointError as exc:
        raise CheckpointError(f"{label}: {exc}.") from None
    G, D = sg2.build(config, "meta")
    for key, role, net in (
        (g_key, "generator", G),
        ("G", "generator", G),
        ("D", "discriminator", D),
    ):
        if key in flat:
            _check_classes(net, flat[key][1], role, f"{label}'s {key}")
            check_state_dict(net, flat[key][0], f"{label}'s {key}", config)
    info = {
        "training_set_kwargs": _plain(top.get("training_set_kwargs")),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    g_ema = _finite(flat[g_key][0], f"{label}'s {g_key}")
    g = _finite(flat["G"][0], f"{label}'s G") if "G" in flat and g_key != "G" else None
    return StyleGAN2Weights(
        config, g_ema, _finite(flat["D"][0], f"{label}'s D"), g, "nvidia-pickle", (file,), info
    )


# --------------------------------------------------------------------------- StudioGAN

G_FILES = ("model=G_ema-best-weights-step=*.pth", "model=G_ema-current-weights-step=*.pth")
G_RAW_FILES = ("model=G-best-weights-step=*.pth", "model=G-current-weights-step=*.pth")
D_FILES = ("model=D-best-weights-step=*.pth", "model=D-current-weights-step=*.pth")
YAML_NAMES = ("studiogan.yaml", "config.yaml")
#: D metadata of StudioGAN checkpoints kept in ``info``.
_STUDIOGAN_INFO = ("run_name", "step", "epoch", "best_step", "best_fid", "seed")


def _load_studiogan_file(file: Path) -> dict[str, Any]:
    try:
        with numpy_floats_allowed():
            try:  # zip files map their tensors: optimizer state is never paged in
                data = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc).lower():
                    raise
                data = torch.load(file, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except FileNotFoundError as exc:
        raise CheckpointError(f"{file} does not exist.") from exc
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise CheckpointError(
                f"{file.name} holds pickled Python objects besides tensors and numbers, "
                "which could run code when loaded; DGP Studio never loads those."
            ) from None
        raise CheckpointError(
            f"Could not read {file.name}: the file is damaged or "
            f"incomplete ({exc}). Download or copy it again."
        ) from None
    except Exception as exc:  # torch raises many kinds for damaged files
        raise CheckpointError(
            f"Could not read {file.name}: the file is damaged or "
            f"incomplete ({exc}). Download or copy it again."
        ) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("state_dict"), dict)
        or not all(isinstance(v, torch.Tensor) for v in data["state_dict"].values())
    ):
        raise CheckpointError(
            f"{file.name} is not a StudioGAN checkpoint: it has no state_dict of tensors."
        )
    check_stored_sizes(data["state_dict"], file.name)
    data["state_dict"] = {str(k).removeprefix("module."): v for k, v in data["state_dict"].items()}
    return data


def _studiogan_kind(sd: dict[str, torch.Tensor], label: str, role: str) -> None:
    keys = set(sd)
    if any(
        k.startswith("synthesis.input.") or _SG3_LAYER.match(k.split(".")[1])
        for k in keys
        if k.startswith("synthesis.") and k.count(".") >= 2
    ):
        raise CheckpointError(
            f"{label} is a StudioGAN StyleGAN3 network; DGP Studio reads StyleGAN2."
        )
    if role == "G" and not any(k.startswith("synthesis.b4.") for k in keys):
        raise CheckpointError(f"{label} is not a StudioGAN StyleGAN2 generator.")
    if role == "D" and "b4.conv.weight" not in keys:
        raise CheckpointError(f"{label} is not a StudioGAN StyleGAN2 discriminator.")


def _shape(sd: dict[str, torch.Tensor], key: str, label: str) -> tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"{label} lacks {key}, which a StyleGAN2 network has.")
    return tuple(sd[key].shape)


def _channel_settings(chans: dict[int, int], label: str) -> tuple[int, int]:
    """(channel_base, channel_max) that give these channels per resolution."""
    top = max(chans.values())
    below = [c * r for r, c in chans.items() if c < top]
    base = below[0] if below else top * max(chans)
    if any(min(base // r, top) != c for r, c in chans.items()):
        raise CheckpointError(
            f"{label} has channel counts that no channel_base / channel_max gives."
        )
    return base, top


def infer_studiogan_config(
    g_sd: dict[str, torch.Tensor],
    d_sd: dict[str, torch.Tensor],
    *,
    conv_clamp: float | None,
    mbstd_group_size: int | None,
    label: str = "the StudioGAN checkpoint",
) -> StyleGAN2Config:
    """The architecture of StudioGAN StyleGAN2 weights, read from their tensors' names and
    shapes; conv_clamp and the minibatch-std group size are not in them."""
    fc0 = _shape(g_sd, "mapping.fc0.weight", label)
    w_dim = fc0[0]
    c_dim = _shape(g_sd, "mapping.embed.weight", label)[1] if "mapping.embed.weight" in g_sd else 0
    z_dim = fc0[1] - (w_dim if c_dim else 0)
    res_g = sorted(
        int(m.group(1)) for k in g_sd if (m := re.match(r"synthesis\.b(\d+)\.conv1\.weight$", k))
    )
    if not res_g:
        raise CheckpointError(f"{label} has no synthesis blocks.")
    res = res_g[-1]
    chans = {r: _shape(g_sd, f"synthesis.b{r}.conv1.weight", label)[0] for r in res_g}
    d_res = sorted(int(m.group(1)) for k in d_sd if (m := re.match(r"b(\d+)\.conv0\.weight$", k)))
    for r in d_res:
        chans_d = _shape(d_sd, f"b{r}.conv0.weight", label)[0]
        if chans.get(r, chans_d) != chans_d:
            raise CheckpointError(
                f"{label}: the generator and the discriminator have different channel counts."
            )
    c4 = _shape(d_sd, "b4.conv.weight", label)
    base, top = _channel_settings({**chans, 4: c4[0]}, label)
    d_c_dim = (
        _shape(d_sd, "mapping.embed.weight", label)[1] if "mapping.embed.weight" in d_sd else 0
    )
    cmap = _shape(d_sd, "mapping.embed.weight", label)[0] if d_c_dim else None
    try:
        return StyleGAN2Config(
            resolution=res,
            z_dim=z_dim,
            w_dim=w_dim,
            c_dim=c_dim,
            d_c_dim=None if d_c_dim == c_dim else d_c_dim,
            channel_base=base,
            channel_max=top,
            img_channels=_shape(g_sd, f"synthesis.b{res}.torgb.weight", label)[0],
            mapping_layers=sum(1 for k in g_sd if re.match(r"mapping\.fc\d+\.weight$", k)),
            d_mapping_layers=sum(1 for k in d_sd if re.match(r"mapping\.fc\d+\.weight$", k)),
            cmap_dim=None if cmap in (None, c4[0]) else cmap,
            conv_clamp=conv_clamp,
            mbstd_group_size=mbstd_group_size,
            mbstd_channels=c4[1] - c4[0],
            d_head="nvidia" if "b4.out.weight" in d_sd else "studiogan",
        )
    except CheckpointError as exc:
        raise CheckpointError(f"{label} has an unusual shape: {exc}") from None


def read_studiogan_yaml(file: Path) -> dict[str, Any]:
    """The settings of a StudioGAN StyleGAN2 run's YAML that our config can check or use:
    resolution, classes, conditioning, z/w sizes, mapping depth, mbstd group size."""
    import yaml

    try:
        data = yaml.safe_load(read_small_file(file).decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CheckpointError(f"Could not read the StudioGAN config {file} ({exc}).") from exc
    if not isinstance(data, dict) or not isinstance(data.get("MODEL"), dict):
        raise CheckpointError(
            f"{Path(file).name} is not a StudioGAN config: it has no MODEL section."
        )
    model = data["MODEL"]
    dataset = data.get("DATA") if isinstance(data.get("DATA"), dict) else {}
    style = data.get("STYLEGAN") if isinstance(data.get("STYLEGAN"), dict) else {}
    assert isinstance(dataset, dict) and isinstance(style, dict)
    backbone = model.get("backbone")
    if backbone != "stylegan2":
        raise CheckpointError(
            f"{Path(file).name} describes backbone {backbone!r}, not StyleGAN2 (stylegan2)."
        )
    for key, allowed in (("g_cond_mtd", ("W/O", "cAdaIN")), ("d_cond_mtd", ("W/O", "SPD"))):
        if model.get(key, "W/O") not in allowed:
            raise CheckpointError(
                f"{Path(file).name} sets {key}: {model[key]}; DGP Studio "
                f"reads StudioGAN StyleGAN2 runs with {' or '.join(allowed)}."
            )
    if style.get("d_architecture", "resnet") != "resnet":
        raise CheckpointError(
            f"{Path(file).name} sets d_architecture: "
            f"{style['d_architecture']}; DGP Studio reads the resnet "
            "discriminator."
        )
    out: dict[str, Any] = {}
    for key, section, name in (
        ("resolution", dataset, "img_size"),
        ("num_classes", dataset, "num_classes"),
        ("z_dim", model, "z_dim"),
        ("w_dim", model, "w_dim"),
        ("mapping_layers", style, "mapping_network"),
        ("mbstd_group_size", style, "d_epilogue_mbstd_group_size"),
    ):
        if name in section:
            out[key] = _int(section[name], f"{Path(file).name} {name}")
    out["g_conditional"] = model.get("g_cond_mtd", "W/O") != "W/O"
    out["d_conditional"] = model.get("d_cond_mtd", "W/O") != "W/O"
    return out


def _pick(folder: Path, patterns: tuple[str, ...]) -> Path | None:
    def step(path: Path) -> int:
        m = re.search(r"step=(\d+)", path.name)
        return int(m.group(1)) if m else -1

    for pattern in patterns:
        found = sorted(folder.glob(pattern), key=step)
        if found:
            return found[-1]
    return None


def read_studiogan(
    folder: Path, *, conv_clamp: float | None, mbstd_group_size: int | None = None
) -> StyleGAN2Weights:
    """G_ema (+ G when present) and D of a StudioGAN StyleGAN2 run folder (best
    checkpoints before current ones), the architecture read from the tensors and checked
    against the run's YAML when the folder has one.

    ``conv_clamp``: 256 for runs trained with mixed precision (``-mpc``), None otherwise;
    the checkpoints do not record it. ``mbstd_group_size``: the YAML's
    ``d_epilogue_mbstd_group_size`` when not given; one of the two is needed."""
    folder = Path(folder)
    g_file, d_file = _pick(folder, G_FILES), _pick(folder, D_FILES)
    if g_file is None or d_file is None:
        missing = " and ".join(
            n for n, f in (("model=G_ema-…pth", g_file), ("model=D-…pth", d_file)) if f is None
        )
        raise CheckpointError(
            f"{folder} has no {missing}: DGP needs StudioGAN's averaged "
            "generator and its discriminator."
        )
    g_raw_file = _pick(folder, G_RAW_FILES)
    yaml_file = next((folder / n for n in YAML_NAMES if (folder / n).is_file()), None)
    settings = read_studiogan_yaml(yaml_file) if yaml_file is not None else {}
    group = mbstd_group_size if mbstd_group_size is not None else settings.get("mbstd_group_size")
    if group is None:
        raise CheckpointError(
            f"{folder.name} has no StudioGAN YAML config giving the "
            "discriminator's minibatch-std group size "
            "(d_epilogue_mbstd_group_size): add the run's YAML as "
            "studiogan.yaml or give the group size."
        )
    g_data, d_data = _load_studiogan_file(g_file), _load_studiogan_file(d_file)
    g_sd, d_sd = g_data["state_dict"], d_data["state_dict"]
    _studiogan_kind(g_sd, g_file.name, "G")
    _studiogan_kind(d_sd, d_file.name, "D")
    try:
        config = infer_studiogan_config(
            g_sd, d_sd, conv_clamp=conv_clamp, mbstd_group_size=group, label=folder.name
        )
    except (IndexError, ValueError, TypeError, ZeroDivisionError) as exc:
        raise CheckpointError(
            f"{folder.name}: the checkpoint's tensors do not have the "
            f"shapes of a StyleGAN2 ({type(exc).__name__}: {exc})."
        ) from None
    if yaml_file is not None:
        check_yaml_settings(config, settings, yaml_file.name)
    G, D = sg2.build(config, "meta")
    check_state_dict(G, g_sd, g_file.name, config)
    check_state_dict(D, d_sd, d_file.name, config)
    g_raw = None
    if g_raw_file is not None and _step(g_raw_file) == _step(g_file):
        g_raw = _load_studiogan_file(g_raw_file)["state_dict"]
        check_state_dict(G, g_raw, g_raw_file.name, config)
        g_raw = _finite(g_raw, g_raw_file.name)
    info = {k: _plain(d_data[k]) for k in _STUDIOGAN_INFO if k in d_data}
    files = tuple(
        f
        for f in (g_file, d_file, g_raw_file if g_raw is not None else None, yaml_file)
        if f is not None
    )
    return StyleGAN2Weights(
        config,
        _finite(g_sd, g_file.name),
        _finite(d_sd, d_file.name),
        g_raw,
        "studiogan",
        files,
        info,
    )


def _step(path: Path) -> str:
    m = re.search(r"-(best|current)-weights-step=(\d+)", path.name)
    return m.group(0) if m else path.name


def check_yaml_settings(config: StyleGAN2Config, settings: dict[str, Any], yaml_name: str) -> None:
    """Refuse a run config (``yaml_name``'s ``settings``) that disagrees with the
    architecture read from the checkpoint's tensors: not this run's config."""
    found = {
        "resolution": config.resolution,
        "z_dim": config.z_dim,
        "w_dim": config.w_dim,
        "mapping_layers": config.mapping_layers,
    }
    if settings.get("g_conditional"):
        found["num_classes"] = config.c_dim
    for key, value in found.items():
        if key in settings and settings[key] != value:
            raise CheckpointError(
                f"{yaml_name} gives {key} {settings[key]} but the "
                f"checkpoint has {value}: it is not this run's config."
            )
    for key, has in (
        ("g_conditional", config.c_dim > 0),
        ("d_conditional", config.d_label_dim > 0),
    ):
        if settings.get(key, has) != has:
            raise CheckpointError(
                f"{yaml_name} and the checkpoint disagree on whether "
                f"the {'generator' if key[0] == 'g' else 'discriminator'} "
                "takes class labels: it is not this run's config."
            )


def with_settings(weights: StyleGAN2Weights, **changes: Any) -> StyleGAN2Weights:
    """The same weights with other settings that the files do not fix (conv_clamp,
    mbstd_group_size)."""
    allowed = {"conv_clamp", "mbstd_group_size"}
    if set(changes) - allowed:
        raise CheckpointError(f"Only {', '.join(sorted(allowed))} can be changed.")
    return replace(weights, config=replace(weights.config, **changes))

"""StudioGAN discriminator files as real runs write them, made from the small reference
files: StudioGAN's trainer stores ``best_fid`` (and, with ADA/APA, sometimes ``aa_p``) as a
``numpy.float64``, which pickles as numpy's scalar reconstructor and ``numpy.dtype`` —
``numpy._core.multiarray.scalar`` with numpy 2, ``numpy.core.multiarray.scalar`` in files
written with numpy 1.x (all of 2022's). Also files that must stay refused."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

NUMPY2_SCALAR = b"numpy._core.multiarray\nscalar\n"
NUMPY1_SCALAR = b"numpy.core.multiarray\nscalar\n"
_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor, whatever its module


def _pickle_module(name: bytes) -> Any:
    """A pickle module for ``torch.save`` whose Pickler names numpy's scalar reconstructor
    ``name`` (numpy 1's or numpy 2's), whichever numpy is installed."""

    class Pickler(pickle._Pickler):
        def save_global(self, obj: Any, global_name: str | None = None) -> None:
            if obj is _SCALAR:
                self.write(pickle.GLOBAL + name)
                self.memoize(obj)
                return
            super().save_global(obj, global_name)

    class Module:
        pass

    Module.Pickler = Pickler  # type: ignore[attr-defined]
    return Module


def save(payload: dict[str, Any], *, numpy1: bool = False) -> bytes:
    """``torch.save`` bytes of ``payload``, numpy scalars named as numpy 1 (``numpy1``) or
    numpy 2 wrote them."""
    buf = io.BytesIO()
    torch.save(
        payload, buf, pickle_module=_pickle_module(NUMPY1_SCALAR if numpy1 else NUMPY2_SCALAR)
    )
    return buf.getvalue()


def data_pkl(data: bytes) -> bytes:
    """The pickle inside a ``torch.save`` zip file."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


def real_d_bytes(src: Path, *, aa_p: str = "N/A", numpy1: bool = False) -> bytes:
    """The small D file ``src`` as StudioGAN's trainer writes it: ``best_fid`` a numpy
    float64 and ``aa_p`` ``"N/A"`` (no ADA), a 0-d tensor (``"tensor"``) or a numpy
    float64 (``"numpy"``)."""
    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload["best_fid"] = np.float64(17.25)
    payload["aa_p"] = {
        "N/A": "N/A",
        "tensor": torch.tensor(0.125, dtype=torch.float64),
        "numpy": np.float64(0.125),
    }[aa_p]
    data = save(payload, numpy1=numpy1)
    pkl = data_pkl(data)
    # what the file names is what it must name: otherwise the test proves nothing
    assert (NUMPY1_SCALAR in pkl) == numpy1 and (NUMPY2_SCALAR in pkl) == (not numpy1)
    return data


class _ObjectScalar:
    """Pickles as numpy's scalar reconstructor applied to an object dtype."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_SCALAR, (np.dtype(object), "not a number"))


class _ShellCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def hostile_d_bytes(src: Path, kind: str, marker: Path) -> bytes:
    """The small D file with one extra entry that DGP Studio must never unpickle: a numpy
    object array, a numpy scalar of object dtype (under either numpy name) or a call of
    ``os.system`` that would create ``marker``."""
    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload["best_fid"] = np.float64(17.25)
    if kind == "object-array":
        payload["extra"] = np.array([1, "two", None], dtype=object)
    elif kind in ("object-scalar", "object-scalar-numpy1"):
        payload["extra"] = _ObjectScalar()
    elif kind == "os.system":
        payload["extra"] = _ShellCommand(f"touch {marker}")
    else:
        raise ValueError(kind)
    return save(payload, numpy1=kind.endswith("numpy1"))

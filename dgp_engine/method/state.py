"""Reconstruction states: everything needed to render a DGP result again.

A state is plain data — the latent z, the class embedding, the fine-tuned
generator weights as a difference from the base model, the preset and seed —
saved as one safetensors file whose metadata holds the JSON part.  A state restored
from a photo also records where its result sits in that photo (a
:class:`~dgp_engine.method.placement.Placement`), so any later output — a jitter, a category,
a morph frame — is composed into the photo as the result was; states saved before that
load as they are, without one.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelMismatchError, StateError
from ..models import Generator, GeneratorBlock, freeze_sn, unfreeze_sn
from ..models.spectral import scale_outputs
from ..priors.checkpoint import tensors_digest
from ..system.fileio import atomic_path, file_kind
from .placement import HOLE_TENSOR, Placement

FORMAT = "dgp-state"
FORMAT_VERSION = 1


#: The prior families a state can come from (``family`` in its metadata; absent: BigGAN).
BIGGAN = "biggan"
STYLEGAN2 = "stylegan2"


@dataclass
class ReconstructionState:
    """A BigGAN result holds z and the class embedding; a StyleGAN2 result
    (``family == "stylegan2"``) holds w+ in ``z`` ([1, num_ws, w_dim], saved as the tensor
    ``ws``), an empty ``embedding`` ([1, 0]: the class went into w) and the weight
    deltas of the synthesis blocks it tuned."""

    z: torch.Tensor  # [1, dim_z]; StyleGAN2: w+ [1, num_ws, w_dim]
    embedding: torch.Tensor  # [1, shared_dim] class embedding fed to G
    class_id: int
    weight_delta: dict[str, torch.Tensor]  # G state-dict entries: fine-tuned − base
    preset: dict[str, Any]
    seed: int = 0
    use_in: bool = False  # instance-norm swap active in the last stage
    task: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)  # name, config, checksum
    progress: dict[str, Any] = field(default_factory=dict)  # stage, step, total, cancelled
    losses: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    # where the result sits in the photo it was restored from (None: not recorded)
    placement: Placement | None = None
    family: str = BIGGAN
    # StyleGAN2: the z the starting w+ was mapped from ([1, z_dim]; saved as the tensor
    # ``mapped_z``), which category transfer maps again with another class; None when w+
    # started from w_avg or a given w+ (and in files saved before it was recorded)
    mapped_z: torch.Tensor | None = None
    # The run's own fine-tuned generator and (weakly) the base it was tuned from: in
    # memory only, never saved nor carried over by dataclasses.replace; the first
    # materialize() for that base takes it instead of building base + delta.
    _handover: tuple[weakref.ref[Generator], Generator] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def is_stylegan2(self) -> bool:
        return self.family == STYLEGAN2

    @property
    def ws(self) -> torch.Tensor:
        """w+ of a StyleGAN2 result ([1, num_ws, w_dim])."""
        if not self.is_stylegan2:
            raise StateError(
                "This result was restored with a BigGAN prior: it has a latent z, not w+."
            )
        return self.z

    @property
    def cancelled(self) -> bool:
        return bool(self.progress.get("cancelled", False))

    # --- persistence ------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "class_id": self.class_id,
            "preset": self.preset,
            "seed": self.seed,
            "use_in": self.use_in,
            "task": self.task,
            "model": self.model,
            "progress": self.progress,
            "losses": self.losses,
            "created": self.created,
        }
        if self.placement is not None:  # an additive key: older readers ignore it
            meta["placement"] = self.placement.to_json()
        if self.is_stylegan2:  # BigGAN states are written as before
            meta["family"] = self.family
        return meta

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"ws": self.z} if self.is_stylegan2 else {"z": self.z, "embedding": self.embedding}
        if self.is_stylegan2 and self.mapped_z is not None:  # additive: older readers skip it
            out["mapped_z"] = self.mapped_z
        out.update({f"delta.{k}": v for k, v in self.weight_delta.items()})
        tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}
        bits = self.placement.hole_bits() if self.placement is not None else None
        if bits is not None:
            tensors[HOLE_TENSOR] = torch.from_numpy(np.ascontiguousarray(bits))
        return tensors

    def file_metadata(self, tensors: dict[str, torch.Tensor]) -> dict[str, str]:
        """The safetensors header metadata of a state file: the state's fields and a
        checksum of its tensors, so flipped bytes are refused when it is read back."""
        return {"dgp_state": json.dumps(self.metadata()), "dgp_sha256": tensors_digest(tensors)}

    def to_bytes(self) -> bytes:
        """The state file's content (what :meth:`save` writes)."""
        from safetensors.torch import save

        tensors = self.tensors()
        return save(tensors, metadata=self.file_metadata(tensors))

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file in the same folder, then rename)."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = self.tensors()
        with atomic_path(path, suffix=".tmp") as tmp:
            save_file(tensors, str(tmp), metadata=self.file_metadata(tensors))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReconstructionState:
        from safetensors import safe_open

        path = Path(path)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError as exc:
            raise StateError(f"{path} does not exist.") from exc
        except OSError as exc:
            raise StateError(f"Could not read {path}: {exc.strerror or exc}.") from exc
        if not stat.S_ISREG(mode):  # a FIFO once blocked `dgp jitter` for good
            raise StateError(
                f"{path} is not a regular file ({file_kind(mode)}): give a saved state file (.dgp)."
            )
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                meta = json.loads(header.get("dgp_state", "null"))
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except FileNotFoundError as exc:
            raise StateError(f"{path} does not exist.") from exc
        except Exception as exc:
            raise StateError(f"{path} is not a readable DGP state file ({exc}).") from exc
        _check_digest(header, tensors, str(path))
        return cls._from_parts(meta, tensors, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "The state") -> ReconstructionState:
        """A state from the bytes of a state file (e.g. a project member), in memory."""
        from safetensors.torch import load

        try:
            tensors = load(bytes(data))
            header_len = int.from_bytes(bytes(data[:8]), "little")
            header = json.loads(bytes(data[8 : 8 + header_len]).decode("utf-8"))
            extra = header.get("__metadata__") or {}
            meta = json.loads(extra.get("dgp_state", "null"))
        except Exception as exc:
            raise StateError(f"{label} is not a readable DGP state ({exc}).") from exc
        _check_digest(extra, tensors, label)
        return cls._from_parts(meta, tensors, label)

    @classmethod
    def _from_parts(
        cls, meta: Any, tensors: dict[str, torch.Tensor], label: str
    ) -> ReconstructionState:
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise StateError(f"{label} is not a DGP state file.")
        try:
            version = int(meta.get("version", 0))
        except (TypeError, ValueError, OverflowError):
            raise StateError(f"{label} is damaged: its version is not a number.") from None
        if version > FORMAT_VERSION:
            raise StateError(f"{label} was written by a newer DGP Studio; update to open it.")
        family = meta.get("family", BIGGAN)
        if family not in (BIGGAN, STYLEGAN2):
            raise StateError(
                f"{label} comes from a {str(family)[:40]!r} prior, which this DGP "
                "Studio does not know; update to open it."
            )
        if family == STYLEGAN2:
            ws = tensors.get("ws")
            if ws is None:
                raise StateError(f"{label} is incomplete: it lacks its w+ latent.")
            if not ws.is_floating_point() or ws.dim() != 3 or ws.shape[0] != 1 or 0 in ws.shape:
                raise StateError(
                    f"{label} is damaged: its w+ latent has shape "
                    f"{list(ws.shape)}, not [1, layers, w_dim]."
                )
            tensors = {
                **tensors,
                "z": ws.float().reshape(1, -1),
                "embedding": torch.zeros(1, 1),
            }  # checked below as a BigGAN's
        if "z" not in tensors or "embedding" not in tensors:
            raise StateError(f"{label} is incomplete: it lacks the latent or class embedding.")
        bad = [
            k
            for k, v in tensors.items()
            if v.is_floating_point() and not bool(torch.isfinite(v).all())
        ]
        if bad:
            raise StateError(
                f"{label} is damaged: {', '.join(sorted(bad)[:3])} hold "
                "non-finite values (NaN or infinity). Use another copy of it."
            )
        try:
            class_id = int(meta["class_id"])
            seed = int(meta.get("seed", 0))
            created = float(meta.get("created", 0.0))
        except (KeyError, TypeError, ValueError, OverflowError):
            raise StateError(
                f"{label} is damaged: its class id, seed or date is not a number."
            ) from None
        fields = {k: meta.get(k, {}) for k in ("preset", "task", "model", "progress", "losses")}
        wrong = [k for k, v in fields.items() if not isinstance(v, dict)]
        if wrong:
            raise StateError(f"{label} is damaged: {', '.join(wrong)} should be tables.")
        _check_model_record(fields["model"], label)
        use_in = meta.get("use_in", False)
        if not isinstance(use_in, bool):
            raise StateError(f"{label} is damaged: use_in should be true or false.")
        vectors = {}
        for key, what in (("z", "latent z"), ("embedding", "class embedding")):
            t = tensors[key]
            if (
                not t.is_floating_point()
                or t.dim() not in (1, 2)
                or t.shape[-1] == 0
                or (t.dim() == 2 and t.shape[0] != 1)
            ):
                kind = "floating-point" if t.is_floating_point() else str(t.dtype).split(".")[-1]
                raise StateError(
                    f"{label} is damaged: its {what} is {kind} of shape "
                    f"{list(t.shape)}, not one row of floating-point values."
                )
            vectors[key] = t.float().reshape(1, -1)
        delta = {k[len("delta.") :]: v for k, v in tensors.items() if k.startswith("delta.")}
        odd = sorted(k for k, v in delta.items() if not v.is_floating_point())
        if odd:
            raise StateError(
                f"{label} is damaged: its weight changes {', '.join(odd[:3])} "
                "are not floating-point values."
            )
        placement = None
        if meta.get("placement") is not None:
            bits = tensors.get(HOLE_TENSOR)
            placement = Placement.from_json(
                meta["placement"], None if bits is None else bits.numpy(), label
            )
        mapped_z = None
        if family == STYLEGAN2:
            vectors = {"z": tensors["ws"].float(), "embedding": torch.zeros(1, 0)}
            mz = tensors.get("mapped_z")
            if mz is not None:
                if not mz.is_floating_point() or mz.dim() != 2 or mz.shape[0] != 1 or 0 in mz.shape:
                    raise StateError(
                        f"{label} is damaged: its starting z has shape {list(mz.shape)}, "
                        "not one row of floating-point values."
                    )
                mapped_z = mz.float()
        return cls(
            z=vectors["z"],
            embedding=vectors["embedding"],
            class_id=class_id,
            weight_delta={k: v.float() for k, v in delta.items()},
            seed=seed,
            use_in=use_in,
            created=created,
            placement=placement,
            family=family,
            mapped_z=mapped_z,
            **fields,
        )

    # --- rendering ----------------------------------------------------------------
    def check_fits(self, G: Generator) -> None:
        if self.is_stylegan2:
            raise StateError(
                f"This result was restored with the StyleGAN2 prior "
                f"{self.model.get('name', '?')}: load that model to render it."
            )
        sd = G.state_dict()
        bad = [k for k, v in self.weight_delta.items() if k not in sd or sd[k].shape != v.shape]
        if bad or self.z.shape[-1] != G.dim_z or self.embedding.shape[-1] != G.shared.embedding_dim:
            name = self.model.get("name", "another model")
            raise StateError(
                f"This result was made with {name} and does not fit the loaded "
                "model; load that model to render it."
            )

    def model_warning(
        self,
        name: str,
        checksum: str,
        *,
        allow_mismatch: bool = False,
        label: str = "This result",
        advice: str = "render it with the model it was restored with, or "
        "allow a model mismatch to render it with this one",
    ) -> str | None:
        """Compare the weights this state was restored with (``model.checksum``) with
        those of the model about to render it (its ``name`` and ``checksum``, as
        :class:`~dgp_engine.priors.load.Prior` holds them).

        Returns None when they are the same (or the model has no checksum: built in
        memory, there is nothing to compare), a one-line warning when the state records no
        checksum (saved before states recorded one) or differs and ``allow_mismatch``;
        raises :class:`ModelMismatchError` (ending with ``advice``) when it differs.
        Another model with the same shapes renders without any error, and a different
        picture."""
        if not checksum:
            return None
        recorded = self.model.get("checksum")
        made_with = str(self.model.get("name") or "an unnamed model")
        if not isinstance(recorded, str) or not recorded:
            return (
                f"{label} records no model checksum (saved by an older DGP Studio), so "
                f"nothing shows that {name!r} is the model it was restored with; it "
                f"is rendered with {name!r} as it is."
            )
        if recorded == checksum:
            return None
        if made_with == name:
            what = (
                f"{label} was restored with other weights of {name!r} than the ones "
                f"loaded now (checksum {recorded[:12]}… vs {checksum[:12]}…)"
            )
        else:
            what = (
                f"{label} was restored with the model {made_with!r}, not with the "
                f"loaded {name!r} (checksum {recorded[:12]}… vs {checksum[:12]}…)"
            )
        if allow_mismatch:
            return f"{what}; it is rendered with {name!r} anyway, so it will look different."
        raise ModelMismatchError(f"{what}: {advice}.")

    def hand_over(self, base: Generator, G: Generator) -> None:
        """Attach the generator ``G`` that a run fine-tuned from ``base`` (called by the
        run; ``G`` becomes the state's).  Its weights are set to base + delta, the
        same arithmetic as :meth:`materialize`, so a render from it is bit-identical to
        one from a saved and reloaded state; the class-embedding table goes back to the
        base's (the state carries its embedding)."""
        with torch.no_grad():
            base_sd = base.state_dict()
            for k, v in G.state_dict().items():
                v.copy_(base_sd[k])
                if k in self.weight_delta:
                    v.add_(self.weight_delta[k].to(v.device, v.dtype))
        prepare_for_rendering(G, self.use_in)
        self._handover = (weakref.ref(base), G)

    def materialize(self, base: Generator) -> Generator:
        """A generator of this result: base + delta, eval mode, spectral norms cached.

        Right after a run, the first call (with the run's base) returns the run's own
        fine-tuned generator instead of a new copy; the state lets go of it then."""
        self.check_fits(base)
        handover, self._handover = self._handover, None
        if handover is not None and handover[0]() is base:
            return handover[1]
        G = copy.deepcopy(base)
        with torch.no_grad():
            sd = G.state_dict()
            for k, d in self.weight_delta.items():
                sd[k].add_(d.to(sd[k].device, sd[k].dtype))
        prepare_for_rendering(G, self.use_in)
        return G


def _check_model_record(model: dict[str, Any], label: str) -> None:
    """The state's ``model`` table as states write it: a name and a checksum as text, a
    config as a table (each may be absent)."""
    for key, kind, what in (
        ("name", str, "text"),
        ("checksum", str, "text"),
        ("config", dict, "a table"),
    ):
        value = model.get(key)
        if value is not None and not isinstance(value, kind):
            raise StateError(
                f"{label} is damaged: its model {key} should be {what}, not "
                f"{type(value).__name__} {str(value)[:40]!r}."
            )


def _check_digest(header: Any, tensors: dict[str, torch.Tensor], label: str) -> None:
    """Refuse tensors that differ from the checksum written with them (files written before
    the checksum existed have none and are read as they are)."""
    want = header.get("dgp_sha256") if isinstance(header, dict) else None
    if want is None:
        return
    if not isinstance(want, str) or tensors_digest(tensors) != want:
        raise StateError(
            f"{label} is damaged: its tensors do not match the checksum written "
            "with them (flipped or altered bytes). Use another copy of it, or "
            "restore the photo again."
        )


def prepare_for_rendering(G: Generator, use_in: bool) -> None:
    """Eval mode, no gradients, instance norm as the state left it, 1/σ cached."""
    G.eval()
    for p in G.parameters():
        p.requires_grad_(False)
        p.grad = None
    mark_in_initialized(G, use_in)
    scale_outputs(G, False)
    unfreeze_sn(G)
    freeze_sn(G)


def mark_in_initialized(G: Generator, value: bool) -> None:
    """Instance-norm affine terms in a state are already set: do not re-initialise."""
    for m in G.modules():
        if isinstance(m, GeneratorBlock):
            m.in_initialized = value


def weight_delta(G: Generator, base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Entries of G's state dict that differ from ``base`` (a state dict), as float32
    differences.  The shared class-embedding table is left out: the state carries the embedding."""
    out = {}
    for k, v in G.state_dict().items():
        if k == "shared.weight" or not v.is_floating_point():
            continue
        d = (v.detach() - base[k]).float()
        if torch.count_nonzero(d):
            out[k] = d.cpu()
    return out

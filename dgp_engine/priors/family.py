"""Which network family a prior is, and its architecture either way.

A prior is a BigGAN — in the authors' layout (``biggan-pytorch``) or StudioGAN's
(``studiogan``), both read into our BigGAN (:class:`~dgp_engine.models.BigGANConfig`,
whose ``family`` field says which) — or a StyleGAN2 (``stylegan2``,
:class:`~dgp_engine.models.stylegan2.StyleGAN2Config`). A model folder's ``config.json``
and its install record carry the family under the key ``family``: BigGANConfig writes it
itself, a StyleGAN2 config gets it added (:func:`config_dict`). A config.json without the
key is a BigGAN-PyTorch one, as before StyleGAN2 existed here.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from ..errors import CheckpointError
from ..models import BigGANConfig
from ..models.stylegan2 import StyleGAN2Config

STYLEGAN2 = "stylegan2"
NONE = "none"
BIGGAN_FAMILIES = ("biggan-pytorch", "studiogan")
FAMILIES = (*BIGGAN_FAMILIES, STYLEGAN2)

#: The architecture of a prior of any family.
PriorConfig: TypeAlias = BigGANConfig | StyleGAN2Config


def family_of(config: PriorConfig) -> str:
    """``stylegan2``, or the BigGAN layout (``biggan-pytorch`` / ``studiogan``)."""
    return STYLEGAN2 if isinstance(config, StyleGAN2Config) else config.family


def is_stylegan2_dict(data: dict[str, Any]) -> bool:
    return data.get("family") == STYLEGAN2


def config_dict(config: PriorConfig) -> dict[str, Any]:
    """What config.json and the install record hold: the settings and the family."""
    if isinstance(config, StyleGAN2Config):
        return {"family": STYLEGAN2, **config.to_dict()}
    return config.to_dict()


def config_table(config: PriorConfig) -> dict[str, Any]:
    """:func:`config_dict` for a TOML file (the registry's, the user's models.toml): TOML
    has no null, so None is written as "none"."""
    return {k: NONE if v is None else v for k, v in config_dict(config).items()}


def config_from_dict(data: dict[str, Any]) -> PriorConfig:
    """A config of either family from :func:`config_dict`'s output (or a BigGAN-PyTorch
    config.json without a family). Unknown families and settings are refused by name."""
    family = data.get("family", "biggan-pytorch")
    if family == STYLEGAN2:
        # "none": how a TOML table (which has no null) says None
        return StyleGAN2Config.from_dict(
            {k: None if v == NONE else v for k, v in data.items() if k != "family"}
        )
    if family not in BIGGAN_FAMILIES:
        raise CheckpointError(
            f"config.json: family must be one of {', '.join(FAMILIES)}, not {family!r}."
        )
    return BigGANConfig.from_dict(data)


def n_classes(config: PriorConfig) -> int:
    """Classes the generator is conditioned on (0: an unconditional StyleGAN2)."""
    return config.c_dim if isinstance(config, StyleGAN2Config) else config.n_classes


# --- face priors ---------------------------------------------------------------------------
#: How a face prior's training faces were aligned (docs/method.md#aligned-faces): the only
#: kind so far is FFHQ's (FFHQ itself, MetFaces, and the models fine-tuned from them).
FFHQ_ALIGNMENT = "ffhq"
ALIGNMENTS = (FFHQ_ALIGNMENT,)
#: Words in a network pickle's file name that mean faces aligned the FFHQ way.
FACE_NAME_HINTS = ("ffhq", "metfaces")


def check_alignment(value: str | None) -> str:
    """``value`` as recorded with an install: "ffhq", or "" (not a face prior; "none" and
    None mean that too); anything else is refused with the choices."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("", NONE):
        return ""
    if text not in ALIGNMENTS:
        raise CheckpointError(
            f"A face alignment must be one of {', '.join(ALIGNMENTS)} or none, not {value!r}."
        )
    return text


def alignment_from_name(file_name: str) -> str:
    """The alignment a network pickle's file name suggests ("ffhq" for ffhq.pkl,
    metfaces.pkl and the like; "" otherwise): the default the user can override."""
    lower = file_name.lower()
    return FFHQ_ALIGNMENT if any(hint in lower for hint in FACE_NAME_HINTS) else ""


def recorded_alignment(record: dict[str, Any]) -> str:
    """The alignment an install record (model.json) or registry entry holds ("" when it
    holds none, as every record written before face priors existed; an unknown value
    is read as none rather than making the model unloadable)."""
    try:
        return check_alignment(record.get("alignment"))
    except CheckpointError:
        return ""

"""The manipulation of any result, whichever prior family restored it: the renderer
(jitter, jitter walk, category transfer) and the morph of its family, picked from the
state (:mod:`.manipulate` for BigGAN, :mod:`.manipulate_stylegan2` for StyleGAN2).  The
command line and the app take them from here, so both manipulate every family alike."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import StateError
from ..priors.load import Prior
from .manipulate import Morph, Renderer, keyframe_labels
from .manipulate_stylegan2 import StyleGAN2Morph, StyleGAN2Renderer
from .reconstruct_stylegan2 import check_same_family
from .state import ReconstructionState

AnyRenderer = Renderer | StyleGAN2Renderer
AnyMorph = Morph | StyleGAN2Morph


def renderer_for(
    prior: Prior,
    state: ReconstructionState,
    *,
    batch_size: int = 8,
    allow_other_model: bool = False,
) -> AnyRenderer:
    """The renderer of ``state``'s family; a state of the other family than ``prior``'s
    is refused with a sentence that names the model to load."""
    check_same_family(prior, state)
    if state.is_stylegan2:
        return StyleGAN2Renderer(
            prior, state, batch_size=batch_size, allow_other_model=allow_other_model
        )
    return Renderer(prior, state, batch_size=batch_size, allow_other_model=allow_other_model)


def morph_for(
    prior: Prior,
    keyframes: Sequence[ReconstructionState],
    *,
    names: Sequence[str] | None = None,
    easing: str = "linear",
    allow_other_model: bool = False,
) -> AnyMorph:
    """The morph of the keyframes' family; keyframes of both families are refused."""
    labels = keyframe_labels(len(keyframes), names)
    for label, s in zip(labels, keyframes, strict=True):
        if s.is_stylegan2 != keyframes[0].is_stylegan2:
            sg, big = (labels[0], label) if keyframes[0].is_stylegan2 else (label, labels[0])
            raise StateError(
                f"Cannot morph {labels[0]} and {label}: {sg} was restored with a StyleGAN2 "
                f"prior and {big} with a BigGAN, and a morph blends one generator's weights: "
                "restore both with the same model."
            )
        try:
            check_same_family(prior, s)
        except StateError as exc:
            raise StateError(f"Keyframe {label}: {exc}") from exc
    if keyframes and keyframes[0].is_stylegan2:
        return StyleGAN2Morph(
            prior, keyframes, names=names, easing=easing, allow_other_model=allow_other_model
        )
    return Morph(prior, keyframes, names=names, easing=easing, allow_other_model=allow_other_model)

"""What every reconstruction loop reports (BigGAN's and StyleGAN2's alike): one
:class:`Report` per starting-point candidate and per optimisation iteration, the check
of the target they all take, and the time left."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import InputError
from .state import ReconstructionState


@dataclass
class Report:
    phase: str  # "select" (z selection) or "optimize"
    stage: int  # 0-based stage index (0 during selection)
    iteration: int  # 1-based within the stage / selection
    stage_iterations: int  # iterations of this stage (or candidates)
    step: int  # 1-based over the whole optimisation
    total: int  # optimisation iterations of the whole run
    losses: dict[str, float] = field(default_factory=dict)
    image: torch.Tensor | None = None  # G output before this iteration's step
    elapsed: float = 0.0
    state: ReconstructionState | None = None  # set on the final report only
    cancelled: bool = False
    num_stages: int = 1  # stages of the preset
    # Seconds left, from the optimisation's own measured pace (z selection excluded);
    # None during z selection and until two optimisation iterations are timed.
    eta: float | None = None

    @property
    def done(self) -> bool:
        return self.state is not None


def check_target(target: torch.Tensor, resolution: int) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise InputError("The target must be a torch tensor of shape [1, 3, H, W] in [-1, 1].")
    if target.dim() == 3:
        target = target.unsqueeze(0)
    if target.dim() != 4 or target.shape[0] != 1 or target.shape[1] != 3:
        raise InputError(f"The target must have shape [1, 3, H, W]; got {tuple(target.shape)}.")
    if tuple(target.shape[-2:]) != (resolution, resolution):
        raise InputError(
            f"The target is {target.shape[-1]}×{target.shape[-2]} px but the model "
            f"works at {resolution}×{resolution}: resize or crop a working region."
        )
    if not target.is_floating_point() or not torch.isfinite(target).all():
        raise InputError("The target holds non-finite values (NaN or inf).")
    lo, hi = float(target.min()), float(target.max())
    if lo < -1.001 or hi > 1.001:
        raise InputError(
            f"The target must be scaled to [-1, 1]; its values span [{lo:.3g}, {hi:.3g}]."
        )
    return target.float()


def eta(pace_from: tuple[float, int], now: float, step: int, total: int) -> float | None:
    """Seconds left at the pace measured since the first optimisation iteration ended
    (which excludes the z selection and the first iteration's warm-up)."""
    start, start_step = pace_from
    if step <= start_step:
        return None
    return (now - start) / (step - start_step) * max(0, total - step)

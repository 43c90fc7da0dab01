"""What the two reconstruction loops share (:mod:`.reconstruct` on a BigGAN prior,
:mod:`.reconstruct_stylegan2` on a StyleGAN2): the checks of the arguments both take, the
reports a run yields (a starting candidate scored, an optimisation iteration, the end),
the choice of the best starting candidate, the learning rates of a stage's step (the
progressive fine-tuning, the warm-up), the divergence check, the early stop, the
records every result keeps (model, progress), and the memory handed back when a device
runs out.
Each family's loop keeps what it computes: its latent, its groups, its loss."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from collections.abc import Generator as GeneratorOf
from typing import Any, TypeVar

import torch

from ..errors import InputError, PresetError
from ..priors.load import Prior
from ..system.runs import CancellableRun
from .compute import default_select_batch
from .degradations import Degradation
from .presets import Preset
from .report import Report, eta
from .state import ReconstructionState

#: Last D features that score the starting candidates (docs/method.md#initial-latent-and-class).
SELECT_FTR_NUM = 3

#: Every candidate's loss was NaN: the weights cannot be what was trained.
NO_FINITE_START = (
    "No starting point gave a finite loss: the model's weights hold "
    "invalid values (NaN or inf). Import or download the model again."
)

PickT = TypeVar("PickT")
#: A family's scoring of a batch of starting candidates: their losses, their images and
#: ``pick(k)``, what the run keeps of candidate k.
Scored = tuple[list[float], torch.Tensor, Callable[[int], PickT]]


def check_class_id(class_id: object, n_classes: int) -> None:
    """A run's ``class_id`` (not None): a whole number below ``n_classes``."""
    if isinstance(class_id, bool) or not isinstance(class_id, int) or not 0 <= class_id < n_classes:
        raise InputError(
            f"Class id {class_id!r} is out of range: this model has classes 0..{n_classes - 1}."
        )


#: The seeds torch's generator takes (``torch.Generator.manual_seed``): 64 bits, signed or not.
SEED_RANGE = (-(1 << 63), (1 << 64) - 1)


def check_seed(seed: object) -> int:
    """``seed`` as the run uses it; InputError when it is not a whole number torch's random
    generator takes (a 30-digit ``--seed`` once ended in an OverflowError traceback)."""
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int)
        or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]
    ):
        raise InputError(
            f"The seed {seed!r} is out of range: use a whole number from 0 to "
            f"{SEED_RANGE[1]} (64 bits)."
        )
    return seed


class ReconstructionLoop(CancellableRun[Report]):
    """A run of either family's loop: iterate it for :class:`Report` objects; ``state``
    holds the result once it is exhausted.  The family's subclass checks the rest of its
    arguments and writes ``_reports``."""

    def __init__(
        self,
        prior: Prior,
        phi: Degradation,
        preset: Preset,
        cancel: threading.Event | None,
        select_batch: int | None,
    ):
        super().__init__(cancel)
        if not isinstance(preset, Preset):
            raise PresetError("preset must be a dgp_engine.Preset (see Preset.from_dict).")
        if not isinstance(phi, Degradation):
            raise InputError(
                "phi must be a dgp_engine.Degradation (make_degradation builds "
                "one from a task's name)."
            )
        self.prior = prior
        self.preset = preset
        self.device = prior.device
        self.select_batch = select_batch or default_select_batch(self.device, prior.resolution)
        self.state: ReconstructionState | None = None
        # (elapsed, step) when the first optimisation iteration ended: the pace's start
        self._pace_from: tuple[float, int] | None = None

    def run_to_end(self) -> ReconstructionState:
        for _ in self:
            pass
        assert self.state is not None
        return self.state

    def _hand_back_memory(self, exc: BaseException) -> None:
        """After the device ran out of memory: the traceback holds the run's frames and so
        its tensors, dropped before the memory goes back, or whoever keeps the error keeps
        the memory."""
        traceback.clear_frames(exc.__traceback__)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _best_of(
        self,
        num: int,
        scored: Callable[[int], Scored[PickT]],
        t0: float,
    ) -> GeneratorOf[Report, None, PickT]:
        """The best (lowest loss) of ``num`` starting candidates, drawn and scored
        ``select_batch`` at a time without gradients by ``scored(b)``; one report per
        candidate, as if scored one at a time (docs/method.md#initial-latent-and-class).
        InputError when no loss was finite."""
        best_loss = float("inf")
        best_image: torch.Tensor | None = None
        best: PickT | None = None
        done = 0
        with torch.no_grad():
            while done < num:
                losses, x, pick = scored(min(self.select_batch, num - done))
                for k, loss in enumerate(losses):
                    if loss < best_loss:
                        best_loss, best_image, best = loss, x[k : k + 1].cpu(), pick(k)
                    done += 1
                    yield self._select_report(done, num, best_loss, best_image, t0)
                    if self._stop_requested():
                        break
                if self.cancelled:
                    break
        if best is None:  # every candidate's loss was NaN
            raise InputError(NO_FINITE_START)
        return best

    def _select_report(
        self, done: int, num: int, best_loss: float, best_image: torch.Tensor | None, t0: float
    ) -> Report:
        """The report of the ``done``-th of ``num`` starting candidates scored."""
        preset = self.preset
        return Report(
            "select",
            0,
            done,
            num,
            0,
            preset.total_iterations,
            {"select_loss": best_loss},
            best_image,
            time.perf_counter() - t0,
            num_stages=preset.num_stages,
        )

    def _learning_rates(
        self, stage: int, step: int, trained: int, n_groups: int
    ) -> tuple[list[float], float]:
        """The rate of each of ``n_groups`` generator groups and the latent's at ``step``
        of ``stage``: group g at ``G_lrs[stage] · lr_ratio[stage]^g`` when it is one of the
        first ``trained``, else 0, every rate scaled by the linear warm-up
        (docs/method.md#progressive-fine-tuning)."""
        preset = self.preset
        warm = min(1.0, step / preset.warm_up) if preset.warm_up > 0 else 1.0
        groups = [
            preset.G_lrs[stage] * preset.lr_ratio[stage] ** g * warm if g < trained else 0.0
            for g in range(n_groups)
        ]
        return groups, preset.z_lrs[stage] * warm

    def _iteration_report(
        self,
        stage: int,
        iteration: int,
        step: int,
        loss: torch.Tensor,
        losses: dict[str, float],
        image: torch.Tensor,
        t0: float,
    ) -> Report:
        """The report of ``iteration`` (1-based) of ``stage``, ``step`` of the run; an
        InputError instead once the loss is not finite."""
        if not torch.isfinite(loss):
            raise InputError(
                "The optimisation diverged (loss is not finite). "
                "Lower the preset's learning rates and run again."
            )
        now = time.perf_counter() - t0
        if self._pace_from is None:
            self._pace_from = (now, step)
        preset, total = self.preset, self.preset.total_iterations
        return Report(
            "optimize",
            stage,
            iteration,
            preset.iterations[stage],
            step,
            total,
            losses,
            image.detach(),
            now,
            num_stages=preset.num_stages,
            eta=eta(self._pace_from, now, step, total),
        )

    def _stops_early(self, losses: dict[str, float]) -> bool:
        """The stage ends here: the MSE fell below the preset's ``stop_mse``."""
        return self.preset.stop_mse > 0 and losses["mse"] < self.preset.stop_mse

    def _model_record(self) -> dict[str, Any]:
        """The model a result records: the prior's name, architecture and checksum."""
        return {
            "name": self.prior.name,
            "config": self.prior.architecture.to_dict(),
            "checksum": self.prior.checksum,
        }

    def _progress_record(
        self, stage: int, step: int, cancelled: bool, exact: bool, precision: str
    ) -> dict[str, Any]:
        """How far the run got, as a result records it."""
        return {
            "stage": stage,
            "step": step,
            "total": self.preset.total_iterations,
            "cancelled": cancelled,
            "exact": exact,
            "precision": precision,
        }

    def _final_report(
        self, stage: int, step: int, losses: dict[str, float], t0: float, cancelled: bool
    ) -> Report:
        """The last report, holding ``state``."""
        preset = self.preset
        return Report(
            "optimize",
            stage,
            0,
            0,
            step,
            preset.total_iterations,
            losses,
            None,
            time.perf_counter() - t0,
            state=self.state,
            cancelled=cancelled,
            num_stages=preset.num_stages,
            eta=0.0,
        )

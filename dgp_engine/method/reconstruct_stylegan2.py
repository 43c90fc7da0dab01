"""The DGP loop on a StyleGAN2 prior (docs/method.md#stylegan2-priors).

The same method as the BigGAN loop in :mod:`.reconstruct`, in StyleGAN2's terms:

* the latent is w+ ([1, num_ws, w_dim], one w per synthesis layer), started from the
  best of ``select_num`` candidates — z (and a class, for a conditional model whose class
  is not given) mapped through the mapping network and truncated to
  w_avg + ψ·(w − w_avg), ψ = ``truncation_psi`` — by the D-feature distance of their
  degraded images to the target (the last 3 entries of D's feature list, every
  candidate scored as if alone), or from ``w_avg`` itself (``w_init = "avg"``);
* the generator groups are the synthesis blocks, coarse (4 px) to fine: stage s trains
  the first ``ft_num[s]`` blocks (group k at ``G_lrs[s] · lr_ratio[s]^k``, k from 0),
  w+ at ``z_lrs[s]`` throughout; the mapping network is never trained (w+ is optimised
  instead of z, so the mapping is not in the graph);
* the loss is ``w_D[s] · Σ mean |D_i(x̂) − D_i(φ(G(w+)))| + w_mse[s] · MSE`` over the last
  ``ftr_num[s]`` entries of D's features (its residual blocks' outputs, highest
  resolution first, then the epilogue's fully connected output), D scoring each image
  on its own (``independent``: minibatch std would couple batch mates); noise is the
  stored constant noise (``noise_mode="const"``), so a result renders the same every time.

The StyleGAN2 settings of a preset are its own keys (``family = "stylegan2"``, required,
so a BigGAN schedule is not run on a StyleGAN2 by mistake; ``w_init``, ``truncation_psi``;
:func:`stylegan2_options`); ``use_in`` must be false (there is no
BatchNorm to swap) and ``w_nll`` and ``update_embed`` are not used.  CPU and GPU
compute in float32 (``exact`` and ``precision`` are recorded as given, "fp32").

The prior is never modified: the run tunes its own copy of G and reads D through a view
(:func:`.copies.frozen_view`).  The state holds w+ and the tuned blocks' weight deltas;
rendering always builds base + delta, so a render right after the run and one from the
saved state are the same image.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Generator as GeneratorOf
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DeviceMemoryError, InputError, PresetError, StateError
from ..models import stylegan2 as sg2
from ..priors.load import Prior
from ..system import runtime
from .copies import frozen_view
from .degradations import Degradation
from .loop import SELECT_FTR_NUM, ReconstructionLoop, Scored, check_class_id, check_seed
from .presets import Preset
from .report import Report, check_target
from .state import STYLEGAN2, ReconstructionState

NOISE_MODE = "const"
#: Blocks of G and D of this resolution and up run their forward again in the backward
#: pass instead of keeping their feature maps (activation checkpointing): at 1024 px
#: they held most of an iteration's memory (bench/results/stylegan2_speed.json); smaller
#: models are not affected.
RECOMPUTE_FROM = 512
#: At that resolution, freed heap pages go back to the system every this many
#: iterations (:func:`~dgp_engine.system.runtime.release_free_memory`).
RELEASE_EVERY = 2
W_INITS = ("select", "avg")
#: Preset keys only a StyleGAN2 run reads (kept in the state's preset record).
STYLEGAN2_KEYS = ("family", "w_init", "truncation_psi")


@dataclass(frozen=True)
class StyleGAN2Options:
    """A preset's StyleGAN2 settings: where w+ starts and how far candidates are pulled
    toward ``w_avg`` (1: not at all)."""

    w_init: str = "select"
    truncation_psi: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"family": STYLEGAN2, "w_init": self.w_init, "truncation_psi": self.truncation_psi}


def stylegan2_options(preset: Preset) -> StyleGAN2Options:
    """The StyleGAN2 settings of ``preset`` (defaults where it has none), checked."""
    extra = preset.extra
    family = extra.get("family")
    if family is None:
        raise PresetError(
            f"The preset {preset.name!r} is for BigGAN priors (it names no "
            "family): choose a stylegan2_* preset, or add family = "
            '"stylegan2" to it.'
        )
    if family != STYLEGAN2:
        raise PresetError(
            f"The preset {preset.name!r} is for {family} priors, not for a "
            "StyleGAN2 one: choose a stylegan2_* preset."
        )
    w_init = extra.get("w_init", "select")
    if w_init not in W_INITS:
        raise PresetError(
            f"The preset's w_init must be one of {', '.join(W_INITS)}, not {w_init!r}."
        )
    psi = extra.get("truncation_psi", 1.0)
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0 <= psi <= 1:
        raise PresetError(f"The preset's truncation_psi must be a number in [0, 1], not {psi!r}.")
    if any(preset.use_in):
        raise PresetError(
            "use_in must be false in a StyleGAN2 preset: StyleGAN2 has no "
            "BatchNorm to swap for instance normalisation."
        )
    return StyleGAN2Options(str(w_init), float(psi))


class DFeatures:
    """Σ over the last k features of D of mean |D_i(x) − D_i(target)|, the target's
    features computed once; every image scored as if alone (``independent``)."""

    def __init__(self, D: sg2.Discriminator, target: torch.Tensor, label: int | None):
        self.D = D
        self.label = label if D.c_dim > 0 else None
        if D.c_dim > 0 and (label is None or not 0 <= label < D.c_dim):
            self.label = 0  # the features come before the projection: any class will do
        with torch.no_grad():
            _, feats = D(target, self._labels(1), independent=True)
        self.target_feats = [f.detach() for f in feats]

    def _labels(self, n: int) -> torch.Tensor | None:
        if self.label is None:
            return None
        return torch.full((n,), self.label, dtype=torch.long, device=self.target_device)

    @property
    def target_device(self) -> torch.device:
        return next(self.D.parameters()).device

    def per_sample(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The distance of each image of a batch ([N])."""
        _, feats = self.D(
            x, self._labels(x.shape[0]), independent=True, recompute_from=RECOMPUTE_FROM
        )
        loss = x.new_zeros(x.shape[0])
        for i in range(min(k, len(feats))):
            diff = (feats[-i - 1] - self.target_feats[-i - 1]).abs()
            loss = loss + diff.flatten(1).mean(1)
        return loss

    def __call__(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self.per_sample(x, k).sum()


class StyleGAN2Run(ReconstructionLoop):
    """Iterate for :class:`Report` objects; ``state`` once exhausted (as
    :class:`.reconstruct.ReconstructionRun`)."""

    def __init__(
        self,
        prior: Prior,
        target: torch.Tensor,
        phi: Degradation,
        *,
        class_id: int | None,
        preset: Preset,
        z_init: torch.Tensor | None,
        exact: bool,
        seed: int,
        cancel: threading.Event | None,
        select_batch: int | None,
        precision: str | None = None,
    ):
        super().__init__(prior, phi, preset, cancel, select_batch)
        self.nets = prior.stylegan2
        cfg = self.nets.config
        self.options = stylegan2_options(preset)
        self.target = check_target(target, prior.resolution).to(self.device)
        self.phi = phi.to(self.device)
        if class_id is not None:
            if cfg.c_dim == 0:
                raise InputError(f"{prior.name} is an unconditional model: it takes no class.")
            check_class_id(class_id, cfg.c_dim)
        if z_init is not None:
            z_init = torch.as_tensor(z_init, dtype=torch.float32)
            if z_init.numel() != cfg.num_ws * cfg.w_dim:
                raise InputError(
                    f"A starting w+ of this model has {cfg.num_ws}×{cfg.w_dim} "
                    f"values; got {z_init.numel()}."
                )
            if not torch.isfinite(z_init).all():
                raise InputError("The starting w+ holds non-finite values.")
            z_init = z_init.reshape(1, cfg.num_ws, cfg.w_dim)
        self.class_id = class_id
        self.z_init = z_init
        self.exact = exact
        self.precision = precision or "auto"
        self.seed = check_seed(seed)

    def _reports(self) -> Iterator[Report]:
        try:
            yield from self._steps()
        except torch.OutOfMemoryError as exc:
            self._hand_back_memory(exc)
            raise DeviceMemoryError(
                f"The {self.device.type.upper()} device ran out of memory. Choose a smaller "
                "working region, or run on the CPU."
            ) from exc

    def _steps(self) -> Iterator[Report]:
        t0 = time.perf_counter()
        G = copy.deepcopy(self.nets.G).eval()
        for p in G.parameters():
            p.requires_grad_(False)
        D = frozen_view(self.nets.D)
        assert isinstance(D, sg2.Discriminator)
        gen = torch.Generator().manual_seed(int(self.seed))
        feat = DFeatures(D, self.target, self.class_id)
        ws, y, z = yield from self._select(G, feat, gen, t0)
        yield from self._optimise(G, feat, ws, y, z, t0)

    # --- the starting w+ ---------------------------------------------------------------
    def candidates(self, b: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``b`` candidates' z and class ids (−1: unconditional), drawn one at a
        time so a seed's candidates do not depend on the batch size."""
        cfg = self.nets.config
        zs, ys = [], []
        for _ in range(b):
            zs.append(torch.randn(1, cfg.z_dim, generator=gen) * self.preset.sample_std)
            if cfg.c_dim == 0:
                ys.append(torch.full((1,), -1, dtype=torch.long))
            elif self.class_id is not None:
                ys.append(torch.full((1,), self.class_id, dtype=torch.long))
            else:
                ys.append(torch.randint(cfg.c_dim, (1,), generator=gen))
        return torch.cat(zs), torch.cat(ys)

    def map_candidates(self, G: sg2.Generator, zs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """w+ of candidates: mapped, pulled toward w_avg by ``truncation_psi``."""
        labels = ys.to(self.device) if G.c_dim > 0 else None
        return G.map(zs.to(self.device), labels, self.options.truncation_psi)

    def _select(
        self, G: sg2.Generator, feat: DFeatures, gen: torch.Generator, t0: float
    ) -> GeneratorOf[Report, None, tuple[torch.Tensor, int, torch.Tensor | None]]:
        """The starting w+, its class and the z it was mapped from (None: not mapped)."""
        preset, cfg = self.preset, self.nets.config
        if self.z_init is not None:
            return self.z_init.to(self.device), self._class_or_default(), None
        num = preset.select_num
        if self.options.w_init == "avg" or num == 0:
            w_avg = G.mapping.w_avg.detach()
            ws0 = w_avg.reshape(1, 1, -1).repeat(1, cfg.num_ws, 1)
            return ws0, self._class_or_default(), None

        def scored(b: int) -> Scored[tuple[torch.Tensor, int, torch.Tensor]]:
            zs, ys = self.candidates(b, gen)
            ws = self.map_candidates(G, zs, ys)
            x = G.synthesis(ws, NOISE_MODE)
            losses = feat.per_sample(self.phi(x), SELECT_FTR_NUM)
            return (
                losses.tolist(),
                x,
                lambda k: (ws[k : k + 1].clone(), int(ys[k]), zs[k : k + 1].clone()),
            )

        ws0, y, z = yield from self._best_of(num, scored, t0)
        return ws0, y, z

    def _class_or_default(self) -> int:
        if self.class_id is not None:
            return self.class_id
        return 0 if self.nets.config.c_dim > 0 else -1

    # --- the stages --------------------------------------------------------------------
    def _optimise(
        self,
        G: sg2.Generator,
        feat: DFeatures,
        ws0: torch.Tensor,
        y: int,
        z0: torch.Tensor | None,
        t0: float,
    ) -> Iterator[Report]:
        preset = self.preset
        blocks = G.synthesis.blocks
        groups = [list(b.parameters()) for b in blocks]
        ws = ws0.detach().clone().requires_grad_(True)
        w_optim = torch.optim.Adam([ws], lr=preset.z_lrs[0], betas=(0.0, 0.999), eps=1e-8)
        G_optim = torch.optim.Adam(
            [{"params": ps} for ps in groups], lr=0.0, betas=(0.0, 0.999), eps=1e-8
        )
        step = 0
        large = self.nets.config.resolution >= RECOMPUTE_FROM
        losses: dict[str, float] = {}
        cancelled = self._stop_requested()
        last_stage = 0
        for s in range(preset.num_stages):
            if cancelled:
                break
            last_stage = s
            ft = preset.ft_groups(s, len(blocks)) if preset.update_G else 0
            for k, ps in enumerate(groups):
                for p in ps:
                    p.requires_grad_(k < ft)
            for i in range(preset.iterations[s]):
                if self._stop_requested():
                    cancelled = True
                    break
                step += 1
                lrs, w_lr = self._learning_rates(s, step, ft, len(groups))
                for pg, lr in zip(G_optim.param_groups, lrs, strict=True):
                    pg["lr"] = lr
                w_optim.param_groups[0]["lr"] = w_lr
                w_optim.zero_grad(set_to_none=True)
                G_optim.zero_grad(set_to_none=True)  # frozen blocks get none: never stepped
                x = G.synthesis(ws, NOISE_MODE, recompute_from=RECOMPUTE_FROM)
                x_map = self.phi(x)
                w_d, w_mse = preset.w_D_loss[s], preset.w_mse[s]
                ftr_loss = feat(x_map, preset.ftr_num[s]) if w_d > 0 else x_map.new_zeros(())
                mse_loss = F.mse_loss(x_map, self.target)
                loss = ftr_loss * w_d + mse_loss * w_mse
                loss.backward()
                w_optim.step()
                if ft:
                    G_optim.step()
                if large and step % RELEASE_EVERY == 0:
                    runtime.release_free_memory()
                losses = {
                    "total": float(loss.detach()),
                    "ftr": float(ftr_loss.detach()),
                    "mse": float(mse_loss.detach()),
                }
                yield self._iteration_report(s, i + 1, step, loss, losses, x, t0)
                if self._stops_early(losses):
                    break
        del G_optim, w_optim
        self.state = self._make_state(G, ws, y, losses, last_stage, step, cancelled)
        if z0 is not None:
            self.state.mapped_z = z0.detach().float().cpu()
        yield self._final_report(last_stage, step, losses, t0, cancelled)

    def _make_state(
        self,
        G: sg2.Generator,
        ws: torch.Tensor,
        y: int,
        losses: dict[str, float],
        stage: int,
        step: int,
        cancelled: bool,
    ) -> ReconstructionState:
        base = self.nets.G.state_dict()
        delta = {}
        for k, v in G.state_dict().items():
            if not v.is_floating_point():
                continue
            d = (v.detach() - base[k]).float()
            if torch.count_nonzero(d):
                delta[k] = d.cpu()
        return ReconstructionState(
            z=ws.detach().cpu().clone(),
            embedding=torch.zeros(1, 0),
            class_id=int(y),
            weight_delta=delta,
            preset={**self.preset.to_dict(), **self.options.to_dict()},
            seed=self.seed,
            use_in=False,
            task=self.phi.describe(),
            model=self._model_record(),
            progress=self._progress_record(stage, step, cancelled, self.exact, "fp32"),
            losses=losses,
            family=STYLEGAN2,
        )


# --------------------------------------------------------------------------- rendering


def materialize_stylegan2(prior: Prior, state: ReconstructionState) -> sg2.Generator:
    """The tuned generator of a StyleGAN2 result: the prior's G + the state's deltas, in
    eval mode without gradients."""
    check_fits_stylegan2(prior, state)
    G = copy.deepcopy(prior.stylegan2.G).eval()
    with torch.no_grad():
        own = G.state_dict()
        for k, d in state.weight_delta.items():
            own[k].add_(d.to(own[k].device, own[k].dtype))
    for p in G.parameters():
        p.requires_grad_(False)
    return G


def check_fits_stylegan2(prior: Prior, state: ReconstructionState) -> None:
    """Refuse (StateError) a result whose w+ or weight deltas do not fit ``prior``."""
    check_same_family(prior, state)
    sd = prior.stylegan2.G.state_dict()
    cfg = prior.stylegan2.config
    bad = [k for k, v in state.weight_delta.items() if k not in sd or sd[k].shape != v.shape]
    mz = state.mapped_z
    if mz is not None and tuple(mz.shape) != (1, cfg.z_dim):
        bad.append("mapped_z")
    if bad or tuple(state.z.shape) != (1, cfg.num_ws, cfg.w_dim):
        name = state.model.get("name", "another model")
        raise StateError(
            f"This result was made with {name} and does not fit the loaded "
            "model; load that model to render it."
        )


def check_same_family(prior: Prior, state: ReconstructionState) -> None:
    """A StyleGAN2 result renders only with a StyleGAN2 prior, and a BigGAN one only with
    a BigGAN prior."""
    name = state.model.get("name", "its model")
    if state.is_stylegan2 and prior.is_biggan:
        raise StateError(
            f"This result was restored with the StyleGAN2 prior {name}, and "
            f"{prior.name} is a BigGAN: load {name} to render it."
        )
    if not state.is_stylegan2 and not prior.is_biggan:
        raise StateError(
            f"This result was restored with the BigGAN prior {name}, and "
            f"{prior.name} is a StyleGAN2: load {name} to render it."
        )


def render_stylegan2(
    prior: Prior,
    state: ReconstructionState,
    *,
    ws: torch.Tensor | None = None,
    generator: sg2.Generator | None = None,
) -> torch.Tensor:
    """G.synthesis(w+; θ*) of a StyleGAN2 result (its own w+ unless given)."""
    G = generator if generator is not None else materialize_stylegan2(prior, state)
    dev = next(G.parameters()).device
    w = state.z if ws is None else ws
    with torch.no_grad():
        image: torch.Tensor = G.synthesis(w.to(dev), NOISE_MODE)
    return image

"""The DGP reconstruction loop (docs/method.md#reconstruction).

``reconstruct(...)`` returns a :class:`ReconstructionRun`: iterate it to get a
:class:`Report` per z-selection sample and per optimisation iteration; when it
ends, ``run.state`` holds the :class:`ReconstructionState`.  ``run.cancel()`` (or a set
``cancel`` event) is honoured within one iteration and still yields a usable state
(:class:`dgp_engine.system.runs.CancellableRun`).  The run takes φ as a
:class:`~.degradations.Degradation`; ``reconstruct`` also takes a task's name and builds
its φ there, once (:func:`~.degradations.make_degradation`).

Two modes share the loop:
* ``exact=True`` follows the reference code's arithmetic: every generator group
  gets gradients and is stepped by Adam even at learning rate 0, so frozen groups'
  Adam moments and step counts advance (docs/method.md#progressive-fine-tuning).
* the default fast path computes weight gradients only for the groups being
  trained, caches W/σ of every layer that cannot change (all of D, frozen groups,
  the output layer), never computes D weight gradients, and skips the D pass
  when the stage does not use the feature loss.  It steps G inside ``backward()``
  with a second-moment-only Adam (:class:`.compute.InBackwardAdam`), runs the
  networks' fast kernels (folded resampling, small convolutions as matrix products,
  :func:`dgp_engine.models.biggan.use_fast_kernels`) and may compute in TF32 or bfloat16
  (``precision``, :mod:`.compute`).  docs/performance.md has the measurements.
Both cache the target's D features (they never change).

The prior is never modified: a run fine-tunes its own copy of G and reads D
through a view with its own gradient flags and spectral-norm caches
(:mod:`.copies`), so runs in several threads may share one prior.  The
state holds the result as a weight delta and carries the run's G (in memory) to
its first render, so rendering the result costs no further copy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Generator as GeneratorOf
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DeviceMemoryError, InputError, PresetError
from ..models import Generator, freeze_sn, unfreeze_sn
from ..models.biggan import GeneratorBlock, use_fast_kernels
from ..models.spectral import scale_outputs
from ..priors.load import Prior
from .compute import (
    InBackwardAdam,
    apply_matmul_precision,
    autocast,
    generator_weights,
    resolve_precision,
)
from .copies import frozen_view, private_generator
from .degradations import Degradation, make_degradation
from .loop import SELECT_FTR_NUM, ReconstructionLoop, Scored, check_class_id, check_seed
from .presets import Preset
from .reconstruct_stylegan2 import StyleGAN2Run, check_same_family, render_stylegan2
from .report import Report as Report
from .report import check_target as check_target
from .state import ReconstructionState, weight_delta

log = logging.getLogger(__name__)


class FeatureDistance:
    """Σ over the last k D features of mean |D_i(x) − D_i(target)|, target cached."""

    def __init__(self, D: torch.nn.Module, target: torch.Tensor):
        self.D = D
        with torch.no_grad():
            _, feats = D(target)
        self.target_feats = [f.detach() for f in feats]

    def __call__(self, x: torch.Tensor, k: int) -> torch.Tensor:
        _, feats = self.D(x)
        loss = x.new_zeros(())
        for i in range(min(k, len(feats))):
            loss = loss + F.l1_loss(feats[-i - 1].float(), self.target_feats[-i - 1].float())
        return loss

    def per_sample(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Distance of each sample of a batch (as if scored one at a time)."""
        _, feats = self.D(x)
        loss = x.new_zeros(x.shape[0])
        for i in range(min(k, len(feats))):
            diff = (feats[-i - 1].float() - self.target_feats[-i - 1].float()).abs()
            loss = loss + diff.flatten(1).mean(1)
        return loss


def reconstruct(
    prior: Prior,
    target: torch.Tensor,
    phi: Degradation | str,
    *,
    class_id: int | None,
    preset: Preset,
    z_init: torch.Tensor | None = None,
    exact: bool = False,
    seed: int = 0,
    cancel: threading.Event | None = None,
    select_batch: int | None = None,
    precision: str | None = None,
) -> ReconstructionRun | StyleGAN2Run:
    """Restore ``target`` (the observed image x̂, [1,3,R,R] in [-1,1]) under the
    degradation ``phi``, or a task's name (its φ is built here, once: the paper's centre
    hole for inpainting, the task's default factor for super-resolution).

    ``class_id=None`` lets z selection also pick the class.  ``precision``: see
    :mod:`.compute` ("auto" unless given).  ``cancel``: an event that cancels the run
    when set (as ``run.cancel()`` does).  Returns an iterator of :class:`Report`;
    ``run.state`` is the result once it is exhausted.  A StyleGAN2 prior runs the
    StyleGAN2 loop (:mod:`.reconstruct_stylegan2`: w+ instead of z, synthesis blocks as
    the groups)."""
    if not isinstance(phi, Degradation):
        phi = make_degradation(phi, resolution=prior.resolution)
    if (
        prior.is_biggan
        and isinstance(preset, Preset)
        and preset.extra.get("family", "biggan") != "biggan"
    ):
        raise PresetError(
            f"The preset {preset.name!r} is for {preset.extra['family']} "
            f"priors, and {prior.name} is a BigGAN: choose one of the "
            "published or bundled presets."
        )
    run = ReconstructionRun if prior.is_biggan else StyleGAN2Run
    return run(
        prior,
        target,
        phi,
        class_id=class_id,
        preset=preset,
        z_init=z_init,
        exact=exact,
        seed=seed,
        cancel=cancel,
        select_batch=select_batch,
        precision=precision,
    )


class ReconstructionRun(ReconstructionLoop):
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
        self.target = check_target(target, prior.resolution).to(self.device)
        self.phi = phi.to(self.device)
        n_classes = prior.config.n_classes
        if class_id is not None:
            check_class_id(class_id, n_classes)
        if z_init is not None:
            z_init = torch.as_tensor(z_init, dtype=torch.float32).reshape(1, -1)
            if z_init.shape[1] != prior.G.dim_z:
                raise InputError(
                    f"z_init has {z_init.shape[1]} values; this model's latent has {prior.G.dim_z}."
                )
            if not torch.isfinite(z_init).all():
                raise InputError("z_init holds non-finite values.")
            if class_id is None:
                raise InputError("Give class_id together with z_init.")
        self.class_id = class_id
        self.z_init = z_init
        self.exact = exact
        self.precision = resolve_precision(
            precision, self.device, exact, weights=generator_weights(prior.G)
        )
        self.seed = check_seed(seed)

    # -------------------------------------------------------------------------
    def _reports(self) -> Iterator[Report]:
        """The prior is only read: the run trains its own copy of G and reads D through
        a view with its own flags and caches (see :mod:`.copies`)."""
        last: Report | None = None  # the caller keeps the last frame it was given
        try:
            for report in self._steps():
                last = report
                yield report
        except torch.OutOfMemoryError as exc:
            self._hand_back_memory(exc)
            where = (
                "during z selection"
                if last is None or last.phase == "select"
                else f"at step {last.step + 1} of {last.total}"
            )
            raise DeviceMemoryError(
                f"The {self.device.type.upper()} device ran out of memory {where} "
                f"({_first_line(exc)}). Choose a smaller working region, precision 'bf16', "
                "or run on the CPU."
            ) from exc

    def _steps(self) -> Iterator[Report]:
        t0 = time.perf_counter()
        apply_matmul_precision(self.precision, self.device)
        G = private_generator(self.prior.G)
        D = frozen_view(self.prior.D)
        use_fast_kernels(G, not self.exact)
        use_fast_kernels(D, not self.exact)
        freeze_sn(D)
        freeze_sn(G)  # z selection renders with fixed weights
        gen = torch.Generator().manual_seed(int(self.seed))
        with self._autocast():
            feat = FeatureDistance(D, self.target)
        z, y = yield from self._select(G, feat, gen, t0)
        yield from self._optimise(G, feat, z, y, t0)

    def _select(
        self, G: Generator, feat: FeatureDistance, gen: torch.Generator, t0: float
    ) -> GeneratorOf[Report, None, tuple[torch.Tensor, int]]:
        """Initial z (and class if unknown): best of ``select_num`` samples
        (docs/method.md#initial-latent-and-class)."""
        preset, dev = self.preset, self.device
        dim_z, n_classes = G.dim_z, self.prior.config.n_classes
        if self.z_init is not None:
            assert self.class_id is not None  # __init__ refuses z_init without class_id
            return self.z_init.to(dev), self.class_id
        num = preset.select_num
        if num <= 1:
            z = torch.zeros(1, dim_z) if num == 0 else torch.randn(1, dim_z, generator=gen)
            y = (
                self.class_id
                if self.class_id is not None
                else int(torch.randint(n_classes, (1,), generator=gen))
            )
            return z.to(dev), y

        def scored(b: int) -> Scored[tuple[torch.Tensor, int]]:
            zs, ys = self._candidates(b, dim_z, n_classes, gen)
            with self._autocast():
                x = G(zs.to(dev), G.shared(ys.to(dev))).float()
                losses = feat.per_sample(self.phi(x), SELECT_FTR_NUM)
            return losses.tolist(), x, lambda k: (zs[k : k + 1].clone(), int(ys[k]))

        z, y = yield from self._best_of(num, scored, t0)
        return z.to(dev), y

    def _candidates(
        self, b: int, dim_z: int, n_classes: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``b`` z-selection candidates, drawn one at a time so the samples of a
        seed do not depend on the batch size (torch's normal sampler fills a [b, dim_z]
        tensor in another order than b rows of [1, dim_z])."""
        zs, ys = [], []
        for _ in range(b):
            zs.append(torch.randn(1, dim_z, generator=gen) * self.preset.sample_std)
            ys.append(
                torch.full((1,), self.class_id, dtype=torch.long)
                if self.class_id is not None
                else torch.randint(n_classes, (1,), generator=gen)
            )
        return torch.cat(zs), torch.cat(ys)

    def _optimise(
        self, G: Generator, feat: FeatureDistance, z0: torch.Tensor, y: int, t0: float
    ) -> Iterator[Report]:
        preset, dev, exact = self.preset, self.device, self.exact
        n_groups = G.num_groups
        for s in range(preset.num_stages):
            if preset.ft_num[s] != "all" and int(preset.ft_num[s]) > n_groups:
                log.info(
                    "stage %d: ft_num %s > %d groups; training all", s, preset.ft_num[s], n_groups
                )
        z = z0.detach().clone().requires_grad_(True)
        y_t = torch.tensor([y], device=dev)
        groups = [G.group_params(i, preset.update_embed) for i in range(n_groups)]
        trainable = {id(p) for ps in groups for p in ps if _trainable(G, p)}
        for p in G.parameters():
            p.requires_grad_(id(p) in trainable and exact and preset.update_G)
        # exact: torch's Adam over every group, as the reference; fast: stepped inside
        # backward, second moment only, for the parameters DGP trains (see compute.py)
        G_optim = (
            torch.optim.Adam(
                [{"params": ps} for ps in groups],
                lr=0.0,
                betas=(0.0, 0.999),
                eps=1e-8,
                weight_decay=0,
            )
            if exact
            else None
        )
        lean = (
            None
            if exact
            else InBackwardAdam(
                [[p for p in ps if id(p) in trainable] for ps in groups], beta2=0.999, eps=1e-8
            )
        )
        try:
            z_optim = torch.optim.Adam(
                [z], lr=preset.z_lrs[0], betas=(0.0, 0.999), eps=1e-8, weight_decay=0
            )
            if exact:  # weights of every group may receive gradients: fresh W/σ each forward
                unfreeze_sn(G)
                freeze_sn(G.output_layer)
            step = 0
            losses: dict[str, float] = {}
            cancelled = self._stop_requested()  # during z selection
            last_stage = 0
            for s in range(preset.num_stages):
                if cancelled:
                    break
                last_stage = s
                ft = preset.ft_groups(s, n_groups)
                if not exact:
                    self._prepare_fast_stage(G, groups, ft, trainable)
                for i in range(preset.iterations[s]):
                    if self._stop_requested():
                        cancelled = True
                        break
                    step += 1
                    lrs, z_lr = self._learning_rates(s, step, ft, n_groups)
                    if G_optim is not None:
                        for pg, lr in zip(G_optim.param_groups, lrs, strict=True):
                            pg["lr"] = lr
                        G_optim.zero_grad(set_to_none=True)
                    if lean is not None:
                        lean.set_lrs(lrs if preset.update_G else [0.0] * n_groups)
                    z_optim.param_groups[0]["lr"] = z_lr
                    z_optim.zero_grad(set_to_none=True)
                    w_d, w_mse = preset.w_D_loss[s], preset.w_mse[s]
                    with self._autocast():
                        x = G(z, G.shared(y_t), use_in=preset.use_in[s]).float()
                        x_map = self.phi(x)
                        if exact or w_d > 0:
                            ftr_loss = feat(x_map, preset.ftr_num[s])
                        else:
                            ftr_loss = x_map.new_zeros(())
                    mse_loss = F.mse_loss(x_map, self.target)
                    nll = (z**2 / 2).mean()
                    loss = ftr_loss * w_d + mse_loss * w_mse + nll * preset.w_nll
                    loss.backward()  # the fast path's G steps happen in here (InBackwardAdam)
                    z_optim.step()
                    if preset.update_G and G_optim is not None:
                        G_optim.step()
                    losses = {
                        "total": float(loss.detach()),
                        "ftr": float(ftr_loss.detach()),
                        "mse": float(mse_loss.detach()),
                        "nll": float(nll.detach()),
                    }
                    yield self._iteration_report(s, i + 1, step, loss, losses, x, t0)
                    if self._stops_early(losses):
                        break
            # Adam moments: not kept while the caller holds the last report
            del G_optim, groups
            if lean is not None:
                lean.close()
            self.state = self._make_state(G, z, y, losses, last_stage, step, cancelled)
            yield self._final_report(last_stage, step, losses, t0, cancelled)
        finally:  # also when the caller closes the run early: no hooks left on G
            if lean is not None:
                lean.close()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.precision, self.device)

    def _prepare_fast_stage(
        self, G: Generator, groups: list[list[torch.nn.Parameter]], ft: int, trainable: set[int]
    ) -> None:
        """Weight gradients and fresh W/σ only for the groups trained in this stage."""
        live = set()
        for g, ps in enumerate(groups):
            on = g < ft and self.preset.update_G
            for p in ps:
                if id(p) in trainable:
                    p.requires_grad_(on)
                    if on:
                        live.add(id(p))
        for g in range(G.num_groups + 1):
            for m in G.group_modules(g):
                if any(id(p) in live for p in m.parameters()):
                    unfreeze_sn(m)
                    scale_outputs(m, True)
                else:
                    freeze_sn(m)

    def _make_state(
        self,
        G: Generator,
        z: torch.Tensor,
        y: int,
        losses: dict[str, float],
        stage: int,
        step: int,
        cancelled: bool,
    ) -> ReconstructionState:
        """The result as data (weights as a delta from the prior's G), with the run's
        own G handed over for the first render."""
        base, preset = self.prior.G, self.preset
        with torch.no_grad():
            emb = G.shared(torch.tensor([y], device=self.device)).detach().cpu()
        state = ReconstructionState(
            z=z.detach().cpu().clone(),
            embedding=emb,
            class_id=int(y),
            weight_delta=weight_delta(G, base.state_dict()),
            preset=preset.to_dict(),
            seed=self.seed,
            use_in=bool(preset.use_in[stage]) if step else False,
            task=self.phi.describe(),
            model=self._model_record(),
            progress=self._progress_record(stage, step, cancelled, self.exact, self.precision),
            losses=losses,
        )
        use_fast_kernels(G, False)  # renders as a G rebuilt from base + delta does
        state.hand_over(base, G)
        return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def _trainable(G: Generator, p: torch.nn.Parameter) -> bool:
    """DGP never trains the instance-norm affine terms (they are set from BN stats)."""
    return not any(
        p is q
        for m in G.modules()
        if isinstance(m, GeneratorBlock)
        for q in (m.in1.weight, m.in1.bias, m.in2.weight, m.in2.bias)
    )


def render(
    prior: Prior,
    state: ReconstructionState,
    *,
    z: torch.Tensor | None = None,
    embedding: torch.Tensor | None = None,
    generator: Generator | None = None,
    allow_other_model: bool = False,
) -> torch.Tensor:
    """G(z, e; θ*) for a state (its own z and embedding unless given).  A state restored
    with other weights than ``prior``'s is refused unless ``allow_other_model``.  A
    StyleGAN2 result renders G.synthesis(w+; θ*) (``z``: another w+)."""
    check_same_family(prior, state)
    if state.is_stylegan2:
        warning = state.model_warning(prior.name, prior.checksum, allow_mismatch=allow_other_model)
        if warning:
            log.warning("%s", warning)
        return render_stylegan2(prior, state, ws=z)
    if generator is None:
        warning = state.model_warning(prior.name, prior.checksum, allow_mismatch=allow_other_model)
        if warning:
            log.warning("%s", warning)
    G = generator if generator is not None else state.materialize(prior.G)
    dev = next(G.parameters()).device
    z = state.z if z is None else z
    e = state.embedding if embedding is None else embedding
    with torch.no_grad():
        image: torch.Tensor = G(z.to(dev), e.to(dev), use_in=state.use_in)
    return image

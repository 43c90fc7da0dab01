"""Restoration tasks on real photos, end to end: planning a photo, running the method,
composing the result back.

    job = restore_image(prior, photo, "inpaint", mask=hole, preset=preset)
    for report in job:           # engine Reports: selection, then optimisation
        ...                      # progress / preview / cancel via job.cancel()
    result = job.result          # full-resolution Photo + ReconstructionState

The front ends (CLI, batch, app) come here through :mod:`.request`, which resolves
their request (device, threads, precision, prior, class, preset) and calls
:func:`restore_image` with the prior it loaded.  ``restore_image`` checks everything
and builds the observation before it returns, so bad input fails at once, before any
long work.  The job is a :class:`~dgp_engine.system.runs.CancellableRun`: the Qt
worker drives it from its thread, the CLI from a progress bar.  Cancelling
(``job.cancel()`` or the ``cancel`` event) stops within one iteration and still gives
a result from what was reached.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import FaceNotFoundError, InputError, PresetError
from ..files.photos import Photo, check_mask
from ..method.degradations import (
    Compose,
    Degradation,
    Downsample,
    Identity,
    Mask,
    make_degradation,
)
from ..method.face_align import (
    FaceAlignment,
    FacePoints,
    check_face_points,
    enlargement_note,
    parse_face_points,
)
from ..method.placement import Placement, pixels_digest
from ..method.presets import Preset, load_preset
from ..method.reconstruct import ReconstructionRun, Report, reconstruct, render
from ..method.reconstruct_stylegan2 import StyleGAN2Run
from ..method.region import (
    Region,
    RegionLike,
    View,
    clamp_region,
    default_feather,
    mask_bbox,
    parse_region,
    resize,
    resize_mask,
)
from ..method.state import ReconstructionState
from ..method.taskspec import (
    COLOR_TRANSFER,
    FILL_HOLE,
    RegionAdvisory,
    TaskSpec,
    default_preset,
    region_advisory,
    task_spec,
    working_region,
)
from ..priors.load import Prior
from ..system.memory import RUN_BYTES_PER_PIXEL, budget
from ..system.runs import CancellableRun
from .postprocess import PhotoComposer, compose_into, to_gray

log = logging.getLogger(__name__)

SR_FACTORS = (2, 4, 8)


def canonical_task(task: str) -> str:
    """The engine's name for ``task`` (an alias or any case; see
    :mod:`dgp_engine.method.taskspec`)."""
    return task_spec(task).name


def resolve_preset(
    spec: str | Preset | None,
    task: str | TaskSpec,
    model_name: str | None = None,
    iterations_scale: float | None = None,
    *,
    family: str | None = None,
) -> Preset:
    """A preset from a Preset, a name / .toml path, or None (the task's default for the
    model and its ``family``)."""
    if isinstance(spec, Preset):
        preset = spec
    elif spec is None or spec == "":
        preset = default_preset(task, model_name, family)
    else:
        preset = load_preset(spec)
    if iterations_scale is not None:
        if not 0 < iterations_scale < math.inf:
            raise PresetError(f"The iteration scale must be a number > 0, not {iterations_scale}.")
        preset = preset.scaled(iterations_scale)
    return preset


# --- planning: photo → the model's observation ---------------------------------------------
@dataclass
class TaskPlan:
    """Everything decided before the optimisation: what the model sees and how the
    result goes back into the photo."""

    spec: TaskSpec
    view: View
    degradation: Degradation
    target: np.ndarray  # R×R×3 in [0, 1]: the observation x̂ (margin zeroed)
    known: np.ndarray | None = None  # R×R bool: pixels the loss looks at (None = all)
    hole: np.ndarray | None = None  # photo-size bool hole mask (inpaint)
    factor: int | None = None  # SR factor (superres / hybrid)
    output_size: tuple[int, int] | None = None  # (w, h) for superres / hybrid
    feather: int = 0  # seam width in photo pixels
    notes: list[str] = field(default_factory=list)
    face: FaceAlignment | None = None  # the aligned face the model's square shows
    # structured warnings (their messages are in ``notes`` too): a region enlarged so
    # much that the result comes back soft, with the remedies
    advisories: list[RegionAdvisory] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.spec.name

    def target_tensor(self) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(self.target, dtype=np.float32))
        return (t.permute(2, 0, 1).unsqueeze(0) * 2 - 1).clamp(-1, 1)


def _with_known(base: Degradation, known: np.ndarray | None) -> Degradation:
    if known is None or known.all():
        return base
    mask = Mask(torch.from_numpy(known.astype(np.float32)))
    if isinstance(base, Identity):
        return mask
    parts = list(base.parts) if isinstance(base, Compose) else [base]
    return Compose(parts + [mask])


def sr_factor(longest: int, resolution: int, factor: int | None = None) -> int:
    """The SR factor for an input whose longest side is ``longest`` px: the given one
    (checked) or the largest of 2, 4, 8 whose low-res grid R/f still holds the input."""
    if factor is not None:
        if factor not in SR_FACTORS:
            raise InputError(f"The super-resolution factor must be 2, 4 or 8, not {factor}.")
        if resolution % factor or resolution // factor < 2:
            raise InputError(f"×{factor} does not fit this {resolution} px model.")
        if longest > resolution // factor:
            raise InputError(
                f"The input is {longest} px on its longest side, but ×{factor} with this "
                f"{resolution} px model takes at most {resolution // factor} px. Choose a "
                f"region of at most {resolution // factor} px (x,y,size), a smaller factor, "
                "or downscale the picture."
            )
        return factor
    fits = [f for f in SR_FACTORS if resolution % f == 0 and resolution // f >= longest]
    if not fits:
        raise InputError(
            f"The input is {longest} px on its longest side; this {resolution} px model can "
            f"super-resolve inputs of at most {resolution // 2} px (×2). Choose a region of "
            f"at most {resolution // 2} px (x,y,size), or downscale the picture."
        )
    return max(fits)


def plan_task(
    photo: Photo,
    task: str | TaskSpec,
    resolution: int,
    *,
    mask: np.ndarray | None = None,
    region: RegionLike | None = None,
    factor: int | None = None,
    feather: int | None = None,
    face: FaceAlignment | None = None,
) -> TaskPlan:
    """Decide the model's view of ``photo`` and build the observation for ``task``; its
    φ is the task's (:func:`~dgp_engine.method.degradations.make_degradation`), with the
    pixels the photo does not cover (a fitted photo's margin) left out of the loss.
    ``face``: work on this aligned face (:func:`find_face`) instead of a square."""
    spec = task_spec(task)
    w, h = photo.size
    rgb = photo.rgb
    notes: list[str] = []
    if face is not None:
        if region is not None:
            raise InputError("Give either face points or a region, not both.")
        if mask is not None:
            mask = check_mask(mask, (w, h))
        elif spec.needs_mask:
            raise InputError(
                "Inpainting needs a mask (a mask image or a box) marking what to fill."
            )
        face = face.with_resolution(resolution)
        if spec.new_picture:
            return _plan_face_superres(photo, spec, resolution, face, mask, factor, feather)
        return _plan_face(photo, spec, resolution, face, mask, feather)
    if region is not None:
        region = clamp_region(parse_region(region), w, h)
    if mask is not None:
        mask = check_mask(mask, (w, h))
    elif spec.needs_mask:
        raise InputError("Inpainting needs a mask (a mask image or a box) marking what to fill.")

    if region is None and mask is not None and spec.region.around_mask:
        region = working_region(spec, (w, h), resolution, hole=mask)
        if region is None:
            notes.append(
                "The hole is wider than any square region of the photo: the "
                "whole photo is restored at the model's resolution."
            )

    advisories: list[RegionAdvisory] = []
    # what the model's square covers when it is enlarged back: the region, or the whole
    # photo an inpainting falls back to
    covered = (
        region.slices
        if region is not None
        else (
            (slice(0, h), slice(0, w)) if mask is not None and spec.compose == FILL_HOLE else None
        )
    )
    if covered is not None:
        hole_side = None
        if mask is not None and spec.uses_mask and mask[covered].any():
            x0, y0, x1, y1 = mask_bbox(mask[covered])
            hole_side = max(x1 - x0, y1 - y0)
        side = region.size if region is not None else max(w, h)
        advisory = region_advisory(spec, side, resolution, hole_side=hole_side)
        if advisory is not None:
            advisories.append(advisory)
            notes.append(advisory.message)

    if spec.new_picture:
        return _plan_superres(photo, spec, resolution, mask, region, factor, notes)

    if spec.compose == FILL_HOLE:
        assert mask is not None  # the task needs a mask (checked above)
        view = (
            View.of_region(region, resolution) if region is not None else View.fit(w, h, resolution)
        )
        sub_hole = view.crop(mask)
        if not sub_hole.any():
            raise InputError(
                f"The region {region} holds none of the mask: place it over the area to fill."
            )
        if region is not None and sub_hole.sum() < mask.sum():
            notes.append("Part of the mask lies outside the region and is left as it is.")
        hole_m = np.zeros((resolution, resolution), dtype=bool)
        hole_m[view.oy : view.oy + view.ch, view.ox : view.ox + view.cw] = resize_mask(
            sub_hole, view.ch, view.cw
        )
        known = view.known_mask() & ~hole_m
        if not known.any():
            raise InputError(
                "The mask covers the whole working region: nothing is known "
                "to restore from. Choose a larger region or a smaller mask."
            )
        target = view.to_model(rgb) * known[..., None]
        feather_px = feather if feather is not None else max(2, round(2 * view.w / view.cw))
        phi = make_degradation(spec, mask=torch.from_numpy(known.astype(np.float32)))
        return TaskPlan(
            spec,
            view,
            phi,
            target,
            known,
            mask,
            feather=feather_px,
            notes=notes,
            advisories=advisories,
        )

    # colorize, reconstruct, defend: a region, or the whole photo fitted
    view = View.of_region(region, resolution) if region is not None else View.fit(w, h, resolution)
    # colour transfer keeps the photo's own lightness, so no detail is lost
    if region is None and max(w, h) > 2 * resolution and spec.compose != COLOR_TRANSFER:
        notes.append(
            f"The whole {w}×{h} photo is restored at the model's {resolution} px; "
            "choose a region to keep more detail."
        )
    obs = view.to_model(rgb)
    if spec.grayscale:
        obs = to_gray(obs)
    elif mask is not None:
        notes.append("The mask is ignored by this task (use inpaint).")
    margin_known = view.known_mask() if view.padded else None
    target = obs * margin_known[..., None] if margin_known is not None else obs
    feather_px = feather if feather is not None else default_feather(view.w)
    return TaskPlan(
        spec,
        view,
        _with_known(make_degradation(spec), margin_known),
        target,
        margin_known,
        None,
        feather=feather_px,
        notes=notes,
        advisories=advisories,
    )


def _plan_face(
    photo: Photo,
    spec: TaskSpec,
    resolution: int,
    face: FaceAlignment,
    mask: np.ndarray | None,
    feather: int | None,
) -> TaskPlan:
    """The plan of a task on an aligned face (docs/method.md#aligned-faces): the model sees
    the face warped into its square; what the square holds past the photo's edges
    (the edge pixels repeated) is left out of the loss, as is the hole for inpainting."""
    w, h = photo.size
    notes: list[str] = []
    note = enlargement_note(face)
    if note:
        notes.append(note)
    inside = face.inside_mask((w, h))
    if not inside.all():
        notes.append(
            f"{100 * (1 - inside.mean()):.0f} % of the aligned face's square lies outside "
            "the photo: it is filled with the photo's edge pixels and left out of the loss."
        )
    obs = face.to_model_square(photo.rgb)
    known = inside
    feather_px = feather if feather is not None else default_feather(int(round(face.side)))
    view = View.of_region(Region(0, 0, resolution), resolution)
    if spec.compose == FILL_HOLE:
        assert mask is not None  # the task needs a mask (checked by plan_task)
        hole_m = face.hole_to_model(mask)
        if not hole_m.any():
            raise InputError(
                "The mask lies outside the aligned face: mark what to fill on the face."
            )
        box = face.box((w, h))
        in_box = mask[box[1] : box[3], box[0] : box[2]]
        if (
            int(in_box.sum()) < int(mask.sum())
            or (in_box & (face.seam_weight(box, feather_px) < 1.0)).any()
        ):
            notes.append(
                "Part of the mask lies outside the aligned face (or on its seam) and is "
                "left as it is."
            )
        known = inside & ~hole_m
        if not known.any():
            raise InputError(
                "The mask covers the whole aligned face: nothing is known to restore "
                "from. Paint a smaller mask."
            )
        phi = make_degradation(spec, mask=torch.from_numpy(known.astype(np.float32)))
    else:
        if spec.grayscale:
            obs = to_gray(obs)
        elif mask is not None:
            notes.append("The mask is ignored by this task (use inpaint).")
        phi = _with_known(make_degradation(spec), known)
    target = obs * known[..., None]
    return TaskPlan(
        spec,
        view,
        phi,
        target.astype(np.float32),
        None if known.all() else known,
        mask if spec.compose == FILL_HOLE else None,
        feather=feather_px,
        notes=notes,
        face=face,
    )


def _plan_face_superres(
    photo: Photo,
    spec: TaskSpec,
    resolution: int,
    face: FaceAlignment,
    mask: np.ndarray | None,
    factor: int | None,
    feather: int | None,
) -> TaskPlan:
    """Super-resolution (and hybrid) of an aligned face: the face's square sampled at the
    low-res grid R/f is the observation; the new picture is the photo enlarged f× with
    the model's face warped into it (docs/method.md#aligned-faces)."""
    w, h = photo.size
    side = int(math.ceil(face.side))
    try:
        f = sr_factor(side, resolution, factor)
    except InputError:
        if factor is None:
            raise InputError(
                f"The face is {side} px across; this {resolution} px model super-resolves "
                f"faces of at most {resolution // 2} px (×2): restore it instead, or "
                "downscale the photo."
            ) from None
        raise InputError(
            f"The face is {side} px across; ×{factor} with this {resolution} px model "
            f"takes faces of at most {resolution // factor} px: choose a smaller factor."
        ) from None
    out_pixels = w * h * f * f
    if out_pixels * RUN_BYTES_PER_PIXEL // 8 > budget():
        raise InputError(
            f"The {w}×{h} photo super-resolved ×{f} would be {w * f}×{h * f}: crop the "
            "photo around the face first."
        )
    low = resolution // f
    notes: list[str] = []
    lr = face.with_resolution(low).to_model_square(photo.rgb)
    if spec.grayscale:
        lr = to_gray(lr)
    down = Downsample(f)
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1).unsqueeze(0) * 2 - 1
        up = ((down.up(t)[0].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
    known = face.inside_mask((w, h))
    if not known.all():
        notes.append(
            f"{100 * (1 - known.mean()):.0f} % of the aligned face's square lies outside "
            "the photo: it is filled with the photo's edge pixels and left out of the loss."
        )
    hole = None
    if mask is not None:
        if not spec.uses_mask:
            notes.append("The mask is ignored by super-resolution (use hybrid).")
        else:
            hole_m = face.hole_to_model(mask)
            if not hole_m.any():
                raise InputError(
                    "The mask lies outside the aligned face: mark what to fill on the face."
                )
            known = known & ~hole_m
            hole = mask
    deg = _with_known(make_degradation(spec, factor=f), None if known.all() else known)
    feather_px = feather if feather is not None else default_feather(int(round(face.side)))
    return TaskPlan(
        spec,
        View.of_region(Region(0, 0, resolution), resolution),
        deg,
        (up * known[..., None]).astype(np.float32),
        None if known.all() else known,
        hole,
        f,
        output_size=(w * f, h * f),
        feather=feather_px,
        notes=notes,
        face=face,
    )


def find_face(
    photo: Photo,
    resolution: int,
    *,
    points: FacePoints | FaceAlignment | str | None = None,
    face_prior: bool = False,
    region: RegionLike | None = None,
    aligned: bool = False,
) -> tuple[FaceAlignment | None, list[str]]:
    """The aligned face to work on, and notes: from ``points`` (left eye, right eye,
    mouth) when given; for a ``face_prior`` with neither a region nor ``aligned`` (the
    photo is already an aligned face crop), from the installed face detector.  A face
    prior with no face found is refused (:class:`FaceNotFoundError`) with what to do;
    other priors work on squares as usual (None)."""
    if isinstance(points, FaceAlignment):  # worked out by a front end (the app)
        if region is not None:
            raise InputError("Give either face points or a region, not both.")
        return points.with_resolution(resolution), []
    if points is not None:
        if region is not None:
            raise InputError("Give either face points or a region, not both.")
        pts, notes = check_face_points(parse_face_points(points), photo.size)
        return FaceAlignment.from_points(pts, resolution), notes
    if not face_prior or aligned:
        return None, []
    if region is not None:
        raise InputError(
            "This model is a face prior: it needs the face aligned the FFHQ way, not a "
            'square region. Give the eyes and mouth (--face-points "x,y x,y x,y": left '
            "eye, right eye, mouth; in the app, the three-point tool), or say the photo "
            "already is an aligned face crop (--aligned)."
        )
    from ..method.face_detect import detect_face_points, detector_name

    found = detect_face_points(photo.rgb)
    if found is None:
        why = (
            "no face detector is installed"
            if detector_name() is None
            else f"{detector_name()} found no face with two eyes in it"
        )
        raise FaceNotFoundError(
            f"This model is a face prior and {why}: give the eyes and mouth with "
            '--face-points "x,y x,y x,y" (left eye, right eye, mouth), or use the app\'s '
            "three-point tool (Face points)."
        )
    pts, notes = check_face_points(found, photo.size)
    notes.insert(0, f"Found a face with {detector_name()}: {pts} (left eye, right eye, mouth).")
    return FaceAlignment.from_points(pts, resolution), notes


def _plan_superres(
    photo: Photo,
    spec: TaskSpec,
    resolution: int,
    mask: np.ndarray | None,
    region: Region | None,
    factor: int | None,
    notes: list[str],
) -> TaskPlan:
    w, h = photo.size
    x0, y0 = 0, 0
    if region is not None:
        x0, y0, w, h = region.x, region.y, region.size, region.size
    f = sr_factor(max(w, h), resolution, factor)
    low = resolution // f
    view = View.fit(w, h, resolution, grid=f, x=x0, y=y0)
    lw, lh = view.cw // f, view.ch // f
    if max(w, h) < low:
        notes.append(
            f"The {w}×{h} input is first enlarged to {lw}×{lh} px, then super-resolved ×{f}."
        )
    crop = view.crop(photo.rgb)
    lr = resize(crop, lh, lw)
    if spec.grayscale:
        lr = to_gray(lr)
    oy, ox = view.oy // f, view.ox // f
    lr_grid = np.pad(lr, [(oy, low - oy - lh), (ox, low - ox - lw), (0, 0)], mode="edge")
    down = Downsample(f)
    with torch.no_grad():
        t = torch.from_numpy(lr_grid).permute(2, 0, 1).unsqueeze(0) * 2 - 1
        up = ((down.up(t)[0].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
    known = view.known_mask()
    hole_m = None
    if mask is not None:
        if not spec.uses_mask:
            notes.append("The mask is ignored by super-resolution (use hybrid).")
        else:
            sub = mask[y0 : y0 + h, x0 : x0 + w]
            if not sub.any():
                raise InputError("The region holds none of the mask.")
            hole_m = np.zeros_like(known)
            hole_m[view.oy : view.oy + view.ch, view.ox : view.ox + view.cw] = resize_mask(
                sub, view.ch, view.cw
            )
            known = known & ~hole_m
    deg = _with_known(make_degradation(spec, factor=f), None if known.all() else known)
    target = up * known[..., None]
    return TaskPlan(
        spec,
        view,
        deg,
        target.astype(np.float32),
        known,
        mask,
        f,
        output_size=(view.cw, view.ch),
        notes=notes,
    )


# --- running ---------------------------------------------------------------------------------
@dataclass
class RestorationResult:
    photo: Photo  # the full-resolution output (input's metadata kept)
    state: ReconstructionState
    plan: TaskPlan
    model_output: np.ndarray  # R×R×3 in [0, 1]: x* = G(z*; θ*)
    cancelled: bool = False

    @property
    def observation(self) -> np.ndarray:
        return self.plan.target


class RestorationJob(CancellableRun[Report]):
    """Iterate for engine :class:`Report` objects; ``result`` once exhausted.  It runs
    one reconstruction (``run``), which shares its cancel: ``job.cancel()`` stops both,
    and the job is ``cancelled`` when the reconstruction was."""

    def __init__(
        self,
        prior: Prior,
        photo: Photo,
        plan: TaskPlan,
        *,
        class_id: int | None,
        preset: Preset,
        seed: int,
        exact: bool,
        cancel: threading.Event | None,
        z_init: torch.Tensor | None = None,
        precision: str | None = None,
    ):
        super().__init__(cancel)
        self.prior = prior
        self.photo = photo
        self.plan = plan
        self.preset = preset
        self.run: ReconstructionRun | StyleGAN2Run = reconstruct(
            prior,
            plan.target_tensor(),
            plan.degradation,
            class_id=class_id,
            preset=preset,
            z_init=z_init,
            exact=exact,
            seed=seed,
            cancel=self._linked_event(),
            precision=precision,
        )
        self.result: RestorationResult | None = None
        self.last_report: Report | None = None
        self._placement: Placement | None = None

    @property
    def notes(self) -> list[str]:
        return self.plan.notes

    @property
    def select_total(self) -> int:
        """Starting-point candidates the run scores before it optimises (0: none; a
        StyleGAN2 run starting from w_avg or a given w+ scores none)."""
        p = self.preset
        if isinstance(self.run, StyleGAN2Run):
            scored = self.run.options.w_init == "select" and self.run.z_init is None
            return p.select_num if scored else 0
        return p.select_num if p.select_num > 1 else 0

    @property
    def total(self) -> int:
        """Selection samples + optimisation iterations (for a progress bar)."""
        return self.select_total + self.preset.total_iterations

    def _reports(self) -> Iterator[Report]:
        for report in self.run:
            self.last_report = report
            if report.state is not None:
                self.cancelled = report.cancelled
                self.result = self.finish(report.state)
            yield report

    def run_to_end(self, callback: Callable[[Report], None] | None = None) -> RestorationResult:
        for report in self:
            if callback is not None:
                callback(report)
        assert self.result is not None
        return self.result

    @property
    def placement(self) -> Placement:
        """Where the result sits in the photo (its path and pixel digest included); saved
        with the result's state."""
        if self._placement is None:
            path = str(self.photo.path.absolute()) if self.photo.path is not None else None
            self._placement = placement_of(
                self.plan,
                self.photo.size,
                photo_path=path,
                photo_digest=pixels_digest(self.photo.rgb),
            )
        return self._placement

    def composer(self) -> PhotoComposer:
        """Composes other outputs of the result (jitter, category, morph frames) into the
        photo exactly as the result was (uint8 frames at the photo's size)."""
        return PhotoComposer(self.photo, self.placement)

    def finish(self, state: ReconstructionState) -> RestorationResult:
        state.placement = self.placement
        x = render(self.prior, state)
        model_output = ((x[0].permute(1, 2, 0).cpu().numpy() + 1) / 2).clip(0, 1)
        photo = compose_into(self.photo, self.placement, model_output.astype(np.float32))
        return RestorationResult(photo, state, self.plan, model_output, state.cancelled)


def compose_output(photo: Photo, plan: TaskPlan, model_output: np.ndarray) -> Photo:
    """Put the model's R×R result back into the photo (docs/method.md#post-processing), by the
    plan's :func:`placement_of` (see :func:`dgp_engine.tasks.postprocess.compose_into`)."""
    return compose_into(photo, placement_of(plan, photo.size), model_output)


def placement_of(
    plan: TaskPlan,
    photo_size: tuple[int, int],
    *,
    photo_path: str | None = None,
    photo_digest: str | None = None,
) -> Placement:
    """Where a result of ``plan`` sits in its ``photo_size`` photo (saved with its state,
    so any other output can be composed the same way later)."""
    hole = (
        plan.view.crop(plan.hole)
        if plan.hole is not None and plan.spec.compose == FILL_HOLE and plan.face is None
        else (plan.hole if plan.face is not None and plan.spec.compose == FILL_HOLE else None)
    )
    return Placement(
        plan.task,
        (int(photo_size[0]), int(photo_size[1])),
        plan.view,
        int(plan.feather),
        hole,
        photo_path,
        photo_digest,
        plan.spec.compose,
        face=plan.face,
        scale=(plan.factor or 1) if plan.face is not None and plan.spec.new_picture else 1,
    )


def preview_array(report: Report, max_side: int | None = None) -> np.ndarray | None:
    """A report's generator image as an H×W×3 uint8 array (downscaled to ``max_side``),
    for live previews; None when the report carries no image."""
    if report.image is None:
        return None
    x = report.image.detach()[0].float().cpu()
    arr = ((x.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
    if max_side is not None and max(arr.shape[:2]) > max_side:
        arr = resize(arr, max_side, max_side)
    return (arr * 255 + 0.5).astype(np.uint8)


def restore_image(
    prior: Prior,
    photo: Photo | np.ndarray,
    task: str | TaskSpec,
    *,
    mask: np.ndarray | None = None,
    region: RegionLike | None = None,
    factor: int | None = None,
    class_id: int | None = None,
    preset: Preset | str | None = None,
    seed: int = 0,
    exact: bool = False,
    cancel: threading.Event | None = None,
    feather: int | None = None,
    z_init: torch.Tensor | None = None,
    precision: str | None = None,
    face_points: FacePoints | FaceAlignment | str | None = None,
    aligned: bool = False,
) -> RestorationJob:
    """Plan and start restoring ``photo`` with ``task``; returns the job to iterate.

    ``mask``: photo-size bool array, True = fill (inpaint, hybrid).  ``region``:
    x, y, size square to work on.  ``class_id=None`` lets z selection pick the class.
    ``cancel``: an event that cancels the job when set (as ``job.cancel()`` does).
    ``face_points``: the eyes and mouth of a face to align and restore (the face
    prior's way; found by the detector for a face prior when not given, unless the
    photo is ``aligned`` already or a region is given), or the aligned face itself (with
    the photo's part ``photo`` is as its origin: the app's crop).
    ``precision``: one of :data:`dgp_engine.method.compute.PRECISIONS` (None: "auto"); a
    device that cannot compute in it is refused here (DeviceError), before any work.
    The precision used is saved in the result's ``state.progress["precision"]``."""
    if not isinstance(photo, Photo):
        photo = Photo.from_array(photo)
    face, face_notes = find_face(
        photo,
        prior.resolution,
        points=face_points,
        face_prior=bool(prior.alignment),
        region=region,
        aligned=aligned,
    )
    plan = plan_task(
        photo,
        task,
        prior.resolution,
        mask=mask,
        region=region,
        factor=factor,
        feather=feather,
        face=face,
    )
    plan.notes[:0] = face_notes
    preset = resolve_preset(preset, plan.spec, prior.name, family=prior.family)
    for note in plan.notes:
        log.info("%s", note)
    return RestorationJob(
        prior,
        photo,
        plan,
        class_id=class_id,
        preset=preset,
        seed=seed,
        exact=exact,
        cancel=cancel,
        z_init=z_init,
        precision=precision,
    )

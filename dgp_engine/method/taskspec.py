"""The one table of restoration tasks: what each task is called, what it needs, which
schedule it runs, where it works and how its result goes back into the photo.

The CLI, the app, evaluation and the degradations all read this table, so a task is
described once: the app asks it for the default preset of (task, model) and for the
working region around a mask exactly as the CLI does.

A task is looked up by its name once, where a front end gets it (a command line, a batch
setting, the app's task list; :class:`dgp_engine.tasks.request.RestoreRequest` holds the
:class:`TaskSpec`); every helper below takes the :class:`TaskSpec` itself, or a name
that it looks up.

    spec = task_spec("inpainting")                     # → the inpaint TaskSpec
    default_preset_name("colorize", "bundled")         # → "bundled_colorization"
    working_region("inpaint", (w, h), 128, hole=mask)  # → Region around the hole
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .presets import Preset, load_preset, preset_names
from .region import MIN_CONTEXT, MIN_REGION, Region, largest_hole, mask_bbox, region_around

# What a task does with a mask.
MASK_REQUIRED = "required"  # the task fills what the mask marks (no mask, no task)
MASK_OPTIONAL = "optional"  # the mask adds a hole to fill, the task runs without one
MASK_IGNORED = "ignored"  # a mask is noted and left out

# Output size rules.
SAME_SIZE = "same size"  # the result replaces the working region in the photo
SCALED = "scaled"  # the result is a new, larger picture (×factor)

# Degradation parts, applied in the table's order (docs/method.md#degradations).
GRAY = "gray"
MASK = "mask"
DOWNSAMPLE = "downsample"

# Compose steps: how the model's R×R output goes back into the photo
# (docs/method.md#post-processing).
BLEND = "blend"  # the region's content, feathered into the photo
FILL_HOLE = "fill hole"  # only the hole is replaced, with a feathered seam
COLOR_TRANSFER = "color transfer"  # the output's colour on the photo's own lightness
NEW_PICTURE = "new picture"  # the model's content is the result, at the new size


@dataclass(frozen=True)
class RegionPolicy:
    """Where a task works when no region is given."""

    # Margin around the hole on every side, in units of the hole's side: 1.0 makes the
    # hole a third of the square, the paper's centre hole (side R/3) that the presets
    # and `dgp eval` were measured with.
    context: float = 1.0
    # The least margin kept when the context shrinks so the square is not enlarged more
    # than SOFT_ENLARGEMENT× (see region.MIN_CONTEXT).
    min_context: float = MIN_CONTEXT
    # Without a given region the CLI works around the mask (else it fits the whole photo).
    around_mask: bool = False
    # The square's side is at most resolution // this: a super-resolved input must fit
    # the model at the smallest factor, ×2.
    max_side_divisor: int = 1
    # The task covers the whole photo at any aspect ratio (the app too, not a square):
    # colorization takes only a, b from the model and keeps L at full resolution, so
    # fitting the photo into the model's square (edge-padded margin, left out of the
    # loss) loses no detail.  Measured against overlapping tiles (bench/colorize_plan.py,
    # bundled prior, 1:3 and 3:1 strips): 4× faster, a,b error 33 vs 51, no tile seams.
    whole_photo: bool = False

    def max_side(self, resolution: int) -> int | None:
        return resolution // self.max_side_divisor if self.max_side_divisor > 1 else None


@dataclass(frozen=True)
class TaskSpec:
    """Everything the engine, the CLI and the app know about one task."""

    name: str  # canonical engine name
    label: str  # the app's name for it
    command: str  # the CLI command
    summary: str  # one line of CLI help
    aliases: tuple[str, ...]
    mask: str  # MASK_REQUIRED / MASK_OPTIONAL / MASK_IGNORED
    output: str  # SAME_SIZE / SCALED
    published_preset: str  # the paper's schedule, for any model
    preset_stem: str  # a model's own preset is <model>_<stem>.toml
    degradation: tuple[str, ...]  # φ's parts in order (empty: identity)
    compose: str  # BLEND / FILL_HOLE / COLOR_TRANSFER / NEW_PICTURE
    region: RegionPolicy = field(default_factory=RegionPolicy)
    default_factor: int | None = None  # SR factor of a degradation built without one
    evaluated: bool = False  # `dgp eval` covers it (the paper's protocol)
    menu_rank: int = 0  # position in the app's list and evaluation tables

    @property
    def needs_mask(self) -> bool:
        return self.mask == MASK_REQUIRED

    @property
    def uses_mask(self) -> bool:
        return self.mask != MASK_IGNORED

    @property
    def new_picture(self) -> bool:
        """The output is a new picture of another size (super-resolution)."""
        return self.output == SCALED

    @property
    def grayscale(self) -> bool:
        return GRAY in self.degradation


_SR = RegionPolicy(max_side_divisor=2)

# In the CLI's order (its commands, and the list an unknown task name is answered with).
TASK_SPECS: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="colorize",
        label="Colorize",
        command="colorize",
        summary="colorize a black-and-white photo (colour from the model, lightness kept "
        "from the photo at full resolution)",
        aliases=("colorization",),
        mask=MASK_IGNORED,
        output=SAME_SIZE,
        published_preset="colorization",
        preset_stem="colorization",
        degradation=(GRAY,),
        compose=COLOR_TRANSFER,
        region=RegionPolicy(whole_photo=True),
        evaluated=True,
        menu_rank=1,
    ),
    TaskSpec(
        name="inpaint",
        label="Inpaint",
        command="inpaint",
        summary="fill the area a mask (or box) marks",
        aliases=("inpainting",),
        mask=MASK_REQUIRED,
        output=SAME_SIZE,
        published_preset="inpainting",
        preset_stem="inpainting",
        degradation=(MASK,),
        compose=FILL_HOLE,
        region=RegionPolicy(around_mask=True),
        evaluated=True,
        menu_rank=2,
    ),
    TaskSpec(
        name="superres",
        label="Super-resolve",
        command="superres",
        summary="super-resolve a small photo ×2/×4/×8",
        aliases=("sr", "super_resolution"),
        mask=MASK_IGNORED,
        output=SCALED,
        published_preset="sr_mse_biased",
        preset_stem="superres",
        degradation=(DOWNSAMPLE,),
        compose=NEW_PICTURE,
        region=_SR,
        default_factor=4,
        evaluated=True,
        menu_rank=3,
    ),
    TaskSpec(
        name="reconstruct",
        label="Restore",
        command="restore",
        summary="reconstruct a photo through the prior (plain DGP reconstruction)",
        aliases=("restore", "identity", "reconstruction"),
        mask=MASK_IGNORED,
        output=SAME_SIZE,
        published_preset="manipulation",
        preset_stem="restore",
        degradation=(),
        compose=BLEND,
        evaluated=True,
        menu_rank=0,
    ),
    TaskSpec(
        name="defend",
        label="Remove adversarial noise",
        command="defend",
        summary="remove adversarial noise (reconstruction with an early stop)",
        aliases=("adversarial_defense", "defense"),
        mask=MASK_IGNORED,
        output=SAME_SIZE,
        published_preset="adversarial_defense",
        preset_stem="defend",
        degradation=(),
        compose=BLEND,
        menu_rank=5,
    ),
    TaskSpec(
        name="hybrid",
        label="Hybrid",
        command="hybrid",
        summary="super-resolve, colorize and (with a mask) inpaint at once",
        aliases=(),
        mask=MASK_OPTIONAL,
        output=SCALED,
        published_preset="inpainting",
        preset_stem="hybrid",
        degradation=(DOWNSAMPLE, GRAY, MASK),
        compose=NEW_PICTURE,
        region=_SR,
        default_factor=2,
        menu_rank=4,
    ),
)

TASKS = tuple(s.name for s in TASK_SPECS)
DEFAULT_TASK = "inpaint"  # the app opens on it: painting a hole is its most common use
_BY_NAME = {key: s for s in TASK_SPECS for key in (s.name, *s.aliases)}


def find_task(name: str) -> TaskSpec | None:
    """The task called ``name`` or one of its aliases (any case, ``-`` for ``_``)."""
    return _BY_NAME.get(str(name).strip().lower().replace("-", "_"))


def task_spec(name: str | TaskSpec) -> TaskSpec:
    """The task called ``name`` (a :class:`TaskSpec` is returned as it is, with no
    lookup); an unknown name is refused with the list of tasks."""
    if isinstance(name, TaskSpec):
        return name
    spec = find_task(name)
    if spec is None:
        raise InputError(
            f"Unknown task {name!r}. Choose one of: {', '.join(TASKS)} (restore = reconstruct)."
        )
    return spec


def menu_tasks() -> list[TaskSpec]:
    """The tasks in the app's order."""
    return sorted(TASK_SPECS, key=lambda s: s.menu_rank)


# The tasks the paper's evaluation protocol covers, in the order its tables list them.
EVAL_TASKS = tuple(s.name for s in menu_tasks() if s.evaluated)


def task_by_label(label: str) -> TaskSpec | None:
    return next((s for s in TASK_SPECS if s.label == label), None)


# --- presets --------------------------------------------------------------------------------
def default_preset_name(
    task: str | TaskSpec, model_name: str | None = None, family: str | None = None
) -> str:
    """The name of the preset tuned for ``model_name`` if one ships (e.g.
    ``bundled_inpainting``), else, for a StyleGAN2 prior (``family``), the task's
    ``stylegan2_<stem>`` preset, else the task's published (BigGAN) schedule."""
    spec = task_spec(task)
    if model_name:
        own = f"{model_name}_{spec.preset_stem}"
        if own in preset_names():
            return own
    if family == "stylegan2":
        return f"stylegan2_{spec.preset_stem}"
    return spec.published_preset


def default_preset(
    task: str | TaskSpec, model_name: str | None = None, family: str | None = None
) -> Preset:
    """The preset tuned for ``model_name`` if one ships, else the family's, else the
    published schedule."""
    return load_preset(default_preset_name(task, model_name, family))


# --- working region -------------------------------------------------------------------------
#: A region enlarged more than this many times from the model's resolution comes back soft.
SOFT_ENLARGEMENT = 2.0


def covers_whole_photo(task: str | TaskSpec) -> bool:
    """The task works on the whole photo, whatever its aspect ratio (colorization)."""
    return task_spec(task).region.whole_photo


def keeps_detail_by_itself(task: str | TaskSpec) -> bool:
    """The task's result does not come back soft from an enlarged region: it covers the
    whole photo (colour transfer keeps the photo's lightness) or makes a new picture."""
    spec = task_spec(task)
    return spec.region.whole_photo or spec.new_picture or spec.compose == COLOR_TRANSFER


def sharp_side(task: str | TaskSpec, resolution: int) -> int | None:
    """The largest working region ``task`` can use with a ``resolution`` px model before the
    result comes back soft (:data:`SOFT_ENLARGEMENT` × the resolution); None when the task
    does not get soft (:func:`keeps_detail_by_itself`)."""
    if keeps_detail_by_itself(task_spec(task)):
        return None
    return int(SOFT_ENLARGEMENT * resolution)


@dataclass(frozen=True)
class RegionAdvisory:
    """A structured warning: the working region is enlarged more than
    :data:`SOFT_ENLARGEMENT` × from the model's resolution, so the result comes back soft,
    with the two remedies (a larger model, or a smaller region / mask).  The CLI prints
    :attr:`message` once before the run; the app can show the parts."""

    task: str
    side: int  # the working region's side, photo px
    resolution: int  # the model's
    hole_side: int | None = None  # the mask's bounding-box side, when the region holds one
    min_context: float = MIN_CONTEXT  # the task's least context (RegionPolicy.min_context)

    kind = "soft-enlargement"

    @property
    def factor(self) -> float:
        return self.side / self.resolution

    @property
    def sharp_side(self) -> int:
        """The largest region this model keeps sharp."""
        return int(SOFT_ENLARGEMENT * self.resolution)

    @property
    def largest_hole(self) -> int:
        """The largest mask (bounding-box side) that a sharp region holds with the least
        context (:data:`region.MIN_CONTEXT`)."""
        return largest_hole(self.sharp_side, self.min_context)

    @property
    def model_resolution_needed(self) -> int:
        """The least model resolution that would keep this region sharp, rounded up to the
        sizes GAN priors come in (powers of two: 128, 256, 512…), never a 65 px model."""
        least = max(1, int(math.ceil(self.side / SOFT_ENLARGEMENT)))
        return 1 << (least - 1).bit_length()

    @property
    def remedies(self) -> tuple[str, str]:
        """(use a larger model, use a smaller region or mask), one sentence each."""
        larger = (
            f"use a larger model, {self.model_resolution_needed} px or more (this "
            f"one is {self.resolution} px; `dgp models list` shows them)"
        )
        if self.hole_side is not None and self.hole_side > self.largest_hole:
            smaller = (
                f"make the mask at most {self.largest_hole} px across (it is "
                f"{self.hole_side} px), or fill it in parts, so its region fits in "
                f"{self.sharp_side} px"
            )
        else:
            smaller = f"shrink the region to at most {self.sharp_side} px"
        return larger, smaller

    @property
    def message(self) -> str:
        larger, smaller = self.remedies
        return (
            f"The {self.side} px working region is enlarged {self.factor:.1f}× from the "
            f"model's {self.resolution} px, so the fill will be soft: {smaller}, or "
            f"{larger}."
        )

    def to_dict(self) -> dict[str, Any]:
        larger, smaller = self.remedies
        return {
            "kind": self.kind,
            "task": self.task,
            "side": self.side,
            "resolution": self.resolution,
            "hole_side": self.hole_side,
            "factor": round(self.factor, 3),
            "sharp_side": self.sharp_side,
            "larger_model": larger,
            "smaller_region": smaller,
            "message": self.message,
        }

    def __str__(self) -> str:
        return self.message


def region_advisory(
    task: str | TaskSpec, side: int, resolution: int, *, hole_side: int | None = None
) -> RegionAdvisory | None:
    """The advisory for ``task``'s region of ``side`` px with a ``resolution`` px model
    (``hole_side``: the mask's bounding-box side it holds); None when the region is
    enlarged at most :data:`SOFT_ENLARGEMENT` × or the task keeps its detail anyway."""
    spec = task_spec(task)
    limit = sharp_side(spec, resolution)
    if limit is None or side <= limit:
        return None
    return RegionAdvisory(
        spec.name,
        int(side),
        int(resolution),
        None if hole_side is None else int(hole_side),
        spec.region.min_context,
    )


def enlargement_warning(task: str | TaskSpec, side: int, resolution: int) -> str | None:
    """What to say when ``task``'s region of ``side`` px is enlarged more than
    :data:`SOFT_ENLARGEMENT` times from the model's ``resolution`` on the way back (the
    fill will be soft); None when it is not, or the task keeps the photo's detail
    (colour transfer) or makes a new picture.  See :func:`region_advisory`."""
    advisory = region_advisory(task, side, resolution)
    return None if advisory is None else advisory.message


def working_region(
    task: str | TaskSpec,
    size: tuple[int, int],
    resolution: int,
    *,
    hole: np.ndarray | None = None,
    hole_box: tuple[int, int, int, int] | None = None,
    always_square: bool = False,
) -> Region | None:
    """The square of a ``size`` = (width, height) photo that ``task`` works on when none
    is given: around the hole (a bool mask, or its ``hole_box`` left, top, right, bottom,
    exclusive) with the task's context, at least the model's ``resolution``, at most the
    photo's shorter side and the task's largest input.  The context shrinks (down to the
    task's ``min_context``) so the square is enlarged at most :data:`SOFT_ENLARGEMENT` ×
    where the hole allows; a larger hole gets the smallest square with that least context
    (and :func:`region_advisory` says what to do).

    None when there is no hole, or the hole is wider than any such square: the CLI then
    fits the whole photo.  ``always_square`` (the app, which always works on a square)
    gives the centre square instead, or a square as large as allowed centred on a hole
    too wide for one."""
    spec = task_spec(task)
    policy = spec.region
    max_side = policy.max_side(resolution)
    width, height = size
    if hole_box is None and hole is not None:
        hole_box = mask_bbox(hole)  # an empty hole is refused with the engine's message
    region = None
    if hole_box is not None:
        region = region_around(
            hole_box,
            width,
            height,
            resolution,
            policy.context,
            max_side,
            sharp_side=sharp_side(spec, resolution),
            min_context=policy.min_context,
        )
    if region is not None or not always_square:
        return region
    limit = min(width, height, max_side or max(width, height))
    side = min(max(MIN_REGION, limit), width, height)
    if hole_box is None:
        cx, cy = width / 2, height / 2
    else:
        cx, cy = (hole_box[0] + hole_box[2]) / 2, (hole_box[1] + hole_box[3]) / 2
    x = min(max(0, int(round(cx - side / 2))), width - side)
    y = min(max(0, int(round(cy - side / 2))), height - side)
    return Region(x, y, side)


__all__ = [
    "BLEND",
    "COLOR_TRANSFER",
    "DEFAULT_TASK",
    "DOWNSAMPLE",
    "EVAL_TASKS",
    "FILL_HOLE",
    "GRAY",
    "MASK",
    "MASK_IGNORED",
    "MASK_OPTIONAL",
    "MASK_REQUIRED",
    "NEW_PICTURE",
    "SAME_SIZE",
    "SCALED",
    "SOFT_ENLARGEMENT",
    "TASKS",
    "TASK_SPECS",
    "RegionAdvisory",
    "RegionPolicy",
    "TaskSpec",
    "covers_whole_photo",
    "default_preset",
    "default_preset_name",
    "enlargement_warning",
    "find_task",
    "keeps_detail_by_itself",
    "menu_tasks",
    "region_advisory",
    "sharp_side",
    "task_by_label",
    "task_spec",
    "working_region",
]

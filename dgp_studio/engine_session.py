"""The one place where the app calls the engine to restore a working region.

Crop the square region, resize it to the model resolution, run the DGP
iterator, then resize the output back and blend it into the picture (the hole
only for inpainting, a feathered square otherwise; colour channels only for
colorization, luminance kept from the original).  When the engine's own
``dgp_engine.tasks`` lands, this module is where the switch happens."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageFilter

from dgp_engine import InputError, Preset, Prior, Report, make_degradation, reconstruct

TASKS = {  # UI label → engine task name and default preset
    "Restore": ("reconstruct", "manipulation"),
    "Colorize": ("colorize", "colorization"),
    "Inpaint": ("inpaint", "inpainting"),
    "Super-resolve": ("superres", "sr_mse_biased"),
    "Hybrid": ("hybrid", "inpainting"),
    "Remove adversarial noise": ("defend", "adversarial_defense"),
}
NEEDS_MASK = {"inpaint", "hybrid"}


@dataclass
class RegionRequest:
    """Everything one run needs; plain data so the worker thread owns its copy."""

    task: str                         # engine task name (see TASKS)
    model: str
    image: np.ndarray                 # the region crop, side×side×3 uint8
    mask: np.ndarray                  # side×side uint8, 255 = fill
    bounds: tuple[int, int, int, int]  # x0, y0, x1, y1 in the picture
    preset: Preset
    class_id: int | None = None
    seed: int = 0
    device: str = "auto"
    extra: dict = field(default_factory=dict)


@dataclass
class RegionResult:
    patch: np.ndarray                 # composited region, same size as the crop
    output: np.ndarray                # model output at native resolution (uint8)
    state: object                     # ReconstructionState
    cancelled: bool


def resolve_device(name: str) -> tuple[str, str | None]:
    """(device, warning): a GPU that is missing falls back to the CPU with the
    engine's explanation, so a run never fails only for that."""
    from dgp_engine.device import select_device
    from dgp_engine.errors import DeviceError

    try:
        return str(select_device(name or "auto")), None
    except DeviceError as exc:
        return "cpu", f"{exc} Running on the CPU instead."


def available_devices() -> list[str]:
    from dgp_engine.device import available_devices as engine_devices

    out = ["auto"] + [d for d in engine_devices() if d != "auto"]
    return out if "cpu" in out else out + ["cpu"]


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8)).float().div_(127.5).sub_(1.0)
    return t.permute(2, 0, 1).unsqueeze(0)


def to_uint8(t: torch.Tensor, max_side: int | None = None) -> np.ndarray:
    """[1,3,H,W] in [-1,1] → H×W×3 uint8 (downscaled to ``max_side`` if larger)."""
    x = t.detach()[0].float().cpu().clamp(-1, 1)
    if max_side and x.shape[-1] > max_side:
        x = torch.nn.functional.interpolate(x[None], size=(max_side, max_side), mode="area")[0]
    return x.add(1).mul(127.5).round().byte().permute(1, 2, 0).contiguous().numpy()


def _resize(rgb: np.ndarray, side: int, resample=Image.LANCZOS) -> np.ndarray:
    if rgb.shape[0] == side and rgb.shape[1] == side:
        return rgb
    mode = "RGB" if rgb.ndim == 3 else "L"
    return np.asarray(Image.fromarray(rgb, mode).resize((side, side), resample))


class RegionJob:
    """Iterate to get the engine's reports; ``result`` is set at the end."""

    def __init__(self, prior: Prior, request: RegionRequest, cancel: threading.Event):
        self.prior = prior
        self.request = request
        self.cancel = cancel
        self.result: RegionResult | None = None
        res = prior.resolution
        side = request.image.shape[0]
        if request.image.shape[:2] != (side, side):
            raise InputError("The working region must be square.")
        self.hole = None
        mask_t = None
        if request.task in NEEDS_MASK:
            small = _resize(request.mask, res, Image.BOX)
            self.hole = small > 127
            if not self.hole.any():
                raise InputError("The mask is empty inside the working region: paint the area "
                                 "to fill (B) or move the frame over it.")
            if self.hole.all():
                raise InputError("The mask covers the whole working region: enlarge the frame "
                                 "so that some known picture surrounds the hole.")
            mask_t = torch.from_numpy((~self.hole).astype(np.float32))[None, None]
        self.phi = make_degradation(request.task, mask=mask_t, resolution=res)
        crop = to_tensor(_resize(request.image, res))
        if request.task in ("colorize", "hybrid", "superres"):
            crop = self.phi.observe(crop)
        self.target = crop.clamp(-1, 1)

    def __iter__(self) -> Iterator[Report]:
        r = self.request
        run = reconstruct(self.prior, self.target, self.phi, class_id=r.class_id,
                          preset=r.preset, seed=r.seed, cancel=self.cancel)
        last: torch.Tensor | None = None
        for report in run:
            if report.image is not None:
                last = report.image
            yield report
        state = run.state
        from dgp_engine import render

        out = render(self.prior, state) if state is not None else last
        if out is None:
            out = self.target
        self.result = self._composite(out, state, run.state.cancelled if state else True)

    def _composite(self, out: torch.Tensor, state, cancelled: bool) -> RegionResult:
        r = self.request
        side = r.image.shape[0]
        native = to_uint8(out)
        big = _resize(native, side).astype(np.float32)
        orig = r.image.astype(np.float32)
        if r.task == "colorize":
            big = _luminance_from(orig, big)
        feather = max(1, side // 32)
        if self.hole is not None:
            alpha = Image.fromarray((_resize(r.mask, side, Image.BILINEAR) > 127)
                                    .astype(np.uint8) * 255, "L")
            alpha = alpha.filter(ImageFilter.MaxFilter(3)).filter(
                ImageFilter.GaussianBlur(feather / 2))
        else:
            a = np.zeros((side, side), np.uint8)
            a[feather:-feather, feather:-feather] = 255
            alpha = Image.fromarray(a, "L").filter(ImageFilter.GaussianBlur(feather / 2))
        a = np.asarray(alpha, np.float32)[..., None] / 255.0
        patch = (big * a + orig * (1 - a)).round().clip(0, 255).astype(np.uint8)
        return RegionResult(patch, native, state, cancelled)


def _luminance_from(orig: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Lab: L of the original, a/b of the model's colours."""
    from skimage.color import lab2rgb, rgb2lab

    import warnings

    lab_o = rgb2lab(orig / 255.0)
    lab_c = rgb2lab(colour / 255.0)
    lab_c[..., 0] = lab_o[..., 0]
    with warnings.catch_warnings():  # out-of-gamut values are clipped, as intended
        warnings.simplefilter("ignore", UserWarning)
        return lab2rgb(lab_c) * 255.0

"""Model images as pictures: the one conversion from the generator's [-1, 1] tensors
to uint8 pixels, used by previews, renders, exports and the app alike.

(Float photos in [0, 1] become uint8 through :func:`dgp_engine.files.photos.unit_to_uint8`.)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def signed_to_uint8(images: torch.Tensor, max_side: int | None = None) -> np.ndarray:
    """[-1, 1] image tensor(s) → uint8 pixels: [3,H,W] → H×W×3, [N,3,H,W] → N×H×W×3.

    ``max_side``: first downscale (area average, aspect kept) so that neither side is
    longer, e.g. for previews sent to the GUI."""
    x = images.detach().float().cpu().clamp(-1, 1)
    h, w = x.shape[-2:]
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(x.reshape(-1, *x.shape[-3:]), size=size, mode="area")
        x = x.reshape(*images.shape[:-2], *size)
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).contiguous().numpy()

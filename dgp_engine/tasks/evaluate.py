"""The paper's evaluation protocol (docs/method.md#evaluation) and its baselines.

Clean images are brought to the model's resolution (centre square, resized),
degraded (gray; centre hole of side R/3; PIL Lanczos ×f down-scaling; or none),
restored through the same task pipeline users run, and scored with PSNR / SSIM /
MSE on [0, 1] (inpainting on the hole only).  Methods:

* ``dgp``    — the preset as given (generator fine-tuned progressively);
* ``z-only`` — the same preset with the generator frozen: classic GAN inversion;
* ``dip``    — the same generator architecture randomly initialised and
  fine-tuned on the MSE alone from a fixed random latent (Deep Image Prior style).
"""

from __future__ import annotations

import csv
import json
import logging
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..files.photos import FORMATS, Photo, read_image, read_mask, save_image, write_atomic
from ..method.compute import generator_weights, resolve_precision
from ..method.presets import Preset
from ..method.reconstruct import Report
from ..method.region import resize, resize_mask
from ..method.taskspec import DOWNSAMPLE, EVAL_TASKS, GRAY, MASK, TaskSpec, find_task, task_spec
from ..priors.load import Prior, build_prior
from .metrics import score
from .postprocess import to_gray
from .restore import restore_image

log = logging.getLogger(__name__)

METHODS = ("dgp", "z-only", "dip")
# DIP-style baseline: every group trained from the first iteration on the MSE alone.
DIP_G_LR = 1e-2  # best of 1e-4…1e-1 on Imagenette-64 reconstruction (350 its)


@dataclass
class Dataset:
    images: list[np.ndarray]  # float32 H×W×3 in [0, 1], any size
    labels: list[int | None]
    indices: list[int]  # position in the source (archive row / sorted file)
    names: list[str]
    source: str
    class_map: dict[int, int] | None = None  # dataset label → model class id


def pick_indices(n: int, limit: int | None, pick: str = "spread") -> list[int]:
    """``limit`` rows of ``n``: evenly spread over the source (covers every class of an
    archive sorted by class) or the first ones."""
    if n == 0:
        raise InputError("The data set holds no images.")
    if limit is None or limit >= n:
        return list(range(n))
    if limit <= 0:
        raise InputError(f"--limit must be at least 1, not {limit}.")
    if pick == "first":
        return list(range(limit))
    if pick != "spread":
        raise InputError(f"Unknown pick {pick!r}: use spread or first.")
    return [int(round(i * (n - 1) / max(1, limit - 1))) for i in range(limit)] if limit > 1 else [0]


def load_dataset(path: str | Path, limit: int | None = None, pick: str = "spread") -> Dataset:
    """An .npz archive (``images`` uint8 N×H×W×3, optional ``labels``) or a folder of
    image files (sorted by name; no labels)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"The data set {path} does not exist.")
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in (*FORMATS, ".gif") and not p.name.startswith(".")
        )
        idx = pick_indices(len(files), limit, pick)
        images = [read_image(files[i]).rgb for i in idx]
        return Dataset(images, [None] * len(idx), idx, [files[i].name for i in idx], str(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data:
                raise InputError(f"{path} has no 'images' array (uint8 N×H×W×3).")
            arr = data["images"]
            labels = data["labels"] if "labels" in data else None
            class_ids = data["class_ids"] if "class_ids" in data else None
            if arr.ndim != 4 or arr.shape[-1] not in (1, 3) or arr.dtype != np.uint8:
                raise InputError(
                    f"{path}: 'images' must be uint8 N×H×W×3, got {arr.dtype} {arr.shape}."
                )
            idx = pick_indices(arr.shape[0], limit, pick)
            images = [np.repeat(arr[i], 3, -1) if arr.shape[-1] == 1 else arr[i] for i in idx]
            images = [im.astype(np.float32) / 255.0 for im in images]
            labs: list[int | None] = [None] * len(idx)
            if class_ids is not None:
                labs = [int(class_ids[i]) for i in idx]
            elif labels is not None:
                labs = [int(labels[i]) for i in idx]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path} is not a readable .npz archive ({exc}).") from exc
    ds = Dataset(images, labs, idx, [f"{path.name}[{i}]" for i in idx], str(path))
    if labels is not None and class_ids is None:
        ds.class_map = _class_info_map(path.parent)
    return ds


def _class_info_map(folder: Path) -> dict[int, int] | None:
    """label → ImageNet-1k index from a ``class_info.tsv`` beside the archive (as
    shipped with Imagenette), for 1000-class models."""
    info = folder / "class_info.tsv"
    if not info.is_file():
        return None
    out = {}
    try:
        with info.open(encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t"):
                if len(row) >= 3 and row[0].strip().isdigit() and row[2].strip().isdigit():
                    out[int(row[0])] = int(row[2])
    except OSError:
        return None
    return out or None


def to_model_square(img: np.ndarray, resolution: int) -> np.ndarray:
    """Centre square crop, resized to resolution × resolution."""
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return resize(img[y : y + s, x : x + s], resolution, resolution).clip(0, 1)


def centre_hole(resolution: int) -> np.ndarray:
    """The paper's centred square hole (side R // 3), True = hole."""
    side = resolution // 3
    begin = (resolution - side) // 2
    hole = np.zeros((resolution, resolution), dtype=bool)
    hole[begin : resolution - begin, begin : resolution - begin] = True
    return hole


def degrade(
    clean: np.ndarray, task: str | TaskSpec, *, factor: int = 4, hole: np.ndarray | None = None
) -> Photo:
    """The synthetic observation of a clean R×R image for ``task``: its degradation's
    parts in order (gray; the hole zeroed; PIL Lanczos down-scaling as the paper)."""
    spec = task if isinstance(task, TaskSpec) else find_task(task)
    if spec is None or not spec.evaluated:
        raise InputError(f"Evaluation covers {', '.join(EVAL_TASKS)}; not {task!r}.")
    obs = clean
    for kind in spec.degradation:
        if kind == GRAY:
            obs = to_gray(obs)
        elif kind == MASK:
            # The paper's centre hole unless one is given, as in `evaluate`.
            mask = centre_hole(obs.shape[0]) if hole is None else hole
            obs = obs * ~mask[..., None]
        elif kind == DOWNSAMPLE:
            from PIL import Image

            r = obs.shape[0]
            img = Image.fromarray((obs * 255 + 0.5).astype(np.uint8))
            obs = np.asarray(img.resize((r // factor, r // factor), Image.Resampling.LANCZOS))
    return Photo.from_array(obs)


def method_preset(preset: Preset, method: str) -> Preset:
    """The preset a method runs: as given (dgp), generator frozen (z-only: the pretrained
    generator exactly as trained, so without the instance-norm swap, whose layers only
    DGP's fine-tuning adapts), or the DIP-style schedule (all groups, MSE only, fixed
    random latent)."""
    if method == "dgp":
        return preset
    if method == "z-only":
        return preset.replace(
            update_G=False, use_in=[False] * preset.num_stages, name=f"{preset.name}+z-only"
        )
    if method == "dip":
        n = preset.num_stages
        return preset.replace(
            ft_num=["all"] * n,
            lr_ratio=[1.0] * n,
            G_lrs=[DIP_G_LR] * n,
            z_lrs=[0.0] * n,
            w_D_loss=[0.0] * n,
            w_mse=[1.0] * n,
            select_num=1,
            stop_mse=0.0,
            name=f"{preset.name}+dip",
        )
    raise InputError(f"Unknown method {method!r}: use one of {', '.join(METHODS)}.")


def method_prior(prior: Prior, method: str, seed: int = 0) -> Prior:
    if method == "dip":
        return build_prior(prior.config, device=prior.device, name="dip-random", seed=seed)
    return prior


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def evaluate(
    prior: Prior,
    task: str | TaskSpec,
    data: Dataset,
    *,
    method: str = "dgp",
    preset: Preset,
    factor: int = 4,
    hole: np.ndarray | None = None,
    class_mode: str | int = "label",
    seed: int = 0,
    exact: bool = False,
    precision: str | None = None,
    cancel: threading.Event | None = None,
    on_image: Callable[[dict[str, Any]], None] | None = None,
    on_report: Callable[[Report], None] | None = None,
    save_images: Path | None = None,
) -> dict[str, Any]:
    """Run the protocol over ``data``; returns the JSON-ready result dictionary.

    ``class_mode``: "label" (the data set's labels, mapped to the model's classes),
    "auto" (z selection picks the class) or a fixed class id.  ``precision``: see
    :mod:`dgp_engine.method.compute`; the one used is recorded in the protocol."""
    spec = task_spec(task)
    task_name = spec.name
    if not spec.evaluated:
        raise InputError(f"Evaluation covers {', '.join(EVAL_TASKS)}; not {task_name!r}.")
    if method not in METHODS:
        raise InputError(f"Unknown method {method!r}: use one of {', '.join(METHODS)}.")
    res = prior.resolution
    # the task fills a hole: the paper's centre hole unless one is given; scored on it
    with_hole = MASK in spec.degradation
    if with_hole:
        hole = centre_hole(res) if hole is None else hole
        if hole.shape != (res, res):
            hole = resize_mask(hole, res, res)
    # refused before any image when the device cannot compute in it
    used_precision = resolve_precision(
        precision, prior.device, exact, weights=generator_weights(prior.G)
    )
    run_prior = method_prior(prior, method, seed)
    run_preset = method_preset(preset, method)
    cancel = cancel or threading.Event()
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for k, (img, label, index, name) in enumerate(
        zip(data.images, data.labels, data.indices, data.names, strict=False)
    ):
        if cancel.is_set():
            break
        clean = to_model_square(img, res)
        photo = degrade(clean, spec, factor=factor, hole=hole)
        class_id = _class_for(label, class_mode, prior, data.class_map)
        t0 = time.perf_counter()
        job = restore_image(
            run_prior,
            photo,
            spec,
            mask=hole if with_hole else None,
            factor=factor if spec.new_picture else None,
            class_id=class_id,
            preset=run_preset,
            seed=seed + k,
            exact=exact,
            cancel=cancel,
            precision=precision,
        )
        for report in job:
            if on_report is not None:
                on_report(report)
        result = job.result
        seconds = time.perf_counter() - t0
        if result is None or result.cancelled:
            break  # an interrupted image is not scored
        out = result.photo.rgb
        m = score(clean, out, hole if with_hole else None)
        row = {
            "index": index,
            "name": name,
            "label": label,
            "class_id": class_id,
            "selected_class": result.state.class_id,
            "psnr": _finite(m["psnr"]),
            "ssim": m["ssim"],
            "mse": m["mse"],
            "seconds": seconds,
            "final_losses": result.state.losses,
        }
        rows.append(row)
        if save_images is not None:
            _save_triplet(save_images, k, clean, photo, out)
        if on_image is not None:
            on_image(row)
    wall = time.perf_counter() - t_all
    return {
        "task": task_name,
        "method": method,
        "complete": len(rows) == len(data.images),
        "count": len(rows),
        "mean": _mean(rows),
        "std": {k: _std(rows, k) for k in ("psnr", "ssim", "mse", "seconds")},
        "seconds_per_image": (sum(r["seconds"] for r in rows) / len(rows)) if rows else None,
        "wall_seconds": wall,
        "protocol": {
            "resolution": res,
            "data_range": 1.0,
            "images": "centre square resized to R",
            "degradation": _describe_degradation(spec, factor, res),
            "metrics_on": "hole (MSE/PSNR on hole pixels, SSIM on its bounding box)"
            if with_hole
            else "whole image",
            "class": class_mode if isinstance(class_mode, str) else int(class_mode),
            "seed": seed,
            "exact": exact,
            "precision": used_precision,
        },
        "model": {
            "name": prior.name,
            "config": prior.config.to_dict(),
            # the files' tensor digest (what export_bundled checks), else the
            # prior's own identity
            "checksum": _weights_digest(prior) or prior.checksum,
            "weights": "random (seeded)" if method == "dip" else "pretrained",
        },
        "preset": run_preset.to_dict(),
        "data": {
            "source": data.source,
            "indices": data.indices[: len(rows)],
            "requested": len(data.images),
        },
        "environment": {
            "torch": torch.__version__,
            "device": str(prior.device),
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "images": rows,
    }


def _weights_digest(prior: Prior) -> str:
    if prior.source is None:
        return ""
    try:
        return weights_digest(prior.source)
    except Exception:  # the table is still useful without it
        return ""


def weights_digest(folder: str | Path) -> str:
    """SHA-256 over the tensors (names, dtypes, shapes, values) of a model folder's G and D
    files: identifies the exact weights scored, whatever the container (safetensors header
    order, .pth pickling) they were written in."""
    import hashlib

    from ..priors.checkpoint import find_weight_files, update_digest

    digest = hashlib.sha256()
    for f in find_weight_files(Path(folder)):
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as fh:
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        else:
            tensors = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        update_digest(digest, f.stem, tensors)
    return digest.hexdigest()


def _class_for(
    label: int | None, class_mode: str | int, prior: Prior, class_map: dict[int, int] | None
) -> int | None:
    n = prior.config.n_classes
    if class_mode == "auto":
        return None
    if not isinstance(class_mode, str):
        return int(class_mode)
    if label is None:
        return None
    if class_map and n == 1000:
        label = class_map.get(label, label)
    if not 0 <= label < n:
        raise InputError(
            f"Label {label} is not a class of this {n}-class model; use --class auto or a class id."
        )
    return int(label)


def _mean(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in ("psnr", "ssim", "mse", "seconds"):
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def _std(rows: list[dict[str, Any]], k: str) -> float | None:
    vals = [r[k] for r in rows if r[k] is not None]
    return float(np.std(vals)) if vals else None


def _describe_degradation(spec: TaskSpec, factor: int, res: int) -> str:
    words = {
        GRAY: "gray = 0.2989 R + 0.5870 G + 0.1140 B",
        MASK: f"centre square hole of side {res // 3} px",
        DOWNSAMPLE: f"PIL Lanczos down ×{factor} to {res // factor} px",
    }
    parts = [words[kind] for kind in spec.degradation]
    return ", then ".join(parts) if parts else "none (identity)"


def _save_triplet(folder: Path, k: int, clean: np.ndarray, photo: Photo, out: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for tag, arr in (("clean", clean), ("input", photo.rgb), ("result", out)):
        save_image(Photo.from_array(arr), folder / f"{k:03d}_{tag}.png", overwrite=True)


def write_json(result: dict[str, Any], path: Path) -> Path:
    text = json.dumps(result, indent=2, allow_nan=False)
    write_atomic(Path(path), lambda f: f.write(text.encode("utf-8") + b"\n"))
    return Path(path)


def load_hole(path: str | Path, resolution: int) -> np.ndarray:
    """A hole mask file for evaluation, resized to the model's resolution."""
    hole = read_mask(path)
    if hole.shape != (resolution, resolution):
        hole = resize_mask(hole, resolution, resolution)
    return hole


def schedule(result: dict[str, Any]) -> str:
    """The optimisation schedule a result ran, e.g. ``bundled_colorization: 175 it, 100 z``."""
    p = result.get("preset") or {}
    if not p:
        return "–"
    return f"{p.get('name', '?')}: {_iterations(result)} it, {p.get('select_num', 0)} z"


def _iterations(result: dict[str, Any]) -> int:
    return int(sum((result.get("preset") or {}).get("iterations", [])))


def format_table(results: list[dict[str, Any]]) -> str:
    """A paper-style Markdown table (PSNR / SSIM / MSE, s/image, schedule) from
    ``evaluate`` results (or their JSON files, loaded), one row per task, method and
    schedule."""
    order = {t: i for i, t in enumerate(EVAL_TASKS)}
    morder = {m: i for i, m in enumerate(METHODS)}

    rows = sorted(
        results,
        key=lambda r: (order.get(r["task"], 99), morder.get(r["method"], 99), _iterations(r)),
    )
    lines = [
        "| task | method | PSNR | SSIM | MSE | s/image | images | schedule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["mean"]

        def fmt(v: float | None, spec: str) -> str:
            return format(v, spec) if v is not None else "–"

        lines.append(
            f"| {r['task']} | {r['method']} | {fmt(m['psnr'], '.2f')} | "
            f"{fmt(m['ssim'], '.3f')} | {fmt(m['mse'], '.4f')} | "
            f"{fmt(r.get('seconds_per_image'), '.1f')} | {r['count']} | "
            f"{schedule(r)} |"
        )
    return "\n".join(lines)


def read_results(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Load ``evaluate`` result JSON files, refusing anything that is not one."""
    results: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no such file.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a readable JSON file ({exc}).") from None
        if not isinstance(data, dict) or not {"task", "method", "mean", "count"} <= set(data):
            raise InputError(f"{path}: not a `dgp eval` result (no task/method/mean/count).")
        results.append(data)
    return results


PAPER_ORDER = ("dgp", "dip", "z-only")


def ordering_summary(results: list[dict[str, Any]], metric: str = "psnr") -> list[str]:
    """One line per task (and schedule length) with all three methods: their order by
    ``metric`` and whether the paper's ordering (DGP > DIP-style > z-only) holds."""
    groups: dict[tuple[str, int], dict[str, float]] = {}
    for r in results:
        value = r["mean"].get(metric)
        if value is not None:
            groups.setdefault((r["task"], _iterations(r)), {})[r["method"]] = value
    lines = []
    for task, its in sorted(
        groups, key=lambda k: (EVAL_TASKS.index(k[0]) if k[0] in EVAL_TASKS else 99, k[1])
    ):
        scores = groups[(task, its)]
        if not set(PAPER_ORDER) <= set(scores):
            continue
        ranked = sorted(scores, key=lambda m: scores[m], reverse=True)
        holds = [m for m in ranked if m in PAPER_ORDER] == list(PAPER_ORDER)
        text = " > ".join(f"{m} {scores[m]:.2f}" for m in ranked)
        where = f"{task} ({its} it)" if its else task
        lines.append(f"{where}: {text} — paper's ordering {'holds' if holds else 'does not hold'}")
    return lines

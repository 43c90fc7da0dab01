#!/usr/bin/env python
r"""Every piece of evidence issue 24 asks of a candidate bundled prior, in one command.

  python scripts/evaluate_bundled.py --prior resources/models/bundled \
      [--before OLD_PRIOR_FOLDER] [--out bench/results/bundled_heldout] [--limit 16] \
      [--threads 2] [--jobs 1] [--preset-dir DIR] [--preset TASK=NAME|FILE ...] \
      [--data ../shared/datasets/imagenette/train.npz] [--tasks ...] [--methods ...]

All of it on the 947 Imagenette training-split images that the evaluation classifier held
out (``holdout_indices`` of resources/models/bundled/eval_classifier.json): ``dgp train
--eval-classifier`` never trains on them, so they are unseen by the prior.

1. Held-out images: checked archive (sha256, layout), the held-out rows (ascending, so the
   file stays sorted by class) written to OUT/work/heldout.npz (``images`` uint8
   N×64×64×3, ``labels``, ``source_indices`` = rows of train.npz).  OUT/work/ ignores
   itself in git: Imagenette pixels are not committed, only the small grids below.
2. The ``dgp eval`` matrix: reconstruct / colorize / inpaint / superres × dgp / z-only /
   dip, ``--limit N --pick spread``, class = the image's label, into OUT/results/; then
   ``dgp eval-table`` (OUT/eval_table.md) and the issue's goals: reconstruction DGP −
   z-only ≥ +6 dB; inpainting DGP > z-only and > DIP.  Presets: the ones ``dgp eval``
   gives the registry's ``bundled`` model (``default_preset_name(task, "bundled")``:
   bundled_restore, bundled_colorization, bundled_inpainting, bundled_superres), passed
   explicitly because a candidate folder of another name would otherwise get the
   published schedules; ``--preset-dir`` (files named like those, e.g. a candidate
   bundled_inpainting.toml) or ``--preset TASK=NAME|FILE`` override them.
3. Colorized grid (OUT/colorize_grid.png, ×3 nearest): the first held-out photo of each
   class, coloured by ``dgp eval colorize --save-images`` (the engine's colorization, as
   ``dgp colorize`` runs it, class = the photo's label); rows grey input, DGP (and the
   --before prior's), original; a column per class named from the prior's classes.txt.
4. Samples (OUT/samples.png): the training scoreboard's ``sample_grid`` (seeded latents, a
   row per latent, a column per class) of the --before prior and the candidate, side by
   side (the candidate alone without --before).
5. Preset timings: one ``dgp colorize`` and one ``dgp inpaint`` (centre hole) run of a
   64 px held-out photo at --threads, wall-clock with start-up and model load, against the
   goals ≤ 15 s and ≤ 30 s on 2 threads.
6. OUT/summary.md (tables, goal lines, image links; paste into the model card) and
   OUT/summary.json.

Every run is the ``dgp`` command itself, one process per run (not the engine function
called here): the result files are exactly what the printed command lines reproduce, each
process sets its own thread count, and ``--jobs`` runs several at once (the timings of
step 5 always run alone, after the rest).  A result already in OUT/results that scored the
same weights, preset and images completely is kept, so a re-run after a stop only does
what is missing; ``--fresh`` runs everything again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "resources" / "models" / "bundled"
CLASSIFIER_JSON = BUNDLED / "eval_classifier.json"
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "imagenette" / "train.npz"
DEFAULT_OUT = REPO / "bench" / "results" / "bundled_heldout"
# shared/datasets/imagenette/README.md: the archive the held-out indices point into
IMAGENETTE_SHA256 = "42a0e600a1c97b5d418cdf57e80e9b0fac0f8fec4d1403a874759f6b01d226e3"
METHODS = ("dgp", "z-only", "dip")
RECONSTRUCT_GAIN_DB = 6.0  # issue 24: reconstruction DGP − z-only ≥ +6 dB
TIME_GOALS = {"colorize": 15.0, "inpaint": 30.0}  # seconds, on GOAL_THREADS threads
GOAL_THREADS = 2


# --- 1. the held-out images ---------------------------------------------------------------
@dataclass
class Subset:
    """Images of the Imagenette archive written to an .npz that ``dgp eval --data`` reads."""

    path: Path
    images: np.ndarray  # uint8 N×R×R×3
    labels: np.ndarray  # int64 N
    source_indices: np.ndarray  # their rows in the archive


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_holdout_indices(classifier_json: Path = CLASSIFIER_JSON) -> list[int]:
    """The rows of train.npz the evaluation classifier (and so the GAN) never trained on."""
    from dgp_engine.errors import DatasetError

    try:
        held = json.loads(classifier_json.read_text(encoding="utf-8"))["holdout_indices"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"could not read the held-out list (holdout_indices) of {classifier_json} ({exc})"
        ) from exc
    return sorted(int(i) for i in held)


def check_archive(data: Path, expected_sha256: str | None = IMAGENETTE_SHA256) -> None:
    """Refuse a missing archive, or one other than the one the held-out list indexes."""
    from dgp_engine.errors import DatasetError

    if not data.is_file():
        raise DatasetError(
            f"the Imagenette training archive {data} is missing: it is "
            "shared/datasets/imagenette/train.npz beside the repository (see its README); "
            "give its place with --data"
        )
    if expected_sha256:
        digest = sha256_of(data)
        if digest != expected_sha256:
            raise DatasetError(
                f"{data} is not the Imagenette archive the held-out list indexes (sha256 "
                f"{digest[:16]}…, expected {expected_sha256[:16]}…): its rows would be "
                "other images; give the right file with --data, or --data-sha256 any to "
                "use this one anyway"
            )


def extract(
    data: Path,
    held: Sequence[int],
    dest: Path,
    *,
    part: str = "heldout",
    pick: int | None = None,
    expected_sha256: str | None = IMAGENETTE_SHA256,
) -> Subset:
    """The held-out rows of ``data`` (``part="heldout"``) or the others (``"training"``),
    ascending, optionally ``pick`` of them spread evenly (``dgp eval --pick spread``);
    written to ``dest`` atomically.  The archive's layout is checked by the trainer's own
    reader and the split is the trainer's (``ImageDataset.split``)."""
    from dgp_engine.errors import DatasetError
    from dgp_engine.tasks.evaluate import pick_indices
    from dgp_engine.training import load_npz

    check_archive(data, expected_sha256)
    archive = load_npz(data)
    train, val = archive.split(list(held))
    if part == "heldout":
        subset, rows = val, sorted(int(i) for i in held)
    elif part == "training":
        subset = train
        rows = sorted(set(range(len(archive))) - {int(i) for i in held})
    else:
        raise DatasetError(f"unknown part {part!r}: heldout or training")
    keep = pick_indices(len(subset), pick, "spread")
    images = subset.images[keep].permute(0, 2, 3, 1).contiguous().numpy()
    labels = subset.labels[keep].numpy().astype(np.int64)
    source = np.asarray([rows[i] for i in keep], dtype=np.int64)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_npz(dest, images, labels, source)
    return Subset(dest, images, labels, source)


def write_npz(dest: Path, images: np.ndarray, labels: np.ndarray, source: np.ndarray) -> Path:
    from dgp_engine.system.fileio import atomic_write

    def write(fh: Any) -> None:
        np.savez(fh, images=images, labels=labels, source_indices=source)

    return atomic_write(dest, write, suffix=".part.npz")


def first_of_each_class(labels: np.ndarray, n_classes: int) -> list[int]:
    """The position of the first image of every class 0..n_classes-1, in class order."""
    from dgp_engine.errors import DatasetError

    picks = []
    for c in range(n_classes):
        where = np.flatnonzero(labels == c)
        if where.size == 0:
            raise DatasetError(f"the held-out images hold no image of class {c}")
        picks.append(int(where[0]))
    return picks


def ignored_work_folder(folder: Path) -> Path:
    """``folder`` created with a .gitignore of ``*``: nothing in it is ever committed."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".gitignore"
    if not marker.is_file():
        marker.write_text("# Imagenette pixels and scratch files: never committed\n*\n")
    return folder


# --- 2. running the dgp command -----------------------------------------------------------
class RunFailed(Exception):
    pass


def dgp_argv(*args: str) -> list[str]:
    """The ``dgp`` command of this interpreter (the repository's virtualenv)."""
    return [sys.executable, "-m", "dgp_engine", *args]


def shown(argv: Sequence[str]) -> str:
    """A command line as a reader would type it (``dgp …``)."""
    rest = list(argv[3:]) if list(argv[:3]) == dgp_argv() else list(argv)
    return " ".join(["dgp", *rest])


def recorded(path: Path) -> str:
    """A path as the committed summary records it: relative to the working folder (the
    repository), so no machine path is written; a folder outside it by its name."""
    rel = os.path.relpath(path.resolve(), Path.cwd().resolve())
    return path.name if rel.startswith(os.path.join(os.pardir, os.pardir)) else rel


def run_dgp(argv: list[str], log: Path) -> float:
    """Run one ``dgp`` command, its output in ``log``; its wall-clock seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        fh.write(shown(argv) + "\n")
        fh.flush()
        rc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    seconds = time.perf_counter() - t0
    if rc != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        raise RunFailed(f"`{shown(argv)}` ended with exit code {rc}:\n{tail}")
    return seconds


def parse_overrides(items: Sequence[str], tasks: Sequence[str]) -> dict[str, str]:
    """``TASK=NAME|FILE`` items as {task: preset}."""
    from dgp_engine.errors import InputError

    out = {}
    for item in items:
        task, sep, value = item.partition("=")
        if not sep or task not in tasks or not value:
            raise InputError(
                f"--preset takes TASK=NAME or TASK=FILE.toml with TASK one of "
                f"{', '.join(tasks)}; got {item!r}"
            )
        out[task] = value
    return out


def preset_for(task: str, preset_dir: Path | None, overrides: dict[str, str]) -> str:
    """The preset a run of ``task`` gets: an override, else ``preset_dir``'s file of the
    bundled preset's name, else that shipped preset (what ``dgp eval`` gives ``bundled``)."""
    from dgp_engine.method.taskspec import default_preset_name

    if task in overrides:
        return overrides[task]
    name = default_preset_name(task, "bundled")
    if preset_dir is not None and (preset_dir / f"{name}.toml").is_file():
        return str(preset_dir / f"{name}.toml")
    return name


def expected_preset(preset: str, task: str, method: str, scale: float | None) -> dict[str, Any]:
    """The preset a ``dgp eval`` result records for these arguments."""
    from dgp_engine.tasks.evaluate import method_preset
    from dgp_engine.tasks.restore import resolve_preset

    return method_preset(resolve_preset(preset, task, None, scale), method).to_dict()


@dataclass(frozen=True)
class EvalRun:
    task: str
    method: str
    preset: str
    json: Path
    data: Path
    model: Path
    threads: int
    limit: int | None = None
    pick: str = "spread"
    iterations_scale: float | None = None
    save_images: Path | None = None
    tag: str = ""  # shown in the progress lines

    def argv(self) -> list[str]:
        args = [
            "eval",
            self.task,
            "--data",
            str(self.data),
            "--method",
            self.method,
            "--model",
            str(self.model),
            "--preset",
            self.preset,
            "--pick",
            self.pick,
            "--threads",
            str(self.threads),
            "--json",
            str(self.json),
            "--overwrite",
            "-q",
        ]
        if self.limit is not None:
            args += ["--limit", str(self.limit)]
        if self.iterations_scale is not None:
            args += ["--iterations-scale", str(self.iterations_scale)]
        if self.save_images is not None:
            args += ["--save-images", str(self.save_images)]
        return dgp_argv(*args)

    def done(self, digest: str, count: int) -> bool:
        """An earlier complete result of the same weights, preset and images."""
        try:
            r = json.loads(self.json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        want = expected_preset(self.preset, self.task, self.method, self.iterations_scale)
        return (
            r.get("complete") is True
            and r.get("count") == count
            and r.get("model", {}).get("checksum") == digest
            and r.get("data", {}).get("source") == str(self.data)
            and r.get("preset") == want
            and (self.save_images is None or self.save_images.is_dir())
        )


def run_evals(
    runs: Sequence[EvalRun], *, digest: str, count: int, jobs: int, logs: Path, fresh: bool
) -> list[dict[str, Any]]:
    """Run (or keep) every ``dgp eval``; their results, in ``runs``' order."""

    def one(k_run: tuple[int, EvalRun]) -> dict[str, Any]:
        k, run = k_run
        label = f"{run.task} {run.method}" + (f" ({run.tag})" if run.tag else "")
        run.json.parent.mkdir(parents=True, exist_ok=True)
        if not fresh and run.done(digest, count):
            print(f"[{k + 1}/{len(runs)}] {label}: kept {run.json.name}", flush=True)
        else:
            run_dgp(run.argv(), logs / f"{run.json.stem}.log")
        r: dict[str, Any] = json.loads(run.json.read_text(encoding="utf-8"))
        psnr = r["mean"]["psnr"]
        print(
            f"[{k + 1}/{len(runs)}] {label}: PSNR {psnr if psnr is None else round(psnr, 2)}, "
            f"{r['seconds_per_image']:.1f} s/image ({r['count']} images)",
            flush=True,
        )
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, enumerate(runs)))


# --- the goals ----------------------------------------------------------------------------
def _psnr_by_method(results: Sequence[dict[str, Any]]) -> dict[tuple[str, str], float]:
    from dgp_engine.errors import InputError

    out: dict[tuple[str, str], float] = {}
    for r in results:
        key = (r["task"], r["method"])
        if key in out:
            raise InputError(f"two results of {key[0]} {key[1]}: give one per task and method")
        psnr = r["mean"].get("psnr")
        if psnr is not None:
            out[key] = float(psnr)
    return out


def goal_checks(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 24's restoration goals on ``dgp eval`` results (one per task and method):
    reconstruction DGP − z-only ≥ +6 dB; inpainting DGP > z-only and DGP > DIP.
    ``passed`` is None where a result the goal needs is missing."""
    psnr = _psnr_by_method(results)
    goals: list[dict[str, Any]] = []
    d, z = psnr.get(("reconstruct", "dgp")), psnr.get(("reconstruct", "z-only"))
    goal = f"reconstruction: DGP − z-only ≥ +{RECONSTRUCT_GAIN_DB:g} dB"
    if d is None or z is None:
        goals.append(_goal(goal, None, "not measured (needs the dgp and z-only results)"))
    else:
        gain = d - z
        goals.append(
            _goal(
                goal,
                gain >= RECONSTRUCT_GAIN_DB,
                f"DGP {d:.2f} dB − z-only {z:.2f} dB = {gain:+.2f} dB",
                value=gain,
            )
        )
    d = psnr.get(("inpaint", "dgp"))
    z, p = psnr.get(("inpaint", "z-only")), psnr.get(("inpaint", "dip"))
    goal = "inpainting: DGP > z-only and DGP > DIP (PSNR on the hole)"
    if d is None or z is None or p is None:
        goals.append(_goal(goal, None, "not measured (needs the dgp, z-only and dip results)"))
    else:
        goals.append(
            _goal(goal, d > z and d > p, f"DGP {d:.2f} dB, z-only {z:.2f} dB, DIP {p:.2f} dB")
        )
    return goals


def timing_checks(timings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The preset-speed goals (colorization ≤ 15 s, inpainting ≤ 30 s on 2 threads) on
    measured CLI runs ({task: {"seconds", "threads", …}})."""
    goals = []
    for task, limit in TIME_GOALS.items():
        t = timings.get(task)
        goal = f"{task}: one `dgp {task}` run ≤ {limit:g} s on {GOAL_THREADS} threads"
        if t is None:
            goals.append(_goal(goal, None, "not measured"))
            continue
        where = (
            ""
            if t["threads"] == GOAL_THREADS
            else f" — measured on {t['threads']} thread(s), not {GOAL_THREADS}"
        )
        goals.append(
            _goal(
                goal,
                t["seconds"] <= limit,
                f"{t['seconds']:.1f} s wall, start-up and model load included{where}",
                value=t["seconds"],
            )
        )
    return goals


def _goal(goal: str, passed: bool | None, measured: str, value: float | None = None) -> dict:
    verdict = {True: "met", False: "NOT met", None: "not measured"}[passed]
    return {
        "goal": goal,
        "passed": passed,
        "measured": measured,
        "value": value,
        "line": f"{goal}: {measured} — {verdict}",
    }


# --- 3 and 4. the grids -------------------------------------------------------------------
def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default()


def _wrap(text: str, width: float, font: Any) -> list[str]:
    """Words of ``text`` greedily in lines no wider than ``width`` (a long word alone)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def labelled_grid(
    cells: Sequence[Sequence[np.ndarray]],
    col_labels: Sequence[str],
    row_labels: Sequence[str],
    scale: int = 1,
    title: str = "",
) -> np.ndarray:
    """Cells (rows × columns of equal H×W×3 uint8 images) enlarged ``scale``× (nearest)
    and placed edge to edge at the bottom right, under a header of column labels (wrapped
    to the column's width) and right of the row labels; white background."""
    from PIL import Image, ImageDraw

    rows, cols = len(cells), len(cells[0]) if cells else 0
    if rows == 0 or cols == 0 or any(len(r) != cols for r in cells):
        raise ValueError("cells must be a non-empty rectangle of images")
    if len(col_labels) != cols or len(row_labels) != rows:
        raise ValueError(
            f"{rows}×{cols} cells need {cols} column labels and {rows} row labels, "
            f"got {len(col_labels)} and {len(row_labels)}"
        )
    h, w = cells[0][0].shape[:2]
    if any(c.shape != (h, w, 3) or c.dtype != np.uint8 for r in cells for c in r):
        raise ValueError(f"every cell must be uint8 {h}×{w}×3")
    font, pad = _font(), 4
    line_h = font.getbbox("Ag")[3] + 2
    cw, ch = w * scale, h * scale
    wrapped = [_wrap(t, cw - 2, font) for t in col_labels]
    header = pad + line_h * (max(len(x) for x in wrapped) + (1 if title else 0)) + pad
    margin = int(max((font.getlength(t) for t in row_labels), default=0))
    margin = margin + 2 * pad if margin else 0
    canvas = Image.new("RGB", (margin + cols * cw, header + rows * ch), "white")
    draw = ImageDraw.Draw(canvas)
    y0 = pad
    if title:
        draw.text((pad, y0), title, fill="black", font=font)
        y0 += line_h
    for j, lines in enumerate(wrapped):
        for i, line in enumerate(lines):
            x = margin + j * cw + (cw - font.getlength(line)) / 2
            draw.text((x, y0 + i * line_h), line, fill="black", font=font)
    for i, label in enumerate(row_labels):
        draw.text((pad, header + i * ch + (ch - line_h) / 2), label, fill="black", font=font)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            big = Image.fromarray(cell).resize((cw, ch), Image.Resampling.NEAREST)
            canvas.paste(big, (margin + j * cw, header + i * ch))
    return np.asarray(canvas)


def split_cells(grid: np.ndarray, rows: int, cols: int) -> list[list[np.ndarray]]:
    """A grid image of rows × cols equal tiles, as its tiles."""
    h, w = grid.shape[0] // rows, grid.shape[1] // cols
    return [
        [grid[i * h : (i + 1) * h, j * w : (j + 1) * w] for j in range(cols)] for i in range(rows)
    ]


def side_by_side(images: Sequence[np.ndarray], gap: int = 16) -> np.ndarray:
    """Images next to each other, top-aligned, ``gap`` white pixels apart."""
    height = max(im.shape[0] for im in images)
    parts: list[np.ndarray] = []
    for k, im in enumerate(images):
        if k:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        below = np.full((height - im.shape[0], im.shape[1], 3), 255, np.uint8)
        parts.append(np.concatenate([im, below]))
    return np.concatenate(parts, axis=1)


def short_names(names: Sequence[str]) -> list[str]:
    """A class's first name (``"tench, Tinca tinca"`` → ``"tench"``)."""
    return [n.split(",")[0].strip() for n in names]


def colorize_grid(
    folders: Sequence[Path], labels: Sequence[str], classes: Sequence[str], scale: int
) -> np.ndarray:
    """The grid of ``dgp eval colorize --save-images`` folders (the same photos, one per
    class): grey input, each folder's result row (``labels``), original."""
    from PIL import Image

    def row(folder: Path, tag: str) -> list[np.ndarray]:
        return [
            np.asarray(Image.open(folder / f"{k:03d}_{tag}.png").convert("RGB"))
            for k in range(len(classes))
        ]

    cells = [row(folders[0], "input")]
    cells += [row(f, "result") for f in folders]
    cells.append(row(folders[0], "clean"))
    return labelled_grid(cells, classes, ["grey input", *labels, "original"], scale=scale)


def samples_grid(
    priors: Sequence[tuple[str, Path]], columns: int = 8, seed: int = 0
) -> tuple[np.ndarray, list[str]]:
    """The training scoreboard's sample grid (the same seeded latents: a row per latent, a
    column per class) of each prior, labelled and side by side; and the class names."""
    from dgp_engine.priors.load import load_prior
    from dgp_engine.training import sample_grid

    panels, classes = [], []
    for title, folder in priors:
        prior = load_prior(folder)
        classes = short_names(prior.class_names) or [str(c) for c in range(prior.n_classes)]
        grid = sample_grid(prior.G, columns, seed=seed, classes_as_columns=True)
        n = min(prior.n_classes, 10)
        panels.append(
            labelled_grid(split_cells(grid, columns, n), classes[:n], [""] * columns, title=title)
        )
    return side_by_side(panels), classes


def write_png(path: Path, array: np.ndarray) -> Path:
    from dgp_engine.training.trainer import write_png as write

    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, array)
    return path


# --- 5. preset timings --------------------------------------------------------------------
def time_presets(
    photo: np.ndarray,
    *,
    model: Path,
    presets: dict[str, str],
    threads: int,
    work: Path,
    repeats: int = 1,
    iterations_scale: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Wall-clock seconds of ``dgp colorize`` (of the photo's grey version) and ``dgp
    inpaint`` (its centre hole, as ``dgp eval``'s) of a 64 px photo (here the first held-out
    one), start-up and model load included: the fastest of ``repeats`` runs each; the tasks
    of ``presets`` only."""
    from PIL import Image

    from dgp_engine.tasks.evaluate import centre_hole
    from dgp_engine.tasks.postprocess import to_gray
    from dgp_engine.tasks.restore import resolve_preset

    work.mkdir(parents=True, exist_ok=True)
    grey = (to_gray(photo.astype(np.float32) / 255) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(grey).save(work / "grey.png")
    Image.fromarray(photo).save(work / "photo.png")
    hole = centre_hole(photo.shape[0])
    Image.fromarray((hole * 255).astype(np.uint8)).save(work / "hole.png")
    inputs = {
        "colorize": (work / "grey.png", []),
        "inpaint": (work / "photo.png", ["--mask", str(work / "hole.png")]),
    }
    out: dict[str, dict[str, Any]] = {}
    for task, (src, extra) in inputs.items():
        if task not in presets:
            continue
        argv = dgp_argv(
            task,
            str(src),
            "-o",
            str(work / f"{task}_result.png"),
            *extra,
            "--model",
            str(model),
            "--preset",
            presets[task],
            "--threads",
            str(threads),
            "--overwrite",
            "-q",
        )
        if iterations_scale is not None:
            argv += ["--iterations-scale", str(iterations_scale)]
        seconds = [run_dgp(argv, work / f"{task}.log") for _ in range(max(1, repeats))]
        p = resolve_preset(presets[task], task, None, iterations_scale)
        out[task] = {
            "seconds": min(seconds),
            "runs": seconds,
            "threads": threads,
            "preset": p.name,
            "iterations": p.total_iterations,
            "select_num": p.select_num,
            "command": shown(argv),
        }
        print(f"timing: dgp {task} {min(seconds):.1f} s on {threads} thread(s)", flush=True)
    return out


# --- 6. the summary -----------------------------------------------------------------------
def summary_markdown(s: dict[str, Any]) -> str:
    lines = [
        "# Bundled prior on held-out Imagenette images",
        "",
        f"Prior `{s['prior']}` (weights digest `{s['digest'][:16]}`)"
        + (f", before: `{s['before']}`" if s.get("before") else "")
        + f". Images: {s['data']['images']} of the Imagenette training split that the "
        "evaluation classifier held out (`holdout_indices` of eval_classifier.json; "
        "`dgp train --eval-classifier` never trains on them), "
        f"{s['limit']} per run spread over the classes (`--pick spread`), class = the "
        f"image's label, seed 0; the `dgp eval` runs on "
        f"{' or '.join(str(t) for t in s.get('eval_threads') or [s['threads']])} thread(s) "
        f"each (as their results record), this invocation {s['threads']} thread(s) per run, "
        f"{s['jobs']} run(s) at a time (results already complete are kept). Generated by "
        "`scripts/evaluate_bundled.py`.",
        "",
        "## Goals",
        "",
        *[f"- {g['line']}" for g in s["goals"] + s["timing_goals"]],
        "",
        "## `dgp eval` on held-out images",
        "",
        s["table"],
        "",
    ]
    if s.get("colorize_grid"):
        g = s["colorize_grid"]
        lines += [
            "## Colorization of 10 held-out photos (one per class)",
            "",
            f"![colorized held-out photos]({g['png']})",
            "",
            "Rows: grey input, DGP colorization ("
            + ", ".join(f"{k}: {v}" for k, v in g["schedules"].items())
            + "), original. Class = the photo's label. PSNR per photo:",
            "",
            "| " + " | ".join(["prior", *g["classes"]]) + " |",
            "|" + "---|" * (len(g["classes"]) + 1),
            *[
                "| " + " | ".join([k, *("–" if v is None else f"{v:.2f}" for v in psnrs)]) + " |"
                for k, psnrs in g["psnr"].items()
            ],
            "",
        ]
    if s.get("samples"):
        what = "before (left) and after (right)" if s.get("before") else "the candidate"
        lines += [
            "## Samples",
            "",
            f"![samples]({s['samples']['png']})",
            "",
            f"Samples of {what} at the same seeded latents (seed {s['samples']['seed']}): "
            "a row per latent, a column per class (the training scoreboard's grid).",
            "",
        ]
    if s.get("timings"):
        lines += [
            "## Preset timings",
            "",
            "| task | schedule | wall s | threads | command |",
            "|---|---|---|---|---|",
        ]
        for task, t in s["timings"].items():
            sched = f"{t['preset']}: {t['iterations']} it, {t['select_num']} z"
            lines.append(
                f"| {task} | {sched} | {t['seconds']:.1f} | {t['threads']} | `{t['command']}` |"
            )
        lines += ["", "Wall-clock of the whole command: start-up and model load included.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from dgp_engine.method.taskspec import EVAL_TASKS

    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").split("\n")[2:]),
    )
    p.add_argument("--prior", type=Path, default=BUNDLED, help="candidate prior folder")
    p.add_argument("--before", type=Path, help="the prior it replaces (samples, colorizations)")
    p.add_argument(
        "--before-name",
        help="how the summary names --before (e.g. 'step 4869, the prior at <commit>'); "
        "default: its path",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Imagenette train.npz")
    p.add_argument(
        "--data-sha256",
        default=IMAGENETTE_SHA256,
        help="expected sha256 of --data ('any': do not check)",
    )
    p.add_argument("--classifier-json", type=Path, default=CLASSIFIER_JSON)
    p.add_argument("--limit", type=int, default=16, help="held-out images per eval run")
    p.add_argument("--threads", type=int, default=2, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="eval runs at a time")
    p.add_argument("--tasks", nargs="+", choices=EVAL_TASKS, default=list(EVAL_TASKS))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--preset-dir", type=Path, help="folder of bundled_*.toml candidates")
    p.add_argument(
        "--preset",
        action="append",
        default=[],
        metavar="TASK=NAME|FILE",
        help="preset of one task (repeatable); wins over --preset-dir",
    )
    p.add_argument("--iterations-scale", type=float, help="passed to every `dgp eval`")
    p.add_argument("--grid-scale", type=int, default=3, help="enlargement of the colorize grid")
    p.add_argument("--timing-repeats", type=int, default=1)
    p.add_argument("--no-timing", action="store_true", help="skip the preset timings")
    p.add_argument("--fresh", action="store_true", help="re-run results already there")
    args = p.parse_args(argv)

    from dgp_engine.errors import DGPError

    try:
        return evaluate_bundled(args)
    except (DGPError, RunFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def evaluate_bundled(args: argparse.Namespace) -> int:
    import torch

    from dgp_engine.errors import InputError
    from dgp_engine.method.taskspec import EVAL_TASKS
    from dgp_engine.priors.load import load_prior
    from dgp_engine.system.fileio import atomic_write_text
    from dgp_engine.tasks.evaluate import weights_digest

    torch.set_num_threads(max(1, args.threads))
    if args.limit < 1 or args.jobs < 1 or args.threads < 1:
        raise InputError("--limit, --jobs and --threads must be at least 1")
    out: Path = args.out
    work = ignored_work_folder(out / "work")
    overrides = parse_overrides(args.preset, EVAL_TASKS)
    presets = {t: preset_for(t, args.preset_dir, overrides) for t in EVAL_TASKS}
    digest = weights_digest(args.prior)
    prior = load_prior(args.prior)
    n_classes = prior.n_classes
    classes = short_names(prior.class_names) or [str(c) for c in range(n_classes)]
    sha = None if args.data_sha256 == "any" else args.data_sha256

    # 1. the held-out images
    held = extract(
        args.data,
        read_holdout_indices(args.classifier_json),
        work / "heldout.npz",
        expected_sha256=sha,
    )
    print(f"held-out images: {len(held.labels)} → {held.path}", flush=True)
    count = min(args.limit, len(held.labels))

    # 2. the dgp eval matrix
    runs = [
        EvalRun(
            task,
            method,
            presets[task],
            out / "results" / f"{task}_{method}.json",
            data=held.path,
            model=args.prior,
            threads=args.threads,
            limit=args.limit,
            iterations_scale=args.iterations_scale,
        )
        for task in args.tasks
        for method in args.methods
    ]
    # 3. the colorize grid's runs (after the matrix, one at a time)
    picks = first_of_each_class(held.labels, n_classes)
    per_class = write_npz(
        work / "one_per_class.npz",
        held.images[picks],
        held.labels[picks],
        held.source_indices[picks],
    )
    grid_priors = [("after", args.prior)] + ([("before", args.before)] if args.before else [])
    grid_runs = [
        EvalRun(
            "colorize",
            "dgp",
            presets["colorize"],
            out / "grid" / f"colorize_{tag}.json",
            data=per_class,
            model=folder,
            threads=args.threads,
            pick="first",
            iterations_scale=args.iterations_scale,
            save_images=work / f"colorize_{tag}",
            tag=f"grid, {tag}",
        )
        for tag, folder in grid_priors
    ]
    before_digest = weights_digest(args.before) if args.before else ""
    results = run_evals(
        runs, digest=digest, count=count, jobs=args.jobs, logs=work / "logs", fresh=args.fresh
    )
    grid_results = [
        run_evals([r], digest=d, count=n_classes, jobs=1, logs=work / "logs", fresh=args.fresh)[0]
        for r, d in zip(grid_runs, [digest, before_digest], strict=False)
    ]

    table_argv = dgp_argv(
        "eval-table", *(str(r.json) for r in runs), "-o", str(out / "eval_table.md"), "--overwrite"
    )
    run_dgp(table_argv, work / "logs" / "eval_table.log")
    table = (out / "eval_table.md").read_text(encoding="utf-8").strip()
    goals = goal_checks(results)
    for g in goals:
        print(g["line"], flush=True)

    # the grids
    labels = ["DGP" if len(grid_priors) == 1 else "DGP after", "DGP before"][: len(grid_priors)]
    grid = colorize_grid(
        [r.save_images for r in grid_runs if r.save_images], labels, classes, args.grid_scale
    )
    write_png(out / "colorize_grid.png", grid)
    sample_priors = ([("before", args.before)] if args.before else []) + [("after", args.prior)]
    samples, _ = samples_grid(sample_priors)
    write_png(out / "samples.png", samples)

    # 5. timings, alone
    timings = {}
    if not args.no_timing:
        timings = time_presets(
            held.images[0],
            model=args.prior,
            presets=presets,
            threads=args.threads,
            work=work / "timing",
            repeats=args.timing_repeats,
            iterations_scale=args.iterations_scale,
        )
    timing_goals = timing_checks(timings) if timings else []
    for g in timing_goals:
        print(g["line"], flush=True)

    from dgp_engine.tasks.evaluate import schedule

    summary: dict[str, Any] = {
        "prior": recorded(args.prior),
        "digest": digest,
        "before": (args.before_name or recorded(args.before)) if args.before else None,
        "before_digest": before_digest or None,
        "data": {
            "archive": recorded(args.data),
            "sha256_checked": sha,
            "images": int(len(held.labels)),
            "classifier_json": recorded(args.classifier_json),
        },
        "limit": count,
        "threads": args.threads,
        "jobs": args.jobs,
        "eval_threads": sorted(
            {int(r.get("environment", {}).get("threads", 0)) for r in results} - {0}
        ),
        "presets": presets,
        "results": [
            {
                "task": r["task"],
                "method": r["method"],
                "psnr": r["mean"]["psnr"],
                "ssim": r["mean"]["ssim"],
                "mse": r["mean"]["mse"],
                "seconds_per_image": r["seconds_per_image"],
                "count": r["count"],
                "schedule": schedule(r),
                "file": str(run.json.relative_to(out)),
                "source_indices": [int(held.source_indices[i]) for i in r["data"]["indices"]],
                "command": shown(run.argv()),
            }
            for r, run in zip(results, runs, strict=True)
        ],
        "table": table,
        "goals": goals,
        "colorize_grid": {
            "png": "colorize_grid.png",
            "classes": classes,
            "source_indices": [int(i) for i in held.source_indices[picks]],
            "schedules": {
                t: schedule(r) for (t, _), r in zip(grid_priors, grid_results, strict=True)
            },
            "psnr": {
                t: [row["psnr"] for row in r["images"]]
                for (t, _), r in zip(grid_priors, grid_results, strict=True)
            },
        },
        "samples": {"png": "samples.png", "seed": 0, "columns": 8},
        "timings": timings,
        "timing_goals": timing_goals,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / "summary.md", summary_markdown(summary) + "\n")
    print(f"summary: {out / 'summary.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

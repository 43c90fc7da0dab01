#!/usr/bin/env python
r"""Compare candidate bundled presets by `dgp eval` on Imagenette TRAINING images.

  python bench/tune_bundled_presets.py --task colorize inpaint \
      [--scale 0.5 1 2] [--g-lr 0.5 1 2] [--z-lr 1] [--select-num 50 100] \
      [--base TASK=NAME|FILE] [--candidates grid.toml] [--prior resources/models/bundled] \
      [--limit 8] [--threads 2] [--jobs 1] [--out bench/results/bundled_preset_tuning] \
      [--no-cli-timing]

Issue 24 tunes the bundled_* presets on training images and keeps the held-out ones
(scripts/evaluate_bundled.py) for the final measurement, so the candidates here run on
``--limit`` images spread over the rows of train.npz that are NOT in the evaluation
classifier's ``holdout_indices`` (written to OUT/work/, which git ignores).

Candidates: for each --task, every combination of the grid's axes applied to the task's
bundled preset (``--base`` to start from another): iterations of every stage × --scale
(``Preset.scaled``, as ``dgp eval --iterations-scale``), G learning rates × --g-lr, z
learning rates × --z-lr, --select-num z samples.  Or a TOML file of candidates::

    [[candidate]]
    name = "colorize-long"        # optional
    task = "colorize"
    base = "bundled_colorization" # optional: a preset name or .toml file
    iterations_scale = 2          # optional, as G_lr_scale, z_lr_scale, select_num
    [candidate.set]               # optional: preset fields set outright
    w_D_loss = [1, 1, 1, 1, 1]

Each candidate's preset is written to OUT/presets/<name>.toml (ready to copy to
resources/presets), scored by ``dgp eval TASK --method dgp`` (the real command, one process
each; results kept when a re-run finds them complete for the same weights and preset) into
OUT/results/, and — for colorize and inpaint — timed as one ``dgp colorize`` / ``dgp
inpaint`` command on a 64 px training photo (start-up and model load included), against the
limits colorization ≤ 15 s and inpainting ≤ 30 s on 2 threads.  OUT/tuning.md tables PSNR,
SSIM, seconds per image and the timing of every candidate, and names per task the best
PSNR within its time limit; OUT/tuning.json holds the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "bundled_preset_tuning"


def evaluate_bundled() -> ModuleType:
    """scripts/evaluate_bundled.py (its data, run and timing helpers)."""
    name = "evaluate_bundled"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "evaluate_bundled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def candidate_name(base: str, scale: float, g: float, z: float, n: int | None) -> str:
    return f"{base}@x{scale:g}-g{g:g}-z{z:g}" + (f"-n{n}" if n is not None else "")


def make_preset(
    base: str,
    *,
    iterations_scale: float = 1.0,
    G_lr_scale: float = 1.0,
    z_lr_scale: float = 1.0,
    select_num: int | None = None,
    set_fields: dict[str, Any] | None = None,
    name: str,
) -> Any:
    """The base preset (name or .toml) with its schedule scaled and fields changed."""
    from dgp_engine.method.presets import load_preset

    p = load_preset(base)
    if iterations_scale != 1.0:
        p = p.scaled(iterations_scale)
    changes: dict[str, Any] = {
        "G_lrs": [v * G_lr_scale for v in p.G_lrs],
        "z_lrs": [v * z_lr_scale for v in p.z_lrs],
        "name": name,
        "description": f"candidate of bench/tune_bundled_presets.py from {base}",
    }
    if select_num is not None:
        changes["select_num"] = select_num
    return p.replace(**{**changes, **(set_fields or {})})


def grid_candidates(args: argparse.Namespace) -> list[dict[str, Any]]:
    from dgp_engine.method.taskspec import default_preset_name

    bases = evaluate_bundled().parse_overrides(args.base, args.task)
    out = []
    for task in args.task:
        base = bases.get(task) or default_preset_name(task, "bundled")
        for scale, g, z, n in itertools.product(args.scale, args.g_lr, args.z_lr, args.select_num):
            out.append(
                {
                    "task": task,
                    "base": base,
                    "iterations_scale": scale,
                    "G_lr_scale": g,
                    "z_lr_scale": z,
                    "select_num": n,
                    "name": candidate_name(Path(base).stem, scale, g, z, n),
                }
            )
    return out


def file_candidates(path: Path, tasks: list[str]) -> list[dict[str, Any]]:
    from dgp_engine.errors import InputError
    from dgp_engine.method.taskspec import default_preset_name

    try:
        items = tomllib.loads(path.read_text(encoding="utf-8")).get("candidate", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"could not read the candidates {path} ({exc})") from exc
    out = []
    for k, c in enumerate(items):
        if c.get("task") not in tasks:
            raise InputError(f"{path}: candidate {k + 1} needs task = one of {', '.join(tasks)}")
        base = c.get("base") or default_preset_name(c["task"], "bundled")
        scale = float(c.get("iterations_scale", 1.0))
        g, z = float(c.get("G_lr_scale", 1.0)), float(c.get("z_lr_scale", 1.0))
        n = c.get("select_num")
        name = c.get("name") or candidate_name(Path(base).stem, scale, g, z, n)
        out.append(
            {
                "task": c["task"],
                "base": base,
                "iterations_scale": scale,
                "G_lr_scale": g,
                "z_lr_scale": z,
                "select_num": n,
                "set": c.get("set", {}),
                "name": name,
            }
        )
    return out


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)


def within(c: dict[str, Any], limits: dict[str, float]) -> bool | None:
    """Whether the candidate meets its task's time limit (CLI run, else eval s/image)."""
    limit = limits.get(c["task"])
    seconds = c.get("cli_seconds") or c.get("seconds_per_image")
    if limit is None or seconds is None:
        return None
    return bool(seconds <= limit)


def best_within(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Per task, the candidate of the highest PSNR among those within the time limit (or
    without one)."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["within"] is False or r["psnr"] is None:
            continue
        if r["task"] not in best or r["psnr"] > best[r["task"]]["psnr"]:
            best[r["task"]] = r
    return {task: r["name"] for task, r in best.items()}


def table(rows: list[dict[str, Any]], threads: int, goal_threads: int) -> str:
    def f(v: float | None, spec: str) -> str:
        return "–" if v is None else format(v, spec)

    lines = [
        "| candidate | task | schedule | G lr × | z lr × | PSNR | SSIM | s/image | CLI s "
        "| limit s | within |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = {True: "yes", False: "**no**", None: "–"}[r["within"]]
        lines.append(
            f"| {r['name']} | {r['task']} | {r['schedule']} | {r['G_lr_scale']:g} | "
            f"{r['z_lr_scale']:g} | {f(r['psnr'], '.2f')} | {f(r['ssim'], '.3f')} | "
            f"{f(r['seconds_per_image'], '.1f')} | {f(r.get('cli_seconds'), '.1f')} | "
            f"{f(r['limit'], 'g')} | {mark} |"
        )
    note = (
        ""
        if threads == goal_threads
        else f"\n\nMeasured on {threads} thread(s); the limits are for {goal_threads}."
    )
    return "\n".join(lines) + note


def main(argv: list[str] | None = None) -> int:
    from dgp_engine.errors import DGPError

    eb = evaluate_bundled()
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").split("\n")[2:]),
    )
    tasks = ["reconstruct", "colorize", "inpaint", "superres"]
    p.add_argument("--task", nargs="+", choices=tasks, default=["colorize", "inpaint"])
    p.add_argument(
        "--base",
        action="append",
        default=[],
        metavar="TASK=NAME|FILE",
        help="preset to vary instead of the task's bundled one (repeatable)",
    )
    p.add_argument("--scale", nargs="+", type=float, default=[1.0], help="iterations ×")
    p.add_argument("--g-lr", nargs="+", type=float, default=[1.0], help="G learning rates ×")
    p.add_argument("--z-lr", nargs="+", type=float, default=[1.0], help="z learning rates ×")
    p.add_argument("--select-num", nargs="+", type=int, default=[100], help="z samples")
    p.add_argument("--candidates", type=Path, help="TOML of [[candidate]] (instead of the grid)")
    p.add_argument("--prior", type=Path, default=eb.BUNDLED)
    p.add_argument("--data", type=Path, default=eb.DEFAULT_DATA)
    p.add_argument("--data-sha256", default=eb.IMAGENETTE_SHA256, help="'any': do not check")
    p.add_argument("--classifier-json", type=Path, default=eb.CLASSIFIER_JSON)
    p.add_argument("--limit", type=int, default=8, help="training images per candidate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1, help="eval runs at a time")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--no-cli-timing", action="store_true", help="judge limits by s/image")
    p.add_argument("--fresh", action="store_true", help="re-run results already there")
    args = p.parse_args(argv)
    try:
        return tune(args, eb)
    except (DGPError, eb.RunFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def tune(args: argparse.Namespace, eb: ModuleType) -> int:
    import tomli_w
    import torch

    from dgp_engine.errors import InputError
    from dgp_engine.system.fileio import atomic_write_text
    from dgp_engine.tasks.evaluate import weights_digest

    torch.set_num_threads(max(1, args.threads))
    if args.limit < 1 or args.jobs < 1 or args.threads < 1:
        raise InputError("--limit, --jobs and --threads must be at least 1")
    out: Path = args.out
    work = eb.ignored_work_folder(out / "work")
    if args.candidates:
        cands = file_candidates(args.candidates, args.task)
    else:
        cands = grid_candidates(args)
    names = [c["name"] for c in cands]
    if len(set(names)) != len(names):
        raise InputError("two candidates have the same name: name them apart")
    sha = None if args.data_sha256 == "any" else args.data_sha256
    held = eb.read_holdout_indices(args.classifier_json)
    train = eb.extract(
        args.data,
        held,
        work / "train_pick.npz",
        part="training",
        pick=args.limit,
        expected_sha256=sha,
    )
    print(f"training images: {len(train.labels)} → {train.path}", flush=True)
    digest = weights_digest(args.prior)

    runs = []
    for c in cands:
        preset = make_preset(
            c["base"],
            iterations_scale=c["iterations_scale"],
            G_lr_scale=c["G_lr_scale"],
            z_lr_scale=c["z_lr_scale"],
            select_num=c["select_num"],
            set_fields=c.get("set"),
            name=c["name"],
        )
        data = {**preset.extra, **preset.to_dict(), "task": c["task"]}
        toml = out / "presets" / f"{safe_name(c['name'])}.toml"
        toml.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(toml, tomli_w.dumps(data))
        c["preset"] = str(toml)
        runs.append(
            eb.EvalRun(
                c["task"],
                "dgp",
                str(toml),
                out / "results" / f"{safe_name(c['name'])}.json",
                data=train.path,
                model=args.prior,
                threads=args.threads,
                tag=c["name"],
            )
        )
    results = eb.run_evals(
        runs,
        digest=digest,
        count=len(train.labels),
        jobs=args.jobs,
        logs=work / "logs",
        fresh=args.fresh,
    )

    rows = []
    for c, r, run in zip(cands, results, runs, strict=True):
        row = {
            "name": c["name"],
            "task": c["task"],
            "base": c["base"],
            "iterations_scale": c["iterations_scale"],
            "G_lr_scale": c["G_lr_scale"],
            "z_lr_scale": c["z_lr_scale"],
            "select_num": r["preset"]["select_num"],
            "schedule": f"{sum(r['preset']['iterations'])} it, {r['preset']['select_num']} z",
            "psnr": r["mean"]["psnr"],
            "ssim": r["mean"]["ssim"],
            "seconds_per_image": r["seconds_per_image"],
            "images": r["count"],
            "preset": str(Path(c["preset"]).relative_to(out)),
            "result": str(run.json.relative_to(out)),
            "limit": eb.TIME_GOALS.get(c["task"]),
        }
        if not args.no_cli_timing and c["task"] in eb.TIME_GOALS:
            t = eb.time_presets(
                train.images[0],
                model=args.prior,
                presets={c["task"]: c["preset"]},
                threads=args.threads,
                work=work / "timing" / safe_name(c["name"]),
            )[c["task"]]
            row["cli_seconds"] = t["seconds"]
        row["within"] = within(row, eb.TIME_GOALS)
        rows.append(row)

    best = best_within(rows)
    text = table(rows, args.threads, eb.GOAL_THREADS)
    prior = eb.recorded(args.prior)  # no machine path in what gets committed
    lines = [
        "# Bundled preset candidates",
        "",
        f"Prior `{prior}` (weights digest `{digest[:16]}`); `dgp eval --method dgp` on "
        f"{len(train.labels)} Imagenette training images (spread over the rows that are not "
        f"held out; class = the label), {args.threads} thread(s) per run. CLI s: one "
        "`dgp colorize` / `dgp inpaint` command on a 64 px training photo, start-up and "
        "model load included. Limits: "
        + ", ".join(f"{k} ≤ {v:g} s" for k, v in eb.TIME_GOALS.items())
        + f" on {eb.GOAL_THREADS} threads.",
        "",
        text,
        "",
        *[f"- best {task} within its limit: {name}" for task, name in best.items()],
    ]
    atomic_write_text(out / "tuning.md", "\n".join(lines) + "\n")
    summary = {
        "prior": prior,
        "digest": digest,
        "threads": args.threads,
        "images": int(len(train.labels)),
        "source_indices": [int(i) for i in train.source_indices],
        "candidates": rows,
        "best": best,
    }
    atomic_write_text(out / "tuning.json", json.dumps(summary, indent=1) + "\n")
    print(text)
    for task, name in best.items():
        print(f"best {task} within its limit: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

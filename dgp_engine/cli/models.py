"""``dgp models``: list, pull, import, verify, remove the GAN priors; show where they live."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..priors.progress import TransferProgress

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "models",
        help="manage GAN priors: list, pull, import, verify, remove, path",
        description="The bundled prior, StudioGAN's ImageNet-128 and AFHQ-256 BigGANs "
        "(`dgp models pull imagenet-128`) and the paper's own BigGANs (import "
        "their files, or pull from a Hub repository you configure); StyleGAN2 "
        "priors from StudioGAN's AFHQv2 runs (`dgp models pull "
        "stylegan2-afhq-256`), StudioGAN files or NVIDIA network pickles "
        "(`dgp models import NAME --pkl network.pkl`). Every model is converted "
        "once to safetensors in the user cache.",
    )
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")

    def show_help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=show_help)

    ls = sub.add_parser("list", help="known models and whether they are installed")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)

    pull = sub.add_parser("pull", help="download a model from its Hugging Face Hub source")
    pull.add_argument("name")
    pull.add_argument("--force", action="store_true", help="download and install again")
    pull.add_argument(
        "--update",
        action="store_true",
        help="look for the newest matching run again instead of the pinned one",
    )
    pull.add_argument(
        "--offline", action="store_true", help="use only files already downloaded (no network)"
    )
    pull.add_argument(
        "--keep-download",
        action="store_true",
        help="keep the downloaded .pth files in the cache after conversion",
    )
    pull.set_defaults(func=run_pull)

    imp = sub.add_parser(
        "import",
        help="convert G_ema/D checkpoint files or a StyleGAN2 network pickle",
        description="Convert a generator and its discriminator you have into an installed "
        "model: --g G_ema.pth --d D.pth (BigGAN-PyTorch or StudioGAN files, "
        "StudioGAN's StyleGAN2 included), or --pkl for an NVIDIA "
        "stylegan2-ada-pytorch network pickle (read without running any code "
        "it carries).",
    )
    imp.add_argument("name", help="a registered model (e.g. biggan-128) or a new name")
    imp.add_argument(
        "--force", action="store_true", help="replace a model already installed under NAME"
    )
    imp.add_argument("--g", type=Path, help="generator weights (G_ema.pth, model=G_ema-…pth)")
    imp.add_argument("--d", type=Path, help="discriminator weights (D.pth, model=D-…pth)")
    imp.add_argument(
        "--pkl",
        type=Path,
        help="an NVIDIA StyleGAN2 network pickle (network-snapshot-….pkl) "
        "holding G_ema and D, instead of --g/--d",
    )
    imp.add_argument(
        "--config",
        type=Path,
        help="JSON of BigGAN-PyTorch settings, or a StudioGAN run's YAML "
        "(a new name needs one unless the files are StudioGAN's BigGAN; "
        "StudioGAN StyleGAN2 files need their run's YAML)",
    )
    imp.add_argument(
        "--conv-clamp",
        metavar="256|none",
        help="StudioGAN StyleGAN2 files: 256 if the run was trained with mixed "
        "precision (-mpc), none if not (the files do not say)",
    )
    face = imp.add_mutually_exclusive_group()
    face.add_argument(
        "--align",
        choices=("ffhq", "none"),
        help="how the model's training faces were aligned: ffhq makes it a face prior "
        "(photos are restored on the face, aligned the FFHQ way); none: not a face "
        "prior (default: ffhq for pickles named ffhq/metfaces, else none)",
    )
    face.add_argument(
        "--face", action="store_true", help="a face prior aligned the FFHQ way (= --align ffhq)"
    )
    imp.add_argument("--classes", type=Path, help="class names, one per line (new names)")
    imp.add_argument("--title", default="", help="display name")
    imp.set_defaults(func=run_import)

    info = sub.add_parser("info", help="what a model is: family, architecture, source, licence")
    info.add_argument("name")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=run_info)

    ver = sub.add_parser("verify", help="check installed models (checksums, keys, shapes)")
    ver.add_argument("names", nargs="*", help="models to check (default: all installed)")
    ver.set_defaults(func=run_verify)

    rm = sub.add_parser("remove", help="delete an installed model from the cache")
    rm.add_argument("name")
    rm.add_argument(
        "--keep-download", action="store_true", help="keep cached downloads of its source files"
    )
    rm.set_defaults(func=run_remove)

    path = sub.add_parser("path", help="print the models folder, or one model's folder")
    path.add_argument("name", nargs="?")
    path.set_defaults(func=run_path)

    src = sub.add_parser("source", help="show or set where a model is downloaded from")
    src.add_argument("name")
    src.add_argument("--repo-id", help="Hugging Face repository, OWNER/NAME")
    src.add_argument("--revision", help="branch, tag or commit (a commit pins the files)")
    src.add_argument("--endpoint", help="Hub URL for a mirror ('' for huggingface.co)")
    src.add_argument("--g-file", help="generator file name in the repository")
    src.add_argument("--d-file", help="discriminator file name in the repository")
    src.add_argument("--g-sha256", help="expected SHA-256 of the generator file ('' = unknown)")
    src.add_argument("--d-sha256", help="expected SHA-256 of the discriminator file")
    src.add_argument("--reset", action="store_true", help="back to the shipped defaults")
    src.set_defaults(func=run_source)


# --------------------------------------------------------------------------- helpers


def _size(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


class _Bar:
    """A tqdm bar per file on stderr, fed by TransferProgress reports."""

    def __init__(self) -> None:
        self._bar: Any = None  # a tqdm bar (tqdm is untyped)
        self._key: tuple[str, str] | None = None

    def __call__(self, p: TransferProgress) -> None:
        from tqdm import tqdm

        if p.stage == "plan":  # said once, before any byte moves
            size = f"{_size(p.total)}" if p.total else "size unknown"
            print(f"{p.model}: downloading {p.file} ({size})", file=sys.stderr, flush=True)
            return
        if p.stage == "list":
            print(f"{p.model}: looking for its files in {p.file}", file=sys.stderr, flush=True)
            return
        key = (p.stage, p.file)
        if key != self._key:
            self.close()
            self._key = key
            self._bar = tqdm(
                total=p.total,
                unit="B",
                unit_scale=True,
                file=sys.stderr,
                desc=f"{p.stage} {p.file}",
                leave=False,
                disable=not sys.stderr.isatty(),
            )
        if self._bar is not None:
            if p.total and self._bar.total != p.total:
                self._bar.total = p.total
            self._bar.update(p.done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _run_with_bar(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    bar = _Bar()
    cancel = threading.Event()
    try:
        return fn(*args, progress=bar, cancel=cancel, **kwargs)
    finally:
        bar.close()


# --------------------------------------------------------------------------- commands


def run_list(args: argparse.Namespace) -> int:
    from ..priors import registry

    rows = registry.list_models()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "title": r.title,
                        "kind": r.kind,
                        "state": r.state,
                        "family": r.family,
                        "resolution": r.resolution,
                        "folder": str(r.folder) if r.folder else None,
                        "source": r.source,
                        "size_bytes": r.size_bytes,
                        "licence": r.licence,
                        "alignment": r.alignment or None,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return 0
    width = max(len(r.name) for r in rows)
    print(f"{'NAME':<{width}}  {'STATE':<13}  {'RES':>4}  {'SIZE':>8}  SOURCE")
    for r in rows:
        print(
            f"{r.name:<{width}}  {r.state:<13}  {r.resolution or '?':>4}  "
            f"{_size(r.size_bytes):>8}  {r.source}"
        )
        if r.face:
            print(f"{'':<{width}}  face prior: {r.face} (restores aligned faces)")
        if r.licence:  # under the row: the terms are as long as they need to be
            print(f"{'':<{width}}  licence: {r.licence}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..priors import registry

    entry = registry.get_entry(args.name)
    status = next(r for r in registry.list_models() if r.name == entry.name)
    installed = registry.installed(entry.name) if entry.kind != registry.BUNDLED else None
    arch = installed.config if installed is not None else entry.architecture
    facts: dict[str, Any] = {
        "name": entry.name,
        "title": entry.title,
        "family": status.family,
        "state": status.state,
        "resolution": status.resolution,
        "classes": entry.n_classes if installed is None else _classes_of(arch),
        "architecture": arch.describe() if arch is not None else None,
        "folder": str(status.folder) if status.folder else None,
        "source": status.source,
        "size_bytes": status.size_bytes if status.usable else None,
        "download_bytes": status.download_bytes if status.downloadable else None,
        "licence": status.licence,
        "alignment": status.alignment or None,  # "ffhq": a face prior
        "about": entry.about,
    }
    if installed is not None:
        origin = installed.origin
        facts["origin"] = {
            k: origin[k] for k in ("kind", "format", "repo_id", "commit") if origin.get(k)
        }
        facts["origin"]["files"] = {
            role: f.get("path") or f.get("name") for role, f in (origin.get("files") or {}).items()
        }
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    labels = {"download_bytes": "download", "size_bytes": "size"}
    for key, value in facts.items():
        if value in (None, "", {}):
            continue
        if key in labels:
            value = _size(value)
        if key == "classes" and value == 0:
            value = "none (unconditional)"
        if key == "origin":
            files = ", ".join(f"{role} {path}" for role, path in value["files"].items())
            value = " ".join(
                str(value[k]) for k in ("kind", "format", "repo_id", "commit") if k in value
            ) + (f" ({files})" if files else "")
        print(f"{labels.get(key, key) + ':':<14}{value}")
    return 0


def _classes_of(arch: Any) -> int | None:
    from ..priors.family import n_classes

    return n_classes(arch) if arch is not None else None


def run_pull(args: argparse.Namespace) -> int:
    from ..priors import hub

    model = _run_with_bar(
        hub.pull,
        args.name,
        force=args.force,
        update=args.update,
        offline=True if args.offline else None,
        keep_download=args.keep_download,
    )
    print(f"{model.name}: installed in {model.folder}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..priors import hub, registry

    alignment = "ffhq" if args.face else args.align  # None: the default for the files
    current = registry.installed(args.name)
    if current is not None and not current.damaged and not args.force:
        raise InputError(
            f"A model named {args.name} is already installed ({current.folder}): pass "
            "--force to replace it, or import under another name."
        )
    if args.pkl is not None:
        extra = [
            flag
            for flag, value in (
                ("--g", args.g),
                ("--d", args.d),
                ("--config", args.config),
                ("--conv-clamp", args.conv_clamp),
            )
            if value
        ]
        if extra:
            raise InputError(
                f"--pkl holds the generator, the discriminator and their "
                f"settings: drop {' and '.join(extra)}."
            )
        model = _run_with_bar(
            hub.import_pickle,
            args.name,
            args.pkl,
            classes=args.classes,
            title=args.title,
            alignment=alignment,
        )
    else:
        if args.g is None or args.d is None:
            raise InputError(
                "Pass the generator with --g and its discriminator with --d "
                "(or an NVIDIA network pickle with --pkl)."
            )
        model = _run_with_bar(
            hub.import_files,
            args.name,
            args.g,
            args.d,
            config=args.config,
            classes=args.classes,
            title=args.title,
            conv_clamp="" if args.conv_clamp is None else args.conv_clamp,
            alignment=alignment,
        )
    print(f"{model.name}: imported into {model.folder} ({model.config.describe()})")
    if model.alignment:
        print(
            f"{model.name}: face prior ({model.alignment.upper()}-aligned faces): photos are "
            "restored on the face, found by the detector or given with --face-points "
            "(`dgp models import … --align none` to change it)"
        )
    if model.licence:
        print(f"{model.name}: licence: {model.licence}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..priors import hub

    results = _run_with_bar(hub.verify, args.names or None)
    if not results:
        print("No models are installed.")
        return 0
    for r in results:
        print(r.summary())
    return 0 if all(r.ok for r in results) else 1


def run_remove(args: argparse.Namespace) -> int:
    from ..priors import hub

    folder = hub.remove(args.name, downloads=not args.keep_download)
    print(f"{args.name}: removed {folder}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from ..priors import registry
    from ..system import paths

    if args.name:
        folder, _ = registry.resolve_model_dir(args.name)
        print(folder)
    else:
        print(paths.models_dir())
    return 0


def run_source(args: argparse.Namespace) -> int:
    from ..priors import registry

    changes = {
        "repo_id": args.repo_id,
        "revision": args.revision,
        "endpoint": args.endpoint,
        "G": args.g_file,
        "D": args.d_file,
        "G_sha256": args.g_sha256,
        "D_sha256": args.d_sha256,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if args.reset:
        src = registry.reset_source(args.name)
    elif changes:
        src = registry.set_source(args.name, **changes)
    else:
        src = registry.source_settings(args.name)
    for key, value in src.to_dict().items():
        if key.endswith("sha256") and not value:
            role = key[0]
            seen, why = registry.expected_sha256(src, role)
            value = f"{seen} ({why})" if seen else "(unknown: recorded at first download)"
        print(f"{key:<9} {value if value != '' else '(default)'}")
    return 0

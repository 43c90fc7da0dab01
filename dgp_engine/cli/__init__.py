"""The ``dgp`` command line: one sub-command module per area of work.

Each module listed in ``_COMMAND_MODULES`` exposes ``register(subparsers)``,
which adds its sub-commands and sets ``func`` on them; ``func(args)`` returns
the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

from ..errors import DGPError

_COMMAND_MODULES = [
    "dgp_engine.cli.tasks",
    "dgp_engine.cli.models",
    "dgp_engine.cli.train",
    "dgp_engine.cli.manipulate",
    "dgp_engine.cli.batch",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgp", description="Deep Generative Prior: restore and manipulate images."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area of the CLI is not part of this build
                continue
            raise
        module.register(sub)
    return parser


# A comma list of numbers that starts with a minus ("-10,-10,64"): argparse takes it for an
# option and answers "expected one argument"; it is the value of the option before it.
_NEGATIVE_LIST = re.compile(r"^-\d+(\.\d*)?(,\s*-?\d+(\.\d*)?)+$")


def join_negative_values(argv: list[str]) -> list[str]:
    """``["--region", "-10,-10,64"]`` → ``["--region=-10,-10,64"]`` (also --box, --size…)."""
    out: list[str] = []
    for arg in argv:
        if out and _NEGATIVE_LIST.match(arg) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def lenient_output() -> None:
    """Messages never fail to print: a path that is not UTF-8 (an old Latin-1 name, held
    as surrogates) on a strict stdout (a UTF-8 locale's) once ended a command that had
    written its result in a UnicodeEncodeError traceback, with exit code 1. What a stream
    cannot encode is printed as a backslash escape instead (stderr's default)."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (OSError, ValueError):  # a closed or detached stream: nothing to print to
                pass


def main(argv: list[str] | None = None) -> int:
    from ..system.fileio import files_written, release_claims
    from .interrupt import installed

    lenient_output()
    written_before = files_written()

    # Signals are handled from here on (before torch is imported by a sub-command): the
    # first Ctrl-C/SIGTERM asks for a clean stop, the second abandons (see .interrupt).
    with installed() as interrupts:
        try:
            parser = build_parser()
            args = parser.parse_args(
                join_negative_values(list(sys.argv[1:] if argv is None else argv))
            )
            logging.basicConfig(
                level=logging.INFO if args.verbose else logging.WARNING,
                format="%(levelname)s %(name)s: %(message)s",
            )
            if not getattr(args, "func", None):
                parser.print_help()
                return 2
            return int(args.func(args) or 0)
        except DGPError as exc:
            print(f"dgp: error: {exc}", file=sys.stderr)
            return interrupts.exit_code if interrupts.stop_requested else 1
        except KeyboardInterrupt:
            print(f"dgp: abandoned: {abandoned_summary(written_before)}", file=sys.stderr)
            return interrupts.exit_code
        finally:
            release_claims()


def abandoned_summary(written_before: int) -> str:
    """What an abandoned command leaves: never a partial file, and the files it had
    already written in full (kept: each is complete)."""
    from ..system.fileio import written_since

    n, latest = written_since(written_before)
    if not n:
        return "nothing unfinished was saved and no partial file is left."
    names = ", ".join(str(p) for p in latest) + (
        f" and {n - len(latest)} more" if n > len(latest) else ""
    )
    return f"no partial file is left; the {n} file(s) written in full before are kept ({names})."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

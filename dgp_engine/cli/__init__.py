"""The ``dgp`` command line: one sub-command module per area of work.

Each module listed in ``_COMMAND_MODULES`` exposes ``register(subparsers)``,
which adds its sub-commands and sets ``func`` on them; ``func(args)`` returns
the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
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
        prog="dgp", description="Deep Generative Prior: restore and manipulate images.")
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DGPError as exc:
        print(f"dgp: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dgp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

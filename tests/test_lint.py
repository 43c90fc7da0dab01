"""The code passes ``ruff check`` and ``ruff format`` with the ``[tool.ruff]`` settings of
pyproject.toml (the rule sets, line length, Python version and format settings written
there), over the whole repository."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_ruff_check_finds_nothing():
    # `python -m ruff` runs the ruff of this environment (the test extra installs it);
    # a missing ruff fails here with pip's words rather than being skipped.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--config",
            str(REPO / "pyproject.toml"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_changes_nothing():
    # the whole tree is formatted with the [tool.ruff.format] settings; a file written
    # another way fails here with the diff
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--no-cache",
            "--diff",
            "--config",
            str(REPO / "pyproject.toml"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout + out.stderr

"""The engine type-checks: ``mypy`` with the ``[tool.mypy]`` settings of pyproject.toml
(strict on ``dgp_engine``) reports no error."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_engine_passes_mypy_strict():
    # Files, strictness and per-library exceptions come from pyproject.toml; the cache
    # (.mypy_cache, as for `mypy` run by hand) keeps reruns to a few seconds.
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")],
        capture_output=True, text=True, cwd=REPO)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout

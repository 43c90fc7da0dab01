"""The engine and the app type-check: ``mypy`` with the ``[tool.mypy]`` settings of
pyproject.toml (strict on ``dgp_engine`` and ``dgp_studio``) reports no error."""

from __future__ import annotations

import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .conftest import REPO


def mypy_config() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["mypy"]


def test_mypy_checks_the_engine_and_the_app_strictly():
    # what `python -m mypy` (and the test below) checks: both packages, strict, with no
    # module of ours left out of the check
    config = mypy_config()
    assert set(config["files"]) >= {"dgp_engine", "dgp_studio"}
    assert config["strict"] is True
    for override in config.get("overrides", []):
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        ours = [m for m in modules if m.split(".")[0] in ("dgp_engine", "dgp_studio")]
        assert not (ours and override.get("ignore_errors")), ours


def test_engine_and_app_pass_mypy_strict():
    # Files, strictness and per-module exceptions come from pyproject.toml; the cache
    # (.mypy_cache, as for `mypy` run by hand) keeps reruns to a few seconds.
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout

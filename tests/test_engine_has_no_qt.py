"""The engine never imports Qt: the app is one front end of it (README, Layout)."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import REPO


def test_importing_every_engine_module_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, dgp_engine\n"
        "for m in pkgutil.walk_packages(dgp_engine.__path__, 'dgp_engine.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', "
        "'qasync', 'dgp_studio')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_engine_sources_do_not_mention_qt_imports():
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d|qasync|dgp_studio)\b", re.M)
    offenders = [
        str(p)
        for p in (REPO / "dgp_engine").rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []

"""Work around a reference-count bug of PySide6 6.12.0 on CPython < 3.12.

Measured here: every call of a void Qt method (``QObject.setObjectName``,
``QWidget.update``, ``QCoreApplication.processEvents``, ``QEventLoop.exec`` …)
drops one reference to ``None`` that it never took, so after some tens of
thousands of calls the interpreter aborts with "none_dealloc: deallocating
None".  CPython 3.12+ makes None immortal, which hides the bug, and
PySide6 6.11.x does not have it.  Here we give None the same immortality by
raising its reference count once; None is never freed anyway, so this changes
nothing else.  Prefer PySide6-Essentials != 6.12.0 where that can be chosen."""

from __future__ import annotations

import ctypes
import sys


def _none_refs_drop() -> bool:
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(20):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before - 10


def apply() -> bool:
    """Returns True if the workaround was needed and applied."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    try:
        needed = _none_refs_drop()
    except Exception:  # noqa: BLE001 — no Qt, nothing to fix
        return False
    if needed:
        ctypes.c_ssize_t.from_address(id(None)).value += 1 << 40
    return needed


APPLIED = apply()

"""DGP Studio: the Qt application."""

from . import _qt_compat  # noqa: F401 — must run before the app makes many Qt calls

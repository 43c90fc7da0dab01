"""The machine the engine runs on: the compute device (``device``), thread and allocator
settings (``runtime``), memory budgets (``memory``), per-user folders (``paths``), safe
file writing (``fileio``), file locks (``locks``) and the shell every long operation runs
in (``runs``: an iterator of reports with ``cancel()``).

Nothing here knows about GANs or photos, and every other room may use it. ``fileio``,
``locks``, ``paths`` and ``memory`` import no torch: the ``dgp`` command uses ``fileio``
before its Ctrl-C handler is in place.
"""

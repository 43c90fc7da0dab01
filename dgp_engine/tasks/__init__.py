"""Restoring photos: what the command line, batch runs and the app call. Each builds a
``request.RestoreRequest``, resolved once by ``request.resolve_request`` (device, threads,
precision, prior, class, preset); ``restore`` plans a task on a photo of any size
(working region, model square, mask), runs the method and composes the result back into
the photo, with ``postprocess`` (colour transfer, feathered hole fill); ``evaluate`` runs
the paper's evaluation protocol, scored by ``metrics``.  docs/architecture.md draws it.

The table of tasks these read is ``method.taskspec`` (the method builds φ from it).
"""

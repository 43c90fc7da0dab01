"""The Manipulate panel (jitter, category transfer, morph timeline, animation export)."""

from .export_dialog import ExportDialog, ExportSettings
from .panel import ManipulatePanel, install_manipulate_panel
from .render_worker import Renderers, RenderThread
from .timeline import MorphTimelineWidget

__all__ = [
    "ExportDialog",
    "ExportSettings",
    "ManipulatePanel",
    "MorphTimelineWidget",
    "RenderThread",
    "Renderers",
    "install_manipulate_panel",
]

"""The Manipulate panel (jitter, category transfer, morph timeline, animation export)."""

from .export_dialog import ExportDialog, ExportSettings
from .panel import ManipulatePanel, install_manipulate_panel
from .render_worker import RenderThread, RenderWorker
from .timeline import MorphTimelineWidget

__all__ = ["ExportDialog", "ExportSettings", "ManipulatePanel", "MorphTimelineWidget",
           "RenderThread", "RenderWorker", "install_manipulate_panel"]

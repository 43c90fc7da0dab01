"""Batch restoration of whole folders, resumable, on local worker processes or Ray.

    from dgp_engine.batch import BatchJob, BatchSettings
    job = BatchJob(BatchSettings("colorize", "album", "album-color"), workers=2)
    for event in job: print(event.kind, event.rel, event.status)

See :mod:`.plan` (inputs, masks, output names), :mod:`.journal` (the SQLite journal
and its lock), :mod:`.job` (the driver), :mod:`.local` / :mod:`.ray_backend` (workers)
and :mod:`.report` (summary table, contact sheet).  ``dgp batch`` is the command line.
"""

from .job import BatchEvent, BatchJob
from .journal import DONE, FAILED, PENDING, RUNNING, SKIPPED, Journal, JournalLocked
from .plan import CONTACT_SHEET, WORK_DIR, BatchItem, BatchPlan, BatchSettings, plan_batch
from .report import RunStats

__all__ = [
    "CONTACT_SHEET",
    "DONE",
    "FAILED",
    "PENDING",
    "RUNNING",
    "SKIPPED",
    "WORK_DIR",
    "BatchEvent",
    "BatchItem",
    "BatchJob",
    "BatchPlan",
    "BatchSettings",
    "Journal",
    "JournalLocked",
    "RunStats",
    "plan_batch",
]

"""The engine worker passes the engine's stage count and time left on to the GUI."""

from __future__ import annotations

from dgp_engine.method.reconstruct import Report
from dgp_studio.worker import progress_of


def test_progress_copies_the_reports_fields():
    r = Report("optimize", 1, 2, 5, 7, 10, {"total": 0.5}, None, 3.0, num_stages=4, eta=1.5)
    p = progress_of(r, [1.0, 0.5])
    assert (p.stage, p.num_stages, p.iteration, p.stage_iterations, p.step, p.total) == (
        1,
        4,
        2,
        5,
        7,
        10,
    )
    assert p.eta == 1.5 and p.elapsed == 3.0 and p.losses == {"total": 0.5}
    assert p.loss_history == [1.0, 0.5]
    assert progress_of(Report("select", 0, 1, 3, 0, 10, num_stages=4), []).eta is None
    assert len(progress_of(r, [float(i) for i in range(1000)]).loss_history) == 200

"""Run ``dgp`` with markers, for tests/test_signals.py: ``python -m tests.signal_harness ARGS``.

Prints ``@@<point>`` on stderr when the run reaches a point (``parse``: handler installed,
imports under way; ``select``: z selection; ``optimize``: the optimisation; ``frames``: an
animation's frames; ``write``: a result file being written, its temp file complete but
not yet renamed) and pauses there briefly, so the test can deliver a signal inside that
point. Nothing else of ``dgp`` is changed."""

from __future__ import annotations

import sys
import time

PAUSE_S = 0.3
_seen: set[str] = set()


def mark(point: str, pause: float = PAUSE_S) -> None:
    if point in _seen:
        return
    _seen.add(point)
    sys.stderr.write(f"\n@@{point}\n")
    sys.stderr.flush()
    deadline = time.monotonic() + pause
    while time.monotonic() < deadline:  # a signal handler runs between these sleeps
        time.sleep(0.02)


def install() -> None:
    from dgp_engine import cli

    real_build = cli.build_parser

    def build_parser():  # called once the handler is installed, before torch is imported
        mark("parse", 0.0)
        return real_build()

    cli.build_parser = build_parser

    from dgp_engine.cli import tasks
    from dgp_engine.files import animation, photos

    real_update = tasks.ProgressBar.update

    def update(self, report):
        real_update(self, report)
        if report.state is None:
            mark(report.phase)

    tasks.ProgressBar.update = update

    real_write = photos.write_atomic

    def write_atomic(path, write):
        def slow(fh):
            write(fh)
            fh.flush()
            mark("write")  # the temp file is complete, the rename still to come

        return real_write(path, slow)

    photos.write_atomic = write_atomic

    real_prepare = animation.AnimationExport._prepare

    def prepare(self, frame):
        out = real_prepare(self, frame)
        mark("frames")
        return out

    animation.AnimationExport._prepare = prepare

    real_commit = animation.AnimationExport._commit

    def commit(self, tmp):
        mark("write")
        return real_commit(self, tmp)

    animation.AnimationExport._commit = commit


if __name__ == "__main__":
    install()
    from dgp_engine.cli import main

    sys.exit(main(sys.argv[1:]))

"""`dgp batch --ray` on a local Ray (2 CPUs, started inside the test): a 6-picture job
completes although one actor is killed mid-picture, with the same pixels as local
workers.  Ray is the `cluster` extra, which the README's test command and CI install."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import ray
from PIL import Image

from dgp_engine.batch import BatchJob, BatchSettings

from .task_helpers import photo_array, tiny_model_folder, tiny_preset_file

pytestmark = pytest.mark.timeout(180)


def test_ray_job_survives_a_killed_actor_and_matches_local_workers(tmp_path):
    model = tiny_model_folder(tmp_path / "model")
    preset = tiny_preset_file(tmp_path / "tiny.toml", iterations=[6, 6])
    src = tmp_path / "album"
    src.mkdir()
    for i in range(6):
        Image.fromarray(photo_array(40, 56, seed=i)).convert("L").save(src / f"p{i}.png")

    def settings(out):
        return BatchSettings(
            "colorize",
            src,
            tmp_path / out,
            model=str(model),
            preset=str(preset),
            save_state=True,
            threads=1,
        )

    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for sig, handler in kept.items():  # Ray's handlers must not outlive this test
        signal.signal(sig, handler)
    try:
        job = BatchJob(settings("ray"), workers=2, ray="local")
        killed, lost_messages, statuses = None, [], []
        for ev in job:
            if ev.kind == "item":
                statuses.append((ev.rel, ev.status))
            if ev.kind == "workers" and "lost" in ev.message:
                lost_messages.append(ev.message)
            if (
                killed is None
                and ev.kind == "item"
                and ev.status == "running"
                and job.stats.done >= 1
            ):
                wid = next(w for w, rel in job.pool.busy.items() if rel == ev.rel)
                ray.kill(job.pool.actors[wid])  # the actor dies in the middle of ev.rel
                killed = ev.rel
        assert killed is not None and lost_messages
        assert (killed, "pending") in statuses  # given back, then done by an actor
        assert job.outcome == "finished"
        rows = {r.rel: r for r in job.rows}
        assert len(rows) == 6 and all(r.status == "done" for r in rows.values())
        assert rows[killed].attempts == 2
        assert sum(r.attempts for r in rows.values()) == 7  # nothing else ran twice
        assert ray.is_initialized()  # the job leaves a Ray it did not start running
    finally:
        ray.shutdown()
    # The same job on a local worker process: the same pictures, pixel for pixel.
    for _ in BatchJob(settings("local"), workers=1):
        pass
    for i in range(6):
        a = np.asarray(Image.open(tmp_path / "ray" / f"p{i}.png"))
        b = np.asarray(Image.open(tmp_path / "local" / f"p{i}.png"))
        assert np.array_equal(a, b)
        assert (tmp_path / "ray" / f"p{i}.png.dgp").stat().st_size > 0

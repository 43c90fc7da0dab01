"""The one file-lock helper (dgp_engine.system.locks) that output claims and the batch
journal share: busy locks name their holder, locks die with their process, a lock taken in
one thread is released from another, and a path that cannot be a lock file fails with the
system's error — never as "busy", never by creating folders."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from dgp_engine.system.locks import LockBusy, read_note, remove_if_unheld, take_lock


def _try_in_another_process(path) -> str:
    code = (
        "import sys; from dgp_engine.system.locks import LockBusy, take_lock\n"
        f"try:\n    take_lock({str(path)!r}, 'other').release(); print('took')\n"
        "except LockBusy as exc:\n    print('busy:', exc.holder)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


def test_a_held_lock_refuses_others_and_names_its_holder(tmp_path):
    path = tmp_path / ".out.png.dgp-lock"
    held = take_lock(path, "pid 42, started now")
    try:
        assert _try_in_another_process(path) == "busy: pid 42, started now"
        with pytest.raises(LockBusy) as caught:  # a second lock of this process too
            take_lock(path, "again")
        assert caught.value.holder == "pid 42, started now"
        assert not remove_if_unheld(path) and path.exists()
    finally:
        held.release()
    assert not path.exists()  # released: the lock file goes
    assert _try_in_another_process(path) == "took"


def test_kept_lock_files_stay_empty_after_release(tmp_path):
    path = tmp_path / "lock"
    take_lock(path, "pid 1", keep_file=True).release()
    assert path.is_file() and read_note(path) == ""
    take_lock(path, "pid 2", keep_file=True).release()  # taken again from the same file


def test_a_lock_taken_in_one_thread_is_released_from_another(tmp_path):
    path = tmp_path / ".x.dgp-lock"
    box = []
    worker = threading.Thread(target=lambda: box.append(take_lock(path, "worker")))
    worker.start()
    worker.join()
    box[0].release()  # as the end of a command releases what its worker thread claimed
    assert _try_in_another_process(path) == "took"


def test_a_killed_holders_lock_is_free_and_removable(tmp_path):
    path = tmp_path / ".x.dgp-lock"
    code = (
        "import time; from dgp_engine.system.locks import take_lock\n"
        f"take_lock({str(path)!r}, 'doomed'); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(10)
    assert path.exists() and read_note(path) == "doomed"  # SIGKILL: the file stays
    assert remove_if_unheld(path) and not path.exists()


def test_paths_that_cannot_be_lock_files_fail_with_the_systems_error(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError):
        take_lock(tmp_path / "folder", "x")
    with pytest.raises(FileNotFoundError):
        take_lock(tmp_path / "missing" / "lock", "x")
    assert not (tmp_path / "missing").exists()  # no folder created on the way
    with pytest.raises(OSError) as caught:  # a folder that takes no new files
        take_lock("/proc/.x.dgp-lock", "x")
    assert not isinstance(caught.value, LockBusy)

"""Pulling models through huggingface_hub from a local fake Hub (127.0.0.1, no internet)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time

import huggingface_hub.constants
import pytest

from dgp_engine.errors import DownloadError, OperationCancelled
from dgp_engine.models import BigGANConfig
from dgp_engine.priors import hub, hub_async, registry
from dgp_engine.priors.load import load_prior
from dgp_engine.system import paths

from .fakehub import FakeHub, leftovers, random_pair

CFG = BigGANConfig(resolution=32, G_ch=16, D_ch=16, n_classes=10, G_attn="0", D_attn="0")
REPO_ID = "dgp-test/tiny-32"


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    g, d = random_pair(CFG, seed=1)
    return {"G_ema.pth": g, "D.pth": d}


@pytest.fixture
def fake(files):
    with FakeHub() as server:
        for name, data in files.items():
            server.put(REPO_ID, name, data)
        yield server


@pytest.fixture
def online(monkeypatch):
    """huggingface_hub allowed to make network calls (tests default to offline)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def go_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def tiny(fake):
    """A downloadable model of the user's own whose source is the fake hub."""
    registry.add_model("tiny", CFG, registry.HubSource(endpoint=fake.url, repo_id=REPO_ID))
    return "tiny"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def downloaded_blobs() -> list[str]:
    root = registry.downloads_dir()
    return sorted(p.name for p in root.rglob("blobs/*")) if root.exists() else []


def assert_consistent() -> None:
    assert leftovers(paths.cache_dir()) == []
    assert all(r.ok for r in hub.verify()), [r.summary() for r in hub.verify()]


def test_pull_downloads_checks_converts_and_loads(online, fake, tiny, files):
    reports = []
    model = hub.pull(tiny, progress=reports.append)
    prior = load_prior(tiny)
    assert prior.config == CFG and prior.source == model.folder
    downloads = [r for r in reports if r.stage == "download"]
    for index, name in enumerate(("G_ema.pth", "D.pth")):
        mine = [r for r in downloads if r.file == name]
        assert {r.index for r in mine} == {index} and mine[0].count == 2
        assert [r.done for r in mine] == sorted(r.done for r in mine)  # monotonic bytes
        assert mine[-1].done == mine[-1].total == len(files[name])
    origin = model.origin
    assert (origin["kind"], origin["repo_id"], origin["revision"]) == ("hub", REPO_ID, "main")
    assert origin["commit"] == fake.commits[REPO_ID]
    assert origin["files"]["G"]["sha256"] == sha(files["G_ema.pth"])
    # Trust on first use: the hashes seen are now what later downloads must match.
    src = registry.get_entry(tiny).source
    assert registry.expected_sha256(src, "D") == (sha(files["D.pth"]), "recorded at first download")
    assert downloaded_blobs() == []  # the .pth copies are gone once converted
    assert_consistent()
    # Pulling an installed model is instant and offline.
    before = len(fake.log)
    assert hub.pull(tiny).folder == model.folder
    assert len(fake.log) == before


def test_offline_first_reuses_what_an_earlier_pull_fetched(online, fake, tiny, files):
    fake.repos[REPO_ID].pop("D.pth")
    with pytest.raises(
        DownloadError,
        match=r"has no file D\.pth: set the discriminator file "
        r"name",
    ):
        hub.pull(tiny)
    assert registry.installed(tiny) is None
    assert downloaded_blobs() == [sha(files["G_ema.pth"])]  # G stayed in the download cache
    fake.put(REPO_ID, "D.pth", files["D.pth"])
    fake.log.clear()
    hub.pull(tiny)
    assert fake.requests_for("G_ema.pth") == []  # no network call at all for G
    assert [r.method for r in fake.requests_for("D.pth")] == ["HEAD", "HEAD", "GET"]
    assert_consistent()


def test_offline_mode(monkeypatch, online, fake, tiny):
    go_offline(monkeypatch)
    t0 = time.monotonic()
    with pytest.raises(
        DownloadError,
        match=r"not downloaded yet and DGP Studio is offline "
        r"\(HF_HUB_OFFLINE is set\)",
    ):
        hub.pull(tiny)
    assert time.monotonic() - t0 < 5 and fake.log == []
    # Files kept from an online pull install offline, without a single request.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub.pull(tiny, keep_download=True)
    hub.remove(tiny, downloads=False)
    go_offline(monkeypatch)
    fake.log.clear()
    assert hub.pull(tiny).name == tiny and fake.log == []
    assert_consistent()


def test_configured_checksum_mismatch_installs_nothing(online, fake, tiny, files):
    registry.set_source(tiny, G_sha256="ab" * 32)
    with pytest.raises(DownloadError) as err:
        hub.pull(tiny)
    msg = str(err.value)
    assert f"G_ema.pth from {REPO_ID}@main has SHA-256 {sha(files['G_ema.pth'])[:12]}" in msg
    assert "not the configured abababababab" in msg and "clear the checksum with" in msg
    assert registry.installed(tiny) is None
    assert downloaded_blobs() == []  # the bad file is not kept for the next try
    assert_consistent()
    registry.set_source(tiny, G_sha256=sha(files["G_ema.pth"]))
    assert hub.pull(tiny).origin["files"]["G"]["sha256"] == sha(files["G_ema.pth"])


def test_a_changed_file_on_the_mirror_fails_against_the_recorded_checksum(online, fake, tiny):
    hub.pull(tiny)
    hub.remove(tiny)
    g2, _ = random_pair(CFG, seed=2)
    fake.put(REPO_ID, "G_ema.pth", g2)  # same name, other content, new commit
    with pytest.raises(DownloadError, match="not the recorded at first download"):
        hub.pull(tiny)
    assert registry.installed(tiny) is None
    assert_consistent()


def test_resume_after_a_dropped_connection(monkeypatch, online, fake, tiny, files):
    chunk = 64 * 1024  # huggingface_hub writes (and so can resume) whole chunks
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", chunk)
    cut = len(files["G_ema.pth"]) // 3
    fake.drop_after["G_ema.pth"] = cut
    model = hub.pull(tiny)
    gets = fake.requests_for("G_ema.pth", "GET")
    kept = cut // chunk * chunk
    assert kept > 0
    assert [g.range for g in gets] == [None, f"bytes={kept}-"]  # only the rest was fetched
    assert model.origin["files"]["G"]["sha256"] == sha(files["G_ema.pth"])
    assert_consistent()


def test_no_network_is_a_quick_clear_error(online, tiny):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry.set_source(tiny, endpoint=f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(
        DownloadError,
        match=r"Could not reach http://127\.0\.0\.1:\d+ to fetch "
        r"G_ema\.pth .*check your internet connection",
    ):
        hub.pull(tiny)
    assert time.monotonic() - t0 < 5
    assert_consistent()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"repo_id": "dgp-test/nope"}, r"There is no repository dgp-test/nope at http://127"),
        ({"revision": "v9"}, r"has no revision 'v9': set an existing branch, tag or commit"),
        ({"G": "G_ema_256.pth"}, r"has no file G_ema_256\.pth: set the generator file name"),
    ],
)
def test_wrong_repo_revision_or_file_name(online, fake, tiny, change, message):
    registry.set_source(tiny, **change)
    with pytest.raises(DownloadError, match=message):
        hub.pull(tiny)
    assert_consistent()


def test_disk_full_is_caught_before_downloading(online, fake, tiny):
    fake.fake_size["G_ema.pth"] = 10**16  # 10 PB: more than any test machine has
    with pytest.raises(
        DownloadError,
        match=r"Not enough disk space for G_ema\.pth .*free some "
        r"space",
    ):
        hub.pull(tiny)
    assert fake.requests_for("G_ema.pth", "GET") == []
    assert_consistent()


def test_a_mirror_serving_another_architecture(online, fake, tiny):
    other = BigGANConfig(resolution=64, G_ch=16, D_ch=16, n_classes=10, G_attn="0", D_attn="0")
    g, _ = random_pair(other)
    fake.put(REPO_ID, "G_ema.pth", g)
    with pytest.raises(
        Exception,
        match=r"is a BigGAN 64 px generator .*point tiny's source at "
        r"the right files",
    ):
        hub.pull(tiny)
    assert fake.requests_for("D.pth") == []  # G is checked before D is downloaded
    assert registry.installed(tiny) is None
    src = registry.get_entry(tiny).source
    assert registry.expected_sha256(src, "G") == ("", "unknown")  # a bad file is not pinned
    assert_consistent()


def test_cancel_mid_download_keeps_nothing(monkeypatch, online, fake, tiny):
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.stage == "download" and p.done > 0:
            cancel.set()

    with pytest.raises(OperationCancelled):
        hub.pull(tiny, progress=progress, cancel=cancel)
    assert 0 < seen[-1].done < seen[-1].total
    assert registry.installed(tiny) is None and downloaded_blobs() == []
    assert_consistent()


def test_cancel_stops_a_large_file_mid_transfer(monkeypatch, online, fake, tiny):
    """Cancel reaches into the transfer of one big file (huggingface_hub drives our progress
    bar, which raises on cancel): the download stops after its first bytes instead of
    running to the end of the file, nothing is installed, and the partial file is gone
    (huggingface_hub downloads into a temp file of its own that it removes on failure)."""
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    size = 32 << 20
    big = bytes(range(256)) * (size // 256)
    fake.put(REPO_ID, "G_ema.pth", big)
    fake.throttle["G_ema.pth"] = (64 * 1024, 0.02)  # 3.2 MB/s: 10 s for the whole file
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.stage == "download" and p.done > 0:
            cancel.set()

    with pytest.raises(OperationCancelled):
        hub.pull(tiny, progress=progress, cancel=cancel)
    downloads = [p for p in seen if p.stage == "download"]
    assert downloads and downloads[-1].total == size and 0 < downloads[-1].done < size // 4
    deadline = time.monotonic() + 10
    while not fake.sent and time.monotonic() < deadline:  # the server notices the hang-up
        time.sleep(0.05)
    assert [name for name, _ in fake.sent] == ["G_ema.pth"]
    assert fake.sent[0][1] < size // 4, f"the server sent {fake.sent[0][1]} of {size} bytes"
    assert fake.requests_for("D.pth", "GET") == []
    assert registry.installed(tiny) is None and downloaded_blobs() == []
    assert [p.name for p in registry.downloads_dir().rglob("*.incomplete")] == []
    assert_consistent()


def test_nothing_to_pull_for_bundled_or_unconfigured_models():
    with pytest.raises(DownloadError, match="ships inside DGP Studio"):
        hub.pull("bundled")
    with pytest.raises(
        DownloadError,
        match=r"biggan-256 has no download source yet .*--repo-id "
        r"OWNER/REPO.*dgp models import biggan-256",
    ):
        hub.pull("biggan-256")


# --------------------------------------------------------------------------- async API


def test_pull_async_reports_progress_on_the_event_loop(online, fake, tiny, files):
    threads = set()
    reports = []

    def progress(p):
        threads.add(threading.get_ident())
        reports.append(p)

    model = asyncio.run(hub_async.pull_async(tiny, progress=progress))
    assert registry.installed(tiny).folder == model.folder
    assert threads == {threading.get_ident()}  # delivered on the loop's thread
    assert any(r.stage == "download" and r.done == len(files["D.pth"]) for r in reports)
    results = asyncio.run(hub_async.verify_async())
    assert [r.summary() for r in results] == ["bundled: OK", "tiny: OK"]  # bundled ships


def test_cancelling_the_task_stops_the_pull_and_cleans_up(monkeypatch, online, fake, tiny):
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)

    async def main():
        task = None

        def progress(p):
            if p.stage == "download" and p.done > 0:
                task.cancel()

        task = asyncio.ensure_future(hub_async.pull_async(tiny, progress=progress))
        with pytest.raises(asyncio.CancelledError):
            await task
        # By the time the cancellation is delivered the worker has stopped and tidied up:
        # nothing installed, no partial file; a file that finished downloading before the
        # cancel reached the worker may stay in the download cache, complete.
        assert registry.installed(tiny) is None
        assert leftovers(paths.cache_dir()) == []
        for blob in registry.downloads_dir().rglob("blobs/*"):
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name

    asyncio.run(main())
    assert_consistent()

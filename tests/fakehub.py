"""A tiny stand-in for the Hugging Face Hub's file API, served on 127.0.0.1 from a thread.

It implements what ``huggingface_hub.hf_hub_download`` needs, plus the two listing calls
a pattern source makes (``GET /api/models/{repo}/revision/{rev}`` → the commit, and
``GET /api/models/{repo}/tree/{rev}/{folder}?recursive=true`` → the files with their LFS
SHA-256, paged with a ``Link: rel="next"`` header): ``HEAD``/``GET
/{owner}/{repo}/resolve/{revision}/{filename}`` with ``ETag`` (the file's SHA-256, as the
Hub does for LFS files), ``X-Repo-Commit``, ``Content-Length``, ``Range`` requests
(206 + ``Content-Range``), and the Hub's ``X-Error-Code`` 404s (RepoNotFound,
RevisionNotFound, EntryNotFound). Knobs let a test drop a connection mid-body, serve a
file slowly, lie about a file's size, or change a file; every request is logged, and so
are the body bytes each GET actually sent.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Request:
    method: str
    repo: str
    revision: str
    filename: str
    range: str | None


@dataclass
class FakeHub:
    """``repos[repo_id][filename] = bytes`` at one commit per repo, branch ``main``."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    #: filename -> byte count: the next GET of that file sends only this many body bytes
    #: and then closes the connection (a network drop mid-download).
    drop_after: dict[str, int] = field(default_factory=dict)
    #: filename -> size to announce in HEAD (to pretend a file is huge).
    fake_size: dict[str, int] = field(default_factory=dict)
    #: filename -> (bytes, seconds): GETs of that file send this many body bytes at a time,
    #: waiting this long between writes (a slow link), until the client hangs up.
    throttle: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: one entry per finished GET body of a file: (filename, body bytes sent before the
    #: body ended or the client hung up).
    sent: list[tuple[str, int]] = field(default_factory=list)
    #: entries per page of a tree listing (small values exercise pagination).
    page_size: int = 1000

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content -----------------------------------------------------------------------
    def put(self, repo: str, filename: str, data: bytes) -> str:
        """Add or replace a file; each change makes a new commit. Returns its SHA-256."""
        with self._lock:
            self.repos.setdefault(repo, {})[filename] = data
            n = len(self.commits)
            self.commits[repo] = hashlib.sha1(
                f"{repo}{filename}{n}{len(data)}".encode()
            ).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def remove(self, repo: str, filename: str) -> None:
        """Delete a file; a new commit, as on the Hub."""
        with self._lock:
            del self.repos[repo][filename]
            self.commits[repo] = hashlib.sha1(
                f"{repo}-{filename}-rm-{len(self.log)}".encode()
            ).hexdigest()

    def requests_for(self, filename: str, method: str | None = None) -> list[Request]:
        return [
            r for r in self.log if r.filename == filename and (method is None or r.method == method)
        ]

    # --- server ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                hub._serve(self, head=True)

            def do_GET(self):
                hub._serve(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="fakehub"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the resolve endpoint ----------------------------------------------------------
    _PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")

    def _error(self, h: BaseHTTPRequestHandler, code: str, commit: str | None = None) -> None:
        h.send_response(404)
        h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", code)
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Content-Length", "0")
        h.end_headers()

    _API = re.compile(
        r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<kind>tree|revision)/"
        r"(?P<rev>[^/]+)(?:/(?P<folder>.*))?$"
    )

    def _json(self, h: BaseHTTPRequestHandler, data, link: str | None = None) -> None:
        import json

        body = json.dumps(data).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        if link:
            h.send_header("Link", f'<{link}>; rel="next"')
        h.end_headers()
        h.wfile.write(body)

    def _api(self, h: BaseHTTPRequestHandler, m: re.Match) -> None:
        from urllib.parse import parse_qs

        repo, rev, kind = m["repo"], unquote(m["rev"]), m["kind"]
        folder = unquote(m["folder"] or "").strip("/")
        query = parse_qs(h.path.split("?", 1)[1]) if "?" in h.path else {}
        with self._lock:
            self.log.append(Request("LIST" if kind == "tree" else "INFO", repo, rev, folder, None))
            files = dict(self.repos.get(repo) or {})
            commit = self.commits.get(repo)
        if repo not in self.repos:
            return self._error(h, "RepoNotFound")
        if rev not in ("main", commit):
            return self._error(h, "RevisionNotFound")
        if kind == "revision":
            return self._json(
                h,
                {
                    "id": repo,
                    "sha": commit,
                    "siblings": [{"rfilename": name} for name in sorted(files)],
                },
            )
        prefix = f"{folder}/" if folder else ""
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        entries = []
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest and not recursive:
                continue
            data = files[name]
            entries.append(
                {
                    "type": "file",
                    "path": name,
                    "size": len(data),
                    "oid": hashlib.sha1(data).hexdigest(),
                    "lfs": {
                        "oid": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 134,
                    },
                }
            )
        if prefix and not entries and not any(n.startswith(prefix) for n in files):
            return self._error(h, "EntryNotFound", commit)
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start : start + self.page_size]
        link = None
        if start + self.page_size < len(entries):
            base = h.path.split("?", 1)[0]
            link = (
                f"{self.url}{base}?recursive={'true' if recursive else 'false'}"
                f"&cursor={start + self.page_size}"
            )
        self._json(h, page, link)

    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        api = self._API.match(h.path.split("?", 1)[0])
        if api and not head:
            return self._api(h, api)
        m = self._PATH.match(h.path.split("?", 1)[0])
        if not m:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        repo, rev, filename = m["repo"], unquote(m["rev"]), unquote(m["file"])
        rng = h.headers.get("Range")
        with self._lock:
            self.log.append(Request("HEAD" if head else "GET", repo, rev, filename, rng))
            files = self.repos.get(repo)
            commit = self.commits.get(repo)
            data = files.get(filename) if files else None
            drop = None if head else self.drop_after.pop(filename, None)
            fake = self.fake_size.get(filename)
            slow = self.throttle.get(filename)
        if files is None:
            return self._error(h, "RepoNotFound")
        if rev not in ("main", commit):
            return self._error(h, "RevisionNotFound")
        if data is None:
            return self._error(h, "EntryNotFound", commit)
        size = len(data)
        start = 0
        if rng and not head:
            rm = re.match(r"bytes=(\d+)-$", rng.strip())
            if rm:
                start = int(rm[1])
        body = data[start:]
        h.send_response(206 if start else 200)
        h.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        h.send_header("X-Repo-Commit", commit)
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        if start:
            h.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        h.send_header("Content-Length", str(fake if head and fake else len(body)))
        h.end_headers()
        if head:
            return
        if drop is not None:
            h.wfile.write(body[:drop])
            h.wfile.flush()
            h.close_connection = True
            return
        if slow is None:
            h.wfile.write(body)
            self._note_sent(filename, len(body))
            return
        step, pause = slow
        done = 0
        try:
            while done < len(body):
                h.wfile.write(body[done : done + step])
                h.wfile.flush()
                done = min(len(body), done + step)
                time.sleep(pause)
        except OSError:  # the client hung up (broken pipe, connection reset)
            h.close_connection = True
        self._note_sent(filename, done)

    def _note_sent(self, filename: str, n: int) -> None:
        with self._lock:
            self.sent.append((filename, n))


# --------------------------------------------------------------------------- test models


def state_dict_bytes(net) -> bytes:
    """A module's state dict as the bytes of a ``torch.save`` file (like G_ema.pth)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def random_pair(config, seed: int = 0) -> tuple[bytes, bytes]:
    """(G bytes, D bytes) of a seeded random BigGAN pair for ``config``."""
    import torch

    from dgp_engine.models import Discriminator, Generator

    torch.manual_seed(seed)
    return state_dict_bytes(Generator(config)), state_dict_bytes(Discriminator(config))


def leftovers(root) -> list[str]:
    """Anything under ``root`` that an interrupted transfer could have left behind."""
    from pathlib import Path

    root = Path(root)
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.startswith((".staging-", ".trash-"))
        or p.suffix == ".incomplete"
        or p.name.endswith(".tmp")
    )

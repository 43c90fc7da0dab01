"""Finding a model's files in a Hub repository by pattern, and the page to show a person.

Some publishers put each training run in a folder named with its start time (StudioGAN:
``.../ImageNet-BigGAN-256-train-2022_02_23_16_26_07/model=G_ema-best-weights-step=N.pth``),
so a registry entry names its files by glob patterns (``*`` also crosses ``/``) and the
run is resolved when the model is first pulled: one listing of the repository tree under
the patterns' common folder, one look-up of the revision's commit. Both are single HTTP
requests with a short timeout (no retries), so no network or a wrong repository is a
clear answer in seconds. What was chosen is then pinned (commit + paths + SHA-256) by
the caller, so later pulls fetch exactly the same bytes.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str  # the LFS object id (SHA-256 of the content); "" for non-LFS files


@dataclass(frozen=True)
class Resolved:
    commit: str
    G: RemoteFile
    D: RemoteFile

    @property
    def download_bytes(self) -> int:
        return self.G.size + self.D.size


def is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def literal_prefix(pattern: str) -> str:
    """The folder every match of ``pattern`` lies in (what to list)."""
    head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def page_url(endpoint: str, repo_id: str, revision: str, folder: str = "") -> str:
    """The repository page a person can open to see what is there."""
    base = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
    return f"{base}/{repo_id}/tree/{quote(revision, safe='')}" + (f"/{folder}" if folder else "")


def _get(url: str, timeout: float, params: dict[str, str] | None = None) -> Any:
    """The response (httpx's or requests', by huggingface_hub version), raised for status."""
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    response = get_session().get(url, params=params, headers=build_hf_headers(), timeout=timeout)
    hf_raise_for_status(response)
    return response


def commit_of(endpoint: str, repo_id: str, revision: str, timeout: float) -> str:
    """The commit hash a branch, tag or commit of a model repository points to."""
    base = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
    data = _get(f"{base}/api/models/{repo_id}/revision/{quote(revision, safe='')}", timeout).json()
    return str(data.get("sha") or revision)


def list_files(
    endpoint: str, repo_id: str, revision: str, folder: str, timeout: float
) -> list[RemoteFile]:
    """Every file under ``folder`` (recursively) at ``revision``, following pages."""
    base = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
    url: str | None = f"{base}/api/models/{repo_id}/tree/{quote(revision, safe='')}" + (
        f"/{quote(folder, safe='/')}" if folder else ""
    )
    params: dict[str, str] | None = {"recursive": "true", "expand": "false"}
    out: list[RemoteFile] = []
    while url:
        response = _get(url, timeout, params)
        for item in response.json():
            if item.get("type") != "file":
                continue
            lfs = item.get("lfs") or {}
            out.append(
                RemoteFile(
                    str(item["path"]),
                    int(lfs.get("size") or item.get("size") or 0),
                    str(lfs.get("oid") or lfs.get("sha256") or ""),
                )
            )
        url = response.links.get("next", {}).get("url")
        params = None  # the next link carries them
    return out


def _run_folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _rank(path: str) -> tuple[int, int]:
    """Best checkpoints first, then the highest step."""
    name = path.rsplit("/", 1)[-1]
    step = re.search(r"step=(\d+)", name)
    return (1 if "-best-" in name else 0, int(step.group(1)) if step else -1)


def choose(
    files: list[RemoteFile], g_pattern: str, d_pattern: str
) -> tuple[RemoteFile, RemoteFile] | None:
    """The G and D to use: both from one run folder (the newest that has both, by its
    timestamped name), best checkpoints preferred over current ones, G and D of the same
    kind when the folder has both kinds."""
    g_hits = [f for f in files if fnmatch.fnmatchcase(f.path, g_pattern)]
    d_hits = [f for f in files if fnmatch.fnmatchcase(f.path, d_pattern)]
    folders = sorted({_run_folder(f.path) for f in g_hits} & {_run_folder(f.path) for f in d_hits})
    if not folders:
        return None
    run = folders[-1]
    g = max((f for f in g_hits if _run_folder(f.path) == run), key=lambda f: _rank(f.path))
    ds = [f for f in d_hits if _run_folder(f.path) == run]
    same_kind = [f for f in ds if _rank(f.path)[0] == _rank(g.path)[0]]
    d = max(same_kind or ds, key=lambda f: _rank(f.path))
    return g, d

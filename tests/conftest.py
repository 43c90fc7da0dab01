"""Shared test setup: CPU only, few threads, settings in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# precision "auto" stays float32 on every CPU (tests of the bfloat16 choice fake the CPU)
os.environ["DGP_STUDIO_CPU_BF16"] = "off"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"
PARITY = REFERENCE / "parity_small"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Point every per-user directory (config, cache, logs) at a temp folder."""
    root = tmp_path_factory.mktemp("userdirs")
    monkeypatch.setenv("DGP_STUDIO_HOME", str(root))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    yield
    torch.set_num_threads(1)  # CLI commands default to every core; keep tests at one

"""Numbers for issue 13's closing note: peak memory of the hostile 9000×9000 PNG and of a
project with a 1 GiB member after the fix, and what the install checksum adds to loading
a model (the bundled one installed as a user model, and 300 MB of weights), first load vs
cached.

    python bench/robustness_measure.py [--skip-big]

Runs each case in a child process (peak RSS from ``resource``), in a temp folder."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(code: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line; peak RSS is added."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent
    wrapper = code + textwrap.dedent("""
        import json as _j
        _hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
        print("@@" + _j.dumps({**RESULT, "peak_rss_mb": int(_hwm.split()[1]) // 1024}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", wrapper],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=900,
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("@@")]
    if not line:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(line[-1][2:])


def big_png(tmp: Path) -> dict:
    from PIL import Image

    path = tmp / "big9000.png"
    Image.new("L", (9000, 9000), 128).save(path)
    model = tmp / "model"
    sys.path.insert(0, str(REPO))
    from tests.task_helpers import tiny_model_folder, tiny_preset_file

    tiny_model_folder(model)
    preset = tiny_preset_file(tmp / "tiny.toml")
    code = textwrap.dedent(f"""
        import time, io, contextlib
        from dgp_engine.cli import main
        from dgp_engine.system import memory
        t0 = time.perf_counter()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["colorize", {str(path)!r}, "-o", {str(tmp / "out.png")!r},
                         "--model", {str(model)!r}, "--preset", {str(preset)!r}, "-q"])
        RESULT = {{"exit": code, "seconds": round(time.perf_counter() - t0, 2),
                  "message": err.getvalue().strip()[:400],
                  "budget_gb": round(memory.budget() / 1e9, 2)}}
    """)
    return {"file_kb": round(path.stat().st_size / 1024), **child(code)}


def bomb_project(tmp: Path) -> dict:
    import numpy as np

    from dgp_engine.files.project import Project, save_project

    path = tmp / "bomb.dgpproj"
    save_project(Project(title="t", images={"a": np.zeros((8, 8, 3), np.uint8)}), path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    manifest["members"]["images/bomb.npy"] = {
        "kind": "images",
        "id": "bomb",
        "size": 1 << 30,
        "dtype": "|u1",
        "shape": [1],
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest), zipfile.ZIP_DEFLATED)
        for n, d in members.items():
            zf.writestr(n, d)
        info = zipfile.ZipInfo("images/bomb.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            chunk = bytes(16 << 20)
            for _ in range(64):
                fh.write(chunk)
    code = textwrap.dedent(f"""
        import time
        from dgp_engine.files.project import load_project
        from dgp_engine.errors import DGPError
        t0 = time.perf_counter()
        try:
            load_project({str(path)!r}); msg = "loaded"
        except DGPError as exc:
            msg = f"{{type(exc).__name__}}: {{exc}}"
        RESULT = {{"seconds": round(time.perf_counter() - t0, 2), "message": msg[:300]}}
    """)
    return {"file_mb": round(path.stat().st_size / 1e6, 1), **child(code)}


def checksum_times(tmp: Path) -> dict:
    home = tmp / "home"
    env = {"DGP_STUDIO_HOME": str(home)}
    setup = textwrap.dedent("""
        from dgp_engine.priors import hub, registry
        b = registry.bundled_model_dir()
        hub.import_files("bundledcopy", b / "G_ema.safetensors", b / "D.safetensors",
                         config=b / "config.json")
        RESULT = {}
    """)
    child(setup, env)
    timing = textwrap.dedent("""
        import time
        from dgp_engine.priors import checkpoint
        from dgp_engine.priors.load import load_prior
        from dgp_engine.priors.registry import model_dir
        folder = model_dir("bundledcopy")
        t0 = time.perf_counter(); hashed = checkpoint.verify_installed_files(folder)
        t1 = time.perf_counter(); load_prior("bundledcopy"); t2 = time.perf_counter()
        RESULT = {"check_s": round(t1 - t0, 4), "hashed": hashed,
                  "load_after_check_s": round(t2 - t1, 3)}
    """)
    first = child(timing, env)
    cached = child(timing, env)
    # 300 MB of weights: the check's cost does not depend on what the bytes are
    big = tmp / "big300"
    big.mkdir()
    import hashlib

    files = {}
    for name, size in (("G_ema.safetensors", 180 << 20), ("D.safetensors", 120 << 20)):
        data = os.urandom(size)
        (big / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": size}
    (big / "model.json").write_text(json.dumps({"files": files}))
    code300 = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from dgp_engine.priors import checkpoint
        t0 = time.perf_counter()
        hashed = checkpoint.verify_installed_files(Path({str(big)!r}))
        RESULT = {{"check_s": round(time.perf_counter() - t0, 4), "hashed": hashed}}
    """)
    subprocess.run(["sh", "-c", f"cat {big}/*.safetensors > /dev/null"], check=False)
    big_first = child(code300)
    big_cached = child(code300)
    return {
        "bundled_first": first,
        "bundled_cached": cached,
        "300MB_first": big_first,
        "300MB_cached": big_cached,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-big", action="store_true", help="no 9000² / 1 GiB cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out = {"checksum": checksum_times(tmp)}
        if not args.skip_big:
            out["png_9000"] = big_png(tmp)
            out["project_1GiB_member"] = bomb_project(tmp)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)

#!/usr/bin/env python
"""Peak RSS of one `dgp` command, run as a child process (the memory budget lifted so
large photos are not refused):

    python bench/cli_peak_rss.py dgp colorize big.png -o out.png --iterations-scale 0.05

Prints the command's exit code and its peak resident memory in MB."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, DGP_MEMORY_BUDGET=str(64 << 30), DGP_STUDIO_HOME=home)
        run = subprocess.run(sys.argv[1:], env=env, capture_output=True, text=True)
    print(f"exit {run.returncode}{': ' + run.stderr.strip()[-300:] if run.returncode else ''}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()

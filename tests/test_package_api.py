"""The package's public names stay what the README says, whatever was imported first."""

from __future__ import annotations

import subprocess
import sys


def test_reconstruct_is_the_function_even_after_its_module_was_imported():
    code = (
        "import dgp_engine.tasks.restore  # imports the submodule dgp_engine.method.reconstruct\n"
        "import dgp_engine as dgp\n"
        "from dgp_engine import reconstruct\n"
        "from dgp_engine.method.reconstruct import ReconstructionRun\n"
        "assert callable(reconstruct) and reconstruct.__name__ == 'reconstruct', reconstruct\n"
        "assert dgp.reconstruct is reconstruct and callable(dgp.render)\n"
        "assert ReconstructionRun.__module__ == 'dgp_engine.method.reconstruct'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"

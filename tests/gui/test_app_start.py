"""The `dgp-studio` entry point starts (Qt + qasync loop) and quits cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_entry_point_starts_and_quits(tmp_path):
    script = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        app = QApplication(sys.argv[:1])
        QTimer.singleShot(1500, app.closeAllWindows)
        QTimer.singleShot(2500, app.quit)
        from dgp_studio.app import main
        code = main([])
        print("exit", code, "windows", len(app.topLevelWidgets()))
        sys.exit(code)
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DGP_STUDIO_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "exit 0" in out.stdout
    assert (tmp_path / "config" / "settings.toml").is_file()  # saved on close
    assert (tmp_path / "logs" / "dgp-studio.log").is_file()

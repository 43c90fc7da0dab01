"""`dgp-studio`: start the editor (Qt + qasync event loop)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dgp-studio", description="DGP Studio image editor")
    parser.add_argument("picture", nargs="?", help="a picture to open")
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from .log_panel import setup_file_logging
    from .main_window import MainWindow
    from .settings import Settings

    logging.basicConfig(level=logging.WARNING)
    setup_file_logging()
    existing = QApplication.instance()  # a QCoreApplication to the type checker
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("DGP Studio")
    app.setOrganizationName("dgp-studio")
    app.setDesktopFileName("dgp-studio")
    from importlib import resources

    from PySide6.QtGui import QIcon

    icon = resources.files("dgp_studio.icons").joinpath("dgp-studio.png")
    app.setWindowIcon(QIcon(str(icon)))
    window = MainWindow(Settings.load())
    window.show()
    if args.picture:
        window.open_path(args.picture)
    else:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, window.offer_recovery)  # autosaves left by a crash
    try:
        import qasync
    except ImportError:  # downloads need it; editing works without
        return app.exec()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    app_close = asyncio.Event()
    app.aboutToQuit.connect(app_close.set)
    with loop:
        loop.run_until_complete(app_close.wait())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Entry script for the PyInstaller build (the same as the `dgp-studio` command)."""

import sys

from dgp_studio.app import main

if __name__ == "__main__":
    sys.exit(main())

"""PyInstaller entry point: the same CLI as `clearml-tray` / `python -m tray_app`."""

import sys

from tray_app.__main__ import main  # asks a running tray before argparse, like `clearml-tray`

sys.exit(main())

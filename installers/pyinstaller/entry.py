"""PyInstaller entry point: the same CLI as `clearml-tray` / `python -m tray_app`."""

import sys

from tray_app.cli import main

sys.exit(main())

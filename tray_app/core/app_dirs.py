"""Where the app keeps its own files: the user's data folder (platformdirs), per platform.

Children's state and logs, the ssh shim, the demo's clearml.conf and the pid file live below it.
Tested through tests/unit/tunnels/test_environment.py and the app's tests.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from tray_app import APP_NAME


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

"""Where a `clearml-session` child runs: its program, environment, state file and log file.

The child must talk to the server the tray shows (the same `clearml.conf`), find the ssh shim
first on its PATH (the password hand-over, `password_ahead`), and keep its state file, which the
CLI may fill with the session password, in a folder only the user can read.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tray_app.core.tunnels.ssh_master import write_ssh_shim

log = logging.getLogger(__name__)

CLI_NAME = "clearml-session"
STATE_DIR = "sessions"
LOG_DIR = "logs"


def find_executable(name: str = CLI_NAME) -> str | None:
    """The CLI installed next to our interpreter (the venv's bin), else the one on PATH."""
    beside = Path(sys.executable).with_name(name + (".exe" if os.name == "nt" else ""))
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


class ChildEnvironment:
    def __init__(
        self,
        data_dir: Path,
        *,
        config_file: Callable[[], str | None] = lambda: None,
        base_env: Callable[[], Mapping[str, str]] = lambda: os.environ,
        executable: str | None = None,
        shim: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self._config_file = config_file  # the clearml.conf the tray uses (None: the SDK's own)
        self._base_env = base_env
        self._executable = executable
        self._want_shim = shim
        self._shim: Path | None = None

    async def prepare(self) -> None:
        """At start: the ssh shim written (in the app's data folder: nothing in ~/.ssh changes
        before a Connect)."""
        import asyncio

        if self._want_shim:
            self._shim = await asyncio.to_thread(write_ssh_shim, self.data_dir)

    @property
    def shim_in_use(self) -> bool:
        return self._shim is not None

    def executable(self) -> str | None:
        if self._executable is None:
            self._executable = find_executable()
        return self._executable

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """clearml-session must talk to the server the tray shows: the same config file."""
        env = dict(self._base_env())
        path = self._config_file()
        if path:
            env["CLEARML_CONFIG_FILE"] = str(Path(path).expanduser())
        if self._shim is not None:  # its ssh may get the password by askpass (ssh_master)
            env["PATH"] = f"{self._shim}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def state_file(self, key: str) -> Path:
        """The CLI's `--config-file` for one child, in a folder only the user can read."""
        folder = self.data_dir / STATE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            folder.chmod(0o700)  # the CLI writes the session password into it
        return folder / f"{key}.json"

    def log_path(self, key: str) -> Path:
        """Keys restart at 1 with every run: the names carry the start time, so that an
        earlier run's logs are kept."""
        return self.data_dir / LOG_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{key}.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "children.json"

"""Where a `clearml-session` child runs: its program, environment, state file and log file.

The program: the one Settings names, else the bundled one (a hidden entry of the packaged
executable that runs the `clearml_session` it carries), else the one installed next to our
interpreter (the venv), else the first on PATH. The child must talk to the server the tray
shows (the same `clearml.conf`), find the ssh shim first on its PATH (the password hand-over,
`password_ahead`), and find ssh and the CLI even when the desktop started the tray with a bare
PATH (macOS' Finder and launchd give /usr/bin:/bin:/usr/sbin:/sbin).

State files: the CLI writes its defaults, the session password among them, into its
`--config-file` unless told not to. Each child gets a file of its own that the CLI only reads
(`--disable-store-defaults`), and it exists only for a fixed password: mode 600, in a folder
only the user can read, removed once the CLI has read it, when its tunnel ends, and at the next
start (what a killed tray left).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tray_app.core.tunnels.ssh_master import (
    askpass_command,
    askpass_works_on_a_terminal,
    frozen,
    openssh_version,
    write_ssh_shim,
)

log = logging.getLogger(__name__)

CLI_NAME = "clearml-session"
BUNDLED_CLI_ENTRY = "_clearml-session"  # the packaged executable's hidden entry
STATE_DIR = "sessions"
LOG_DIR = "logs"

# Where command-line tools live on a Mac, which launchd's PATH for an app started from Finder
# does not name (Homebrew on Apple silicon and Intel, pip --user, pipx).
MACOS_TOOL_DIRS = ("/opt/homebrew/bin", "/usr/local/bin", "~/.local/bin")


def bundled_command() -> list[str] | None:
    """The packaged app's own clearml-session (None: not a bundle)."""
    return [sys.executable, BUNDLED_CLI_ENTRY] if frozen() else None


def find_executable(name: str = CLI_NAME, path: str | None = None) -> str | None:
    """The CLI installed next to our interpreter (the venv's bin), else the one on `path`."""
    if not frozen():
        beside = Path(sys.executable).with_name(name + (".exe" if os.name == "nt" else ""))
        if beside.is_file():
            return str(beside)
    return shutil.which(name, path=path)


def desktop_path(path: str, platform: str = sys.platform, home: str | None = None) -> str:
    """`path` with the folders where a desktop's tools live added at its end when missing: an
    app started from macOS' Finder gets launchd's bare PATH."""
    parts = [p for p in path.split(os.pathsep) if p]
    wanted = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] if os.name == "posix" else []
    if platform == "darwin":
        wanted += [os.path.expanduser(d) if home is None else d.replace("~", home, 1)
                   for d in MACOS_TOOL_DIRS]  # fmt: skip
    for folder in wanted:
        if folder not in parts and (platform != "darwin" or os.path.isdir(folder)):
            parts.append(folder)
    return os.pathsep.join(parts)


class ChildEnvironment:
    def __init__(
        self,
        data_dir: Path,
        *,
        config_file: Callable[[], str | None] = lambda: None,
        base_env: Callable[[], Mapping[str, str]] = lambda: os.environ,
        executable: str | None = None,
        configured: Callable[[], str] = lambda: "",
        shim: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self._config_file = config_file  # the clearml.conf the tray uses (None: the SDK's own)
        self._base_env = base_env
        self._executable = executable
        self._configured = configured  # Settings' clearml-session ("": find it)
        self._want_shim = shim
        self._shim: Path | None = None
        self.ssh_version: tuple[int, int] | None = None
        self.problem = ""  # why a child cannot run at all, in words ("" = none)

    async def prepare(self) -> None:
        """At start: what a killed run left in the state folder removed; the ssh shim written
        (in the app's data folder: nothing in ~/.ssh changes before a Connect)."""
        await asyncio.to_thread(self._clear_state_files)
        if self._want_shim:
            self._shim = await asyncio.to_thread(self._write_shim)

    def _write_shim(self) -> Path | None:
        env = dict(self._base_env())
        search = desktop_path(env.get("PATH", ""))
        ssh = shutil.which("ssh", path=search)
        if ssh is None:
            log.warning("no ssh on PATH (%s): clearml-session cannot open a tunnel", search)
            return None
        self.ssh_version = _version(ssh)
        which_missing = shutil.which("which", path=search) is None
        if which_missing:
            log.warning(
                "this system has no `which`, which clearml-session needs to find ssh: the tray "
                "gives clearml-session one of its own"
            )
        folder = write_ssh_shim(
            self.data_dir, real_ssh=ssh, python=askpass_command(), which_missing=which_missing
        )
        if folder is not None and not askpass_works_on_a_terminal(self.ssh_version):
            shown = ".".join(map(str, self.ssh_version)) if self.ssh_version else "unknown"
            log.warning(
                "OpenSSH %s has no SSH_ASKPASS_REQUIRE (8.4+): clearml-session's ssh types the "
                "session password itself, and each Connect waits about 5 s longer for it",
                shown,
            )
        return folder

    @property
    def shim_in_use(self) -> bool:
        return self._shim is not None

    @property
    def hand_over_possible(self) -> bool:
        """The CLI's ssh can take the password from our helper (see password_ahead)."""
        return self._shim is not None and askpass_works_on_a_terminal(self.ssh_version)

    def command(self) -> tuple[str, ...] | None:
        """How to run clearml-session (None: it cannot be found; `problem` says why)."""
        configured = self._configured().strip()
        if configured:
            path = Path(configured).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                self.problem = (
                    f"The clearml-session set in Settings ({configured}) is not an executable file."
                )
                return None
            self.problem = ""
            return (str(path),)
        bundled = bundled_command()
        if bundled is not None:
            return tuple(bundled)
        found = self.executable()
        self.problem = "" if found else NO_CLI
        return (found,) if found else None

    def executable(self) -> str | None:
        if self._executable is None:
            path = desktop_path(dict(self._base_env()).get("PATH", ""))
            self._executable = find_executable(path=path)
        return self._executable

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """clearml-session must talk to the server the tray shows: the same config file."""
        env = dict(self._base_env())
        path = self._config_file()
        if path:
            env["CLEARML_CONFIG_FILE"] = str(Path(path).expanduser())
        env["PATH"] = desktop_path(env.get("PATH", ""))
        if self._shim is not None:  # its ssh may get the password by askpass (ssh_master)
            env["PATH"] = f"{self._shim}{os.pathsep}{env['PATH']}"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def state_file(self, key: str) -> Path:
        """The CLI's `--config-file` for one child, in a folder only the user can read."""
        folder = self.data_dir / STATE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            folder.chmod(0o700)  # a fixed password goes into it
        return folder / f"{key}.json"

    def remove_state_file(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("state file %s not removed: %s", path, exc.strerror)

    def _clear_state_files(self) -> None:
        folder = self.data_dir / STATE_DIR
        if not folder.is_dir():
            return
        removed = 0
        for path in folder.glob("*.json"):
            try:
                path.unlink()
                removed += 1
            except OSError as exc:
                log.warning("state file %s not removed: %s", path, exc.strerror)
        if removed:
            log.info("removed %d state file(s) an earlier run left", removed)

    def log_path(self, key: str) -> Path:
        """Keys restart at 1 with every run: the names carry the start time, so that an
        earlier run's logs are kept."""
        return self.data_dir / LOG_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{key}.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "children.json"


NO_CLI = (
    "clearml-session is not installed next to the tray nor on PATH (pip install clearml-session),"
    " and no other one is set in Settings."
)


def _version(ssh: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [ssh, "-V"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("`ssh -V` failed: %s", exc)
        return None
    version = openssh_version(done.stderr + done.stdout)
    if version is None:
        log.warning("not an OpenSSH client (%s): no password hand-over", done.stderr.strip())
    return version

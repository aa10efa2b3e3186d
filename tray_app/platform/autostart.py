"""Start on login: XDG autostart on Linux, a LaunchAgent on macOS, the Run key on Windows.

One small protocol with a backend chosen at run time and a no-op fallback that says why. The
file contents are built by pure functions so they are tested on every platform.
"""

from __future__ import annotations

import importlib
import os
import plistlib
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

from tray_app import APP_DISPLAY_NAME, APP_NAME
from tray_app.core.atomic import atomic_write_bytes, atomic_write_text

LAUNCH_AGENT_LABEL = "ml.clear.session-tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


class Autostart(Protocol):
    available: bool
    reason: str  # why it is unavailable ("" when available)

    def is_enabled(self) -> bool: ...
    def enable(self) -> None: ...
    def disable(self) -> None: ...


def launch_argv() -> list[str]:
    """How to start the app at login: the installed script, else this Python with -m."""
    script = shutil.which(APP_NAME)
    return [script] if script else [sys.executable, "-m", "tray_app"]


def desktop_entry_text(argv: list[str], delay_s: int = 10) -> str:
    # Desktop sessions start autostart entries before the panel's tray exists; the delay gives
    # the panel time, and the app also retries the tray on its own.
    exec_line = " ".join(_desktop_quote(a) for a in argv)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={APP_DISPLAY_NAME}\n"
        "Comment=Your ClearML interactive sessions in the system tray\n"
        f"Exec={exec_line}\n"
        "Icon=clearml-tray\n"
        "Terminal=false\n"
        "Categories=Development;\n"
        f"X-GNOME-Autostart-Delay={delay_s}\n"
        "X-GNOME-Autostart-enabled=true\n"
        "X-KDE-autostart-after=panel\n"
    )


def _desktop_quote(arg: str) -> str:
    # The Desktop Entry spec: quote args with reserved characters; escape " ` $ \\ inside.
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def launch_agent_plist(argv: list[str]) -> bytes:
    return plistlib.dumps(
        {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": argv,
            "RunAtLoad": True,
            "ProcessType": "Interactive",
        }
    )


def run_key_value(argv: list[str]) -> str:
    return " ".join(f'"{a}"' if " " in a else a for a in argv)


class XdgAutostart:
    available = True
    reason = ""

    def __init__(self, config_home: Path | None = None, argv: list[str] | None = None) -> None:
        base = config_home or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        self.path = base / "autostart" / f"{APP_NAME}.desktop"
        self.argv = argv or launch_argv()

    def is_enabled(self) -> bool:
        return self.path.is_file()

    def enable(self) -> None:
        atomic_write_text(self.path, desktop_entry_text(self.argv))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


class LaunchAgentAutostart:
    available = True
    reason = ""

    def __init__(self, home: Path | None = None, argv: list[str] | None = None) -> None:
        self.path = (home or Path.home()) / "Library/LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
        self.argv = argv or launch_argv()

    def is_enabled(self) -> bool:
        return self.path.is_file()

    def enable(self) -> None:
        atomic_write_bytes(self.path, launch_agent_plist(self.argv))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


def _winreg() -> Any:
    # Imported by name: the module exists only on Windows, and mypy checks this file on Linux.
    return importlib.import_module("winreg")


class WindowsRunKeyAutostart:  # pragma: no cover - exercised on Windows CI only
    available = True
    reason = ""

    def __init__(self, argv: list[str] | None = None) -> None:
        self.argv = argv or launch_argv()

    def is_enabled(self) -> bool:
        winreg = _winreg()

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                winreg.QueryValueEx(key, APP_NAME)
                return True
        except OSError:
            return False

    def enable(self) -> None:
        winreg = _winreg()

        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, APP_NAME, 0, winreg.REG_SZ, run_key_value(self.argv))

    def disable(self) -> None:
        winreg = _winreg()

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, APP_NAME)
        except OSError:
            pass


class NoAutostart:
    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def is_enabled(self) -> bool:
        return False

    def enable(self) -> None:
        raise OSError(self.reason)

    def disable(self) -> None:
        return None


def choose_autostart(platform: str | None = None) -> Autostart:
    platform = platform or sys.platform
    if platform.startswith("linux") or "bsd" in platform:
        return XdgAutostart()
    if platform == "darwin":
        return LaunchAgentAutostart()
    if platform == "win32":
        return WindowsRunKeyAutostart()
    return NoAutostart(f"starting on login is not supported on {platform}")


def describe(argv: list[str]) -> str:
    return shlex.join(argv)

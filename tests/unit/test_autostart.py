"""Start on login: file contents per platform and the XDG backend for real."""

from __future__ import annotations

import configparser
import plistlib
from pathlib import Path

from tray_app.platform.autostart import (
    LaunchAgentAutostart,
    NoAutostart,
    XdgAutostart,
    choose_autostart,
    desktop_entry_text,
    launch_agent_plist,
    run_key_value,
)


def test_desktop_entry_is_valid_and_quotes_paths() -> None:
    text = desktop_entry_text(["/opt/my apps/bin/clearml-tray"], delay_s=10)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"] == '"/opt/my apps/bin/clearml-tray"'
    assert entry["X-GNOME-Autostart-Delay"] == "10"
    assert entry["Terminal"] == "false"


def test_xdg_enable_disable_for_real(tmp_path: Path) -> None:
    backend = XdgAutostart(config_home=tmp_path, argv=["/usr/bin/clearml-tray"])
    assert not backend.is_enabled()
    backend.enable()
    path = tmp_path / "autostart" / "clearml-tray.desktop"
    assert backend.is_enabled() and path.is_file()
    assert "Exec=/usr/bin/clearml-tray\n" in path.read_text()
    backend.enable()  # idempotent
    backend.disable()
    assert not path.exists() and not backend.is_enabled()
    backend.disable()  # absent is fine


def test_default_xdg_location_follows_xdg_config_home(isolated_home: Path) -> None:
    backend = choose_autostart("linux")
    assert isinstance(backend, XdgAutostart)
    assert backend.path == isolated_home / ".config" / "autostart" / "clearml-tray.desktop"


def test_launch_agent_plist(tmp_path: Path) -> None:
    data = plistlib.loads(launch_agent_plist(["/Applications/X.app/Contents/MacOS/x"]))
    assert data["RunAtLoad"] is True
    assert data["ProgramArguments"] == ["/Applications/X.app/Contents/MacOS/x"]
    backend = LaunchAgentAutostart(home=tmp_path, argv=["/bin/x"])
    backend.enable()
    assert backend.is_enabled()
    assert backend.path.parent == tmp_path / "Library" / "LaunchAgents"
    backend.disable()
    assert not backend.is_enabled()


def test_run_key_value_quotes_spaces() -> None:
    assert run_key_value([r"C:\Program Files\ClearML\clearml-tray.exe"]) == (
        r'"C:\Program Files\ClearML\clearml-tray.exe"'
    )


def test_unknown_platform_falls_back_with_a_reason() -> None:
    backend = choose_autostart("plan9")
    assert isinstance(backend, NoAutostart)
    assert not backend.available and "plan9" in backend.reason
    assert not backend.is_enabled()

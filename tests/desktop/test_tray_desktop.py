"""The real tray in a real X server with a real tray host: click the icon, read the menu.

Xvfb (from xvfb-run) + trayer (an XEmbed system-tray host) + the app as a subprocess against the
emulator; xdotool clicks the docked icon. The app writes the rows of every menu it opens to the
file named by CLEARML_TRAY_TEST_MENU_DUMP, and screenshots of the open menu are saved as test
artifacts (test-artifacts/ or $TEST_ARTIFACTS_DIR).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.desktop import (
    Window,
    click,
    docked_icon,
    key,
    popup_open,
    require_desktop,
    screenshot,
    trayer,
    wait_for,
)
from support.emulator import EmulatorHandle

pytestmark = pytest.mark.desktop


def _own_live_names(emu: EmulatorHandle) -> set[str]:
    with emu.state.lock:
        return {
            str(t["name"])
            for t in emu.state.tasks.values()
            if t.get("status") in ("queued", "in_progress")
            and "interactive" in (t.get("system_tags") or [])
            and t.get("user") == emu.state.current_user_id
        }


def _listed(name: str, menu: str) -> bool:
    """A session row: `● name (uptime)`, or `● name · queue · id8 (uptime)` when names repeat."""
    return f" {name} (" in menu or f" {name} · " in menu


class RunningTray:
    def __init__(self, proc: subprocess.Popen[str], dump: Path, icon: Window) -> None:
        self.proc = proc
        self.dump = dump
        self.icon = icon

    def open_menu(self, shot: Path | None = None) -> str:
        """Click the docked icon; return the rows of the menu that opened; close it."""
        self.dump.unlink(missing_ok=True)
        click(*self.icon.center)
        wait_for(self.dump.exists, 15, "the menu to open (menu dump written)")
        text = self.dump.read_text(encoding="utf-8")
        if shot is not None:
            screenshot(shot)
        key("Escape")
        wait_for(lambda: not popup_open(), 10, "the menu to close")
        return text


@pytest.fixture
def start_tray(
    panel: Window, tmp_path: Path
) -> Iterator[Callable[[EmulatorHandle | Path], RunningTray]]:
    procs: list[subprocess.Popen[str]] = []

    def start(target: EmulatorHandle | Path) -> RunningTray:
        """Run the tray on an emulator, or on a config file path (which may not exist)."""
        if isinstance(target, Path):
            config = target
        else:
            config = target.write_config(tmp_path / "clearml.conf")
        dump = tmp_path / "menu.txt"
        env = dict(os.environ, CLEARML_TRAY_TEST_MENU_DUMP=str(dump))
        env.pop("QT_QPA_PLATFORM", None)  # the real X server, not offscreen
        proc = subprocess.Popen(
            [sys.executable, "-m", "tray_app", "--debug", "--config-file", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "app-stderr.txt", "w"),  # noqa: SIM115
            text=True,
        )
        procs.append(proc)
        icon = wait_for(lambda: docked_icon(panel), 20, "the tray icon to dock in trayer")
        assert isinstance(icon, Window)
        return RunningTray(proc, dump, icon)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_menu_shows_sessions_metrics_outage_and_recovery(
    start_tray: Callable[[EmulatorHandle | Path], RunningTray],
    emulator_factory: Callable[..., EmulatorHandle],
    tmp_path: Path,
) -> None:
    emu = emulator_factory(sessions=8)
    names = _own_live_names(emu)
    tray = start_tray(emu)

    def menu_with(predicate: Callable[[str], bool], what: str, shot: str | None = None) -> str:
        texts: list[str] = []

        def attempt() -> bool:
            texts.append(tray.open_menu())
            return predicate(texts[-1])

        wait_for(attempt, 60, what)
        if shot:
            tray.open_menu(tmp_path / shot)
        return texts[-1]

    text = menu_with(
        lambda t: all(_listed(n, t) for n in names), "session rows", "tray-menu-sessions.png"
    )
    assert "  CPU: " in text and " · RAM " in text and "  GPU: " in text
    assert "  Address: 127." in text and "worker IP 127." in text
    assert "  Connect in VS Code" in text and "  Stop…" in text
    assert "Last refreshed " in text and text.rstrip().endswith("Quit")

    emu.stop()
    down = menu_with(
        lambda t: "⚠ Server unreachable" in t, "the error row", "tray-menu-offline.png"
    )
    assert emu.url in down
    assert down.startswith("⚠ Server unreachable") and "Retry now" in down

    emu.start()
    back = menu_with(lambda t: "⚠" not in t, "recovery", "tray-menu-recovered.png")
    assert all(_listed(n, back) for n in names)
    assert tray.proc.poll() is None, "the app kept running through the outage"


def test_unconfigured_tray_explains_how_to_set_up(
    start_tray: Callable[[EmulatorHandle | Path], RunningTray], tmp_path: Path
) -> None:
    tray = start_tray(tmp_path / "no-such-clearml.conf")
    seen: list[str] = []
    wait_for(
        lambda: "Set up ClearML…" in (seen.append(tray.open_menu()) or seen[-1]),
        30,
        "onboarding rows",
    )
    text = seen[-1]
    tray.open_menu(tmp_path / "tray-menu-unconfigured.png")
    assert text.startswith("⚠ No ClearML configuration found")
    assert "no-such-clearml.conf" in text
    assert "Try the demo server" in text and "Open settings…" not in text


def _visible_main_window() -> bool:
    ids = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "^ClearML Session Tray$"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    return bool(ids)


def test_without_a_tray_host_a_window_appears_until_one_comes(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    require_desktop()
    emu = emulator_factory(sessions=2)
    config = emu.write_config(tmp_path / "clearml.conf")
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tray_app", "--config-file", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(_visible_main_window, 20, "the fallback window (no system tray yet)")
        screenshot(tmp_path / "tray-fallback-window.png")
        with trayer() as panel:
            wait_for(lambda: docked_icon(panel), 30, "the icon to dock once a tray exists")
            wait_for(lambda: not _visible_main_window(), 10, "the fallback window to hide")
        # The panel goes away (a restart): the window is back within seconds ...
        wait_for(_visible_main_window, 10, "the fallback window once the tray host is gone")
        # ... and hides again when a tray host returns.
        with trayer() as panel:
            wait_for(lambda: docked_icon(panel), 30, "the icon to dock in the new tray")
            wait_for(lambda: not _visible_main_window(), 10, "the fallback window to hide again")
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("when", ["while starting", "once running"])
def test_sigterm_quits_cleanly_and_keeps_remote_sessions(
    start_tray: Callable[[EmulatorHandle | Path], RunningTray],
    emulator_factory: Callable[..., EmulatorHandle],
    tmp_path: Path,
    when: str,
) -> None:
    """A logout or `kill` runs the same Quit as the menu (no question asked), exit code 0,
    also when it comes before the tray has finished starting."""
    emu = emulator_factory(sessions=3)
    tray = start_tray(emu)
    live_before = _own_live_names(emu)
    if when == "once running":
        wait_for(
            lambda: any(name in tray.open_menu() for name in live_before),
            30,
            "the sessions in the menu",
        )
    tray.proc.send_signal(signal.SIGTERM)
    assert tray.proc.wait(20) == 0
    log = (tmp_path / "app-stderr.txt").read_text()
    assert "signal 15: quitting" in log and "stopped (last state" in log
    assert _own_live_names(emu) == live_before  # nothing was shut down remotely

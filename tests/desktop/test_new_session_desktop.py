"""New session → preset → the real clearml-session runs → a notification in dunst → its button.

In-process app on the real X display and session bus, the emulator with its agent, the real
`clearml-session` CLI as the tray's child. The emulator serves no SSH endpoint here, so the CLI
reaches "Starting SSH tunnel" and retries; after the retry limit the registry stops the child
and notifies with a "Show log" button, which we press through dunst's own context menu.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from support.dunst import running_dunst
from support.emulator import EmulatorHandle
from support.qt_wait import until

from tray_app.app import TrayApplication
from tray_app.core.settings.presets import Preset
from tray_app.core.tunnels.model import TunnelState

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(240)]


async def _until(predicate: Any, what: str, limit_s: float = 90.0) -> None:
    await until(predicate, what, limit_s)


def _in_sessions(session_ids: set[int]) -> list[int]:
    """Live (non-zombie) processes whose session id is one of `session_ids`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) in session_ids:
            found.append(int(entry.name))
    return found


async def test_new_session_notification_button_and_clean_quit(
    qapp: Any,
    emulator_factory: Any,
    clearml_client_env: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not os.environ.get("DISPLAY") or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        pytest.skip("needs the X display and session bus of `xvfb-run -a dbus-run-session`")
    emu: EmulatorHandle = emulator_factory(sessions=0, agent_tick=0.3, ssh_endpoints=False)
    client_env = clearml_client_env(emu)
    for name in ("PYTHONPATH", "EMULATOR_NET_REPORT", "CLEARML_NO_DEFAULT_SERVER"):
        monkeypatch.setenv(name, client_env.env[name])  # the loopback guard for the child
    with running_dunst(tmp_path / "dunst") as dunst:
        args = argparse.Namespace(
            config_file=str(client_env.config), demo=False, show=False, debug=False, command=None
        )
        app = TrayApplication(args)
        await app.start()
        await _until(lambda: app.poller.snapshot is not None, "the first snapshot")

        app.controller.handle("new_session")  # the menu's "New session…"
        await _until(lambda: app.windows.new_session_dialog is not None, "the dialog")
        dialog = app.windows.new_session_dialog
        dialog.set_preset(Preset(name="cpu box", queue="sessions", project="DevOps"))
        dialog.launch_button.click()

        await _until(lambda: len(app.tunnels.tunnels()) == 1, "the launch to be listed")
        (key,) = app.tunnels.tunnels()
        child = app.tunnels.child(key)
        assert child is not None and child.process is not None
        child_pid = child.process.pid
        try:
            await _until(
                lambda: any(t.session_id for t in app.tunnels.tunnels().values()),
                "the session id from the CLI",
            )
        except AssertionError:
            print("LOG>>>", app.tunnels.log_text(key), "<<<", app.tunnels.tunnels())
            raise
        await _until(
            lambda: any(t.state == TunnelState.FAILED for t in app.tunnels.tunnels().values()),
            "the retry limit to stop the child",
        )
        # "Starting a session" (Follow log, Cancel) gives way to the failure's notice.
        assert app.notifier.sent[0][:2] == ("progress", "Starting a session")
        await _until(lambda: not app.notifier._tasks, "the failure notice sent", 20)
        assert app.notifier.sent[-1][0] != "progress"
        await _until(lambda: dunst.displayed() == 1, "the notification in dunst", 20)
        menu = await asyncio.to_thread(dunst.press, "Show log")
        assert any("Show log" in line for line in menu)
        await _until(
            lambda: bool(app.windows.log_windows), "the log window opened by the button", 20
        )
        window = next(iter(app.windows.log_windows.values()))
        assert "Starting SSH tunnel" in window.plain_text()
        assert "SSH tunneling failed" in window.plain_text()

        session_id = next(t.session_id for t in app.tunnels.tunnels().values())
        with emu.state.lock:
            assert emu.state.tasks[session_id]["status"] == "in_progress"  # remote kept running

        # Another launch, still running at Quit: nothing of it may survive (the registry starts
        # each child in its own session, so every descendant, even an orphan, carries its id).
        second_key = await app.launch(Preset(name="second", queue="sessions", project="DevOps"))
        assert second_key is not None
        second_child = app.tunnels.child(second_key)
        assert second_child is not None and second_child.process is not None
        second = second_child.process
        await _until(
            lambda: any(
                t.state in (TunnelState.CONNECTING, TunnelState.RETRYING)
                for t in app.tunnels.tunnels().values()
                if t.label.startswith("second")  # "second (1a2b3c4d)" once the task exists
            ),
            "the second child to reach the tunnel stage",
        )
        sessions = {second.pid, child_pid}
        assert _in_sessions(sessions), "the second clearml-session is running"
        await app.quit(shutdown_remote=False)
        await _until(
            lambda: not _in_sessions(sessions), "every child and grandchild to be gone", 20
        )
    assert client_env.network_attempts() == []

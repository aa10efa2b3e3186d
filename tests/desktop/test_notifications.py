"""Notifications reach a real notification daemon (dunst) and its buttons run our actions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support.dunst import running_dunst

from tray_app.core.settings.settings import NotificationPrefs
from tray_app.qt.notifier import Notifier

pytestmark = pytest.mark.desktop


async def _until(predicate: Any, limit_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_button_pressed_in_dunst_runs_the_action(tmp_path: Path) -> None:
    with running_dunst(tmp_path / "dunst") as dunst:
        fallback: list[tuple[str, str, bool]] = []
        notifier = Notifier(NotificationPrefs, lambda *a: fallback.append(a))
        pressed: list[str] = []
        notifier.notify(
            "session_ready",
            "Session ready: gpu-dev",
            "Connect with VS Code or JupyterLab",
            [
                ("Open in VS Code", lambda: pressed.append("vscode")),
                ("Copy SSH command", lambda: pressed.append("ssh")),
            ],
        )
        await notifier.wait_sent()
        await _until(lambda: dunst.displayed() == 1)
        menu = await asyncio.to_thread(dunst.press, "Copy SSH command")
        assert any("Open in VS Code" in line for line in menu)
        await _until(lambda: pressed == ["ssh"])
        assert fallback == []
        dunst.close_all()
        await _until(lambda: bool(dunst.history()))
        (entry,) = dunst.history()
        assert entry["summary"] == "Session ready: gpu-dev"
        assert entry["appname"] == "ClearML Session Tray"


async def test_switched_off_kinds_are_not_sent(tmp_path: Path) -> None:
    with running_dunst(tmp_path / "dunst") as dunst:
        prefs = NotificationPrefs(session_ready=False)
        notifier = Notifier(lambda: prefs, lambda *a: None)
        assert notifier.notify("session_ready", "ready", "x") is False
        assert notifier.notify("session_failed", "Session failed", "no such queue") is True
        await notifier.wait_sent()
        await _until(lambda: dunst.displayed() == 1)
        dunst.close_all()
        await _until(lambda: bool(dunst.history()))
        assert [e["summary"] for e in dunst.history()] == ["Session failed"]


READY_CLI = """#!{python}
import sys
print("New session created [id=0123456789abcdef0123456789abcdef]")
print("Interactive session is running:")
print("SSH: ssh root@localhost -p 8024 [password: Desk-Pass-0123]")
print("Jupyter Lab URL: http://localhost:8880/?token=desktoken0123")
print()
print("Connection is up and running", flush=True)
sys.stdin.readline()
"""


async def test_session_ready_from_a_real_child_reaches_dunst_and_its_button_works(
    tmp_path: Path, qapp: Any
) -> None:
    """A child reporting "ready" → registry → Notifier → dunst; the button runs our action."""
    import sys

    from support.tunnel_rig import build_rig

    from tray_app.core.settings.presets import Preset
    from tray_app.qt.session_process import QtChildren

    script = tmp_path / "clearml-session"
    script.write_text(READY_CLI.replace("{python}", sys.executable))
    script.chmod(0o755)
    with running_dunst(tmp_path / "dunst") as dunst:
        notifier = Notifier(NotificationPrefs, lambda *a: None)
        children = QtChildren()
        rig = build_rig(
            tmp_path / "data",
            start_child=children,
            real_time=True,
            executable=str(script),
            notify=notifier,
            open_editor_when_ready=False,
        )
        try:
            await rig.registry.create(Preset(name="desk", queue="sessions"))

            def shown() -> bool:  # Qt delivers the child's output while we wait (qasync)
                ready = any(kind == "session_ready" for kind, _t, _b in notifier.sent)
                return ready and not notifier._tasks and dunst.displayed() == 1

            await _until(shown)
            await notifier.wait_sent()
            # "Starting a session" came first, at once, and "Session ready" replaced it: one
            # notification on screen, not a pile.
            assert [s[:2] for s in notifier.sent] == [
                ("progress", "Starting a session"),
                ("session_ready", "Session ready"),
            ]
            assert notifier.icons == ["busy", "ok"]
            menu = await asyncio.to_thread(dunst.press, "Copy SSH command")
            assert any("Open JupyterLab" in line for line in menu)
            await _until(lambda: rig.rec.copied == ["ssh clearml-01234567"])
            dunst.close_all()
            await _until(lambda: bool(dunst.history()))
            (entry,) = [e for e in dunst.history() if e["summary"] == "Session ready"]
            assert "Desk-Pass-0123" not in str(entry)
        finally:
            rig.registry.close()
            children.close()


async def test_a_failure_shows_the_error_icon_in_dunst(tmp_path: Path) -> None:
    from tray_app.qt.icons import notification_icon

    with running_dunst(tmp_path / "dunst") as dunst:
        notifier = Notifier(NotificationPrefs, lambda *a: None, icon_for=notification_icon)
        notifier.notify("session_failed", "Session failed", "no such queue", critical=True)
        notifier.notify("session_ready", "Session ready", "connected")
        await notifier.wait_sent()
        await _until(lambda: dunst.displayed() == 2)
        dunst.close_all()
        await _until(lambda: len(dunst.history()) == 2)
        icons = {e["summary"]: str(e.get("icon_path", "")) for e in dunst.history()}
        assert icons["Session failed"].endswith("clearml-tray-error.png"), icons
        assert icons["Session ready"].endswith("clearml-tray-ok.png"), icons

"""Controller actions against a real emulator: Stop, Delete, Show log, Copy SSH command."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QGuiApplication
from support.emulator import EmulatorHandle

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.models import Snapshot
from tray_app.core.server.sessions import SessionService
from tray_app.core.tasks import Tasks
from tray_app.core.tunnels.model import TunnelInfo
from tray_app.qt.controller import Controller
from tray_app.qt.desktop import QtDesktop


class Connection:
    def __init__(self, service: SessionService | None = None) -> None:
        self.service = service


class Tunnels:
    """The registry, as the controller reaches it: no tunnels, one known password."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def tunnel_for(self, session_id: str) -> TunnelInfo | None:
        return None

    def password(self, key: str) -> str | None:
        return {"abc": "s3cret-pw"}.get(key)

    def reconnect(self, key: str) -> None:
        self.calls.append(("reconnect", key))

    def disconnect(self, key: str) -> None:
        self.calls.append(("disconnect", key))

    def shutdown(self, key: str) -> None:
        self.calls.append(("shutdown", key))


class Connect:
    def __init__(self) -> None:
        self.connected: list[tuple[str, str]] = []

    def connect(self, session_id: str, label: str = "") -> None:
        self.connected.append((session_id, label))

    def copy_ssh(self, session_id: str) -> bool:
        return False  # no tunnel: the direct command


def controller_for(
    snapshot: Snapshot | None = None, service: SessionService | None = None
) -> Controller:
    return Controller(
        lambda: snapshot,
        connection=Connection(service),  # type: ignore[arg-type]
        tunnels=Tunnels(),  # type: ignore[arg-type]
        connect=Connect(),  # type: ignore[arg-type]
        desktop=QtDesktop(),
        tasks=Tasks(),
    )


async def _setup(emu: EmulatorHandle) -> tuple[ClearMLClient, Controller, Snapshot]:
    config = ServerConfig(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    client = ClearMLClient(config, timeout=5.0)
    service = SessionService(client, web_server=emu.url)
    snapshot = await service.snapshot()
    return client, controller_for(snapshot, service), snapshot


def _status(emu: EmulatorHandle, task_id: str) -> str | None:
    with emu.state.lock:
        task = emu.state.tasks.get(task_id)
        return None if task is None else str(task.get("status"))


async def test_stop_reaches_the_server(qapp: Any, emulator: EmulatorHandle) -> None:
    client, controller, snapshot = await _setup(emulator)
    queued = next(s for s in snapshot.own if s.status == "queued")
    messages: list[tuple[str, str, bool]] = []
    controller.message.connect(lambda *m: messages.append(m))
    refreshes: list[bool] = []
    controller.refresh_requested.connect(lambda: refreshes.append(True))
    controller.handle("stop", queued.id)
    await controller.wait_idle()
    assert _status(emulator, queued.id) == "stopped"
    assert messages and messages[-1][2] is False
    # Named once, with its short id: not "Session Interactive Session (…)".
    title = messages[-1][0]
    assert title.endswith(f"({queued.id[:8]}) stopped") and not title.startswith("Session ")
    assert refreshes == [True]
    await client.aclose()


async def test_delete_stops_a_running_session_first(qapp: Any, emulator: EmulatorHandle) -> None:
    client, controller, snapshot = await _setup(emulator)
    running = next(s for s in snapshot.own if s.status == "in_progress")
    emulator.state.clear_requests()
    controller.handle("delete", running.id)
    await controller.wait_idle()
    assert _status(emulator, running.id) is None
    with emulator.state.lock:
        endpoints = [r.endpoint for r in emulator.state.requests]
    assert endpoints.index("tasks.delete") > max(
        i for i, e in enumerate(endpoints) if e in ("tasks.stop", "tasks.stopped")
    )
    await client.aclose()


async def test_errors_become_messages(qapp: Any, emulator: EmulatorHandle) -> None:
    client, controller, _snapshot = await _setup(emulator)
    messages: list[tuple[str, str, bool]] = []
    controller.message.connect(lambda *m: messages.append(m))
    controller.handle("stop", "f" * 32)  # no such task
    await controller.wait_idle()
    assert messages and messages[-1][2] is True
    assert "Could not stop" in messages[-1][0]
    await client.aclose()


async def test_show_log_is_newest_first_and_redacted(qapp: Any, emulator: EmulatorHandle) -> None:
    from tray_app.demo import SECRET_MARKER

    client, controller, snapshot = await _setup(emulator)
    running = next(s for s in snapshot.own if s.status == "in_progress")
    loaded: list[tuple[str, str, Any]] = []
    controller.log_loaded.connect(lambda *a: loaded.append(a))
    controller.handle("show_log", running.id)
    await controller.wait_idle()
    session_id, title, lines = loaded[0]
    assert session_id == running.id and running.name in title
    assert lines, "the seeded session has console output"
    stamps = [line.timestamp for line in lines if line.timestamp]
    assert stamps == sorted(stamps, reverse=True)
    assert not any(SECRET_MARKER in line.msg for line in lines)
    await client.aclose()


async def test_copy_ssh_command(qapp: Any, emulator: EmulatorHandle) -> None:
    client, controller, snapshot = await _setup(emulator)
    ready = next(s for s in snapshot.own if s.ssh_port and s.public_address)
    controller.handle("copy_ssh", ready.id)
    expected = f"ssh -p {ready.ssh_port} {ready.ssh_user or 'root'}@{ready.public_address}"
    assert QGuiApplication.clipboard().text() == expected
    assert ready.public_address.startswith("127.")
    await client.aclose()


async def test_simple_actions_emit_their_signals(qapp: Any) -> None:
    controller = controller_for()
    seen: list[str] = []
    controller.settings_requested.connect(lambda: seen.append("settings"))
    controller.quit_requested.connect(lambda: seen.append("quit"))
    controller.new_session_requested.connect(lambda: seen.append("new"))
    controller.credentials_requested.connect(lambda: seen.append("keys"))
    controller.cancel_requested.connect(lambda key: seen.append(f"cancel {key}"))
    for action in ("settings", "new_session", "quit", "credentials"):
        controller.handle(action)
    controller.handle("cancel_launch", "launch-1")  # a launch row's Cancel…
    assert seen == ["settings", "new", "quit", "keys", "cancel launch-1"]


def test_copy_session_password_comes_from_the_tunnel(qapp: Any) -> None:
    controller = controller_for()
    messages: list[tuple[str, str, bool]] = []
    controller.message.connect(lambda *m: messages.append(m))
    controller.handle("copy_password", "abc")
    assert QGuiApplication.clipboard().text() == "s3cret-pw"
    assert "s3cret-pw" not in str(messages)
    controller.handle("copy_password", "unknown")
    assert messages[-1][2] is True


def test_a_copied_session_password_leaves_the_clipboard_after_a_while(
    qapp: Any, qtbot: Any
) -> None:
    """Clipboard managers and other programs read the clipboard: the password goes again
    (after 30 s in the tray; a tenth of a second here)."""
    desktop = QtDesktop()
    desktop.copy_secret("s3cret-pw", clear_after_s=0.1)
    assert QGuiApplication.clipboard().text() == "s3cret-pw"
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() == "", timeout=5000)


def test_the_clipboard_is_left_alone_when_something_else_was_copied_since(
    qapp: Any, qtbot: Any
) -> None:
    desktop = QtDesktop()
    desktop.copy_secret("s3cret-pw", clear_after_s=0.1)
    QGuiApplication.clipboard().setText("the user's own text")
    qtbot.wait(400)  # past the moment the password would have been cleared
    assert QGuiApplication.clipboard().text() == "the user's own text"


def test_copy_session_password_clears_it_after_30_seconds(qapp: Any, monkeypatch: Any) -> None:
    from tray_app.core.ports import SECRET_CLIPBOARD_S

    timers: list[int] = []
    monkeypatch.setattr(
        "tray_app.qt.desktop.QTimer.singleShot", lambda ms, callback: timers.append(ms)
    )
    controller = controller_for()
    messages: list[tuple[str, str, bool]] = []
    controller.message.connect(lambda *m: messages.append(m))
    controller.handle("copy_password", "abc")
    assert SECRET_CLIPBOARD_S == 30 and timers == [30_000]
    assert "30 seconds" in messages[-1][1]


def test_open_jupyter_opens_only_http_to_the_sessions_own_machine(
    qapp: Any, monkeypatch: Any
) -> None:
    """A task's jupyter_url is written by its owner: a file:// URL or another host is refused."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from PySide6.QtGui import QDesktopServices

    from tray_app.core.server.models import Session, SessionState

    base = Session(
        id="a" * 32,
        name="box",
        status="in_progress",
        state=SessionState.RUNNING,
        public_address="10.1.2.3",
    )
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()))
    messages: list[tuple[str, str, bool]] = []
    for url in ("file:///etc/passwd", "http://evil.example/lab", "http://10.1.2.3:8888/lab"):
        session = replace(base, jupyter_url=url)
        snapshot = Snapshot(sessions=(session,), fetched_at=datetime.now(UTC))
        controller = controller_for(snapshot)
        controller.message.connect(lambda *m: messages.append(m))
        controller.handle("open_jupyter", session.id)
    assert opened == ["http://10.1.2.3:8888/lab"]
    assert [m[0] for m in messages] == ["JupyterLab not opened", "JupyterLab not opened"]


def test_the_menus_more_row_opens_the_quick_pick(qapp: Any) -> None:
    controller = controller_for()
    asked: list[bool] = []
    controller.quick_pick_requested.connect(lambda: asked.append(True))
    controller.handle("quick_pick")
    assert asked == [True]


def test_an_ssh_command_that_is_not_safe_to_paste_is_refused(qapp: Any) -> None:
    from datetime import UTC, datetime

    from tray_app.core.server.models import Session, SessionState

    session = Session(
        id="b" * 32,
        name="box",
        status="in_progress",
        state=SessionState.RUNNING,
        public_address="10.1.2.3",
        ssh_port=22,
        ssh_user="root\nrm -rf ~",
    )
    snapshot = Snapshot(sessions=(session,), fetched_at=datetime.now(UTC))
    controller = controller_for(snapshot)
    QGuiApplication.clipboard().setText("before")
    messages: list[tuple[str, str, bool]] = []
    controller.message.connect(lambda *m: messages.append(m))
    controller.handle("copy_direct_ssh", session.id)
    assert QGuiApplication.clipboard().text() == "before"
    assert messages == [
        (
            "SSH command not copied",
            "The session's SSH user, address or port holds characters that are not safe in a "
            "command.",
            True,
        )
    ]


def test_tunnel_actions_reach_the_registry_and_unknown_ones_are_ignored(qapp: Any) -> None:
    controller = controller_for()
    tunnels = controller._tunnels
    for action in ("reconnect", "disconnect", "shutdown_tunnel"):
        controller.handle(action, "launch-1")
    controller.handle("no_such_action", "launch-1")
    assert tunnels.calls == [  # type: ignore[attr-defined]
        ("reconnect", "launch-1"),
        ("disconnect", "launch-1"),
        ("shutdown", "launch-1"),
    ]

"""User actions → calls on the core (async HTTP) or the launcher; results → signals.

Every action arrives as `(action, session_id)` from the menu, a notification button, the
hotkey's quick-pick or a second instance. Network calls run as asyncio tasks; nothing here
blocks the Qt thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal, SignalInstance
from PySide6.QtGui import QDesktopServices, QGuiApplication

from tray_app.core.server.api import ClearMLError
from tray_app.core.server.models import LogLine, Snapshot
from tray_app.core.server.sessions import SessionService
from tray_app.core.tunnels.connect import ConnectFlow
from tray_app.core.tunnels.model import Launcher, TunnelState
from tray_app.core.untrusted import safe_http_url
from tray_app.core.view.menu import ssh_command
from tray_app.core.wording import session_title

log = logging.getLogger(__name__)


class Controller(QObject):
    message = Signal(str, str, bool)  # title, text, is_error
    log_loaded = Signal(str, str, object)  # session id, title, list[LogLine]
    # Hooks the composition root connects to windows it owns.
    settings_requested = Signal()
    about_requested = Signal()
    onboarding_requested = Signal()
    new_session_requested = Signal()
    demo_requested = Signal()
    log_folder_requested = Signal()
    quit_requested = Signal()
    refresh_requested = Signal()
    follow_log_requested = Signal(str)  # tunnel key
    keep_alive_requested = Signal(str)  # session id
    import_presets_requested = Signal()
    export_presets_requested = Signal()
    quick_pick_requested = Signal()  # the menu's "N more… (search)" row
    launch_preset_requested = Signal(str)  # a preset's name (the Presets submenu)
    intent = Signal(str)  # session id the user pointed at (its submenu opened): Connect may follow

    def __init__(self, snapshot: Callable[[], Snapshot | None]) -> None:
        super().__init__()
        self._snapshot = snapshot
        self.service: SessionService | None = None
        self.launcher: Launcher | None = None
        self.connect_flow: ConnectFlow | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- dispatch ------------------------------------------------------------------------
    def handle(self, action: str, session_id: str | None = None) -> None:
        simple: dict[str, SignalInstance] = {
            "settings": self.settings_requested,
            "about": self.about_requested,
            "onboarding": self.onboarding_requested,
            "new_session": self.new_session_requested,
            "start_demo": self.demo_requested,
            "open_log_folder": self.log_folder_requested,
            "quit": self.quit_requested,
            "refresh": self.refresh_requested,
            "import_presets": self.import_presets_requested,
            "export_presets": self.export_presets_requested,
            "quick_pick": self.quick_pick_requested,
        }
        if action in simple:
            simple[action].emit()
            return
        if session_id is None:
            log.warning("action %s needs a session", action)
            return
        handlers: dict[str, Callable[[str], None]] = {
            "connect": self.connect_session,
            "open_jupyter": self.open_jupyter,
            "open_terminal": self.open_terminal,
            "copy_ssh": self.copy_ssh_command,
            "copy_direct_ssh": self.copy_direct_ssh_command,
            "open_web": self.open_web,
            "show_log": self.show_log,
            "stop": self.stop,
            "delete": self.delete,
            "reconnect": self._tunnel("reconnect"),
            "disconnect": self._tunnel("disconnect"),
            "shutdown_tunnel": self._tunnel("shutdown"),
            "follow_log": self.follow_log_requested.emit,
            "copy_password": self.copy_password,
            "keep_alive": self.keep_alive_requested.emit,
            "launch_preset": self.launch_preset_requested.emit,
            "intent": self.intent.emit,
        }
        handler = handlers.get(action)
        if handler is None:
            log.warning("unknown action %s", action)
            return
        handler(session_id)

    # --- actions -------------------------------------------------------------------------
    def connect_session(self, session_id: str) -> None:
        if self.connect_flow is not None:
            self.connect_flow.connect(session_id, self._name(session_id))
        else:
            log.info("connect %s: no connect flow in this build", session_id)
            self.message.emit("Connect", "Connecting is not available yet.", True)

    def open_terminal(self, session_id: str) -> None:
        if self.connect_flow is not None:
            self.connect_flow.open_terminal(session_id)
        else:
            self.message.emit("Terminal", "Opening a terminal is not available here.", True)

    def open_jupyter(self, session_id: str) -> None:
        """The tunnel's local JupyterLab, else the session's own address; never another place:
        the server's `jupyter_url` is written by whoever owns the task."""
        tunnel = self.connect_flow.tunnel_for(session_id) if self.connect_flow else None
        session = self._session(session_id)
        offered = (tunnel.jupyter_url if tunnel else None) or (
            session.jupyter_url if session else ""
        )
        url = (
            safe_http_url(tunnel.jupyter_url, "localhost")
            if tunnel and tunnel.jupyter_url
            else None
        )
        if url is None and session is not None and session.jupyter_url:
            url = safe_http_url(session.jupyter_url, session.public_address or "")
        if url:
            QDesktopServices.openUrl(QUrl(url))
        elif offered:
            log.warning("JupyterLab address of %s refused: %r", session_id, offered[:200])
            self.message.emit(
                "JupyterLab not opened",
                "The session's JupyterLab address does not point at its own machine over http(s).",
                True,
            )
        else:
            self.message.emit("JupyterLab", "This session has no JupyterLab address yet.", True)

    def copy_ssh_command(self, session_id: str) -> None:
        """`ssh clearml-<id8>` over a ready tunnel (no password asked), else the direct one."""
        tunnel = self.connect_flow.tunnel_for(session_id) if self.connect_flow else None
        if (
            self.connect_flow is not None
            and tunnel is not None
            and tunnel.state == TunnelState.READY
        ):
            self.connect_flow.copy_ssh(tunnel)
            return
        self.copy_direct_ssh_command(session_id)

    def copy_direct_ssh_command(self, session_id: str) -> None:
        """`ssh -p PORT user@address`: straight to the machine, asks for the session password."""
        session = self._session(session_id)
        command = ssh_command(session) if session else None
        if not command and session is not None and session.public_address and session.ssh_port:
            log.warning("ssh command of %s refused: unsafe user, address or port", session_id)
            self.message.emit(
                "SSH command not copied",
                "The session's SSH user, address or port holds characters that are not safe in "
                "a command.",
                True,
            )
            return
        if not command:
            self.message.emit("SSH", "This session has not published an SSH address yet.", True)
            return
        QGuiApplication.clipboard().setText(command)
        self.message.emit("SSH command copied", command, False)

    def copy_password(self, key: str) -> None:
        """The session's SSH password, for editors that ask for it (never shown or logged)."""
        getter = getattr(self.launcher, "password", None)
        password = getter(key) if getter else None
        if not password:
            self.message.emit("Session password", "This tunnel has no known password.", True)
            return
        QGuiApplication.clipboard().setText(password)
        self.message.emit("Session password copied", "Paste it where the editor asks.", False)

    def open_web(self, session_id: str) -> None:
        session = self._session(session_id)
        if session and session.web_url:
            QDesktopServices.openUrl(QUrl(session.web_url))

    def show_log(self, session_id: str) -> None:
        self._spawn(self._show_log(session_id))

    def stop(self, session_id: str) -> None:
        self._spawn(self._stop(session_id))

    def delete(self, session_id: str) -> None:
        self._spawn(self._delete(session_id))

    def _tunnel(self, method: str) -> Callable[[str], None]:
        def run(key: str) -> None:
            if self.launcher is None:
                return
            getattr(self.launcher, method)(key)

        return run

    # --- async work ----------------------------------------------------------------------
    async def _show_log(self, session_id: str) -> None:
        service = self._require_service()
        if service is None:
            return
        name = self._name(session_id)
        try:
            lines: list[LogLine] = await service.console_log(session_id)
        except ClearMLError as exc:
            log.warning("log of %s not loaded: %s", session_id, exc)
            self.message.emit(f"Log of {name}", str(exc), True)
            return
        self.log_loaded.emit(session_id, f"Console log — {name}", lines)

    async def _stop(self, session_id: str) -> None:
        service = self._require_service()
        if service is None:
            return
        name = self._name(session_id)
        try:
            result = await service.stop(session_id)
        except ClearMLError as exc:
            log.warning("stop %s failed: %s", session_id, exc)
            self.message.emit(f"Could not stop {name}", str(exc), True)
            return
        log.info("stop %s (%s): %s", session_id, name, result)
        text = "Stopped." if result == "stopped" else "Stopping: the worker is shutting it down."
        self.message.emit(f"Session {name}", text, False)
        self.refresh_requested.emit()

    async def _delete(self, session_id: str) -> None:
        service = self._require_service()
        if service is None:
            return
        name = self._name(session_id)
        try:
            await service.delete(session_id)
        except ClearMLError as exc:
            log.warning("delete %s failed: %s", session_id, exc)
            self.message.emit(f"Could not delete {name}", str(exc), True)
            return
        log.info("deleted %s (%s)", session_id, name)
        self.message.emit(f"Session {name}", "Deleted.", False)
        self.refresh_requested.emit()

    # --- helpers -------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine as a task that is kept alive and waited for on Quit."""
        self._spawn(coro)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Wait for every running action (tests, and Quit)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _require_service(self) -> SessionService | None:
        if self.service is None:
            self.message.emit("ClearML", "No ClearML server is configured.", True)
        return self.service

    def _session(self, session_id: str) -> Any:
        snapshot = self._snapshot()
        return snapshot.by_id(session_id) if snapshot else None

    def _name(self, session_id: str) -> str:
        """The session as messages name it: its name and short id (names repeat: the CLI's
        default is "Interactive Session")."""
        session = self._session(session_id)
        return session_title(session.name if session else "", session_id)

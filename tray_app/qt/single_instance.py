"""One tray per user: later starts forward their request to the running one and exit.

A QLocalServer listens on a socket in the user's runtime directory, created user-only. The
protocol is one JSON object per line: {"cmd": "show"} | {"cmd": "connect", "session_id": "…"} |
{"cmd": "snapshot", "all_users": bool, "format": "table|json|status|waybar"}, answered by one
line {"ok": true|false, "message": "…"} once the tray has handled it; a snapshot reply adds
"output", what `clearml-tray list` prints (tray_app/core/view/shared_snapshot.py).
Headless commands reach it without Qt through tray_app/core/instance_socket.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from tray_app.core.instance_requests import Reply
from tray_app.core.instance_socket import socket_path

log = logging.getLogger(__name__)


def forward_to_running(message: dict[str, Any], timeout_ms: int = 1500) -> Reply | None:
    """Send `message` to a running instance; its reply, or None when there is none."""
    sock = QLocalSocket()
    sock.connectToServer(socket_path())
    if not sock.waitForConnected(timeout_ms):
        return None
    sock.write((json.dumps(message) + "\n").encode())
    if not sock.waitForBytesWritten(timeout_ms):
        return None
    # The running tray answers with one JSON line once it has handled the request.
    raw = b""
    while b"\n" not in raw and sock.waitForReadyRead(timeout_ms):
        raw += bytes(sock.readAll().data())
    sock.disconnectFromServer()
    try:
        answer = json.loads(raw.decode("utf-8", "replace").split("\n", 1)[0] or "{}")
    except json.JSONDecodeError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    return Reply(bool(answer.get("ok", True)), str(answer.get("message", "")))


Handler = Callable[[dict[str, Any]], Reply]


class SingleInstance(QObject):
    """The running tray's socket; `handler` answers each request."""

    def __init__(self, handler: Handler = lambda message: Reply(True)) -> None:
        super().__init__()
        self.handler = handler
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        self.path = socket_path()
        self._connections: list[QLocalSocket] = []

    def listen(self) -> bool:
        if self.server.listen(self.path):
            return True
        # Nobody answered (checked by the caller with forward_to_running): a stale socket of a
        # crashed instance. Remove it and try once more.
        QLocalServer.removeServer(self.path)
        if self.server.listen(self.path):
            log.info("removed a stale instance socket %s", self.path)
            return True
        log.warning("single-instance socket %s: %s", self.path, self.server.errorString())
        return False

    def close(self) -> None:
        for conn in self._connections:
            conn.readyRead.disconnect()
            conn.abort()
        self._connections.clear()
        self.server.close()

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            conn = self.server.nextPendingConnection()
            self._connections.append(conn)
            conn.readyRead.connect(lambda c=conn: self._read(c))
            conn.disconnected.connect(lambda c=conn: self._forget(c))

    def _forget(self, conn: QLocalSocket) -> None:
        if conn in self._connections:
            self._connections.remove(conn)
            conn.deleteLater()

    def _read(self, conn: QLocalSocket) -> None:
        while conn.canReadLine():
            line = bytes(conn.readLine().data()).decode("utf-8", "replace").strip()
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                log.warning("ignored a malformed instance message")
                continue
            if isinstance(message, dict) and isinstance(message.get("cmd"), str):
                try:
                    reply = self.handler(message)
                except Exception:
                    log.exception("instance request %s failed", message.get("cmd"))
                    reply = Reply(False, "The running tray could not handle the request.")
                answer = {**reply.extra, "ok": reply.ok, "message": reply.message}
                conn.write((json.dumps(answer) + "\n").encode())

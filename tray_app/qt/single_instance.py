"""One tray per user: later starts forward their request to the running one and exit.

A QLocalServer listens on a socket in the user's runtime directory, created user-only. The
protocol is one JSON object per line: {"cmd": "show"} | {"cmd": "connect", "session_id": "…"} |
{"cmd": "snapshot", "all_users": bool, "format": "table|json|status|waybar"}, answered by one
line {"ok": true|false, "message": "…"} once the tray has handled it; a snapshot reply adds
"output", what `clearml-tray list` prints (tray_app/core/view/shared_snapshot.py).
Headless commands reach it without Qt through tray_app/core/instance_socket.py.

Any local process of the user's can connect, so the reader is bounded (the limits and the
decoding are core/instance_socket.py's): Qt buffers at most MAX_REQUEST_BYTES of a client's
unread data, a client whose line grows past that is answered once and dropped, a line nested
too deeply is ignored like any malformed one (never an exception out of the slot, which would
leave the lines behind it unhandled), and a client that has not finished a request within
CLIENT_TIMEOUT_S is dropped, its buffer freed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from tray_app.core.instance_requests import Reply
from tray_app.core.instance_socket import (
    CLIENT_TIMEOUT_S,
    MAX_REQUEST_BYTES,
    decode_message,
    socket_path,
)

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
    answer = decode_message(raw.split(b"\n", 1)[0] or b"{}") or {}
    return Reply(bool(answer.get("ok", True)), str(answer.get("message", "")))


Handler = Callable[[dict[str, Any]], Reply]


class SingleInstance(QObject):
    """The running tray's socket; `handler` answers each request."""

    def __init__(
        self,
        handler: Handler = lambda message: Reply(True),
        *,
        client_timeout_s: float = CLIENT_TIMEOUT_S,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        self.path = socket_path()
        self._client_timeout_ms = int(client_timeout_s * 1000)
        self._max_request_bytes = max_request_bytes
        self._connections: list[QLocalSocket] = []
        self._timers: dict[QLocalSocket, QTimer] = {}  # each client's time to finish a request

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
        connections, self._connections = self._connections, []
        for conn in connections:
            self._timers.pop(conn, QTimer()).stop()
            conn.readyRead.disconnect()
            conn.disconnected.disconnect()
            conn.abort()
            conn.deleteLater()
        self.server.close()

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            conn = self.server.nextPendingConnection()
            # Qt stops reading from the client past this (one byte more tells "too long").
            conn.setReadBufferSize(self._max_request_bytes + 1)
            timer = QTimer(self)
            timer.setSingleShot(True)
            timer.timeout.connect(lambda c=conn: self._drop(c, "did not finish its request"))
            timer.start(self._client_timeout_ms)
            self._timers[conn] = timer
            self._connections.append(conn)
            conn.readyRead.connect(lambda c=conn, t=timer: self._read(c, t))
            conn.disconnected.connect(lambda c=conn: self._forget(c))

    def _forget(self, conn: QLocalSocket) -> None:
        timer = self._timers.pop(conn, None)
        if timer is not None:
            timer.stop()
            timer.deleteLater()
        if conn in self._connections:
            self._connections.remove(conn)
            conn.deleteLater()

    def _drop(self, conn: QLocalSocket, why: str) -> None:
        if conn in self._connections:
            log.warning("dropped a client of the instance socket: it %s", why)
            conn.abort()
            self._forget(conn)

    def _read(self, conn: QLocalSocket, timer: QTimer) -> None:
        while conn.canReadLine():
            raw = bytes(conn.readLine(self._max_request_bytes + 2).data())
            if not raw.endswith(b"\n"):
                break  # the rest of an over-long line: handled below
            timer.start(self._client_timeout_ms)  # a request came: the client is alive
            message = decode_message(raw.strip())
            if message is None or not isinstance(message.get("cmd"), str):
                log.warning("ignored a malformed instance message")
                continue
            self._answer(conn, message)
        if conn.bytesAvailable() > self._max_request_bytes:
            answer = {"ok": False, "message": "The request is too long."}
            conn.write((json.dumps(answer) + "\n").encode())
            conn.flush()
            self._drop(conn, f"sent a request longer than {self._max_request_bytes} bytes")

    def _answer(self, conn: QLocalSocket, message: dict[str, Any]) -> None:
        try:
            reply = self.handler(message)
        except Exception:
            log.exception("instance request %s failed", message.get("cmd"))
            reply = Reply(False, "The running tray could not handle the request.")
        answer = {**reply.extra, "ok": reply.ok, "message": reply.message}
        conn.write((json.dumps(answer) + "\n").encode())

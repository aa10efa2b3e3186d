"""One tray per user: later starts forward their request to the running one and exit.

A QLocalServer listens on a socket in the user's runtime directory, created user-only. The
protocol is one JSON object per line: {"cmd": "show"} | {"cmd": "connect", "session_id": "…"}.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from tray_app import APP_NAME
from tray_app.core.runtime_dir import private_runtime_dir

log = logging.getLogger(__name__)


def socket_path() -> str:
    if os.name == "nt":
        return f"{APP_NAME}-{getpass.getuser()}"  # a named pipe, per user by name
    try:
        # Checked to be ours: without XDG_RUNTIME_DIR, /tmp/runtime-<uid> may be another user's
        # (who could then take the socket, or stop every start).
        runtime = private_runtime_dir(APP_NAME)
    except OSError:
        runtime = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
        runtime.mkdir(parents=True, exist_ok=True)
    return str(runtime / "instance.sock")


def forward_to_running(message: dict[str, Any], timeout_ms: int = 1500) -> bool:
    """Send `message` to a running instance; False when there is none."""
    sock = QLocalSocket()
    sock.connectToServer(socket_path())
    if not sock.waitForConnected(timeout_ms):
        return False
    sock.write((json.dumps(message) + "\n").encode())
    ok = sock.waitForBytesWritten(timeout_ms)
    sock.waitForReadyRead(timeout_ms)  # the server answers "ok" once it has read the line
    sock.disconnectFromServer()
    return ok


class SingleInstance(QObject):
    message_received = Signal(dict)

    def __init__(self) -> None:
        super().__init__()
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
                conn.write(b"ok\n")
                self.message_received.emit(message)

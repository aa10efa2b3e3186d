"""The running tray's side of an askpass request, without Qt: a real AF_UNIX socket answered by
the tray's own `InstanceRequests` and `SessionPasswords` (one JSON line each way, as
qt/single_instance.py answers it), in a thread, so that real ssh processes and our real askpass
helper can ask it. The askpass benchmark times the helper against it; the ssh master and jump
host tests use it too. Tests of the Qt socket itself are in tests/qt/test_single_instance.py.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tray_app.core.instance_requests import InstanceRequests
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.tunnels.session_passwords import SessionPasswords


@dataclass
class AnsweringTray:
    passwords: SessionPasswords
    socket: str
    asked: list[dict[str, object]] = field(default_factory=list)  # every request, in order


@contextmanager
def answering_tray(
    passwords: SessionPasswords | None = None, workdir: Path | None = None
) -> Iterator[AnsweringTray]:
    """Listen on a fresh user-only socket (in a new folder under `workdir`, else the system's
    temporary folder); its path is `AnsweringTray.socket` (pass it to ssh's environment as
    CLEARML_TRAY_ASKPASS_SOCKET)."""
    grants = passwords if passwords is not None else SessionPasswords()
    requests = InstanceRequests(
        snapshot=lambda: None,
        status=lambda: PollStatus(TrayState.OK),
        connect=lambda snapshot, ref: (False, "not here"),
        show=lambda: None,
        askpass=grants.ask,
    )
    folder = tempfile.mkdtemp(prefix="askpass-", dir=workdir)
    os.chmod(folder, 0o700)
    path = str(Path(folder) / "tray.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    server.settimeout(0.1)  # to see `stop` soon
    tray = AnsweringTray(grants, path)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with conn:
                data = b""
                while b"\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                try:
                    message = json.loads(data.split(b"\n", 1)[0] or b"{}")
                except ValueError:
                    continue
                tray.asked.append(dict(message))
                reply = requests.handle(message)
                answer = {**reply.extra, "ok": reply.ok, "message": reply.message}
                conn.sendall((json.dumps(answer) + "\n").encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield tray
    finally:
        stop.set()
        server.close()
        thread.join(5)
        Path(path).unlink(missing_ok=True)
        os.rmdir(folder)

"""A second start hands its request to the running tray over a user-only local socket."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from tray_app.qt.single_instance import Reply, SingleInstance, forward_to_running, socket_path


def _second_start(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return subprocess.Popen(
        [sys.executable, "-m", "tray_app", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_connect_is_forwarded_by_the_real_cli(qapp: Any, qtbot: QtBot) -> None:
    instance = SingleInstance()
    assert instance.listen()
    received: list[dict[str, Any]] = []
    instance.handler = lambda m: received.append(m) or Reply(True, "Connecting to “gpu box”.")
    proc = _second_start("connect", "0123456789abcdef")
    qtbot.waitUntil(lambda: bool(received), timeout=20000)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
    out, err = proc.communicate()
    assert received == [{"cmd": "connect", "session_id": "0123456789abcdef"}]
    assert proc.returncode == 0, err
    assert "Connecting to “gpu box”." in out
    instance.close()


def test_a_refused_connect_is_reported_with_a_failing_exit_code(qapp: Any, qtbot: QtBot) -> None:
    instance = SingleInstance()
    assert instance.listen()
    instance.handler = lambda m: Reply(False, "No live session has an id starting with “zz”.")
    proc = _second_start("connect", "zz")
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
    out, err = proc.communicate()
    assert proc.returncode == 1
    assert "No live session has an id starting with “zz”." in err
    assert "forwarded" not in out
    instance.close()


def test_show_is_forwarded(qapp: Any, qtbot: QtBot) -> None:
    instance = SingleInstance()
    assert instance.listen()
    received: list[dict[str, Any]] = []
    instance.handler = lambda m: received.append(m) or Reply(True)
    proc = _second_start("--show")
    qtbot.waitUntil(lambda: bool(received), timeout=20000)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
    assert received == [{"cmd": "show"}]
    instance.close()


def test_socket_is_user_only(qapp: Any) -> None:
    instance = SingleInstance()
    assert instance.listen()
    path = Path(socket_path())
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    instance.close()


def test_no_running_instance_means_no_forward(qapp: Any) -> None:
    assert forward_to_running({"cmd": "show"}, timeout_ms=300) is None


def test_stale_socket_is_replaced(qapp: Any) -> None:
    import socket

    path = socket_path()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # a socket file nobody listens on, like after a crash
    stale.close()
    assert Path(path).exists()
    assert forward_to_running({"cmd": "show"}, timeout_ms=300) is None
    instance = SingleInstance()
    assert instance.listen()
    instance.close()


def test_malformed_lines_are_ignored(qapp: Any, qtbot: QtBot) -> None:
    from PySide6.QtNetwork import QLocalSocket

    instance = SingleInstance()
    assert instance.listen()
    received: list[dict[str, Any]] = []
    instance.handler = lambda m: received.append(m) or Reply(True)
    sock = QLocalSocket()
    sock.connectToServer(socket_path())
    assert sock.waitForConnected(2000)
    sock.write(b"not json\n[1,2]\n" + b'{"cmd": "show"}\n')
    sock.flush()
    qtbot.waitUntil(lambda: bool(received), timeout=5000)
    assert received == [{"cmd": "show"}]
    sock.abort()
    qtbot.waitUntil(lambda: not instance._connections, timeout=5000)
    instance.close()

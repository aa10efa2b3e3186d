"""A second start hands its request to the running tray over a user-only local socket."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot
from support.snapshots import full_snapshot

from tray_app.core.server.models import Snapshot
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.view.list_output import format_table, listing_json
from tray_app.core.view.shared_snapshot import snapshot_reply
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


class RawClient:
    """A plain AF_UNIX client that writes what it is told and reads without blocking."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path())
        self.sock.setblocking(False)
        self.received = b""
        self.closed = False

    def send_some(self, data: bytes) -> int:
        """As much of `data` as the socket takes now (the tray may have stopped reading)."""
        try:
            return self.sock.send(data)
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            return 0

    def poll(self) -> bool:
        """Read what arrived; True once the tray has closed the connection."""
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
            self.closed = True
        except BlockingIOError:
            pass
        except ConnectionResetError:
            self.closed = True
        return self.closed

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_never_sends_a_newline_is_cut_off_at_the_request_cap(
    qapp: Any, qtbot: QtBot
) -> None:
    """Before, Qt buffered all of it (126 MB → 582 MB, never freed); now the tray reads at most
    the cap, answers once and drops the client, and the next client is served."""
    instance = SingleInstance()
    assert instance.listen()
    received: list[dict[str, Any]] = []
    instance.handler = lambda m: received.append(m) or Reply(True)
    hog = RawClient()
    sent = 0
    block = b"x" * 65536

    def cut_off() -> bool:
        nonlocal sent
        sent += hog.send_some(block)
        return hog.poll()

    try:
        qtbot.waitUntil(cut_off, timeout=10000)
        assert b'"ok": false' in hog.received and b"too long" in hog.received
        assert not instance._connections
        after = RawClient()
        after.send_some(b'{"cmd": "show"}\n')
        qtbot.waitUntil(lambda: bool(received), timeout=5000)
        assert received == [{"cmd": "show"}]
        after.close()
    finally:
        hog.close()
        instance.close()


def test_json_nested_too_deeply_is_ignored_and_the_next_request_is_answered(
    qapp: Any, qtbot: QtBot
) -> None:
    """`[[[[…` used to raise RecursionError out of the slot, and the request behind it was lost."""
    instance = SingleInstance()
    assert instance.listen()
    received: list[dict[str, Any]] = []
    instance.handler = lambda m: received.append(m) or Reply(True, "shown")
    client = RawClient()
    try:
        deep = b"[" * 30000 + b"]" * 30000 + b"\n"
        payload = deep + b'{"cmd": "show"}\n'
        client.sock.setblocking(True)
        client.sock.sendall(payload)
        client.sock.setblocking(False)
        qtbot.waitUntil(lambda: bool(received), timeout=5000)
        assert received == [{"cmd": "show"}]
        qtbot.waitUntil(lambda: client.poll() or b"\n" in client.received, timeout=5000)
        assert b"shown" in client.received
    finally:
        client.close()
        instance.close()


def test_a_client_that_does_not_finish_its_request_in_time_is_dropped(
    qapp: Any, qtbot: QtBot
) -> None:
    instance = SingleInstance(client_timeout_s=0.3)
    assert instance.listen()
    client = RawClient()
    try:
        assert client.send_some(b'{"cmd": "sh') > 0  # …and nothing more
        qtbot.waitUntil(client.poll, timeout=5000)
        assert client.received == b""
        assert not instance._connections
    finally:
        client.close()
        instance.close()


# The CLI in a subprocess that reports whether it imported Qt.
_QT_CHECK = (
    "import sys\n"
    "from tray_app.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync'))\n"
    "print('QT-MODULES:' + ','.join(qt), file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def _headless(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    return subprocess.Popen(
        [sys.executable, "-c", _QT_CHECK, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lend(snapshot: Snapshot) -> Any:
    """The handler as app.on_instance_message answers a snapshot request."""
    status = PollStatus(TrayState.OK, last_success=datetime.now(UTC))

    def handler(message: dict[str, Any]) -> Reply:
        ok, why, output = snapshot_reply(snapshot, status, message)
        return Reply(ok, why, {"output": output} if output is not None else {})

    return handler


def test_list_is_answered_by_the_running_tray_without_qt_or_server(qapp: Any, qtbot: QtBot) -> None:
    """No clearml.conf and no server: only the tray's snapshot can give this output."""
    snapshot = full_snapshot(datetime.now(UTC), all_users=True)
    instance = SingleInstance()
    assert instance.listen()
    instance.handler = _lend(snapshot)
    try:
        proc = _headless("list", "--json", "--all-users")
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        assert out == json.dumps(listing_json(snapshot), indent=2) + "\n"
        assert "QT-MODULES:\n" in err

        before = datetime.now(UTC)
        proc = _headless("list", "--all-users")
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
        out, err = proc.communicate()
        after = datetime.now(UTC)
        assert proc.returncode == 0, err
        assert out in {format_table(snapshot, t) + "\n" for t in (before, after)}
        assert "QT-MODULES:\n" in err
    finally:
        instance.close()


def test_list_without_a_tray_goes_to_the_server(qapp: Any) -> None:
    """No tray, no clearml.conf: list tries the server's config and says what is missing."""
    proc = _headless("list")
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (2, "")
    assert "configuration error" in err
    assert "QT-MODULES:\n" in err

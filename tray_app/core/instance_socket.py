"""The running tray's socket, seen from headless commands: its path and one request, no Qt.

The tray listens with a QLocalServer (tray_app/qt/single_instance.py), which on POSIX is a plain
AF_UNIX stream socket at `socket_path()`. Headless commands such as `clearml-tray list` talk to
it with the `socket` module so that they never import PySide6. The protocol is one JSON object
per line each way: a request {"cmd": …} and one reply {"ok": bool, "message": str, …}.

Tested in tests/unit/view/test_shared_snapshot.py (a real AF_UNIX socket).
"""

from __future__ import annotations

# `_socket`, not `socket`: the wrapper module builds its enums at import (~2.5 ms, a tenth of a
# `clearml-tray list` answered by the tray) and adds nothing this one request uses.
import _socket
import json
import os
import time
from pathlib import Path

from tray_app import APP_NAME
from tray_app.core.runtime_dir import private_runtime_dir

# A reply line larger than this is not the tray's (a snapshot of 1000 sessions is ~1.5 MB).
MAX_REPLY_BYTES = 64 * 1024 * 1024


def socket_path() -> str:
    """Where the running tray listens: a socket in the user's private runtime directory."""
    if os.name == "nt":
        import getpass

        return f"{APP_NAME}-{getpass.getuser()}"  # a named pipe, per user by name
    try:
        # Checked to be ours: without XDG_RUNTIME_DIR, /tmp/runtime-<uid> may be another user's
        # (who could then take the socket, or stop every start).
        runtime = private_runtime_dir(APP_NAME)
    except OSError:
        import platformdirs

        runtime = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
        runtime.mkdir(parents=True, exist_ok=True)
    return str(runtime / "instance.sock")


def ask_running(
    message: dict[str, object], timeout_s: float = 2.0, path: str | None = None
) -> dict[str, object] | None:
    """Send one request to the running tray; its reply, or None when no tray answers in time.

    A missing socket file or one nobody listens on (a crashed tray's) fails at once; a tray that
    accepts but does not answer costs at most `timeout_s`. Windows' named pipe is not reachable
    through `socket`: there, None (the caller does the work itself).
    """
    if not hasattr(_socket, "AF_UNIX"):
        return None
    path = path or socket_path()
    deadline = time.monotonic() + timeout_s
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall((json.dumps(message) + "\n").encode())
            chunks: list[bytes] = []
            size = 0
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                sock.settimeout(remaining)
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break  # closed before a whole line: whatever came is all there is
                chunks.append(chunk)
                size += len(chunk)
                if b"\n" in chunk or size > MAX_REPLY_BYTES:
                    break
        finally:
            sock.close()
    except (OSError, ValueError):
        return None  # no socket, refused (stale), timed out, or a path too long
    line = b"".join(chunks).split(b"\n", 1)[0]
    try:
        answer = json.loads(line.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None

"""The running tray's socket, seen from headless commands: its path and one request, no Qt.

The tray listens with a QLocalServer (tray_app/qt/single_instance.py), which on POSIX is a plain
AF_UNIX stream socket at `socket_path()`. Headless commands such as `clearml-tray list` talk to
it with the `socket` module so that they never import PySide6. The protocol is one JSON object
per line each way: a request {"cmd": …} and one reply {"ok": bool, "message": str, …}.

Both readers are bounded (`decode_message`): a request line is at most MAX_REQUEST_BYTES (a
request is a command and a session id), JSON is nested at most MAX_DEPTH levels (deeper would
reach Python's recursion limit while it is parsed), and the tray drops a client that has not
finished its request within CLIENT_TIMEOUT_S. So a client that never sends a newline, or sends
`[[[[…`, costs the tray a few kilobytes for a few seconds.

Tested in tests/unit/view/test_shared_snapshot.py (a real AF_UNIX socket),
tests/unit/test_instance_socket_caps.py and tests/qt/test_single_instance.py.
"""

from __future__ import annotations

# `_socket`, not `socket`: the wrapper module builds its enums at import (~2.5 ms, a tenth of a
# `clearml-tray list` answered by the tray) and adds nothing this one request uses.
import _socket
import json
import os
import re
import time
from pathlib import Path

from tray_app import APP_NAME
from tray_app.core.runtime_dir import private_runtime_dir

# A reply line larger than this is not the tray's (a snapshot of 1000 sessions is ~1.5 MB).
MAX_REPLY_BYTES = 64 * 1024 * 1024
# A request is {"cmd": "connect", "session_id": "…"}: well under a kilobyte.
MAX_REQUEST_BYTES = 64 * 1024
# The protocol's objects are two levels deep; json.loads recurses once per level.
MAX_DEPTH = 8
# A client connects, writes its line and waits for the answer: seconds at most.
CLIENT_TIMEOUT_S = 5.0

# JSON strings (with their escapes), whose brackets do not nest anything.
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"?')
_BRACKETS = re.compile(rb"[\[\]{}]")


def nesting_depth(data: bytes, stop_after: int = MAX_DEPTH) -> int:
    """How deeply the JSON text `data` nests arrays and objects (counting stops just past
    `stop_after`: linear, with no recursion, whatever the input)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", data)):
        depth += 1 if bracket in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop_after:
                break
    return deepest


def decode_message(line: bytes, max_depth: int = MAX_DEPTH) -> dict[str, object] | None:
    """One line of the protocol as a JSON object; None when it is not one (not JSON, not an
    object, nested deeper than `max_depth`)."""
    if nesting_depth(line, max_depth) > max_depth:
        return None
    try:
        message = json.loads(line.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


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
    return decode_message(b"".join(chunks).split(b"\n", 1)[0])

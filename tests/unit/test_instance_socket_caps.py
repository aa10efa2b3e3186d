"""The instance socket's reader caps, Qt-free: request size, JSON nesting, replies.

The tray's side (QLocalServer: cap, nesting, per-client timeout) is tested with real clients in
tests/qt/test_single_instance.py.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from tray_app.core.instance_socket import (
    MAX_DEPTH,
    ask_running,
    decode_message,
    nesting_depth,
)


def test_nesting_depth_counts_only_brackets_outside_strings():
    assert nesting_depth(b'{"cmd": "show"}') == 1
    assert nesting_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert nesting_depth(b'{"a": "quote \\" [[[["}') == 1


def test_nesting_depth_stops_counting_past_the_limit_whatever_the_input():
    assert nesting_depth(b"[" * 1_000_000, stop_after=MAX_DEPTH) == MAX_DEPTH + 1


def test_a_request_nested_past_the_cap_is_not_a_message():
    assert decode_message(b"[" * 200_000 + b"]" * 200_000) is None
    assert (
        decode_message(b'{"cmd": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}") is None
    )
    assert decode_message(b'{"cmd": "connect", "session_id": "abc"}') == {
        "cmd": "connect",
        "session_id": "abc",
    }


def test_what_is_not_one_json_object_is_not_a_message():
    for line in (b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe"):
        assert decode_message(line) is None


def test_a_reply_nested_too_deeply_is_no_answer_not_a_crash(tmp_path: Path):
    """`clearml-tray list` must not die with RecursionError on whatever answers the socket."""
    path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"[" * 300_000 + b"]" * 300_000 + b"\n")

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        assert ask_running({"cmd": "snapshot"}, timeout_s=5.0, path=path) is None
    finally:
        thread.join(10)
        server.close()

"""`clearml-tray list` answered by the running tray: the Qt-free client side over a plain
AF_UNIX socket, and the tray's rules for answering from its latest snapshot."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.snapshots import full_snapshot

from tray_app import list_command
from tray_app.core.idle.policy import IdleState, IdleVerdict
from tray_app.core.instance_socket import ask_running, socket_path
from tray_app.core.server.models import Snapshot
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.view.list_output import listing_json, render
from tray_app.core.view.shared_snapshot import snapshot_reply

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FRESH = PollStatus(TrayState.OK, last_success=NOW)


class LineServer:
    """A plain AF_UNIX server answering each request line with `answer(request)` (or nothing)."""

    def __init__(self, path: str, answer: Callable[[dict[str, Any]], bytes | None]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self._held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = b""
            while b"\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            request = json.loads(data.split(b"\n", 1)[0])
            self.requests.append(request)
            reply = self.answer(request)
            if reply is None:
                self._held.append(conn)  # accepted, never answered
                continue
            conn.sendall(reply)
            conn.close()

    def close(self) -> None:
        # shutdown() wakes the accept() of the serving thread (close() alone does not, on Linux).
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self._held:
            conn.close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[dict[str, Any]], bytes | None]], LineServer]]:
    servers: list[LineServer] = []

    def start(answer: Callable[[dict[str, Any]], bytes | None]) -> LineServer:
        server = LineServer(socket_path(), answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def lend(snapshot: Snapshot) -> Callable[[dict[str, Any]], bytes]:
    """What the tray does with a snapshot request (app.on_instance_message)."""
    status = PollStatus(TrayState.OK, last_success=datetime.now(UTC))

    def answer(request: dict[str, Any]) -> bytes:
        ok, why, output = snapshot_reply(snapshot, status, request)
        reply: dict[str, object] = {"ok": ok, "message": why}
        if output is not None:
            reply["output"] = output
        return (json.dumps(reply) + "\n").encode()

    return answer


def args(**kw: Any) -> argparse.Namespace:
    values = {"all_users": False, "json": False, "config_file": None, "debug": False}
    values.update(kw)
    return argparse.Namespace(**values)


def no_server(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record (and fail) every trip `list` makes to the server."""
    calls: list[bool] = []

    def server(config_file: str | None, all_users: bool) -> list_command.Failure:
        calls.append(all_users)
        return list_command.Failure(list_command.EXIT_UNAVAILABLE, "no server in this test")

    monkeypatch.setattr(list_command, "snapshot_from_server", server)
    return calls


# -- the tray's rules ---------------------------------------------------------------------------


def test_the_tray_answers_only_with_current_data() -> None:
    snap = full_snapshot(NOW)
    request: dict[str, object] = {"cmd": "snapshot", "format": "json"}
    assert snapshot_reply(None, FRESH, request, NOW)[0] is False
    offline = PollStatus(TrayState.OFFLINE, "down", last_success=NOW, failures=1)
    assert snapshot_reply(snap, offline, request, NOW)[0] is False
    old = PollStatus(TrayState.OK, last_success=NOW - timedelta(minutes=10))
    assert snapshot_reply(snap, old, request, NOW)[0] is False
    ok, _, output = snapshot_reply(snap, FRESH, {**request, "all_users": True}, NOW)
    assert ok
    assert output == json.dumps(listing_json(snap), indent=2)
    assert json.loads(output or "")["sessions"][0]["idle"]["reason"] == "not checked yet"


def test_the_tray_answers_with_the_verdicts_it_acts_on() -> None:
    """The idle verdicts the tray warns and stops by go into its answer to `list`."""
    snap = full_snapshot(NOW)
    since = NOW.timestamp() - 3 * 3600
    idle = {snap.sessions[0].id: IdleVerdict(IdleState.IDLE, "why", idle_since=since)}
    ok, _, output = snapshot_reply(snap, FRESH, {"format": "json"}, NOW, idle=idle)
    rows = json.loads(output or "")["sessions"]
    assert ok and rows[0]["idle"] == {"state": "idle", "idle_for_s": 3 * 3600, "reason": "why"}
    assert rows[1]["idle"] is None  # starting, on no worker yet: not judged
    ok, _, line = snapshot_reply(snap, FRESH, {"format": "status"}, NOW, idle=idle)
    assert line == "● 1 ◐ 1 · 1 idle"


def test_an_all_users_tray_answers_for_your_own_sessions_alone() -> None:
    ok, _, output = snapshot_reply(full_snapshot(NOW), FRESH, {"format": "table"}, NOW)
    assert ok
    assert output == render(full_snapshot(NOW, all_users=False), "table", NOW)
    assert output is not None and "Bob" not in output


def test_an_own_sessions_tray_cannot_answer_all_users() -> None:
    snap = full_snapshot(NOW, all_users=False)
    ok, why, output = snapshot_reply(snap, FRESH, {"all_users": True, "format": "table"}, NOW)
    assert (ok, output) == (False, None)
    assert "only your own" in why


@pytest.mark.parametrize("fmt", ["csv", 3, None])
def test_an_unknown_format_is_refused(fmt: object) -> None:
    ok, why, output = snapshot_reply(full_snapshot(NOW), FRESH, {"format": fmt}, NOW)
    assert (ok, output) == (False, None)
    assert "format" in why


# -- the client ---------------------------------------------------------------------------------


def test_ask_running_without_a_tray_is_none() -> None:
    assert not Path(socket_path()).exists()
    assert ask_running({"cmd": "snapshot"}) is None


def test_a_stale_socket_file_is_refused_at_once() -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(socket_path())  # bound, never listening: what a killed tray leaves
    try:
        assert ask_running({"cmd": "snapshot"}, timeout_s=30) is None
    finally:
        stale.close()


def test_a_tray_that_never_answers_costs_the_timeout_only(serve: Any) -> None:
    server = serve(lambda request: None)
    assert ask_running({"cmd": "snapshot"}, timeout_s=0.3) is None
    assert server.requests == [{"cmd": "snapshot"}]


def test_garbage_from_the_socket_is_no_answer(serve: Any) -> None:
    serve(lambda request: b"\xff not json\n")
    assert ask_running({"cmd": "snapshot"}) is None


@pytest.mark.parametrize(
    ("flags", "fmt"),
    [
        ({"json": True, "all_users": True}, "json"),
        ({"status": True}, "status"),
        ({"status": True, "json": True}, "waybar"),
    ],
)
def test_list_prints_the_trays_answer_without_the_server(
    serve: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: dict[str, Any],
    fmt: str,
) -> None:
    snap = full_snapshot(datetime.now(UTC) - timedelta(days=3))
    server = serve(lend(snap))
    to_server = no_server(monkeypatch)
    before = datetime.now(UTC)
    assert list_command.run_list(args(**flags)) == list_command.EXIT_OK
    after = datetime.now(UTC)
    assert to_server == []
    all_users = bool(flags.get("all_users"))
    assert server.requests == [{"cmd": "snapshot", "all_users": all_users, "format": fmt}]
    shown = snap if all_users else full_snapshot(snap.fetched_at, all_users=False)
    out = capsys.readouterr().out
    # Uptimes are as of the moment the tray answers: a minute may turn meanwhile.
    assert out in {render(shown, fmt, t) + "\n" for t in (before, after)}


@pytest.mark.parametrize("flag", [{"no_tray": True}, {"config_file": "/some/clearml.conf"}])
def test_no_tray_and_another_config_ask_the_server(
    serve: Any, monkeypatch: pytest.MonkeyPatch, flag: dict[str, Any]
) -> None:
    server = serve(lend(full_snapshot(datetime.now(UTC))))
    to_server = no_server(monkeypatch)
    assert list_command.run_list(args(**flag)) == list_command.EXIT_UNAVAILABLE
    assert to_server == [False]
    # No snapshot from the tray; without a --config-file, only which clearml.conf it reads.
    assert server.requests == ([] if "config_file" in flag else [{"cmd": "config"}])


def test_a_refusing_tray_sends_list_to_the_server(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(lambda r: b'{"ok": false, "message": "The tray has no session list yet."}\n')
    to_server = no_server(monkeypatch)
    assert list_command.run_list(args()) == list_command.EXIT_UNAVAILABLE
    assert server.requests == [
        {"cmd": "snapshot", "all_users": False, "format": "table"},
        {"cmd": "config"},
    ]
    assert to_server == [False]


@pytest.mark.parametrize("flags", [{"no_tray": True}, {"all_users": True}])
def test_list_asks_the_server_the_tray_shows_the_demos_included(
    serve: Any, monkeypatch: pytest.MonkeyPatch, flags: dict[str, Any]
) -> None:
    """`list --no-tray`, or `--all-users` when the tray shows only your sessions, ask the
    server themselves: the one of the clearml.conf the tray reads (the demo's), not the SDK's
    default search, which finds no configuration at all on a demo-only machine."""
    demo_conf = "/home/u/.local/share/clearml-tray/demo-clearml.conf"

    def tray(request: dict[str, Any]) -> bytes:
        if request["cmd"] == "config":
            return (
                json.dumps({"ok": True, "message": "", "config_file": demo_conf}) + "\n"
            ).encode()
        return b'{"ok": false, "message": "This tray shows only your own sessions."}\n'

    serve(tray)
    asked: list[str | None] = []

    def server(config_file: str | None, all_users: bool) -> list_command.Failure:
        asked.append(config_file)
        return list_command.Failure(list_command.EXIT_UNAVAILABLE, "stop here")

    monkeypatch.setattr(list_command, "snapshot_from_server", server)
    monkeypatch.delenv("CLEARML_CONFIG_FILE", raising=False)
    list_command.run_list(args(**flags))
    assert asked == [demo_conf]
    # A clearml.conf named in the environment is the user's word: it wins.
    monkeypatch.setenv("CLEARML_CONFIG_FILE", "/etc/mine.conf")
    list_command.run_list(args(**flags))
    assert asked == [demo_conf, None]


# -- the console script's path to the tray ------------------------------------------------------

REPO = Path(__file__).resolve().parents[3]
# Runs the console script's entry point as `clearml-tray <argv>` and reports what it imported.
ENTRY = (
    "import sys\n"
    "from tray_app.__main__ import main\n"
    "sys.argv = ['clearml-tray', *sys.argv[1:]]\n"
    "rc = main()\n"
    "print('MODULES:' + ','.join(sorted(sys.modules)), file=sys.stderr)\n"
    "sys.exit(rc)\n"
)
# What a tray's answer does without: the command line parser, the server path, Qt.
NOT_ON_THE_TRAY_PATH = ("argparse", "asyncio", "httpx", "pyhocon", "pyparsing", "PySide6", "socket")


def run_entry(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env["PYTHONPATH"] = str(REPO)
    # No clearml.conf anywhere: a trip to the server ends in a configuration error at once.
    env["CLEARML_CONFIG_FILE"] = str(Path(os.environ["HOME"]) / "missing.conf")
    result = subprocess.run(
        [sys.executable, "-c", ENTRY, *argv], capture_output=True, text=True, env=env, timeout=60
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES:"))
    return result, set(line.removeprefix("MODULES:").split(","))


@pytest.mark.parametrize(
    ("argv", "fmt", "all_users"),
    [
        (["--json"], "json", False),
        (["--status", "--json", "--all-users"], "waybar", True),
        ([], "table", False),
    ],
)
def test_the_console_script_prints_the_trays_answer_with_few_imports(
    serve: Any, argv: list[str], fmt: str, all_users: bool
) -> None:
    server = serve(lambda r: json.dumps({"ok": True, "message": "", "output": "ANSWER é"}).encode())
    result, modules = run_entry("list", *argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ANSWER é\n"
    assert server.requests == [{"cmd": "snapshot", "all_users": all_users, "format": fmt}]
    assert sorted(modules & set(NOT_ON_THE_TRAY_PATH)) == []


@pytest.mark.parametrize("argv", [["--no-tray"], ["--json", "--jso"], ["--watch"], ["--help"]])
def test_other_list_command_lines_go_through_the_full_parser(argv: list[str]) -> None:
    assert list_command.tray_request(["list", *argv]) is None


def test_a_refusing_tray_leaves_the_console_script_to_the_server(serve: Any) -> None:
    server = serve(lambda r: b'{"ok": false, "message": "The tray has no session list yet."}\n')
    result, modules = run_entry("list", "--json")
    assert result.returncode == list_command.EXIT_CONFIG, result.stderr
    assert "configuration" in result.stderr
    assert "argparse" in modules  # the full command line ran
    # Asked once by the fast path and once by `list` itself.
    assert server.requests == [{"cmd": "snapshot", "all_users": False, "format": "json"}] * 2

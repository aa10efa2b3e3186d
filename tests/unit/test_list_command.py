"""`clearml-tray list`: table/JSON output and exit codes (in-process; see
test_list_command_cli.py for the real subprocess against a running emulator)."""

from __future__ import annotations

import argparse
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.hostile_server import HostileRequest, HostileServer, Pause, Reply, make_jwt

from tray_app import list_command
from tray_app.core.idle.policy import IdleState, IdleVerdict
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import (
    ClearMLAuthError,
    ClearMLRequestError,
    ClearMLUnavailable,
    ConfigInvalid,
    ConfigNotFound,
    CredentialsMissing,
)
from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.core.view.list_output import format_table
from tray_app.list_command import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNAVAILABLE,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_snapshot(all_users: bool = False) -> Snapshot:
    running = Session(
        id="0123456789abcdef0123456789abcdef",
        name="gpu-box",
        status="in_progress",
        state=SessionState.RUNNING,
        creator_id="u1",
        creator_name="Me",
        queue_name="gpu-a100",
        started=NOW - timedelta(days=1, hours=2, minutes=5),
        created=NOW - timedelta(days=2),
        cpu_cores=32,
        cpu_percent=41.6,
        ram_total_gb=251.5,
        ram_used_gb=12.3,
        gpu_count=2,
        gpu_percent=50.0,
        public_address="127.0.103.5",
        ssh_port=10022,
        worker_id="gpu-box:gpu0,1",
    )
    queued = Session(
        id="fedcba9876543210fedcba9876543210",
        name="Interactive Session",
        status="queued",
        state=SessionState.QUEUED,
        creator_id="u2",
        creator_name="Bob",
        is_own=False,
        queue_name="sessions",
        created=NOW - timedelta(minutes=3),
    )
    return Snapshot(
        sessions=(running, queued),
        fetched_at=NOW,
        user_id="u1",
        user_name="Me",
        server="http://127.0.0.1:8008",
        all_users=all_users,
    )


IDLE = {
    "0123456789abcdef0123456789abcdef": IdleVerdict(
        IdleState.IDLE,
        "GPU 0 % and 0.1 cores busy for 1h 10m on gpu-box",
        idle_since=NOW.timestamp() - 4200,
        idle_for_s=4000,
    )
}


def test_table_has_one_line_per_session_with_glyph_uptime_and_address():
    text = format_table(make_snapshot(), now=NOW)
    lines = text.splitlines()
    assert lines[0].split() == [
        "NAME", "ID", "STATE", "UPTIME", "QUEUE", "CPU", "RAM", "GPU", "IDLE", "SSH", "ADDRESS"
    ]  # fmt: skip
    running, queued = lines[1], lines[2]
    assert running.startswith("●")
    for part in ("gpu-box", "01234567", "running", "1d 2h 5m", "gpu-a100", "42 %/32c",
                 "12/252 GB", "50 % ×2", "unknown", "127.0.103.5:10022"):  # fmt: skip
        assert part in running  # not judged yet: unknown
    assert queued.startswith("◌")
    assert "3m" in queued and "queued" in queued and " - " in queued  # never judged
    assert "2 live sessions for Me on http://127.0.0.1:8008" in lines[-1]


def test_table_shows_an_idle_session_and_since_when():
    running = format_table(make_snapshot(), now=NOW, idle=IDLE).splitlines()[1]
    assert "  idle 1h 10m  " in running
    busy = {k: IdleVerdict(IdleState.BUSY, "GPU 1 at 80 % on gpu-box") for k in IDLE}
    assert "  busy  " in format_table(make_snapshot(), now=NOW, idle=busy).splitlines()[1]


def test_table_names_the_creator_when_listing_all_users():
    text = format_table(make_snapshot(all_users=True), now=NOW)
    assert "USER" in text.splitlines()[0]
    assert "Bob" in text
    assert "for all users" in text


def test_empty_table_says_so():
    snap = Snapshot(sessions=(), fetched_at=NOW, user_name="Me", server="http://s")
    assert format_table(snap, now=NOW) == "No live sessions for Me on http://s."


def args(**kw: Any) -> argparse.Namespace:
    values = {"all_users": False, "json": False, "config_file": None, "debug": False}
    values.update(kw)
    return argparse.Namespace(**values)


CONFIG = ServerConfig("http://127.0.0.1:9", "http://127.0.0.1:9", "", "AK", "SK")


@pytest.fixture
def fake_config(monkeypatch):
    monkeypatch.setattr(list_command, "load_server_config", lambda path=None: CONFIG)


def fake_fetch(monkeypatch, result: Any) -> list[tuple[ServerConfig, bool]]:
    calls: list[tuple[ServerConfig, bool]] = []

    async def fetch(config: ServerConfig, all_users: bool, **kw: Any) -> Any:
        calls.append((config, all_users))
        if isinstance(result, Exception):
            raise result
        return result, IDLE

    monkeypatch.setattr(list_command, "fetch_snapshot", fetch)
    return calls


def test_json_output_follows_the_documented_schema(monkeypatch, fake_config, capsys):
    calls = fake_fetch(monkeypatch, make_snapshot(all_users=True))
    assert list_command.run_list(args(json=True, all_users=True)) == EXIT_OK
    assert calls == [(CONFIG, True)]
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1
    assert doc["user"] == {"id": "u1", "name": "Me"}
    assert doc["all_users"] is True
    first = doc["sessions"][0]
    assert first["id"] == "0123456789abcdef0123456789abcdef"
    assert first["state"] == "running"
    assert datetime.fromisoformat(first["started"]) == NOW - timedelta(days=1, hours=2, minutes=5)
    assert first["hardware"]["cpu_cores"] == 32
    assert first["usage"]["gpu_percent"] == 50.0
    assert (first["public_address"], first["ssh_port"]) == ("127.0.103.5", 10022)
    assert doc["sessions"][1]["creator"] == {"id": "u2", "name": "Bob"}
    # The idle verdict of each of your running sessions; others' and queued ones: null.
    assert first["idle"] == {
        "state": "idle",
        "idle_for_s": 4200,
        "reason": "GPU 0 % and 0.1 cores busy for 1h 10m on gpu-box",
    }
    assert doc["sessions"][1]["idle"] is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigNotFound("No clearml.conf found (looked in ~/clearml.conf)"), EXIT_CONFIG),
        (ConfigInvalid("clearml.conf line 3: unexpected '}'"), EXIT_CONFIG),
        (CredentialsMissing("no api.credentials in clearml.conf"), EXIT_CONFIG),
    ],
)
def test_config_errors_exit_2_with_one_line(monkeypatch, capsys, error, code):
    def broken(path: Any = None) -> ServerConfig:
        raise error

    monkeypatch.setattr(list_command, "load_server_config", broken)
    assert list_command.run_list(args()) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("clearml-tray: configuration error: ")
    assert str(error) in err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ClearMLAuthError("Wrong access key or secret key:\nserver X"), EXIT_AUTH),
        (ClearMLUnavailable("Cannot reach the ClearML server X"), EXIT_UNAVAILABLE),
        (
            ClearMLRequestError(
                "tasks.get_all_ex failed",
                server="X",
                endpoint="tasks.get_all_ex",
                result_code=500,
                result_subcode=0,
                result_msg="boom",
                http_status=500,
            ),
            EXIT_ERROR,
        ),
    ],
)
def test_server_errors_have_distinct_exit_codes_and_one_line(
    monkeypatch, fake_config, capsys, error, code
):
    fake_fetch(monkeypatch, error)
    assert list_command.run_list(args()) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert " ".join(str(error).split()) in captured.err


def test_list_command_imports_no_qt():
    """The list path (cli → list_command → core) loads without PySide6 or qasync."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import tray_app.cli, tray_app.list_command, tray_app.core.server.sessions\n"
        "print(','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_table_shows_hostile_names_as_one_plain_line():
    from dataclasses import replace

    snap = make_snapshot(all_users=True)
    evil = replace(
        snap.sessions[0],
        name="\x1b]0;owned\x07\x1b[2Jname\nfake-row  RUNNING\u202eexe.txt",
        queue_name="q\r\x1b[1A",
    )
    other = replace(snap.sessions[1], creator_name="x" * 5000)
    table = format_table(replace(snap, sessions=(evil, other)), now=NOW)
    lines = table.splitlines()
    assert len(lines) == 4  # header, two sessions, footer: no fake row
    assert "\x1b" not in table and "\r" not in table and "\u202e" not in table
    assert "name fake-row RUNNINGexe.txt" in lines[1]
    assert max(len(line) for line in lines) < 400  # a 5000-character name is cut


def test_the_whole_list_request_has_a_deadline_of_at_most_15_s():
    assert 0 < list_command.LIST_DEADLINE_S <= 15


@pytest.mark.parametrize("plain_http", [True, False], ids=["http.client", "httpx"])
def test_a_server_that_trickles_bytes_fails_list_at_the_deadline_in_words(
    monkeypatch, capsys, plain_http
):
    """Each read is quick (one byte every 20 ms), so no per-read timeout ever fires: only the
    deadline of the whole request ends it, with a sentence and exit 4."""

    def trickle(request: HostileRequest) -> Reply:
        return Reply(
            200, {}, itertools.chain.from_iterable((b" ", Pause(0.02)) for _ in itertools.count())
        )

    monkeypatch.setattr(list_command, "LIST_DEADLINE_S", 0.5)
    if not plain_http:
        monkeypatch.setattr(
            "tray_app.core.server.http_plain.plain_exchange_for", lambda *a, **k: None
        )
    with HostileServer(trickle) as srv:
        config = ServerConfig(srv.url, srv.url, "", auth_token=make_jwt(
            {"identity": {"user": "u1"}, "iat": time.time(), "exp": time.time() + 3600}
        ))  # fmt: skip
        monkeypatch.setattr(list_command, "load_server_config", lambda path=None: config)
        assert list_command.run_list(args(json=True)) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "did not send the session list within 0.5 s" in err

"""What the running tray answers another instance, decided without Qt."""

from __future__ import annotations

from datetime import UTC, datetime

from tray_app.core.instance_requests import InstanceRequests
from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.core.server.refresh import PollStatus, TrayState

SID = "0123456789abcdef0123456789abcdef"


class Tray:
    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.connected: list[str] = []
        self.shown = 0

    def connect(self, snapshot: Snapshot, ref: str) -> tuple[bool, str]:
        self.connected.append(ref)
        return (ref == "0123", f"asked for {ref}")

    def requests(self, pending: str | None = None) -> InstanceRequests:
        return InstanceRequests(
            snapshot=lambda: self.snapshot,
            status=lambda: PollStatus(TrayState.OK, server="http://127.0.0.1:1"),
            connect=self.connect,
            show=self.show,
            pending=pending,
            config_file=lambda: "/home/u/.local/share/clearml-tray/demo-clearml.conf",
        )

    def show(self) -> None:
        self.shown += 1


def _snapshot() -> Snapshot:
    session = Session(id=SID, name="gpu box", status="in_progress", state=SessionState.RUNNING)
    return Snapshot((session,), datetime.now(UTC), user_id="u")


def test_a_connect_before_the_first_snapshot_waits_for_it() -> None:
    tray = Tray()
    requests = tray.requests()
    reply = requests.handle({"cmd": "connect", "session_id": "0123"})
    assert reply.ok and "still loading" in reply.message and tray.connected == []
    assert requests.snapshot_arrived() is None  # still none
    tray.snapshot = _snapshot()
    answered = requests.snapshot_arrived()
    assert answered is not None and answered.ok and tray.connected == ["0123"]
    assert requests.snapshot_arrived() is None  # answered once


def test_connect_from_the_command_line_is_answered_in_words() -> None:
    tray = Tray()
    tray.snapshot = _snapshot()
    reply = tray.requests().handle({"cmd": "connect", "session_id": "zz"})
    assert (reply.ok, reply.message) == (False, "asked for zz")


def test_the_tray_started_with_connect_answers_it_once_sessions_are_in() -> None:
    tray = Tray()
    requests = tray.requests(pending="0123")
    tray.snapshot = _snapshot()
    assert requests.snapshot_arrived() is not None and tray.connected == ["0123"]


def test_a_snapshot_request_gets_the_list_output_and_anything_else_shows_the_menu() -> None:
    tray = Tray()
    requests = tray.requests()
    assert requests.handle({"cmd": "snapshot", "format": "json"}).ok is False  # none yet
    tray.snapshot = _snapshot()
    reply = requests.handle({"cmd": "snapshot", "format": "json", "all_users": False})
    assert reply.ok and "gpu box" in str(reply.extra["output"])
    assert requests.handle({"cmd": "show"}).ok and tray.shown == 1
    assert requests.handle({"cmd": "connect", "session_id": 5}).ok and tray.shown == 2


def test_list_learns_which_clearml_conf_the_tray_reads() -> None:
    tray = Tray()
    reply = tray.requests().handle({"cmd": "config"})
    assert reply.ok and reply.extra == {
        "config_file": "/home/u/.local/share/clearml-tray/demo-clearml.conf"
    }
    assert tray.shown == 0  # a question, not a request to show the menu

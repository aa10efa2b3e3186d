"""models.py: uptime and size formatting, snapshot helpers, the JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tray_app.core.server.models import (
    STATE_GLYPHS,
    QueueInfo,
    Session,
    SessionState,
    Snapshot,
    format_duration,
    format_gb,
    format_percent,
    session_to_json,
    snapshot_to_json,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h 0m"),
        (3 * 3600 + 4 * 60 + 59, "3h 4m"),
        (86400 + 2 * 3600 + 5 * 60, "1d 2h 5m"),
        (40 * 86400, "40d 0h 0m"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_gb_and_percent():
    assert format_gb(None) == "?"
    assert format_gb(3.14) == "3.1 GB"
    assert format_gb(251.5) == "252 GB"
    assert format_percent(None) == "?"
    assert format_percent(42.4) == "42 %"


def session(**kw) -> Session:
    values = {"id": "0123456789abcdef", "name": "s", "status": "in_progress",
              "state": SessionState.RUNNING}  # fmt: skip
    values.update(kw)
    return Session(**values)


def test_uptime_counts_from_start_else_from_creation_and_never_negative():
    assert session(started=NOW - timedelta(hours=2)).uptime(NOW) == "2h 0m"
    assert session(created=NOW - timedelta(minutes=5)).uptime(NOW) == "5m"
    assert session(started=NOW + timedelta(minutes=5)).uptime_seconds(NOW) == 0.0
    assert session().uptime(NOW) == ""
    assert session().short_id == "01234567"


def test_snapshot_groups_and_lookup():
    own = session(id="a", is_own=True)
    other = session(id="b", is_own=False, state=SessionState.QUEUED, status="queued")
    snap = Snapshot(sessions=(own, other), fetched_at=NOW)
    assert snap.own == (own,)
    assert snap.others == (other,)
    assert snap.by_id("b") is other
    assert snap.by_id("zzz") is None
    assert snap.count == 2
    assert snap.any_starting
    assert not Snapshot(sessions=(own,), fetched_at=NOW).any_starting


def test_every_state_has_a_glyph():
    assert set(STATE_GLYPHS) == set(SessionState)


def test_session_json_is_plain_json_with_iso_datetimes():
    s = session(
        started=NOW - timedelta(days=1),
        created=NOW - timedelta(days=1, minutes=1),
        cpu_cores=8,
        gpu_percent=12.5,
        ssh_port=10022,
        public_address="127.0.103.5",
    )
    doc = json.loads(json.dumps(session_to_json(s, NOW)))
    assert doc["started"] == "2026-02-28T12:00:00+00:00"
    assert doc["uptime"] == "1d 0h 0m"
    assert doc["uptime_seconds"] == 86400.0
    assert doc["state"] == "running"
    assert doc["hardware"]["cpu_cores"] == 8
    assert doc["usage"]["gpu_percent"] == 12.5
    assert (doc["public_address"], doc["ssh_port"]) == ("127.0.103.5", 10022)
    assert doc["last_update"] is None


def test_snapshot_json_has_schema_version_and_sessions_in_order():
    snap = Snapshot(
        sessions=(session(id="a"), session(id="b")),
        fetched_at=NOW,
        user_id="u",
        user_name="Me",
        server="http://127.0.0.1:8008",
    )
    doc = snapshot_to_json(snap)
    assert doc["schema"] == 1
    assert doc["fetched_at"] == NOW.isoformat()
    assert [s["id"] for s in doc["sessions"]] == ["a", "b"]  # type: ignore[index]


def test_queue_label_prefers_the_display_name():
    assert QueueInfo("q", "gpu-a100", display_name="A100 GPUs").label == "A100 GPUs"
    assert QueueInfo("q", "default").label == "default"

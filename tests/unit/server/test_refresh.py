"""Poll timing and error classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tray_app.core.server.errors import (
    ClearMLAuthError,
    ClearMLRequestError,
    ClearMLUnavailable,
    ConfigInvalid,
    ConfigNotFound,
)
from tray_app.core.server.refresh import (
    PollStatus,
    RefreshSchedule,
    TrayState,
    classify_error,
    first_failure,
)


def _schedule(rng: float = 0.5) -> RefreshSchedule:
    return RefreshSchedule(interval=15, retry_first=3, max_backoff=120, rng=lambda: rng)


def test_someone_looking_or_something_coming_up_polls_at_the_interval() -> None:
    s = _schedule()
    assert s.next_delay(PollStatus(TrayState.OK)) == 15
    assert s.next_delay(PollStatus(TrayState.OK), idle_for=599) == 15
    # A session starting or queued, a tunnel coming up: the interval, not every 3 s (a
    # session can sit in a queue for hours; the CLI that started it follows it itself).
    assert s.next_delay(PollStatus(TrayState.OK), busy=True, idle_for=10_000) == 15
    assert s.next_delay(PollStatus(TrayState.BUSY), idle_for=10_000) == 15


def test_nobody_looking_for_10_minutes_polls_every_minute() -> None:
    s = _schedule()
    assert s.next_delay(PollStatus(TrayState.OK), idle_for=600) == 60
    assert s.next_delay(PollStatus(TrayState.OK), idle_for=86_400) == 60
    slow = RefreshSchedule(interval=300, rng=lambda: 0.5)  # a longer setting stays longer
    assert slow.next_delay(PollStatus(TrayState.OK), idle_for=3600) == 300


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    s = _schedule()
    delays = [s.next_delay(PollStatus(TrayState.OFFLINE, failures=n)) for n in range(1, 9)]
    assert delays == [3, 6, 12, 24, 48, 96, 120, 120]
    assert s.next_delay(PollStatus(TrayState.OK, failures=0)) == 15


@pytest.mark.parametrize("rng", [0.0, 0.25, 0.75, 1.0])
def test_jitter_stays_within_bounds(rng: float) -> None:
    s = _schedule(rng)
    delay = s.next_delay(PollStatus(TrayState.OFFLINE, failures=3))
    assert 12 * 0.8 <= delay <= 12 * 1.2
    assert s.next_delay(PollStatus(TrayState.OFFLINE, failures=50)) <= 120


def test_auth_and_unconfigured_poll_slowly() -> None:
    s = _schedule()
    assert s.next_delay(PollStatus(TrayState.AUTH, failures=1)) == 120
    assert s.next_delay(PollStatus(TrayState.UNCONFIGURED)) == 120


def test_classify_error() -> None:
    assert classify_error(ClearMLUnavailable("down"))[0] == TrayState.OFFLINE
    assert classify_error(ClearMLAuthError("bad keys")) == (TrayState.AUTH, "bad keys")
    request_error = ClearMLRequestError(
        "tasks.get_all_ex failed",
        server="http://127.0.0.1:8008",
        endpoint="tasks.get_all_ex",
        result_code=400,
        result_subcode=12,
        result_msg="Validation error",
        http_status=400,
    )
    assert classify_error(request_error)[0] == TrayState.ERROR
    assert classify_error(ConfigNotFound("none"))[0] == TrayState.UNCONFIGURED
    invalid = ConfigInvalid("syntax error", None, 3)
    assert classify_error(invalid) == (TrayState.UNCONFIGURED, "syntax error")
    # No raw exception text for the user ("list index out of range"): a sentence, detail logged.
    unexpected = classify_error(IndexError("list index out of range"))[1]
    assert "list index" not in unexpected and "IndexError" not in unexpected
    assert unexpected.endswith("see the log.")


@pytest.mark.parametrize("failures", [1024, 1025, 1026, 10**6])
def test_backoff_after_days_offline_stays_capped_and_never_overflows(failures):
    s = RefreshSchedule(rng=lambda: 0.5)
    assert s.next_delay(PollStatus(TrayState.OFFLINE, failures=failures)) == s.max_backoff


def test_stale_when_the_last_poll_failed_or_no_success_for_long():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    recent = now - timedelta(seconds=10)
    assert not PollStatus(TrayState.OK, last_success=recent).is_stale(now)
    assert PollStatus(TrayState.OFFLINE, last_success=recent, failures=1).is_stale(now)
    # A poll hanging on a slow server: no error yet, but the data is old.
    assert PollStatus(TrayState.OK, last_success=now - timedelta(minutes=5)).is_stale(now)
    assert not PollStatus(TrayState.CONNECTING).is_stale(now)


def test_the_first_failed_request_shows_the_outage_at_once() -> None:
    last = datetime(2026, 1, 1, tzinfo=UTC)
    for state in (TrayState.OK, TrayState.BUSY, TrayState.CONNECTING):
        status = PollStatus(state, server="http://s", last_success=last)
        now = first_failure(status, "Cannot reach the ClearML server http://s: refused")
        assert now is not None and now.state == TrayState.OFFLINE
        assert now.message.endswith("; retrying") and now.server == "http://s"
        assert now.last_success == last and now.failures == 0  # the backoff is the poll's
    # Already in trouble, or with nothing to poll: nothing changes.
    for state in (TrayState.OFFLINE, TrayState.AUTH, TrayState.ERROR, TrayState.UNCONFIGURED):
        assert first_failure(PollStatus(state), "x") is None
    # A password inside the server URL never reaches the menu.
    shown = first_failure(PollStatus(TrayState.OK), "Cannot reach http://u:hunter2@s")
    assert shown is not None and "hunter2" not in shown.message

"""`clearml-tray connect` takes a full id or the short id `list` prints."""

from __future__ import annotations

from datetime import UTC, datetime

from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.core.server.session_ref import resolve


def snapshot(*ids: str) -> Snapshot:
    sessions = tuple(
        Session(id=i, name=f"box {i[:4]}", status="in_progress", state=SessionState.RUNNING)
        for i in ids
    )
    return Snapshot(sessions=sessions, fetched_at=datetime.now(UTC))


A = "0123456789abcdef0123456789abcdef"
B = "0129ffffffffffffffffffffffffffff"


def test_a_unique_start_of_an_id_names_that_session() -> None:
    found = resolve(snapshot(A, B), "01234567")
    assert (found.session_id, found.label) == (A, "box 0123")
    assert resolve(snapshot(A, B), A.upper()).session_id == A


def test_an_ambiguous_or_unknown_reference_is_refused_in_words() -> None:
    assert resolve(snapshot(A, B), "012").error == "“012” matches 2 sessions: give more of the id."
    assert resolve(snapshot(A), "zz").error == "No live session has an id starting with “zz”."
    assert resolve(snapshot(A), " ").error == "No session id was given."


def test_a_full_id_we_do_not_list_is_passed_on() -> None:
    other = "f" * 32  # someone else's session, not in our own snapshot
    assert resolve(snapshot(A), other).session_id == other

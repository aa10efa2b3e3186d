"""A session named on the command line: a full id, or the short id that `list` prints."""

from __future__ import annotations

from dataclasses import dataclass

from tray_app.core.server.models import Session, SessionState, Snapshot


@dataclass(frozen=True, slots=True)
class Resolved:
    session_id: str | None
    label: str = ""
    error: str = ""  # a sentence for the user when there is no single match


def resolve(snapshot: Snapshot, text: str) -> Resolved:
    ref = text.strip().lower()
    if not ref:
        return Resolved(None, error="No session id was given.")
    exact = snapshot.by_id(ref)
    if exact is not None:
        return Resolved(exact.id, exact.name)
    matches = [s for s in snapshot.sessions if s.id.lower().startswith(ref)]
    if len(matches) == 1:
        return Resolved(matches[0].id, matches[0].name)
    if matches:
        return Resolved(
            None, error=f"“{text}” matches {len(matches)} sessions: give more of the id."
        )
    if len(ref) == 32:  # a full id we do not list (another user's): attach will tell
        return Resolved(ref)
    return Resolved(None, error=f"No live session has an id starting with “{text}”.")


def connectable(snapshot: Snapshot | None) -> list[Session]:
    """The user's own sessions that a Connect can reach: running and not being stopped."""
    if snapshot is None:
        return []
    return [
        s for s in snapshot.own if s.status == "in_progress" and s.state != SessionState.STOPPING
    ]

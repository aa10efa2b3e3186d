"""Small helpers for the words the user reads: counts with plurals, sessions by name."""

from __future__ import annotations

SHORT_ID = 8  # characters of a task id shown next to a name (as `clearml-<id8>` hosts use)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 free worker`, `2 free workers`, `0 queues`."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


def short_id(session_id: str) -> str:
    return session_id[:SHORT_ID]


def session_title(name: str, session_id: str) -> str:
    """How messages name a session: `Interactive Session (3f2a9c1b)`, or the short id alone
    when the name is unknown; never the raw 32-character id."""
    name = name.strip()
    sid = short_id(session_id)
    if not name:
        return sid
    return f"{name} ({sid})" if sid else name

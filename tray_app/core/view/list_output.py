"""What `clearml-tray list` prints: the table, the JSON document and the status-bar lines.

The same functions serve both answers: the running tray renders its snapshot with them (so the
headless client imports none of this), and the client renders a snapshot it fetched itself.

Tested in tests/unit/test_list_command.py and tests/unit/view/test_status_line.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from tray_app.core.idle.policy import (
    NOT_CHECKED_REASON,
    IdleState,
    IdleVerdict,
    idle_for,
    idle_mark,
    judged,
)
from tray_app.core.server.models import (
    STATE_GLYPHS,
    Session,
    Snapshot,
    format_percent,
    snapshot_to_json,
)
from tray_app.core.untrusted import display_text
from tray_app.core.wording import plural

MAX_CELL = 60  # characters of one table cell


# The output formats: `list`, `list --json`, `list --status`, `list --status --json`.
FORMATS = ("table", "json", "status", "waybar")


Verdicts = Mapping[str, IdleVerdict]


def render(
    snapshot: Snapshot, fmt: str, now: datetime | None = None, idle: Verdicts | None = None
) -> str:
    """The whole output for `snapshot` in one of FORMATS, without the final newline. `idle`
    holds the idle verdicts of the user's running sessions (the ones the tray acts on)."""
    if fmt == "json":
        return json.dumps(listing_json(snapshot, idle), indent=2)
    if fmt == "table":
        return format_table(snapshot, now, idle)
    if fmt not in FORMATS:
        raise ValueError(f"unknown list format {fmt!r}")
    from tray_app.core.view.status_line import render_line, status_of

    return render_line(status_of(snapshot, now, idle), as_json=fmt == "waybar")


# -- json ----------------------------------------------------------------------------------------


def idle_json(verdict: IdleVerdict | None, now: float) -> dict[str, object]:
    """`"idle"` of one judged session: its state, for how long it has been idle (idle only)
    and why, in words."""
    if verdict is None:
        return {"state": str(IdleState.UNKNOWN), "idle_for_s": None, "reason": NOT_CHECKED_REASON}
    seconds = idle_for(verdict, now)
    return {
        "state": str(verdict.state),
        "idle_for_s": None if seconds is None else round(seconds),
        "reason": verdict.reason,
    }


def listing_json(snapshot: Snapshot, idle: Verdicts | None = None) -> dict[str, object]:
    """The `list --json` document: each session of `snapshot_to_json`, plus `"idle"` for the
    user's running sessions (null for the others: they are never judged)."""
    document = snapshot_to_json(snapshot)
    verdicts = idle or {}
    now = snapshot.fetched_at.timestamp()
    judged_ids = {s.id for s in judged(snapshot)}
    rows = document["sessions"]
    assert isinstance(rows, list)
    for session, row in zip(snapshot.sessions, rows, strict=True):
        row["idle"] = idle_json(verdicts.get(session.id), now) if session.id in judged_ids else None
    return document


# -- table -------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _cpu(s: Session) -> str:
    cores = f"/{s.cpu_cores}c" if s.cpu_cores else ""
    return "-" if s.cpu_percent is None and not cores else f"{format_percent(s.cpu_percent)}{cores}"


def _ram(s: Session) -> str:
    if s.ram_used_gb is None and s.ram_total_gb is None:
        return "-"
    return f"{_num(s.ram_used_gb)}/{_num(s.ram_total_gb)} GB"


def _gpu(s: Session) -> str:
    if not s.gpu_count:
        return "-"
    return f"{format_percent(s.gpu_percent)} ×{s.gpu_count}"


def _address(s: Session) -> str:
    if not s.public_address:
        return "-"
    return f"{s.public_address}:{s.ssh_port}" if s.ssh_port else s.public_address


def idle_cell(s: Session, verdict: IdleVerdict | None, judged_ids: set[str], now: float) -> str:
    if s.id not in judged_ids:
        return "-"
    if verdict is None:
        return str(IdleState.UNKNOWN)
    return idle_mark(verdict, now) or str(verdict.state)


def session_row(s: Session, now: datetime, *, with_user: bool, idle: str = "-") -> list[str]:
    row = [
        STATE_GLYPHS.get(s.state, "?"),
        s.name,
        s.short_id,
        str(s.state),
        s.uptime(now) or "-",
        s.queue_name or "-",
        _cpu(s),
        _ram(s),
        _gpu(s),
        idle,
        _address(s),
    ]
    if with_user:
        row.insert(2, s.creator_name or s.creator_id or "?")
    return row


def format_table(
    snapshot: Snapshot, now: datetime | None = None, idle: Verdicts | None = None
) -> str:
    """A plain-text table, one session per line (own sessions first)."""
    now = now or datetime.now(UTC)
    verdicts = idle or {}
    judged_ids = {s.id for s in judged(snapshot)}
    who = "all users" if snapshot.all_users else (snapshot.user_name or snapshot.user_id)
    who = display_text(who, MAX_CELL)
    server = display_text(snapshot.server, 200)
    if not snapshot.sessions:
        return f"No live sessions for {who} on {server}."
    header = [
        *("", "NAME", "ID", "STATE", "UPTIME", "QUEUE", "CPU", "RAM", "GPU", "IDLE"),
        "SSH ADDRESS",
    ]
    if snapshot.all_users:
        header.insert(2, "USER")
    # Every cell may hold server text: one line, no escapes (a name must not clear the screen,
    # retitle the terminal or fake rows), bounded so one long name cannot stretch every row.
    at = now.timestamp()
    rows = [header] + [
        [
            display_text(cell, MAX_CELL)
            for cell in session_row(
                s,
                now,
                with_user=snapshot.all_users,
                idle=idle_cell(s, verdicts.get(s.id), judged_ids, at),
            )
        ]
        for s in snapshot.sessions
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.append(f"{plural(len(snapshot.sessions), 'live session')} for {who} on {server}")
    return "\n".join(lines)

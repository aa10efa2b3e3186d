"""The status-bar line of `clearml-tray list --status`: pure functions over a snapshot.

Text (polybar, i3blocks): the glyph and count of the listed sessions per state, e.g. `● 2 ◐ 1`,
and how many of your running sessions are idle (`● 2 ◐ 1 · 1 idle`). With `--json`, waybar's
custom-module format on one line: {"text", "tooltip", "class"}; waybar reads text and tooltip as
Pango markup, so server text in them is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tray_app.core.idle.policy import IdleVerdict, idle_mark
from tray_app.core.server.models import STATE_GLYPHS, SessionState, Snapshot
from tray_app.core.untrusted import display_text, markup_escape
from tray_app.core.wording import plural

ORDER = (SessionState.RUNNING, SessionState.STARTING, SessionState.QUEUED, SessionState.STOPPING)
TOOLTIP_ROWS = 20  # more sessions are summed up in one row
NAME_CHARS = 40


@dataclass(frozen=True, slots=True)
class StatusLine:
    text: str
    tooltip: str
    css_class: str  # idle | running | starting | stopping | error


def status_of(
    snapshot: Snapshot, now: datetime | None = None, idle: Mapping[str, IdleVerdict] | None = None
) -> StatusLine:
    """Counts per state of the listed sessions (yours, or everyone's with --all-users), and of
    your idle ones (`idle`: the verdicts of your running sessions)."""
    now = now or datetime.now(UTC)
    sessions = snapshot.sessions
    verdicts = idle or {}
    marks = {s.id: mark for s in sessions if (v := verdicts.get(s.id)) and (mark := _mark(v, now))}
    counts = {state: sum(1 for s in sessions if s.state == state) for state in ORDER}
    text = " ".join(f"{STATE_GLYPHS[state]} {n}" for state, n in counts.items() if n) or "○ 0"
    if marks:
        text += f" · {len(marks)} idle"
    if counts[SessionState.STARTING] or counts[SessionState.QUEUED]:
        css_class = "starting"
    elif counts[SessionState.RUNNING]:
        css_class = "running"
    elif counts[SessionState.STOPPING]:
        css_class = "stopping"
    else:
        css_class = "idle"
    rows = []
    for s in sessions[:TOOLTIP_ROWS]:
        uptime = s.uptime(now)
        mark = f" · {marks[s.id]}" if s.id in marks else ""
        rows.append(
            f"{STATE_GLYPHS[s.state]} {display_text(s.name, NAME_CHARS)} ({s.short_id}) "
            f"{s.state}{' ' + uptime if uptime else ''}{mark}"
        )
    if len(sessions) > TOOLTIP_ROWS:
        rows.append(f"… and {len(sessions) - TOOLTIP_ROWS} more")
    who = "all users" if snapshot.all_users else "you"
    head = (
        f"{plural(len(sessions), 'live session')} for {who} on {display_text(snapshot.server, 200)}"
    )
    return StatusLine(text, "\n".join([head, *rows]), css_class)


def _mark(verdict: IdleVerdict, now: datetime) -> str:
    return idle_mark(verdict, now.timestamp())


def status_of_failure(reason: str) -> StatusLine:
    """`reason` is already safe to show (redacted, one line)."""
    return StatusLine("⚠", reason, "error")


def render_line(line: StatusLine, as_json: bool) -> str:
    if not as_json:
        return line.text
    document = {
        "text": markup_escape(line.text),
        "tooltip": markup_escape(line.tooltip, multiline=True),
        "class": line.css_class,
    }
    return json.dumps(document, ensure_ascii=False)

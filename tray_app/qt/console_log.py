"""The server console log of a session as text for the log window: oldest first, like a
terminal, so the newest line is at the bottom and multi-line banners read top to bottom."""

from __future__ import annotations

from datetime import UTC, datetime

from tray_app.core.server.models import LogLine

_OLDEST = datetime.min.replace(tzinfo=UTC)


def format_lines(lines: list[LogLine]) -> str:
    # The server sends the newest first; a stable sort keeps same-stamp lines in its order.
    ordered = sorted(reversed(lines), key=lambda line: line.timestamp or _OLDEST)
    out = []
    for line in ordered:
        stamp = line.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S") if line.timestamp else ""
        out.append(f"{stamp}  {line.msg.rstrip()}")
    return "\n".join(out) if out else "(the log is empty)"

"""The server console log of a session as text for the log window (newest first)."""

from __future__ import annotations

from tray_app.core.models import LogLine


def format_lines(lines: list[LogLine]) -> str:
    out = []
    for line in lines:
        stamp = line.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S") if line.timestamp else ""
        out.append(f"{stamp}  {line.msg.rstrip()}")
    return "\n".join(out) if out else "(the log is empty)"

"""Whether the tray can reach a desktop, decided before Qt is imported.

Without a display Qt's xcb plugin dies with "xcb-cursor0 is needed" or "could not connect to
display", which names a library the user does not miss. Say what is actually missing instead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

NO_DISPLAY = (
    "clearml-tray: no graphical desktop found (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
    "Start it from a desktop session, or over ssh with X forwarding (ssh -X).\n"
    "Without a desktop, `clearml-tray list` shows your sessions in the terminal."
)


def display_problem(env: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """The message to print when a Linux/BSD desktop is missing; None when one may be there
    (macOS and Windows always have one; QT_QPA_PLATFORM, e.g. offscreen, is the user's call)."""
    if platform.startswith(("win", "darwin", "cygwin")):
        return None
    if env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return NO_DISPLAY

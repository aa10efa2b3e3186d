"""Which presence backend tells the tray that nobody is looking, chosen at run time.

Linux: logind and the screensavers over D-Bus (`presence_dbus.py`). Elsewhere, or without
dbus-fast: `NoPresence` (polling never pauses; the tray still slows down when the menu has not
been opened for a while).
"""

from __future__ import annotations

import logging
import sys

from tray_app.core.presence import NoPresence, Presence

log = logging.getLogger(__name__)


def choose_presence() -> Presence:
    if sys.platform.startswith("linux"):
        try:
            from tray_app.platform.presence_dbus import DbusPresence
        except ImportError as exc:  # dbus-fast missing: an unusual install
            log.info("screen lock and sleep not followed: %s", exc)
            return NoPresence()
        return DbusPresence()
    return NoPresence()

"""Whether anybody can be looking at the tray: a locked screen or a sleeping machine means no.

The poller pauses while nobody can look (a hosted server meters API calls, and a locked desktop
left polling overnight spends them on nothing) and refreshes at once when someone is back. The
desktop says so through a backend chosen at run time (tray_app/platform/presence.py: logind
and the screensavers over D-Bus on Linux); where there is none, `NoPresence` says "present"
and never blocks.

`AwayState` is the pure part: several sources (logind's sleep signal, the session's lock hint,
each screensaver) each say what they know, and the machine counts as away when any says so.

Tested in tests/unit/test_presence.py (the D-Bus backend against stand-ins on private buses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

OnChange = Callable[[bool], None]  # called with `away` whenever it changes


class Presence(Protocol):
    @property
    def away(self) -> bool:
        """The screen is locked or the machine is going to sleep."""
        ...

    async def start(self, on_change: OnChange) -> None:
        """Begin listening; returns at once (a backend connects in the background)."""
        ...

    async def stop(self) -> None: ...


class NoPresence:
    """No way to tell here: always present, nothing to start."""

    away = False

    async def start(self, on_change: OnChange) -> None:
        return None

    async def stop(self) -> None:
        return None


class AwayState:
    """What each source says; away when any of them says locked or asleep."""

    def __init__(self, on_change: OnChange = lambda away: None) -> None:
        self._sources: dict[str, bool] = {}
        self._on_change = on_change
        self.away = False

    def report(self, source: str, away: bool) -> None:
        self._sources[source] = away
        now = any(self._sources.values())
        if now != self.away:
            self.away = now
            self._on_change(now)

    def forget(self, source: str) -> None:
        """A source went away (its bus closed): it no longer holds the tray paused."""
        if source in self._sources:
            self.report(source, False)
            del self._sources[source]

"""Tunnels opened before Connect is clicked, so that the editor opens in a moment.

`clearml-session --attach` needs a second or more before its tunnel is up (its start and SDK
import, with the password handed to its ssh ahead: `password_ahead`). Two ways take that off
the click:

- intent (on by default): when the user points at a session (its submenu opens, the quick pick
  selects it), an attach starts silently; a Connect in the next INTENT_TTL_S takes it over, else
  it ends without a word and leaves nothing behind. At most MAX_INTENTS run at once.
- warm tunnels (a setting, off by default: each costs a clearml-session and an ssh, ~95 MB):
  every running session of the user's keeps a silent tunnel while it runs.

Prewarmed tunnels post no notice, write no Host block and open no editor until a Connect
promotes them (the registry's `promote`); an attach that fails is not retried for the same
pointing, nor more often than once a minute for warm tunnels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tray_app.core.periodic import Periodic
from tray_app.core.tunnels.model import TunnelInfo, TunnelState

log = logging.getLogger(__name__)

INTENT_TTL_S = 90.0  # an unused tunnel opened on pointing lives this long after the last point
MAX_INTENTS = 2  # sessions pointed at most recently that get a tunnel
WARM_RETRY_S = 60.0  # a warm tunnel that failed is started again after this long
CHECK_EVERY_S = 5.0
_ENDED = (TunnelState.CLOSED, TunnelState.FAILED)


class PrewarmSource(Protocol):
    """The registry, as this flow sees it."""

    def tunnels(self) -> Mapping[str, TunnelInfo]: ...

    def retire(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Plan:
    start: tuple[str, ...] = ()  # session ids to attach silently
    end: tuple[str, ...] = ()  # keys of prewarmed tunnels nobody wants any more


def plan(
    *,
    now: float,
    connectable: Sequence[str],
    intents: Mapping[str, float],
    started: Mapping[str, float],
    tunnels: Mapping[str, TunnelInfo],
    warm_all: bool,
) -> Plan:
    """Which silent attaches to start and which to end.

    `connectable`: the user's running sessions; `intents`: when each was last pointed at;
    `started`: when a silent attach was last started for each.
    """
    running = set(connectable)
    fresh = sorted(
        ((at, sid) for sid, at in intents.items() if sid in running and now - at < INTENT_TTL_S),
        reverse=True,
    )[:MAX_INTENTS]
    pointed = {sid: at for at, sid in fresh}
    wanted = running if warm_all else set(pointed)
    live = {t.session_id: t for t in tunnels.values() if t.session_id and t.state not in _ENDED}

    def due(sid: str) -> bool:
        last = started.get(sid)
        if last is None:
            return True
        if sid in pointed and last < pointed[sid]:
            return True  # pointed at again since the last try
        return warm_all and now - last >= WARM_RETRY_S

    start = tuple(sid for sid in connectable if sid in wanted and sid not in live and due(sid))
    end = tuple(t.key for sid, t in live.items() if t.prewarmed and sid not in wanted)
    return Plan(start, end)


class PrewarmFlow:
    def __init__(
        self,
        tunnels: PrewarmSource,
        *,
        attach: Callable[[str, str], None],
        sessions: Callable[[], Sequence[tuple[str, str]]],
        on_intent: Callable[[], bool],
        warm_all: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        every_s: float = CHECK_EVERY_S,
    ) -> None:
        """`sessions`: (id, name) of the user's connectable sessions, newest first."""
        self._tunnels = tunnels
        self._attach = attach  # (session id, name): a silent attach (ConnectFlow.attach)
        self._sessions = sessions
        self._on_intent = on_intent
        self._warm_all = warm_all
        self._clock = clock
        self._intents: dict[str, float] = {}
        self._started: dict[str, float] = {}

        async def check() -> None:
            self.apply()

        self._periodic = Periodic(every_s, check, "prewarm check")

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    def intent(self, session_id: str) -> None:
        """The user pointed at a session: a Connect may well follow."""
        if self._on_intent():
            self._intents[session_id] = self._clock()
            self.apply()

    def apply(self) -> None:
        """Start and end silent attaches to match the sessions, the pointing and the settings."""
        now = self._clock()
        sessions = dict(self._sessions())
        todo = plan(
            now=now,
            connectable=list(sessions),
            intents=self._intents if self._on_intent() else {},
            started=self._started,
            tunnels=self._tunnels.tunnels(),
            warm_all=self._warm_all(),
        )
        for key in todo.end:
            self._tunnels.retire(key)
        for session_id in todo.start:
            log.info("opening a tunnel to %s ahead of a Connect", session_id)
            self._started[session_id] = now
            try:
                self._attach(session_id, sessions[session_id])
            except Exception:  # no clearml-session: Connect will say so in words
                log.warning("could not open a tunnel ahead to %s", session_id, exc_info=True)
        stale = now - INTENT_TTL_S
        self._intents = {s: at for s, at in self._intents.items() if at >= stale}
        self._started = {s: at for s, at in self._started.items() if s in sessions}

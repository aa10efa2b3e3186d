"""Tunnels opened before Connect is clicked, so that the editor opens in a moment.

`clearml-session --attach` needs a second or more before its tunnel is up (its start and SDK
import, with the password handed to its ssh ahead: `password_ahead`). Two ways take that off
the click:

- intent (on by default): when the user points at a session (its submenu opens, the quick pick
  selects it) and rests there for POINT_SETTLE_S, an attach starts silently; a Connect in the
  next INTENT_TTL_S takes it over, else it ends without a word and leaves nothing behind. At
  most MAX_INTENTS run at once, and at most MAX_POINTED_STARTS start in any POINTED_WINDOW_S:
  walking through the submenus with the keyboard (74 CLIs in 12 s before) starts nothing until
  the user stops on one.
- warm tunnels (a setting, off by default: each costs a clearml-session and an ssh, ~95 MB, and
  the CLI asks the server for the task every 3 s): the user's newest running sessions keep a
  silent tunnel while they run, at most `Settings.warm_tunnels_max` of them and while they use
  less than `Settings.warm_tunnels_max_mb` of memory together (measured from /proc where there
  is one); past the memory cap the ones for the oldest sessions end.

Prewarmed tunnels post no notice, write no Host block and open no editor until a Connect
promotes them (the registry's `promote`); an attach that fails is not retried for the same
pointing, nor more often than once a minute for warm tunnels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tray_app.core.periodic import Periodic
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.model import TunnelInfo, TunnelState

log = logging.getLogger(__name__)

INTENT_TTL_S = 90.0  # an unused tunnel opened on pointing lives this long after the last point
MAX_INTENTS = 2  # sessions pointed at most recently that get a tunnel
POINT_SETTLE_S = 0.4  # pointing counts once the user rests on a session this long
MAX_POINTED_STARTS = 4  # silent attaches started on pointing…
POINTED_WINDOW_S = 60.0  # …in any window this long
WARM_RETRY_S = 60.0  # a warm tunnel that failed is started again after this long
WARM_TUNNEL_MB = 95.0  # what one more warm tunnel is expected to cost before it is measured
CHECK_EVERY_S = 5.0
_ENDED = (TunnelState.CLOSED, TunnelState.FAILED)

Later = Callable[[float, Callable[[], None]], None]


class PrewarmSource(Protocol):
    """The registry, as this flow sees it."""

    def tunnels(self) -> Mapping[str, TunnelInfo]: ...

    def retire(self, key: str) -> None: ...

    def prewarmed_memory_mb(self) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class WarmCaps:
    """The Settings' caps on warm tunnels."""

    count: int = 3
    memory_mb: float = 500.0


@dataclass(frozen=True, slots=True)
class Plan:
    start: tuple[str, ...] = ()  # session ids to attach silently
    end: tuple[str, ...] = ()  # keys of prewarmed tunnels nobody wants any more


def settled_intents(intents: Mapping[str, float], now: float) -> dict[str, float]:
    """The pointings the user rested on (POINT_SETTLE_S before pointing elsewhere, or until
    now) within INTENT_TTL_S, the MAX_INTENTS most recent: session id → when."""
    ordered = sorted((at, sid) for sid, at in intents.items() if now - at < INTENT_TTL_S)
    rested = [
        (at, sid)
        for n, (at, sid) in enumerate(ordered)
        if (ordered[n + 1][0] if n + 1 < len(ordered) else now) - at >= POINT_SETTLE_S
    ]
    return {sid: at for at, sid in rested[-MAX_INTENTS:]}


def plan(
    *,
    now: float,
    connectable: Sequence[str],
    intents: Mapping[str, float],
    started: Mapping[str, float],
    tunnels: Mapping[str, TunnelInfo],
    warm_all: bool,
    pointed_starts: Sequence[float] = (),
    caps: WarmCaps | None = None,
    memory: Mapping[str, float] | None = None,
) -> Plan:
    """Which silent attaches to start and which to end.

    `connectable`: the user's running sessions, newest first; `intents`: when each was last
    pointed at; `started`: when a silent attach was last started for each; `pointed_starts`:
    when the recent attaches on pointing started (the rate limit); `memory`: what each live
    prewarmed tunnel uses (MB, by key; empty where it cannot be measured).
    """
    caps = caps or WarmCaps()
    memory = memory or {}
    running = set(connectable)
    pointed = {s: at for s, at in settled_intents(intents, now).items() if s in running}
    # A tunnel opened on pointing is kept while its session is among the latest pointed at,
    # rested on or not (only a start waits for the user to rest).
    recent = sorted((at, sid) for sid, at in intents.items() if now - at < INTENT_TTL_S)
    kept = {sid for _, sid in recent[-MAX_INTENTS:] if sid in running} | set(pointed)
    warm = [sid for sid in connectable if warm_all][: max(0, caps.count)]
    live = {t.session_id: t for t in tunnels.values() if t.session_id and t.state not in _ENDED}
    silent = {sid: t for sid, t in live.items() if t.prewarmed}

    # Past the memory cap, the warm tunnels of the oldest sessions end first.
    # A tunnel not measured yet counts as what one is expected to cost.
    used = sum(memory.get(t.key, WARM_TUNNEL_MB) for t in silent.values())
    for sid in reversed(warm[:]):
        if used <= caps.memory_mb:
            break
        tunnel = silent.get(sid)
        if tunnel is not None and sid not in pointed:
            used -= memory.get(tunnel.key, WARM_TUNNEL_MB)
            warm.remove(sid)
    wanted = set(pointed) | set(warm)

    def due(sid: str) -> bool:
        last = started.get(sid)
        if last is None:
            return True
        if sid in pointed and last < pointed[sid]:
            return True  # pointed at again since the last try
        return sid in warm and now - last >= WARM_RETRY_S

    budget = MAX_POINTED_STARTS - sum(1 for at in pointed_starts if now - at < POINTED_WINDOW_S)
    start: list[str] = []
    # One at a time, and only once every other tunnel is up: each clearml-session picks its
    # local ports (8022, 8878, …) when it starts and binds them a few seconds later, so two
    # started together take the same ports, and the loser reconnects every few seconds forever.
    if any(t.state is not TunnelState.READY for t in live.values()):
        return Plan((), tuple(t.key for sid, t in silent.items() if sid not in wanted | kept))
    # The session pointed at last first, then the warm ones, newest first.
    by_recency = sorted(pointed, key=lambda sid: pointed[sid], reverse=True)
    for sid in dict.fromkeys([*by_recency, *connectable]):
        if start:
            break
        if sid not in wanted or sid in live or not due(sid):
            continue
        if sid in pointed:
            if budget <= 0:
                continue  # pointed at too often lately: wait for the window to move on
            budget -= 1
        elif used + WARM_TUNNEL_MB > caps.memory_mb:
            continue  # one more warm tunnel would go past the memory cap
        else:
            used += WARM_TUNNEL_MB
        start.append(sid)
    end = tuple(t.key for sid, t in silent.items() if sid not in wanted | kept)
    return Plan(tuple(start), end)


def _call_later(delay: float, callback: Callable[[], None]) -> None:
    # No running loop (a test calling apply itself): the periodic check comes by.
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop().call_later(delay, callback)


class PrewarmFlow:
    def __init__(
        self,
        tunnels: PrewarmSource,
        *,
        attach: Callable[[str, str], None],
        sessions: Callable[[], Sequence[tuple[str, str]]],
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.monotonic,
        later: Later = _call_later,
        every_s: float = CHECK_EVERY_S,
    ) -> None:
        """`sessions`: (id, name) of the user's connectable sessions, newest first."""
        self._tunnels = tunnels
        self._attach = attach  # (session id, name): a silent attach (ConnectFlow.attach)
        self._sessions = sessions
        self._settings = settings  # tunnel_on_intent, warm_tunnels and their caps
        self._clock = clock
        self._later = later
        self._intents: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self._pointed_starts: list[float] = []
        self._memory: dict[str, float] = {}  # the last measure, by tunnel key

        async def check() -> None:
            self._memory = await asyncio.to_thread(self._tunnels.prewarmed_memory_mb)
            self.apply()

        self._periodic = Periodic(every_s, check, "prewarm check")

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    def intent(self, session_id: str) -> None:
        """The user pointed at a session: a Connect may well follow, if they rest there."""
        if self._settings().tunnel_on_intent:
            self._intents[session_id] = self._clock()
            # A hair past the settle time, so that the pointing has settled when it runs.
            self._later(POINT_SETTLE_S * 1.05, self.apply)

    def apply(self) -> None:
        """Start and end silent attaches to match the sessions, the pointing and the settings."""
        now, settings = self._clock(), self._settings()
        sessions = dict(self._sessions())
        self._pointed_starts = [t for t in self._pointed_starts if now - t < POINTED_WINDOW_S]
        intents = self._intents if settings.tunnel_on_intent else {}
        todo = plan(
            now=now,
            connectable=list(sessions),
            intents=intents,
            started=self._started,
            tunnels=self._tunnels.tunnels(),
            warm_all=settings.warm_tunnels,
            pointed_starts=self._pointed_starts,
            caps=WarmCaps(settings.warm_tunnels_max, settings.warm_tunnels_max_mb),
            memory=self._memory,
        )
        pointed = settled_intents(intents, now)
        for key in todo.end:
            self._tunnels.retire(key)
        for session_id in todo.start:
            log.info("opening a tunnel to %s ahead of a Connect", session_id)
            self._started[session_id] = now
            if session_id in pointed:
                self._pointed_starts.append(now)
            try:
                self._attach(session_id, sessions[session_id])
            except Exception:  # no clearml-session: Connect will say so in words
                log.warning("could not open a tunnel ahead to %s", session_id, exc_info=True)
        stale = now - INTENT_TTL_S
        self._intents = {s: at for s, at in self._intents.items() if at >= stale}
        self._started = {s: at for s, at in self._started.items() if s in sessions}

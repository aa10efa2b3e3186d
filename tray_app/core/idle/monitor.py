"""Acts on the idle policy: warns once per idle period, stops after the grace period.

Qt-free and async. The app calls `check(snapshot)` after each refresh (one `workers.get_stats`
request per ten workers of the user's running sessions) and turns the returned actions into
notifications or stops. Only the current user's own sessions are ever acted on. Time is
injected so that tests can move it without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tray_app.core.idle.policy import IdleState, IdleVerdict, evaluate, evidence, parse_worker_stats
from tray_app.core.server.models import Session, Snapshot
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 60  # bucket size asked from workers.get_stats (the server clamps to >= 40)
# The server groups the answer with an Elasticsearch terms aggregation of default size: at most
# 10 workers come back per request, so larger sets are asked for in chunks.
STATS_WORKERS_PER_REQUEST = 10
STATS_REQUESTS_IN_FLIGHT = 2
STATS_ITEMS = (
    {"key": "cpu_usage", "aggregation": "avg"},
    {"key": "gpu_usage", "aggregation": "avg"},
    # The evidence that a bucket holds a report at all (see idle/policy.py): zero-filled buckets
    # read 0.0 for every metric, a reporting machine never uses 0 MB.
    {"key": "memory_used", "aggregation": "avg"},
    # ... and that a GPU's 0 % was read: a GPU is never at 0 °C.
    {"key": "gpu_temperature", "aggregation": "avg"},
)


def _verdicts(
    data: Sequence[Mapping[str, Any]], sessions: list[Session], now: float, policy: IdlePolicy
) -> dict[str, IdleVerdict]:
    series: dict[str, Any] = {}
    for answer in data:
        series.update(parse_worker_stats(answer))
    return {
        s.id: evaluate(
            series.get(s.worker_id, []),
            now,
            bool(s.gpu_count),
            policy,
            started=s.started.timestamp() if s.started else None,
        )
        for s in sessions
    }


@dataclass(frozen=True, slots=True)
class IdleAction:
    kind: str  # "warn" | "stop"
    session_id: str
    session_name: str
    verdict: IdleVerdict
    reason: str


@dataclass(slots=True)
class _Track:
    warned_at: float | None = None
    keep_alive_until: float = 0.0
    stop_requested: bool = False


class IdleMonitor:
    def __init__(
        self,
        service: SessionService,
        policy: Callable[[], IdlePolicy],
        clock: Callable[[], float] = time.time,
        *,
        stop_wait_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._service = service
        self._policy = policy
        self._clock = clock
        self._stop_wait_s = stop_wait_s
        self._sleep = sleep
        self._tracks: dict[str, _Track] = {}
        self.verdicts: dict[str, IdleVerdict] = {}

    @property
    def service(self) -> SessionService:
        return self._service

    @staticmethod
    def candidates(snapshot: Snapshot) -> list[Session]:
        """The sessions the policy looks at: the user's own, running on a known worker."""
        return [s for s in snapshot.own if s.status == "in_progress" and s.worker_id]

    def keep_alive(self, session_id: str, until: float) -> None:
        track = self._tracks.setdefault(session_id, _Track())
        track.keep_alive_until = until
        track.warned_at = None
        log.info("idle policy: keep %s alive until %s", session_id, time.ctime(until))

    def stop_pending(self) -> bool:
        """A session was warned and may be stopped when its grace period ends."""
        return self._policy().mode == IdleMode.NOTIFY_THEN_STOP and any(
            t.warned_at is not None and not t.stop_requested for t in self._tracks.values()
        )

    def kept_alive_until(self, session_id: str) -> float | None:
        track = self._tracks.get(session_id)
        if track and track.keep_alive_until > self._clock():
            return track.keep_alive_until
        return None

    async def check(self, snapshot: Snapshot) -> list[IdleAction]:
        policy = self._policy()
        sessions = self.candidates(snapshot)
        live = {s.id for s in sessions}
        for gone in set(self._tracks) - live:
            del self._tracks[gone]
        self.verdicts = {k: v for k, v in self.verdicts.items() if k in live}
        if policy.mode == IdleMode.OFF or not sessions:
            self.verdicts.clear()
            return []
        now = self._clock()
        window = policy.window_minutes * 60.0
        workers = sorted({s.worker_id for s in sessions})
        chunks = [
            workers[i : i + STATS_WORKERS_PER_REQUEST]
            for i in range(0, len(workers), STATS_WORKERS_PER_REQUEST)
        ]
        # A few in flight at a time: an aggregation per request is costly for the server,
        # and a burst of them would queue the next refresh's request behind all of them.
        gate = asyncio.Semaphore(STATS_REQUESTS_IN_FLIGHT)

        async def stats(chunk: list[str]) -> dict[str, Any]:
            async with gate:
                return await self._service.client.call(
                    "workers.get_stats",
                    {
                        "worker_ids": chunk,
                        "from_date": now - window - 10 * STATS_INTERVAL_S,
                        "to_date": now,
                        "interval": STATS_INTERVAL_S,
                        "items": [dict(item) for item in STATS_ITEMS],
                    },
                )

        data = await asyncio.gather(*(stats(chunk) for chunk in chunks))
        # Pure number crunching over every sample of every worker: off the event loop, which
        # then gets the GIL back every few milliseconds (see SessionService.snapshot).
        verdicts = await asyncio.to_thread(_verdicts, data, sessions, now, policy)
        actions: list[IdleAction] = []
        for session in sessions:
            verdict = verdicts[session.id]
            self.verdicts[session.id] = verdict
            track = self._tracks.setdefault(session.id, _Track())
            if verdict.state != IdleState.IDLE:
                track.warned_at = None
                track.stop_requested = False
                continue
            if now < track.keep_alive_until:
                continue
            if track.warned_at is None:
                track.warned_at = now
                log.info(
                    "idle policy: %s is idle: %s (%s)",
                    session.id,
                    verdict.reason,
                    evidence(verdict),
                )
                actions.append(
                    IdleAction("warn", session.id, session.name, verdict, verdict.reason)
                )
            elif (
                policy.mode == IdleMode.NOTIFY_THEN_STOP
                and not track.stop_requested
                and now - track.warned_at >= policy.grace_minutes * 60.0
            ):
                track.stop_requested = True
                reason = (
                    f"idle ({verdict.reason}; {evidence(verdict)}) and not kept alive within "
                    f"the {policy.grace_minutes} min grace period"
                )
                actions.append(IdleAction("stop", session.id, session.name, verdict, reason))
        return actions

    async def stop(self, session_id: str, reason: str) -> str:
        """tasks.stop; if the worker has not stopped it after a while, tasks.stopped (force)."""
        log.warning("idle policy: stopping session %s: %s", session_id, reason)
        status = await self._service.stop(session_id)
        if status == "in_progress":
            await self._sleep(self._stop_wait_s)
            # Still "stopping" → SessionService.stop forces it; stopped meanwhile → no request.
            status = await self._service.stop(session_id)
        log.info("idle policy: session %s is %s", session_id, status)
        return status

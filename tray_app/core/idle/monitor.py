"""Acts on the idle policy: warns once per idle period, stops after the grace period, and (opt-in)
tells when a session's GPUs went quiet after work.

Qt-free and async. The app calls `check(snapshot)` after each refresh (one `workers.get_stats`
request per ten workers of the user's running sessions) and turns the returned actions into
notifications or stops. Only the current user's own sessions are ever acted on, and only a
session whose verdict is idle is ever warned about or stopped. Time is injected so that tests
can move it without sleeping. `session_verdicts` is the same requests and policy for
`clearml-tray list` without a tray.

Tested in tests/unit/idle/test_monitor.py and tests/unit/idle/test_machine_shapes.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tray_app.core.idle.machine import machine_of, worker_hosts
from tray_app.core.idle.policy import (
    JOB_BUSY_S,
    JOB_QUIET_S,
    OFF_REASON,
    IdleState,
    IdleVerdict,
    evaluate,
    evidence,
    gpus_went_quiet,
    judged,
)
from tray_app.core.idle.series import STAT_ITEMS, Sample, parse_worker_stats
from tray_app.core.server.errors import ClearMLError
from tray_app.core.server.models import Session, Snapshot

if TYPE_CHECKING:
    from tray_app.core.server.api import ClearMLClient
    from tray_app.core.server.sessions import SessionService
    from tray_app.core.settings.settings import IdlePolicy

# IdleMode's values (a StrEnum equals its value): `list` without a tray does without importing
# the settings module until it reads the file.
OFF = "off"
NOTIFY_THEN_STOP = "notify_then_stop"

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 60  # bucket size asked from workers.get_stats (the server clamps to >= 40)
# The server groups the answer with an Elasticsearch terms aggregation of default size: at most
# 10 workers come back per request, so larger sets are asked for in chunks.
STATS_WORKERS_PER_REQUEST = 10
STATS_REQUESTS_IN_FLIGHT = 2
# `list` waits for nothing else, but a burst of hundreds of requests at once would open as many
# connections (one per worker thread of the plain exchange) on the server: a few at a time.
LIST_STATS_IN_FLIGHT = 8


def stats_request(workers: Sequence[str], now: float, policy: IdlePolicy) -> dict[str, Any]:
    """The body of one `workers.get_stats` request: the window (or the job-finished span, if
    longer) and ten more minutes, in 60 s buckets, every GPU on its own."""
    span = max(policy.window_minutes * 60.0, JOB_BUSY_S + JOB_QUIET_S) + 10 * STATS_INTERVAL_S
    return {
        "worker_ids": list(workers),
        "from_date": now - span,
        "to_date": now,
        "interval": STATS_INTERVAL_S,
        "items": [{"key": key, "aggregation": "avg"} for key in STAT_ITEMS],
        # Per GPU from server 2.1 (API 2.32) on; before, per variant. Each server ignores the
        # other's flag.
        "split_by_resource": True,
        "split_by_variant": True,
    }


async def fetch_stats(
    client: ClearMLClient,
    workers: Sequence[str],
    now: float,
    policy: IdlePolicy,
    in_flight: int = STATS_REQUESTS_IN_FLIGHT,
    each: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """The `workers.get_stats` answers for `workers`, ten a request; `each` sees every answer
    as it arrives (while the others are still on their way)."""
    ordered = sorted(set(workers))
    chunks = [
        ordered[i : i + STATS_WORKERS_PER_REQUEST]
        for i in range(0, len(ordered), STATS_WORKERS_PER_REQUEST)
    ]
    # The tray sends a few at a time: an aggregation per request is costly for the server, and
    # a burst of them would queue its next refresh's request behind all of them.
    gate = asyncio.Semaphore(max(1, in_flight))

    async def stats(chunk: list[str]) -> dict[str, Any]:
        async with gate:
            answer = await client.call("workers.get_stats", stats_request(chunk, now, policy))
        if each is not None:
            each(answer)
        return answer

    return list(await asyncio.gather(*(stats(chunk) for chunk in chunks)))


@dataclass(frozen=True, slots=True)
class Judgement:
    verdicts: dict[str, IdleVerdict]
    went_quiet: dict[str, float]  # session id → when its GPUs went quiet after work
    hosts: dict[str, str]  # session id → its machine's name


def judge(
    data: Sequence[Mapping[str, Any]],
    snapshot: Snapshot,
    sessions: Sequence[Session],
    now: float,
    policy: IdlePolicy,
) -> Judgement:
    """Pure number crunching over every sample of every worker (the tray runs it off the
    event loop)."""
    series: dict[str, list[Sample]] = {}
    for answer in data:
        series.update(parse_worker_stats(answer))
    return judge_series(series, snapshot, sessions, now, policy)


def judge_series(
    series: Mapping[str, list[Sample]],
    snapshot: Snapshot,
    sessions: Sequence[Session],
    now: float,
    policy: IdlePolicy,
) -> Judgement:
    verdicts: dict[str, IdleVerdict] = {}
    went_quiet: dict[str, float] = {}
    hosts: dict[str, str] = {}
    workers = frozenset(snapshot.workers)
    shared = worker_hosts(workers)
    for session in sessions:
        machine = machine_of(session, workers, shared)
        samples = series.get(session.worker_id, [])
        started = session.started.timestamp() if session.started else None
        verdicts[session.id] = evaluate(samples, now, machine, policy, started=started)
        hosts[session.id] = machine.host
        if policy.job_finished_notice:
            quiet = gpus_went_quiet(samples, now, machine, policy, started=started)
            if quiet is not None:
                went_quiet[session.id] = quiet
    return Judgement(verdicts, went_quiet, hosts)


def _off(sessions: Sequence[Session]) -> dict[str, IdleVerdict]:
    return {s.id: IdleVerdict(IdleState.UNKNOWN, OFF_REASON) for s in sessions}


async def session_verdicts(
    client: ClearMLClient, snapshot: Snapshot, policy: IdlePolicy, now: float | None = None
) -> dict[str, IdleVerdict]:
    """The verdict of each of the user's running sessions, as the tray would judge them."""
    sessions = judged(snapshot)
    if not sessions or policy.mode == OFF:
        return _off(sessions)
    now = time.time() if now is None else now
    workers = [s.worker_id for s in sessions]
    series: dict[str, list[Sample]] = {}
    try:
        # `list` waits for nothing else: most often every request at once (one more round
        # trip, not more), each answer parsed while the next ones are on their way.
        await fetch_stats(
            client,
            workers,
            now,
            policy,
            in_flight=LIST_STATS_IN_FLIGHT,
            each=lambda answer: series.update(parse_worker_stats(answer)),
        )
    except ClearMLError as exc:
        reason = f"the machine metrics could not be read ({exc})"
        return {s.id: IdleVerdict(IdleState.UNKNOWN, reason) for s in sessions}
    return judge_series(series, snapshot, sessions, now, policy).verdicts


@dataclass(frozen=True, slots=True)
class IdleAction:
    kind: str  # "warn" | "stop" | "finished"
    session_id: str
    session_name: str
    verdict: IdleVerdict
    reason: str
    quiet_since: float | None = None  # "finished": when the GPUs went quiet
    host: str = ""

    @property
    def label(self) -> str:
        """The session as a notice names it: names repeat, the short id does not."""
        return f"{self.session_name} ({self.session_id[:8]})"


@dataclass(slots=True)
class _Track:
    warned_at: float | None = None
    keep_alive_until: float = 0.0
    stop_requested: bool = False
    quiet_since: float | None = None  # the GPUs' quiet stretch already told about


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

    def keep_alive(self, session_id: str, until: float) -> None:
        track = self._tracks.setdefault(session_id, _Track())
        track.keep_alive_until = until
        track.warned_at = None
        log.info("idle policy: keep %s alive until %s", session_id, time.ctime(until))

    def stop_pending(self) -> bool:
        """A session was warned and may be stopped when its grace period ends."""
        return self._policy().mode == NOTIFY_THEN_STOP and any(
            t.warned_at is not None and not t.stop_requested for t in self._tracks.values()
        )

    def kept_alive_until(self, session_id: str) -> float | None:
        track = self._tracks.get(session_id)
        if track and track.keep_alive_until > self._clock():
            return track.keep_alive_until
        return None

    async def check(self, snapshot: Snapshot) -> list[IdleAction]:
        policy = self._policy()
        sessions = judged(snapshot)
        live = {s.id for s in sessions}
        for gone in set(self._tracks) - live:
            del self._tracks[gone]
        self.verdicts = {k: v for k, v in self.verdicts.items() if k in live}
        off = policy.mode == OFF
        if not sessions or (off and not policy.job_finished_notice):
            self.verdicts = _off(sessions)
            return []
        now = self._clock()
        data = await fetch_stats(self._service.client, [s.worker_id for s in sessions], now, policy)
        found = await asyncio.to_thread(judge, data, snapshot, sessions, now, policy)
        self.verdicts = _off(sessions) if off else found.verdicts
        actions: list[IdleAction] = []
        for session in sessions:
            verdict = self.verdicts[session.id]
            track = self._tracks.setdefault(session.id, _Track())
            quiet = found.went_quiet.get(session.id)
            if quiet is not None and quiet != track.quiet_since:
                track.quiet_since = quiet
                actions.append(
                    IdleAction(
                        "finished",
                        session.id,
                        session.name,
                        verdict,
                        verdict.reason,
                        quiet_since=quiet,
                        host=found.hosts.get(session.id, ""),
                    )
                )
            action = self._act(session, verdict, track, now, policy)
            if action is not None:
                actions.append(action)
        return actions

    def _act(
        self, session: Session, verdict: IdleVerdict, track: _Track, now: float, policy: IdlePolicy
    ) -> IdleAction | None:
        # Only an idle verdict is ever acted on: busy and unknown reset the warning.
        if verdict.state != IdleState.IDLE:
            track.warned_at = None
            track.stop_requested = False
            return None
        if now < track.keep_alive_until:
            return None
        if track.warned_at is None:
            track.warned_at = now
            log.info(
                "idle policy: %s is idle: %s (%s)", session.id, verdict.reason, evidence(verdict)
            )
            return IdleAction("warn", session.id, session.name, verdict, verdict.reason)
        if (
            policy.mode == NOTIFY_THEN_STOP
            and not track.stop_requested
            and now - track.warned_at >= policy.grace_minutes * 60.0
        ):
            track.stop_requested = True
            reason = (
                f"idle ({verdict.reason}; {evidence(verdict)}) and not kept alive within "
                f"the {policy.grace_minutes} min grace period"
            )
            return IdleAction("stop", session.id, session.name, verdict, reason)
        return None

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

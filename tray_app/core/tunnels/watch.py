"""Tunnels that tell the truth: a ready tunnel whose remote end is gone is noticed and healed.

clearml-session only notices a dead tunnel when its own ssh exits, which after a laptop suspend
or a half-open connection takes up to ~100 s (ServerAliveInterval 10 × 10), and meanwhile the
menu would say "ready" while `ssh` is refused. So every few seconds each ready tunnel's local
SSH port is asked for the remote sshd's banner ("SSH-2.0-…"): through a live tunnel it comes
at once; through a dead one the connection is refused, closed or silent. Two failed probes in a
row (about 10 s) begin an *outage*: the CLI is asked to reconnect, again with a growing pause
(5, 10, 20, 40, then every 60 s) while it stays broken.

An outage ends only when the tunnel is ready and answers STABLE_PROBES probes in a row (~15 s):
one good probe of a flapping tunnel neither resets the pause nor starts a new outage, so a
tunnel that comes and goes is reconnected at most once a minute, not every 15 s. A tunnel that
was up and is reconnecting on its own (the CLI noticed first) is in an outage too.

The user hears about an outage once, and only if it lasts: after LOST_NOTICE_AFTER_S (~30 s)
one "Session unreachable", and when it is over one "Session reachable again" that replaces it;
nothing in between, and nothing at all for a blip shorter than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tray_app.core.periodic import Periodic
from tray_app.core.ports import Notify
from tray_app.core.tunnels.model import TunnelInfo, TunnelState

log = logging.getLogger(__name__)

PROBE_EVERY_S = 5.0
PROBE_TIMEOUT_S = 4.0
FAILURES_TO_LOSE = 2  # probes in a row: ~10 s with the default interval
STABLE_PROBES = 3  # good probes in a row that end an outage: ~15 s
LOST_NOTICE_AFTER_S = 30.0  # an outage shorter than this passes without a word
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 60.0

Probe = Callable[[int], Awaitable[bool]]


class Reconnectable(Protocol):
    def tunnels(self) -> Mapping[str, TunnelInfo]: ...

    def reconnect(self, key: str, reason: str = "Reconnecting") -> None: ...


async def ssh_banner(
    port: int, host: str = "127.0.0.1", timeout_s: float = PROBE_TIMEOUT_S
) -> bool:
    """True when an SSH server answers through the local end of the tunnel."""
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            line = await reader.readline()
        return line.startswith(b"SSH-")
    except (OSError, TimeoutError, ValueError):
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@dataclass
class _Health:
    failures: int = 0  # failed probes in a row
    failing_since: float | None = None  # when the current run of failed probes began
    lost_at: float | None = None  # when the outage began; None: no outage
    reconnects: int = 0  # asked for during this outage
    next_retry: float = 0.0
    good: int = 0  # good probes in a row during an outage
    notified: bool = False  # "Session unreachable" was posted for this outage


def retry_pause(reconnects: int) -> float:
    """Seconds before the next reconnect after `reconnects` that did not help (capped)."""
    return min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** min(reconnects, 16))


class TunnelWatch:
    def __init__(
        self,
        tunnels: Reconnectable,
        notify: Notify,
        *,
        probe: Probe = ssh_banner,
        every_s: float = PROBE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tunnels = tunnels
        self._notify = notify
        self._probe = probe
        self._clock = clock
        self._health: dict[str, _Health] = {}
        self._periodic = Periodic(every_s, self.check_once, "tunnel check")

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def check_once(self) -> None:
        """Probe every ready tunnel once; reconnect the lost ones; tell the user about an
        outage that lasts, and about its end."""
        tunnels = dict(self._tunnels.tunnels())
        for key in list(self._health):
            if key not in tunnels or tunnels[key].state in (TunnelState.CLOSED, TunnelState.FAILED):
                del self._health[key]  # ended: the registry says how; an outage ends with it
        # A prewarmed tunnel nobody uses yet is left to the CLI's own reconnects: no notices.
        watched = [t for t in tunnels.values() if t.local_ssh_port and not t.prewarmed]
        ready = [t for t in watched if t.state == TunnelState.READY]
        results = await asyncio.gather(*(self._probe(int(t.local_ssh_port or 0)) for t in ready))
        answers = {t.key: ok for t, ok in zip(ready, results, strict=True)}
        now = self._clock()
        for tunnel in watched:
            if tunnel.key in answers:
                health = self._health.setdefault(tunnel.key, _Health())
                if answers[tunnel.key]:
                    self._answered(tunnel, health, now)
                else:
                    self._missed(tunnel, health, now)
            elif tunnel.key in self._health:
                # Up before, reconnecting now (after our request or on the CLI's own).
                health = self._health[tunnel.key]
                health.good = 0
                if health.lost_at is None:
                    health.lost_at = health.failing_since or now
            else:
                continue  # never up yet: its start is the registry's business
            health = self._health[tunnel.key]  # a new one if the outage just ended
            if (
                health.lost_at is not None
                and health.good == 0  # not while it is answering again
                and not health.notified
                and now - health.lost_at >= LOST_NOTICE_AFTER_S
            ):
                health.notified = True
                self._notify.notify(
                    "tunnel_problems",
                    "Session unreachable",
                    f"{tunnel.label or tunnel.key}: its SSH tunnel has not answered for "
                    f"{_duration(now - health.lost_at)}; the tray keeps reconnecting it.",
                    critical=True,
                    tag=_tag(tunnel.key),
                )

    def _answered(self, tunnel: TunnelInfo, health: _Health, now: float) -> None:
        health.failures, health.failing_since = 0, None
        if health.lost_at is None:
            return
        health.good += 1
        if health.good < STABLE_PROBES:
            return  # one good probe of a flapping tunnel does not end the outage
        log.info("tunnel %s answers again after %s", tunnel.key, _duration(now - health.lost_at))
        if health.notified:
            self._notify.notify(
                "tunnel_problems",
                "Session reachable again",
                f"{tunnel.label or tunnel.key}: its SSH tunnel answers again (it was down for "
                f"{_duration(now - health.lost_at)}).",
                tag=_tag(tunnel.key),
            )
        self._health[tunnel.key] = _Health()

    def _missed(self, tunnel: TunnelInfo, health: _Health, now: float) -> None:
        health.good = 0
        health.failures += 1
        if health.failing_since is None:
            health.failing_since = now
        if health.failures < FAILURES_TO_LOSE:
            return
        if health.lost_at is None:
            health.lost_at = health.failing_since
        if now >= health.next_retry:
            self._reconnect(tunnel, health, now)

    def _reconnect(self, tunnel: TunnelInfo, health: _Health, now: float) -> None:
        log.warning(
            "tunnel %s (localhost:%s) does not answer; reconnecting (attempt %d)",
            tunnel.key,
            tunnel.local_ssh_port,
            health.reconnects + 1,
        )
        self._tunnels.reconnect(tunnel.key, "Connection lost; reconnecting")
        health.next_retry = now + retry_pause(health.reconnects)
        health.reconnects += 1
        health.failures = 0


def _tag(key: str) -> str:
    """One notification per tunnel's outage: "reachable again" replaces "unreachable"."""
    return f"tunnel-outage-{key}"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"

"""Tunnels that tell the truth: a ready tunnel whose remote end is gone is noticed and healed.

clearml-session only notices a dead tunnel when its own ssh exits, which after a laptop suspend
or a half-open connection takes up to ~100 s (ServerAliveInterval 10 × 10), and meanwhile the
menu would say "ready" while `ssh` is refused. So every few seconds each ready tunnel's local
SSH port is asked for the remote sshd's banner ("SSH-2.0-…"): through a live tunnel it comes
at once; through a dead one the connection is refused, closed or silent. Two failed probes in a
row (about 10 s) mark the tunnel lost and ask the CLI to reconnect, again with a growing pause
(5, 10, 20, 40, 60 s) while it stays broken, and the user hears about it once.
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
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 60.0
NOTIFY_AFTER = 3  # reconnects that did not bring the tunnel back

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
    failures: int = 0
    reconnects: int = 0  # since the tunnel was last seen healthy
    next_retry: float = 0.0
    notified: bool = False


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
        """Probe every ready tunnel once; reconnect the ones that are lost."""
        tunnels = dict(self._tunnels.tunnels())
        for key in list(self._health):
            if key not in tunnels or tunnels[key].state in (TunnelState.CLOSED, TunnelState.FAILED):
                del self._health[key]
        # A prewarmed tunnel nobody uses yet is left to the CLI's own reconnects: no notices.
        ready = [
            t
            for t in tunnels.values()
            if t.state == TunnelState.READY and t.local_ssh_port and not t.prewarmed
        ]
        results = await asyncio.gather(*(self._probe(int(t.local_ssh_port or 0)) for t in ready))
        now = self._clock()
        for tunnel, ok in zip(ready, results, strict=True):
            health = self._health.setdefault(tunnel.key, _Health())
            if ok:
                if health.reconnects:
                    log.info("tunnel %s answers again", tunnel.key)
                self._health[tunnel.key] = _Health()
                continue
            health.failures += 1
            if health.failures >= FAILURES_TO_LOSE and now >= health.next_retry:
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
        if health.reconnects >= NOTIFY_AFTER and not health.notified:
            health.notified = True
            self._notify.notify(
                "tunnel_problems",
                "Session unreachable",
                f"{tunnel.label or tunnel.key}: its SSH tunnel stopped answering; the tray keeps "
                "reconnecting it.",
                critical=True,
            )

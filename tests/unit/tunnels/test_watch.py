"""A ready tunnel whose remote end is gone is noticed, reconnected with backoff, reported once."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from support.recorders import Notices

from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.watch import TunnelWatch, retry_pause, ssh_banner


class Launcher:
    def __init__(self, *infos: TunnelInfo) -> None:
        self.infos = {i.key: i for i in infos}
        self.reconnects: list[tuple[str, str]] = []

    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return self.infos

    def reconnect(self, key: str, reason: str = "Reconnecting") -> None:
        self.reconnects.append((key, reason))


def tunnel(port: int = 8022) -> TunnelInfo:
    return TunnelInfo("s1", "s1", TunnelState.READY, label="gpu box", local_ssh_port=port)


async def _serve(handler: Any) -> tuple[asyncio.AbstractServer, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_the_banner_probe_tells_a_live_tunnel_from_a_dead_one() -> None:
    async def sshd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    async def dead_channel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # what ssh's -L does when the remote end cannot be reached

    held: list[asyncio.StreamWriter] = []

    async def half_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, never answers: a suspended laptop's tunnel

    live, live_port = await _serve(sshd)
    dead, dead_port = await _serve(dead_channel)
    silent, silent_port = await _serve(half_open)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        refused_port = free.getsockname()[1]
    try:
        assert await ssh_banner(live_port) is True
        assert await ssh_banner(dead_port) is False
        assert await ssh_banner(silent_port, timeout_s=0.3) is False
        assert await ssh_banner(refused_port) is False
    finally:
        for server in (live, dead, silent):
            server.close()
        for writer in held:
            writer.close()


async def test_two_failed_probes_reconnect_with_backoff_and_one_notice() -> None:
    launcher, notices = Launcher(tunnel()), Notices()
    now = [0.0]
    answers = {"ok": False}

    async def probe(port: int) -> bool:
        return answers["ok"]

    watch = TunnelWatch(launcher, notices, probe=probe, clock=lambda: now[0])

    async def tick(seconds: float = 5.0) -> None:
        now[0] += seconds
        await watch.check_once()

    await tick()
    assert launcher.reconnects == []  # one miss is not enough
    await tick()
    assert launcher.reconnects == [("s1", "Connection lost; reconnecting")]
    times = [now[0]]
    for _ in range(40):  # it stays broken (the CLI brings it back "ready", the probe fails)
        before = len(launcher.reconnects)
        await tick()
        if len(launcher.reconnects) > before:
            times.append(now[0])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [10.0, 10.0, 20.0, 40.0] and max(gaps) <= 65.0
    assert [n[1] for n in notices.sent] == ["Session unreachable"]  # once, however long

    answers["ok"] = True  # healthy again: the pause and the notice start over
    await tick()
    count = len(launcher.reconnects)
    answers["ok"] = False
    await tick(1.0)
    await tick(1.0)
    assert len(launcher.reconnects) == count + 1  # no leftover pause from the earlier outage


async def test_only_ready_tunnels_are_probed_and_ended_ones_are_forgotten() -> None:
    probed: list[int] = []

    async def probe(port: int) -> bool:
        probed.append(port)
        return False

    launcher = Launcher(replace(tunnel(9000), state=TunnelState.CONNECTING), tunnel(9001))
    watch = TunnelWatch(launcher, Notices(), probe=probe)
    await watch.check_once()
    assert probed == [9001]
    launcher.infos = {}
    await watch.check_once()
    assert probed == [9001] and not watch._health


def test_the_pause_grows_and_is_capped_without_overflow() -> None:
    assert [retry_pause(n) for n in range(5)] == [5.0, 10.0, 20.0, 40.0, 60.0]
    assert retry_pause(10_000) == 60.0

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


class Rig:
    """A watch on one tunnel, a clock moved by hand, probes answered as told."""

    def __init__(self, info: TunnelInfo | None = None) -> None:
        self.launcher, self.notices = Launcher(info or tunnel()), Notices()
        self.now = 0.0
        self.ok = True

        async def probe(port: int) -> bool:
            return self.ok

        self.watch = TunnelWatch(self.launcher, self.notices, probe=probe, clock=lambda: self.now)

    async def tick(self, seconds: float = 5.0, ok: bool | None = None) -> None:
        if ok is not None:
            self.ok = ok
        self.now += seconds
        await self.watch.check_once()

    def titles(self) -> list[str]:
        return [n[1] for n in self.notices.sent]

    def set_state(self, state: TunnelState) -> None:
        self.launcher.infos["s1"] = replace(self.launcher.infos["s1"], state=state)


async def test_two_failed_probes_reconnect_with_backoff_and_one_notice() -> None:
    rig = Rig()
    await rig.tick(ok=False)
    assert rig.launcher.reconnects == []  # one miss is not enough
    await rig.tick()
    assert rig.launcher.reconnects == [("s1", "Connection lost; reconnecting")]
    times = [rig.now]
    for _ in range(40):  # it stays broken (the CLI brings it back "ready", the probe fails)
        before = len(rig.launcher.reconnects)
        await rig.tick()
        if len(rig.launcher.reconnects) > before:
            times.append(rig.now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [10.0, 10.0, 20.0, 40.0] and max(gaps) <= 65.0
    assert rig.titles() == ["Session unreachable"]  # once, however long

    for _ in range(3):  # healthy again for ~15 s: the outage is over, and the user told so
        await rig.tick(ok=True)
    assert rig.titles() == ["Session unreachable", "Session reachable again"]
    count = len(rig.launcher.reconnects)
    await rig.tick(1.0, ok=False)
    await rig.tick(1.0)
    assert len(rig.launcher.reconnects) == count + 1  # no leftover pause from the earlier outage


async def test_one_good_probe_of_a_flapping_tunnel_keeps_the_pause_and_the_silence() -> None:
    """A tunnel that answers every other probe was reconnected ~240 times an hour, without a
    word: the outage now lasts until it answers steadily, the pause keeps growing, and the
    user hears of it once."""
    rig = Rig()
    for step in range(720):  # one hour of probes every 5 s, one good, two bad, …
        await rig.tick(ok=step % 3 == 0)
    assert len(rig.launcher.reconnects) <= 65  # at most one a minute
    assert rig.titles() == ["Session unreachable"]


async def test_an_outage_shorter_than_30_s_passes_without_a_word() -> None:
    rig = Rig()
    await rig.tick()
    for _ in range(4):  # ~20 s without an answer
        await rig.tick(ok=False)
    assert rig.launcher.reconnects  # it was healed…
    for _ in range(4):
        await rig.tick(ok=True)
    assert rig.titles() == []  # …without bothering anyone


async def test_a_tunnel_lost_for_over_30_s_says_so_once_and_once_more_when_it_is_back() -> None:
    """Issue 25: one notification when the outage passes ~30 s, one when it is over, nothing
    in between, whatever the CLI does meanwhile (reconnecting, retrying, ready and dead)."""
    rig = Rig()
    await rig.tick()
    await rig.tick(ok=False)
    await rig.tick()  # lost: the watch asks the CLI to reconnect
    rig.set_state(TunnelState.CONNECTING)
    for _ in range(3):
        await rig.tick()
    rig.set_state(TunnelState.RETRYING)
    await rig.tick()
    assert rig.titles() == []
    await rig.tick()  # 30 s since the first missed probe
    assert rig.titles() == ["Session unreachable"]
    for _ in range(60):  # five more minutes of it
        await rig.tick()
    rig.set_state(TunnelState.READY)  # the CLI's ready line, but it still does not answer
    for _ in range(10):
        await rig.tick(ok=False)
    rig.set_state(TunnelState.READY)
    for _ in range(3):
        await rig.tick(ok=True)
    assert rig.titles() == ["Session unreachable", "Session reachable again"]
    kinds = {n[0] for n in rig.notices.sent}
    assert kinds == {"tunnel_problems"}
    assert "down for" in rig.notices.sent[1][2]


async def test_a_tunnel_the_cli_itself_found_dead_is_an_outage_too() -> None:
    rig = Rig()
    await rig.tick()  # seen ready and answering
    rig.set_state(TunnelState.RETRYING)  # the CLI's own ssh gave up
    for _ in range(7):
        await rig.tick()
    assert rig.titles() == ["Session unreachable"]
    assert rig.launcher.reconnects == []  # the CLI is on it already


async def test_an_outage_ended_by_a_disconnect_says_nothing_more() -> None:
    rig = Rig()
    await rig.tick()
    rig.set_state(TunnelState.RETRYING)
    for _ in range(8):
        await rig.tick()
    rig.set_state(TunnelState.CLOSED)  # the user disconnected it
    await rig.tick()
    assert rig.titles() == ["Session unreachable"] and not rig.watch._health


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

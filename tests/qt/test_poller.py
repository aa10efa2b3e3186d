"""The poller against a real emulator: state changes, outage and recovery, backoff."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.emulator import EmulatorHandle

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.models import Snapshot
from tray_app.core.server.refresh import PollStatus, RefreshSchedule, TrayState
from tray_app.core.server.sessions import SessionService
from tray_app.qt.poller import Poller


def _service(
    emu: EmulatorHandle, secret: str | None = None
) -> tuple[ClearMLClient, SessionService]:
    config = ServerConfig(
        api_server=emu.url,
        web_server=emu.url,
        files_server=emu.url,
        access_key=emu.access_key,
        secret_key=secret or emu.secret_key,
    )
    client = ClearMLClient(config, timeout=2.0, max_retries=0)
    return client, SessionService(client, web_server=emu.url)


class Recorder:
    def __init__(self, poller: Poller) -> None:
        self.statuses: list[PollStatus] = []
        self.snapshots: list[Snapshot | None] = []
        poller.status_changed.connect(self.statuses.append)
        poller.snapshot_changed.connect(self.snapshots.append)

    @property
    def states(self) -> list[TrayState]:
        return [s.state for s in self.statuses]


async def test_outage_and_recovery(qapp: Any, emulator: EmulatorHandle) -> None:
    client, service = _service(emulator)
    poller = Poller(RefreshSchedule())
    seen = Recorder(poller)
    poller.set_source(service.snapshot, emulator.url)
    await poller.poll_once()
    assert poller.status.state in (TrayState.OK, TrayState.BUSY)
    assert poller.snapshot is not None
    first_ids = {s.id for s in poller.snapshot.sessions}
    with emulator.state.lock:
        own_live = {
            t["id"]
            for t in emulator.state.tasks.values()
            if t.get("status") in ("queued", "in_progress")
            and "interactive" in (t.get("system_tags") or [])
            and t.get("user") == emulator.state.current_user_id
        }
    assert first_ids == own_live

    emulator.stop()
    await poller.poll_once()
    await poller.poll_once()
    assert poller.status.state == TrayState.OFFLINE
    assert poller.status.failures == 2
    assert emulator.url in poller.status.message or "127.0.0.1" in poller.status.message
    assert poller.snapshot is not None  # the last good data is kept for the menu

    emulator.start()
    await poller.poll_once()
    assert poller.status.state in (TrayState.OK, TrayState.BUSY)
    assert poller.status.failures == 0
    assert seen.states[0] == TrayState.CONNECTING
    assert TrayState.OFFLINE in seen.states
    await client.aclose()


async def test_wrong_keys_give_auth_state(qapp: Any, emulator: EmulatorHandle) -> None:
    client, service = _service(emulator, secret="not-the-secret")
    poller = Poller(RefreshSchedule())
    poller.set_source(service.snapshot, emulator.url)
    await poller.poll_once()
    assert poller.status.state == TrayState.AUTH
    assert poller.schedule.next_delay(poller.status) == poller.schedule.max_backoff
    await client.aclose()


async def test_refresh_if_stale_uses_the_clock(qapp: Any, emulator: EmulatorHandle) -> None:
    now = [datetime(2026, 11, 24, 12, 0, tzinfo=UTC)]
    client, service = _service(emulator)
    poller = Poller(RefreshSchedule(), clock=lambda: now[0])
    poller.set_source(service.snapshot, emulator.url)
    await poller.poll_once()
    assert poller.refresh_if_stale(5.0) is False
    now[0] += timedelta(seconds=6)
    assert poller.refresh_if_stale(5.0) is True
    await client.aclose()


async def test_loop_polls_again_when_woken(qapp: Any, emulator: EmulatorHandle) -> None:
    client, service = _service(emulator)
    schedule = RefreshSchedule(interval=3600, retry_first=3600, rng=lambda: 0.5)
    poller = Poller(schedule)
    poller.set_source(service.snapshot, emulator.url)
    before = emulator.state.count_requests("tasks.get_all_ex")
    poller.start()
    deadline = asyncio.get_running_loop().time() + 10
    while emulator.state.count_requests("tasks.get_all_ex") < before + 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    poller.refresh_now()  # e.g. the menu opened on stale data
    while emulator.state.count_requests("tasks.get_all_ex") < before + 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    await poller.stop()
    await client.aclose()


async def test_unconfigured_never_polls(qapp: Any) -> None:
    poller = Poller(RefreshSchedule())
    poller.set_unconfigured("ClearML is not configured on this computer.")
    await poller.poll_once()
    assert poller.status.state == TrayState.UNCONFIGURED
    assert poller.snapshot is None


@pytest.mark.parametrize("failures", [1, 4])
async def test_backoff_grows_while_offline(qapp: Any, failures: int) -> None:
    async def down(_all: bool) -> Snapshot:
        from tray_app.core.server.errors import ClearMLUnavailable

        raise ClearMLUnavailable("Cannot reach http://127.0.0.1:9", server="http://127.0.0.1:9")

    poller = Poller(RefreshSchedule(rng=lambda: 0.5))
    poller.set_source(down, "http://127.0.0.1:9")
    for _ in range(failures):
        await poller.poll_once()
    assert poller.status.failures == failures
    assert poller.schedule.next_delay(poller.status) == min(120, 3 * 2 ** (failures - 1))


async def test_a_poll_that_never_finishes_ends_offline_and_keeps_the_old_data_as_stale(
    qapp: Any,
) -> None:
    never = asyncio.Event()
    snapshot = Snapshot(sessions=(), fetched_at=datetime.now(UTC))
    answers: list[Snapshot | None] = [snapshot]

    async def fetch(all_users: bool) -> Snapshot:
        answer = answers.pop(0) if answers else None
        if answer is None:
            await never.wait()  # a server trickling its answer forever
        assert answer is not None
        return answer

    poller = Poller(RefreshSchedule(), fetch_deadline=0.05)
    poller.set_source(fetch, "http://127.0.0.1:9")
    await poller.poll_once()
    assert poller.status.state == TrayState.OK
    await poller.poll_once()
    assert poller.status.state == TrayState.OFFLINE
    assert "did not send the session list within 0.05 s" in poller.status.message
    assert poller.snapshot is snapshot
    assert poller.status.is_stale(datetime.now(UTC))


async def test_the_first_failed_request_turns_the_tray_offline_while_it_retries(
    qapp: Any, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    from tray_app.core.server.connection import ServerConnection

    poller = Poller(RefreshSchedule())
    connection = ServerConnection(on_trouble=poller.request_failed)
    config = emulator.write_config(tmp_path / "clearml.conf")
    assert await connection.use(str(config)) is None
    assert connection.service is not None
    poller.set_source(connection.service.snapshot, emulator.url)
    await poller.poll_once()
    assert poller.status.state in (TrayState.OK, TrayState.BUSY)
    seen = Recorder(poller)

    emulator.stop()
    poll = asyncio.ensure_future(poller.poll_once())
    deadline = asyncio.get_running_loop().time() + 30
    while poller.status.state != TrayState.OFFLINE:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    # Offline while the client still retries (the poll has not given up yet).
    assert not poll.done()
    assert poller.status.message.endswith("; retrying")
    await poll
    assert poller.status.state == TrayState.OFFLINE and poller.status.failures == 1
    assert seen.states == [TrayState.OFFLINE, TrayState.OFFLINE]

    emulator.start()
    await poller.poll_once()
    assert poller.status.state in (TrayState.OK, TrayState.BUSY)
    await connection.close()


class FakePresence:
    """A presence backend the test flips by hand."""

    def __init__(self) -> None:
        self.away = False
        self.on_change: Any = None
        self.stopped = False

    async def start(self, on_change: Any) -> None:
        self.on_change = on_change

    async def stop(self) -> None:
        self.stopped = True

    def set(self, away: bool) -> None:
        self.away = away
        self.on_change(away)


def _counting_fetch() -> tuple[Any, list[bool]]:
    calls: list[bool] = []

    async def fetch(all_users: bool) -> Snapshot:
        calls.append(all_users)
        return Snapshot(sessions=(), fetched_at=datetime.now(UTC))

    return fetch, calls


async def _until_true(predicate: Any, limit_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_nothing_is_polled_while_the_screen_is_locked_and_once_on_unlock(qapp: Any) -> None:
    """A locked desktop left overnight costs the server no call; unlocking refreshes at once."""
    presence = FakePresence()
    fetch, calls = _counting_fetch()
    fast = RefreshSchedule(interval=0.02, idle_interval=0.02, rng=lambda: 0.5)
    poller = Poller(fast, presence=presence)
    poller.set_source(fetch, "http://127.0.0.1:9")
    poller.start()
    try:
        await _until_true(lambda: presence.on_change is not None and len(calls) >= 3)
        presence.set(True)
        locked_at = len(calls)
        poller.refresh_now()  # a tunnel changing meanwhile does not poll either
        await asyncio.sleep(0.3)  # ~15 polls' worth of time at this pace
        assert len(calls) <= locked_at + 1  # at most the one already under way
        assert poller.away
        presence.set(False)
        await _until_true(lambda: len(calls) > locked_at + 1)
    finally:
        await poller.stop()
    assert presence.stopped


async def test_opening_the_menu_refreshes_and_brings_back_the_normal_pace(qapp: Any) -> None:
    now = [0.0]
    fetch, _calls = _counting_fetch()
    poller = Poller(RefreshSchedule(rng=lambda: 0.5), monotonic=lambda: now[0])
    poller.set_source(fetch, "http://127.0.0.1:9")
    await poller.poll_once()
    now[0] = 1800.0  # nobody looked for half an hour
    assert poller.idle_for() == 1800.0
    assert poller.schedule.next_delay(poller.status, idle_for=poller.idle_for()) == 60
    poller.set_away(True)
    poller.status = PollStatus(TrayState.OK, last_success=datetime.now(UTC) - timedelta(seconds=30))
    assert poller.looked_at() is True  # stale data: refreshed at once
    assert poller.idle_for() == 0.0 and not poller.away  # someone is there after all
    assert poller.schedule.next_delay(poller.status, idle_for=poller.idle_for()) == 15

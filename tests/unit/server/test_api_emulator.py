"""ClearMLClient + SessionService error paths against the real emulator over loopback HTTP.

Faults are injected by the emulator (502 bursts, expired tokens, malformed JSON, dropped
connections, latency) or by stopping it; every test asserts the typed error or the recovery.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import ClearMLAuthError, ClearMLRequestError, ClearMLUnavailable
from tray_app.core.server.sessions import SessionService
from tray_app.demo import FaultKind


async def no_sleep(delay: float) -> None:
    return None


def client_for(emu: Any, *, secret: str | None = None, **kw: Any) -> ClearMLClient:
    cfg = ServerConfig(
        emu.url,
        emu.url,
        "",
        emu.access_key,
        emu.secret_key if secret is None else secret,
    )
    kw.setdefault("sleep", no_sleep)
    return ClearMLClient(cfg, **kw)


def live_own(state: Any) -> set[str]:
    return {
        t["id"]
        for t in state.tasks.values()
        if "interactive" in (t.get("system_tags") or [])
        and t["status"] in ("queued", "in_progress")
        and t["user"] == state.current_user_id
    }


async def test_wrong_keys_are_an_auth_error_naming_server_and_key(emulator):
    async with client_for(emulator, secret="not-the-secret-at-all") as client:
        with pytest.raises(ClearMLAuthError) as info:
            await SessionService(client).snapshot()
    message = str(info.value)
    assert "Wrong access key or secret key" in message
    assert emulator.url in message
    assert emulator.access_key in message
    assert "not-the-secret-at-all" not in message
    assert info.value.result_subcode == 22
    assert emulator.state.count_requests("tasks.get_all_ex") == 0


def past_emulator(emulator_factory: Any, **kw: Any) -> Any:
    """An emulator whose clock runs a day behind, so that advancing it keeps every token's
    `iat` in the past for the JWT library (it checks `iat` against the real clock)."""
    return emulator_factory(now=datetime.now(UTC) - timedelta(days=1), **kw)


async def test_expired_token_is_refreshed_once_on_401_and_the_snapshot_recovers(
    emulator_factory,
):
    emu = past_emulator(emulator_factory, sessions=13, token_lifetime=120)
    frozen = emu.state.now().timestamp()
    # The client's clock stands still: it believes the token is fresh, the server does not.
    async with client_for(emu, clock=lambda: frozen) as client:
        service = SessionService(client)
        await service.snapshot()
        emu.state.advance_time(600)
        snap = await service.snapshot()
    assert {s.id for s in snap.sessions} == live_own(emu.state)
    assert emu.state.count_requests("auth.login") == 2
    # The snapshot's two concurrent requests may both meet the old token; each is rejected
    # once, they share one re-login, and each is retried once: no loop.
    rejected = [r.endpoint for r in emu.state.requests if r.status == 401]
    assert rejected
    assert len(rejected) == len(set(rejected))


async def test_token_is_refreshed_before_expiry_without_a_401(emulator_factory):
    emu = past_emulator(emulator_factory, sessions=13, token_lifetime=120)
    async with client_for(emu, clock=lambda: emu.state.now().timestamp()) as client:
        service = SessionService(client)
        await service.snapshot()
        emu.state.advance_time(100)  # inside the refresh margin, not yet expired
        snap = await service.snapshot()
    assert {s.id for s in snap.sessions} == live_own(emu.state)
    assert emu.state.count_requests("auth.login") == 2
    assert not [r for r in emu.state.requests if r.status == 401]


async def test_injected_401_triggers_exactly_one_relogin(emulator):
    async with client_for(emulator) as client:
        await client.call("queues.get_default", {})
        emulator.state.faults.fail_next(FaultKind.TOKEN_EXPIRED)
        data = await client.call("queues.get_default", {})
    assert data["name"] == "default"
    assert emulator.state.count_requests("auth.login") == 2


async def test_server_down_mid_refresh_is_unavailable_then_recovers(emulator_factory):
    emu = past_emulator(emulator_factory, sessions=13, token_lifetime=120)
    clock = lambda: emu.state.now().timestamp()  # noqa: E731
    async with client_for(emu, max_retries=2, clock=clock) as client:
        service = SessionService(client)
        before = await service.snapshot()
        emu.state.advance_time(600)  # token expired: the next call must log in again...
        emu.stop()  # ...but the server is gone
        with pytest.raises(ClearMLUnavailable) as info:
            await service.snapshot()
        assert emu.url in str(info.value)
        emu.start()  # same port, same state
        after = await service.snapshot()
    assert {s.id for s in after.sessions} == {s.id for s in before.sessions}
    assert emu.state.count_requests("auth.login") == 2


async def test_502_burst_is_retried_and_the_snapshot_succeeds(emulator):
    async with client_for(emulator, max_retries=3) as client:
        service = SessionService(client)
        await client.login()
        emulator.state.faults.only_endpoints = frozenset({"tasks.get_all_ex"})
        emulator.state.faults.fail_next(FaultKind.BAD_GATEWAY, 3)
        snap = await service.snapshot()
    assert {s.id for s in snap.sessions} == live_own(emulator.state)
    assert [k for _, k in emulator.state.faults.injected] == [FaultKind.BAD_GATEWAY] * 3


async def test_502_burst_beyond_the_retries_is_unavailable(emulator):
    async with client_for(emulator, max_retries=2) as client:
        await client.login()
        emulator.state.faults.fail_next(FaultKind.BAD_GATEWAY, 10)
        with pytest.raises(ClearMLUnavailable, match="502") as info:
            await client.call("queues.get_default", {})
        assert emulator.url in str(info.value)
        emulator.state.faults.clear()
        assert (await client.call("queues.get_default", {}))["name"] == "default"
    assert len(emulator.state.faults.injected) == 3


async def test_malformed_json_is_unavailable_and_the_next_snapshot_works(emulator):
    async with client_for(emulator) as client:
        service = SessionService(client)
        await client.login()
        emulator.state.faults.only_endpoints = frozenset({"workers.get_all"})
        emulator.state.faults.fail_next(FaultKind.MALFORMED)
        with pytest.raises(ClearMLUnavailable, match=r"malformed reply to workers\.get_all"):
            await service.snapshot()
        snap = await service.snapshot()
    assert {s.id for s in snap.sessions} == live_own(emulator.state)


async def test_dropped_connection_is_retried(emulator):
    async with client_for(emulator) as client:
        await client.login()
        emulator.state.faults.fail_next(FaultKind.DROP)
        data = await client.call("queues.get_default", {})
    assert data["name"] == "default"
    assert [k for _, k in emulator.state.faults.injected] == [FaultKind.DROP]


async def test_server_error_envelope_is_a_request_error(emulator):
    async with client_for(emulator) as client:
        await client.login()
        emulator.state.faults.fail_next(FaultKind.ERROR_500)
        with pytest.raises(ClearMLRequestError) as info:
            await client.call("queues.get_default", {})
    assert (info.value.result_code, info.value.http_status) == (500, 500)


async def test_slow_server_times_out_as_unavailable(emulator):
    async with client_for(emulator, timeout=0.2, max_retries=1) as client:
        await client.login()
        emulator.state.faults.latency = 1.0
        with pytest.raises(ClearMLUnavailable, match="did not answer"):
            await client.call("queues.get_default", {})
        emulator.state.faults.latency = 0.0
        assert (await client.call("queues.get_default", {}))["name"] == "default"


async def test_unknown_endpoint_is_a_404_request_error(emulator):
    async with client_for(emulator) as client:
        with pytest.raises(ClearMLRequestError) as info:
            await client.call("nothing.here", {})
    assert info.value.result_code == 404
    assert "nothing.here" in info.value.result_msg


async def test_closed_port_is_unavailable_quickly():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = ServerConfig(f"http://127.0.0.1:{port}", "", "", "AK", "SK")
    async with ClearMLClient(cfg, max_retries=1, sleep=no_sleep) as client:
        with pytest.raises(ClearMLUnavailable, match="Cannot reach the ClearML server") as info:
            await client.call("tasks.get_all", {})
    assert f"127.0.0.1:{port}" in str(info.value)

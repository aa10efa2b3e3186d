"""ClearMLClient against a broken or hostile server on a real loopback socket.

Each case is one way a server (a shared one, a proxy in front of it, or a bug) can try to hang
or exhaust the tray: endless and decompressing bodies, a trickling reply, JSON nested deeper
than Python's stack, rate limiting, plus the SDK's token renewal and identification headers.
"""

from __future__ import annotations

import gzip
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.hostile_server import (
    HostileRequest,
    HostileServer,
    Pause,
    Reply,
    envelope,
    make_jwt,
)

from tray_app import __version__
from tray_app.core.server.api import ClearMLClient, retry_after_seconds
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import ClearMLAuthError, ClearMLUnavailable

MB = 1024 * 1024


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def token(exp_in: float, iat_ago: float = 86400.0, n: int = 0) -> str:
    now = time.time()
    return make_jwt({"identity": {"user": "u1"}, "iat": now - iat_ago, "exp": now + exp_in, "n": n})


def client_for(srv: HostileServer, sleeps: Sleeps | None = None, **kwargs: Any) -> ClearMLClient:
    cfg = ServerConfig(
        api_server=srv.url,
        web_server="",
        files_server="",
        auth_token=kwargs.pop("auth_token", None) or token(30 * 86400),
    )
    kwargs.setdefault("max_retries", 0)
    return ClearMLClient(cfg, sleep=sleeps or Sleeps(), **kwargs)


def endless(chunk: bytes = b"x" * 65536) -> Iterator[bytes]:
    return itertools.repeat(chunk)


async def test_an_endless_body_is_cut_at_the_size_cap():
    with HostileServer(lambda r: Reply(200, {}, endless())) as srv:
        async with client_for(srv, max_body_bytes=1 * MB) as client:
            with pytest.raises(ClearMLUnavailable, match="larger than 1 MB"):
                await client.call("tasks.get_all_ex", {})
        # Not retried, and what was read stayed near the cap (socket buffers aside).
        assert srv.count("tasks.get_all_ex") == 1


async def test_a_declared_huge_body_is_refused_before_reading():
    with HostileServer(lambda r: Reply(200, {}, endless(), content_length=10**12)) as srv:
        async with client_for(srv, max_body_bytes=1 * MB) as client:
            with pytest.raises(ClearMLUnavailable, match="larger than"):
                await client.call("tasks.get_all_ex", {})


async def test_a_gzip_bomb_is_cut_at_the_decoded_size():
    bomb = gzip.compress(b"0" * (8 * MB))  # ~8 KB on the wire
    with HostileServer(lambda r: Reply(200, {"Content-Encoding": "gzip"}, [bomb])) as srv:
        async with client_for(srv, max_body_bytes=1 * MB) as client:
            with pytest.raises(ClearMLUnavailable, match="larger than 1 MB"):
                await client.call("tasks.get_all_ex", {})


async def test_a_trickling_reply_hits_the_total_deadline():
    def trickle(request: HostileRequest) -> Reply:
        # One byte every 20 ms: never silent long enough for the per-read timeout.
        return Reply(
            200, {}, itertools.chain.from_iterable((b"{", Pause(0.02)) for _ in itertools.count())
        )

    with HostileServer(trickle) as srv:
        async with client_for(srv, timeout=10.0, deadline=0.3) as client:
            with pytest.raises(ClearMLUnavailable, match="did not finish answering"):
                await client.call("tasks.get_all_ex", {})


async def test_json_nested_deeper_than_the_stack_is_a_malformed_reply():
    deep = b"[" * 200_000 + b"]" * 200_000
    with HostileServer(lambda r: Reply(200, {}, [deep])) as srv:
        async with client_for(srv) as client:
            with pytest.raises(ClearMLUnavailable, match="malformed reply"):
                await client.call("tasks.get_all_ex", {})


def rate_limited(times: int, retry_after: str | None) -> Any:
    state = {"left": times}

    def handler(request: HostileRequest) -> Reply:
        if state["left"] > 0:
            state["left"] -= 1
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return Reply(429, headers, [b"slow down"])
        return envelope({"ok": True})

    return handler


async def test_429_is_retried_after_the_servers_retry_after():
    sleeps = Sleeps()
    with HostileServer(rate_limited(2, "3")) as srv:
        async with client_for(srv, sleeps, max_retries=3) as client:
            assert await client.call("tasks.get_all_ex", {}) == {"ok": True}
    assert sleeps.delays == [3.0, 3.0]


async def test_429_without_retry_after_uses_the_backoff_and_is_bounded():
    sleeps = Sleeps()
    with HostileServer(rate_limited(100, None)) as srv:
        async with client_for(srv, sleeps, max_retries=2) as client:
            with pytest.raises(ClearMLUnavailable, match=r"rate limiting.*3 attempts"):
                await client.call("tasks.get_all_ex", {})
        assert srv.count("tasks.get_all_ex") == 3
    assert len(sleeps.delays) == 2 and all(d <= 8.0 for d in sleeps.delays)


async def test_429_asking_for_a_long_wait_gives_up_at_once():
    sleeps = Sleeps()
    with HostileServer(rate_limited(1, "3600")) as srv:
        async with client_for(srv, sleeps, max_retries=3) as client:
            with pytest.raises(ClearMLUnavailable, match="asks to wait 3600 s"):
                await client.call("tasks.get_all_ex", {})
        assert srv.count("tasks.get_all_ex") == 1
    assert sleeps.delays == []


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("7", 0.0) == 7.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == 60.0
    assert retry_after_seconds("soon", 0.0) is None
    assert retry_after_seconds(None, 0.0) is None
    assert retry_after_seconds("9" * 400, 0.0) == 1e9


async def test_requests_carry_the_sdks_client_identification_headers():
    with HostileServer(lambda r: envelope({})) as srv:
        async with client_for(srv) as client:
            await client.call("tasks.get_all_ex", {})
        headers = srv.requests[0].headers
    assert headers["x-clearml-client"] == f"clearml-tray-{__version__}"
    assert headers["x-trains-client"] == headers["x-clearml-client"]
    assert headers["x-clearml-worker"]


def renewing_server(issued: list[str]) -> Any:
    def handler(request: HostileRequest) -> Reply:
        if request.endpoint == "auth.login":
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not bearer or bearer == "revoked":
                return envelope({}, 401, 20, "Unauthorized")
            new = token(30 * 86400, iat_ago=0, n=len(issued) + 1)
            issued.append(new)
            return envelope({"token": new})
        return envelope({"auth": request.headers.get("authorization", "")})

    return handler


async def test_an_auth_token_without_keys_is_renewed_before_it_expires():
    issued: list[str] = []
    old = token(exp_in=1800)  # a month-long token with half an hour left
    with HostileServer(renewing_server(issued)) as srv:
        async with client_for(srv, auth_token=old) as client:
            first = await client.call("tasks.get_all_ex", {})
            second = await client.call("tasks.get_all_ex", {})
        login = [r for r in srv.requests if r.endpoint == "auth.login"]
    # Renewed once, with the old token as the bearer (as the SDK does), then the new one used.
    assert len(login) == 1 and login[0].headers["authorization"] == f"Bearer {old}"
    assert first["auth"] == second["auth"] == f"Bearer {issued[0]}"


async def test_an_auth_token_far_from_expiry_is_not_renewed():
    with HostileServer(renewing_server([])) as srv:
        async with client_for(srv, auth_token=token(exp_in=20 * 86400)) as client:
            await client.call("tasks.get_all_ex", {})
        assert srv.count("auth.login") == 0


async def test_a_refused_renewal_is_an_auth_error():
    with HostileServer(renewing_server([])) as srv:
        expiring = token(exp_in=60)
        handler = renewing_server([])

        def refuse(request: HostileRequest) -> Reply:
            if request.endpoint == "auth.login":
                return envelope({}, 401, 20, "Unauthorized")
            return handler(request)

        srv.handler = refuse
        async with client_for(srv, auth_token=expiring) as client:
            with pytest.raises(ClearMLAuthError, match="refused to renew"):
                await client.call("tasks.get_all_ex", {})


def test_backoff_never_overflows():
    cfg = ServerConfig(api_server="http://127.0.0.1:9", web_server="", files_server="")
    client = ClearMLClient(cfg)
    assert client._backoff(5000) <= client.backoff_max
    assert json.dumps(client._backoff(1025))

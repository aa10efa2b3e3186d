"""ClearMLClient against a scripted in-memory server (httpx.MockTransport).

The emulator-backed tests (real HTTP, real faults) are in test_api_emulator.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tray_app import __version__
from tray_app.core.server.api import ClearMLClient, decode_jwt_claims, is_read
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import (
    ClearMLAuthError,
    ClearMLError,
    ClearMLOutcomeUnknown,
    ClearMLRequestError,
    ClearMLUnavailable,
)
from tray_app.core.server.http_httpx import HTTP_LIMITS, client_verify, ssl_verify
from tray_app.core.server.refresh import RefreshSchedule

SERVER = "http://127.0.0.1:18008"
KEY = "AKTESTACCESSKEY0001"
SECRET = "sk-test-secret-value-0001"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(b'not-a-real-signature')}"


def envelope(endpoint: str, data: dict[str, Any], code: int = 200, sub: int = 0, msg: str = "OK"):
    body = {
        "meta": {
            "id": "0" * 32,
            "trx": "0" * 32,
            "endpoint": {"name": endpoint, "requested_version": "2.34", "actual_version": "1.0"},
            "result_code": code,
            "result_subcode": sub,
            "result_msg": msg,
            "error_stack": None,
            "error_data": {},
        },
        "data": data,
    }
    return httpx.Response(code, json=body)


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeServer:
    """A scripted ClearML API: valid keys, token lifetime, and a queue of per-request faults."""

    clock: FakeClock
    token_lifetime: float = 3600.0
    # Per-request overrides, consumed in order; a fault returning None serves normally.
    faults: list[Callable[[httpx.Request], httpx.Response | None]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)

    def endpoint(self, request: httpx.Request) -> str:
        return request.url.path.rsplit("/", 1)[-1]

    def count(self, endpoint: str) -> int:
        return sum(1 for r in self.requests if self.endpoint(r) == endpoint)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.faults:
            response = self.faults.pop(0)(request)
            if response is not None:
                return response
        endpoint = self.endpoint(request)
        auth = request.headers.get("authorization", "")
        if endpoint == "auth.login":
            expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
            if auth != expected:
                return envelope(
                    endpoint,
                    {},
                    401,
                    22,
                    "Unauthorized (invalid credentials) (failed to locate provided credentials)",
                )
            iat = int(self.clock())
            token = make_jwt(
                {
                    "identity": {
                        "user": "u-me",
                        "user_name": "Demo User",
                        "company": "c1",
                        "company_name": "clearml",
                    },
                    "iat": iat,
                    "exp": iat + int(self.token_lifetime),
                    "api_version": "2.34",
                    "server_version": "2.3.0",
                    "feature_set": "basic",
                    "n": len(self.issued),
                }
            )
            self.issued.append(token)
            return envelope(endpoint, {"token": token})
        if not auth.startswith("Bearer "):
            return envelope(endpoint, {}, 401, 20, "Unauthorized (missing credentials)")
        token = auth.removeprefix("Bearer ")
        claims = decode_jwt_claims(token)
        if token in self.revoked or claims["exp"] <= self.clock():
            return envelope(
                endpoint,
                {},
                401,
                30,
                "Invalid token (invalid jwt token): reason=Signature has expired",
            )
        if endpoint == "tasks.get_by_id":
            return envelope(endpoint, {}, 400, 101, "Invalid task id: ids=(abc)")
        return envelope(
            endpoint, {"echo": json.loads(request.content or b"{}"), "path": request.url.path}
        )


def passthrough(request: httpx.Request) -> None:
    return None


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def config(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "api_server": SERVER,
        "web_server": "http://127.0.0.1:18080",
        "files_server": "http://127.0.0.1:18081",
        "access_key": KEY,
        "secret_key": SECRET,
    }
    values.update(overrides)
    return ServerConfig(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> FakeServer:
    return FakeServer(clock)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(
    server: FakeServer, clock: FakeClock, sleeps: Sleeps, **kwargs: Any
) -> ClearMLClient:
    cfg = kwargs.pop("cfg", None) or config()
    return ClearMLClient(
        cfg, transport=httpx.MockTransport(server.handler), clock=clock, sleep=sleeps, **kwargs
    )


async def test_logs_in_once_and_reuses_the_token(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        for _ in range(3):
            await client.call("tasks.get_all", {})
    assert server.count("auth.login") == 1
    assert server.count("tasks.get_all") == 3
    bearer = {r.headers["authorization"] for r in server.requests[1:]}
    assert bearer == {f"Bearer {server.issued[0]}"}


async def test_concurrent_first_calls_share_one_login(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        await asyncio.gather(*(client.call("tasks.get_all", {}) for _ in range(10)))
    assert server.count("auth.login") == 1


async def test_requests_are_json_posts_with_the_app_user_agent(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        data = await client.call("tasks.get_all", {"id": ["x"]})
    request = server.requests[-1]
    assert request.method == "POST"
    assert request.headers["user-agent"] == f"clearml-tray/{__version__}"
    assert json.loads(request.content) == {"id": ["x"]}
    assert data["echo"] == {"id": ["x"]}


async def test_version_goes_into_the_path(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        versioned = await client.call("tasks.get_all", {}, version="2.23")
        plain = await client.call("tasks.get_all", {})
    assert versioned["path"] == "/v2.23/tasks.get_all"
    assert plain["path"] == "/tasks.get_all"


async def test_server_info_comes_from_the_token(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        assert client.server_info is None
        info = await client.login()
    assert (info.api_version, info.server_version, info.feature_set) == ("2.34", "2.3.0", "basic")
    assert (info.user_id, info.user_name, info.company_name) == ("u-me", "Demo User", "clearml")
    assert info.token_expires is not None
    assert info.token_expires.timestamp() == pytest.approx(clock.now + server.token_lifetime)


async def test_wrong_keys_raise_auth_error_naming_server_and_key_but_not_secret(
    server, clock, sleeps
):
    cfg = config(secret_key="definitely-the-wrong-secret")
    async with make_client(server, clock, sleeps, cfg=cfg) as client:
        with pytest.raises(ClearMLAuthError) as info:
            await client.call("tasks.get_all", {})
    message = str(info.value)
    assert "Wrong access key or secret key" in message
    assert SERVER in message
    assert KEY in message
    assert "definitely-the-wrong-secret" not in message
    assert info.value.result_subcode == 22
    assert server.count("tasks.get_all") == 0


async def test_expired_token_is_refreshed_once_on_401_and_the_call_recovers(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        await client.call("tasks.get_all", {})
        server.revoked.add(server.issued[0])  # e.g. the server restarted with a new JWT secret
        data = await client.call("tasks.get_all", {"n": 2})
    assert data["echo"] == {"n": 2}
    assert server.count("auth.login") == 2
    assert server.requests[-1].headers["authorization"] == f"Bearer {server.issued[1]}"


async def test_a_second_401_after_relogin_is_an_auth_error(server, clock, sleeps):
    def reject(request: httpx.Request) -> httpx.Response:
        return envelope("tasks.get_all", {}, 401, 30, "Invalid token (invalid jwt token)")

    async with make_client(server, clock, sleeps) as client:
        await client.login()
        # 401, then the re-login is served normally, then 401 again: give up, don't loop.
        server.faults.extend([reject, passthrough, reject])
        with pytest.raises(ClearMLAuthError, match="rejected a fresh login token"):
            await client.call("tasks.get_all", {})
    assert server.count("auth.login") == 2
    assert server.count("tasks.get_all") == 2


async def test_token_is_refreshed_before_it_expires(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        await client.call("tasks.get_all", {})
        clock.now += server.token_lifetime - 60  # inside the refresh margin, still valid
        await client.call("tasks.get_all", {})
    assert server.count("auth.login") == 2
    # No request was rejected: the refresh happened before the token was used again.
    assert all(
        r.headers["authorization"] != f"Bearer {server.issued[0]}" for r in server.requests[3:]
    )


async def test_short_lived_tokens_are_not_refreshed_on_every_call(server, clock, sleeps):
    server.token_lifetime = 20
    async with make_client(server, clock, sleeps) as client:
        for _ in range(5):
            await client.call("tasks.get_all", {})
            clock.now += 1
    assert server.count("auth.login") == 1


async def test_configured_auth_token_is_used_without_login(server, clock, sleeps):
    token = make_jwt(
        {"identity": {"user": "u-tok", "user_name": "Token User"}, "exp": clock.now + 3600}
    )
    cfg = config(access_key="", secret_key="", auth_token=token)
    async with make_client(server, clock, sleeps, cfg=cfg) as client:
        await client.call("tasks.get_all", {})
        assert client.server_info is not None
        assert client.server_info.user_name == "Token User"
    assert server.count("auth.login") == 0
    assert server.requests[0].headers["authorization"] == f"Bearer {token}"


async def test_rejected_auth_token_without_keys_is_an_auth_error(server, clock, sleeps):
    token = make_jwt({"exp": clock.now - 10})
    cfg = config(access_key="", secret_key="", auth_token=token)
    async with make_client(server, clock, sleeps, cfg=cfg) as client:
        with pytest.raises(ClearMLAuthError, match="auth token"):
            await client.call("tasks.get_all", {})


async def test_no_credentials_at_all_is_an_auth_error(server, clock, sleeps):
    cfg = config(access_key="", secret_key="")
    async with make_client(server, clock, sleeps, cfg=cfg) as client:
        with pytest.raises(ClearMLAuthError, match="No ClearML credentials"):
            await client.call("tasks.get_all", {})
    assert server.requests == []


def bad_gateway(request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, text="<html>502 Bad Gateway</html>")


async def test_502_burst_is_retried_with_growing_jittered_backoff_then_succeeds(
    server, clock, sleeps
):
    async with make_client(server, clock, sleeps, max_retries=3, backoff_base=0.5) as client:
        await client.login()
        server.faults.extend([bad_gateway, bad_gateway, bad_gateway])
        data = await client.call("tasks.get_all", {"ok": 1})
    assert data["echo"] == {"ok": 1}
    assert server.count("tasks.get_all") == 4
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        assert 0.5 * 2**attempt * 0.5 <= delay <= 0.5 * 2**attempt


async def test_502_burst_longer_than_the_retries_is_unavailable(server, clock, sleeps):
    async with make_client(server, clock, sleeps, max_retries=2) as client:
        await client.login()
        server.faults.extend([bad_gateway] * 5)
        with pytest.raises(ClearMLUnavailable) as info:
            await client.call("tasks.get_all", {})
    assert SERVER in str(info.value)
    assert "502" in str(info.value)
    assert server.count("tasks.get_all") == 3


@pytest.mark.parametrize("status", [503, 504])
async def test_503_and_504_are_retried(server, clock, sleeps, status):
    async with make_client(server, clock, sleeps) as client:
        await client.login()
        server.faults.append(lambda r: httpx.Response(status, text="busy"))
        data = await client.call("tasks.get_all", {"ok": status})
    assert data["echo"] == {"ok": status}


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize(
    "endpoint", ["tasks.stop", "tasks.stopped", "tasks.delete", "tasks.enqueue", "tasks.create"]
)
async def test_a_change_without_an_answer_is_sent_once_and_said_to_be_unknown(
    server, clock, sleeps, status, endpoint
):
    """A 504 on a delete that went through must not become "invalid task id" on a blind retry:
    the change is not sent again, and the caller is told its outcome is unknown."""
    async with make_client(server, clock, sleeps, max_retries=3) as client:
        await client.login()
        server.faults.append(lambda r: httpx.Response(status, text="gateway"))
        with pytest.raises(ClearMLOutcomeUnknown) as info:
            await client.call(endpoint, {"task": "t1"})
    assert server.count(endpoint) == 1
    assert info.value.endpoint == endpoint
    assert "may or may not have been done" in str(info.value)


async def test_a_change_that_timed_out_is_not_sent_again(server, clock, sleeps):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with make_client(server, clock, sleeps, max_retries=3) as client:
        await client.login()
        server.faults.append(slow)
        with pytest.raises(ClearMLOutcomeUnknown):
            await client.call("tasks.delete", {"task": "t1"})
    assert server.count("tasks.delete") == 1


async def test_a_change_that_surely_was_not_made_is_sent_again(server, clock, sleeps):
    """A refused connection sent nothing; a 429 was not taken: both are safe to repeat."""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "1"}, text="slow down")

    async with make_client(server, clock, sleeps, max_retries=3) as client:
        await client.login()
        server.faults.extend([refused, limited])
        data = await client.call("tasks.stop", {"task": "t1"})
    assert data["echo"] == {"task": "t1"}
    assert server.count("tasks.stop") == 3


@pytest.mark.parametrize(
    "endpoint", ["tasks.get_all_ex", "workers.get_stats", "users.get_vaults", "auth.login"]
)
def test_reads_are_the_endpoints_retried_after_gateway_errors(endpoint):
    assert is_read(endpoint)


@pytest.mark.parametrize("endpoint", ["tasks.stop", "tasks.delete", "tasks.edit", "queues.create"])
def test_changes_are_not_reads(endpoint):
    assert not is_read(endpoint)


async def test_connection_refused_is_unavailable_after_retries_then_recovers(server, clock, sleeps):
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with make_client(server, clock, sleeps, max_retries=2) as client:
        await client.login()
        server.faults.extend([refused] * 3)
        with pytest.raises(ClearMLUnavailable) as info:
            await client.call("tasks.get_all", {})
        assert "Cannot reach the ClearML server" in str(info.value)
        assert SERVER in str(info.value)
        data = await client.call("tasks.get_all", {"back": True})
    assert data["echo"] == {"back": True}


async def test_timeout_is_unavailable_naming_the_server(server, clock, sleeps):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with make_client(server, clock, sleeps, max_retries=1, timeout=2.5) as client:
        await client.login()
        server.faults.extend([slow, slow])
        expected = r"did not answer tasks\.get_all within 2\.5 s"
        with pytest.raises(ClearMLUnavailable, match=expected):
            await client.call("tasks.get_all", {})


async def test_malformed_json_is_unavailable_with_a_clear_message_and_next_call_works(
    server, clock, sleeps
):
    async with make_client(server, clock, sleeps) as client:
        await client.login()
        server.faults.append(lambda r: httpx.Response(200, text='{"meta": {"result_code": 2'))
        with pytest.raises(ClearMLUnavailable, match=r"malformed reply to tasks\.get_all"):
            await client.call("tasks.get_all", {})
        data = await client.call("tasks.get_all", {"after": 1})
    assert data["echo"] == {"after": 1}
    assert server.count("tasks.get_all") == 2  # malformed replies are not retried


async def test_json_without_envelope_is_unavailable(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        await client.login()
        server.faults.append(lambda r: httpx.Response(200, json={"hello": "world"}))
        with pytest.raises(ClearMLUnavailable, match="not a ClearML JSON envelope"):
            await client.call("tasks.get_all", {})


async def test_error_envelope_is_a_request_error_with_codes(server, clock, sleeps):
    async with make_client(server, clock, sleeps) as client:
        with pytest.raises(ClearMLRequestError) as info:
            await client.call("tasks.get_by_id", {"task": "abc"})
    error = info.value
    assert (error.result_code, error.result_subcode) == (400, 101)
    assert error.endpoint == "tasks.get_by_id"
    assert error.result_msg == "Invalid task id: ids=(abc)"
    assert error.http_status == 400
    assert "Invalid task id" in str(error)


async def test_secrets_and_tokens_never_reach_the_log(server, clock, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    async with make_client(server, clock, sleeps) as client:
        await client.call("tasks.get_all", {})
        server.revoked.add(server.issued[0])
        await client.call("tasks.get_all", {})
        server.faults.append(bad_gateway)
        await client.call("tasks.get_all", {})
    assert caplog.records, "the client logs requests at DEBUG"
    text = caplog.text
    assert SECRET not in text
    for token in server.issued:
        assert token not in text
        assert token.split(".")[1] not in text


async def test_closed_client_refuses_calls(server, clock, sleeps):
    client = make_client(server, clock, sleeps)
    await client.aclose()
    with pytest.raises(ClearMLError, match="closed"):
        await client.call("tasks.get_all", {})


def test_decode_jwt_claims_reads_the_payload_without_verifying():
    token = make_jwt({"exp": 123, "identity": {"user": "u"}})
    assert decode_jwt_claims(token) == {"exp": 123, "identity": {"user": "u"}}


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.!!!.c", "a." + b64url(b"[1]") + ".c"])
def test_decode_jwt_claims_rejects_non_jwts(token):
    with pytest.raises(ValueError):
        decode_jwt_claims(token)


def test_ssl_verify_accepts_bools_and_bool_strings():
    assert ssl_verify(True) is True
    assert ssl_verify(False) is False
    assert ssl_verify("false") is False
    assert ssl_verify("True") is True


def test_ssl_verify_turns_a_ca_bundle_path_into_a_context():
    import certifi

    context = ssl_verify(certifi.where())
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.get_ca_certs()


def test_ssl_verify_with_a_missing_bundle_is_a_clear_error(tmp_path: Path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(ClearMLError, match=r"nope\.pem"):
        ssl_verify(str(missing))


def test_a_plain_http_server_gets_a_verifying_context_that_trusts_no_ca(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    context = client_verify("http://127.0.0.1:8008", True)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() == []  # TLS through it fails: nothing is trusted


def test_an_https_server_keeps_the_configured_verification():
    assert client_verify("https://api.clear.ml", True) is True
    assert client_verify("https://api.clear.ml", "false") is False


@pytest.mark.parametrize("name", ["HTTP_PROXY", "ALL_PROXY"])
def test_a_plain_http_server_behind_an_https_proxy_keeps_full_verification(monkeypatch, name):
    monkeypatch.setenv(name, "https://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert client_verify("http://127.0.0.1:8008", True) is True


def test_a_plain_http_server_with_verification_off_stays_off():
    assert client_verify("http://127.0.0.1:8008", False) is False


async def test_the_secret_key_is_registered_for_log_redaction(server, clock, sleeps):
    from tray_app.core.redact import redact, unregister_all_secrets

    unregister_all_secrets()
    assert SECRET in redact(f"accidentally logged {SECRET}")
    async with make_client(server, clock, sleeps):
        assert SECRET not in redact(f"accidentally logged {SECRET}")
    unregister_all_secrets()


def test_idle_connections_outlive_the_refresh_interval_so_refreshes_skip_the_handshake():
    schedule = RefreshSchedule()
    assert HTTP_LIMITS.keepalive_expiry is not None
    assert HTTP_LIMITS.keepalive_expiry > schedule.interval * (1 + schedule.jitter)
    assert HTTP_LIMITS.keepalive_expiry < 60  # below the usual load balancer idle timeout
    assert (HTTP_LIMITS.max_keepalive_connections or 0) >= 4  # workers + a few task pages


async def test_each_failed_attempt_is_reported_before_its_retry_but_not_a_rate_limit(
    server, clock, sleeps
):
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    troubles: list[str] = []
    async with make_client(
        server, clock, sleeps, max_retries=3, on_trouble=troubles.append
    ) as client:
        await client.login()
        server.faults.extend([refused, bad_gateway])
        await client.call("tasks.get_all", {})
        # Told at the first failed attempt, while the call was still retrying (and succeeded).
        assert len(troubles) == 2 and len(sleeps.delays) == 2
        assert "Cannot reach the ClearML server" in troubles[0] and "502" in troubles[1]
        server.faults.append(lambda r: httpx.Response(429, headers={"Retry-After": "1"}))
        await client.call("tasks.get_all", {})
    assert len(troubles) == 2  # a server that asks to slow down is not down


async def test_a_refused_connection_is_worded_plainly_through_httpx() -> None:
    # httpx (by anyio) says "All connection attempts failed"; the refusal is in its chain.
    cfg = ServerConfig("http://127.0.0.1:9", "", "", auth_token="not-a-jwt")
    async with ClearMLClient(cfg, max_retries=0) as client:
        with pytest.raises(ClearMLUnavailable) as info:
            await client.call("tasks.get_all_ex", {})
    assert str(info.value).endswith(": connection refused")
    assert "attempts failed" not in str(info.value)

"""Async ClearML REST client: login, token reuse and refresh, the envelope, typed errors.

One `ClearMLClient` per server. `call("tasks.get_all_ex", {...})` returns the envelope's `data`.

- Auth: `auth.login` with Basic auth once, then `Bearer <jwt>`; a configured `auth_token`
  (CLEARML_AUTH_TOKEN) is used as is. The token is refreshed shortly before its `exp` (read from
  the JWT payload without verifying it, as the SDK does) and once after an HTTP 401. Without
  keys, a configured token is renewed an hour before it expires by `auth.login` with the token
  itself as the bearer, as the SDK's `Session._do_refresh_token` does.
- Identification: every request carries `X-ClearML-Client` and `X-ClearML-Worker` (and their
  legacy `X-Trains-*` names), as the SDK's `Session.send_request` does.
- A hostile or broken server cannot hang or exhaust us: a reply is read up to
  `MAX_BODY_BYTES` (decoded), every attempt has a total deadline (a server trickling one byte
  at a time never trips httpx's per-read timeout), JSON too deep to parse is a malformed reply,
  and 429 is retried after its `Retry-After` only while that is short.
- Retries only where they are safe. Reads (`*.get*`, and `auth.login`) are sent again after a
  502/503/504, a timeout or a lost connection (bounded, jittered). A change (`tasks.stop`,
  `tasks.delete`, …) that got no answer may have been made: it is not sent again here but
  raised as `ClearMLOutcomeUnknown`, and the caller looks at the task before it tries again
  (core/server/sessions.py). A change is repeated only when it surely was not made: a refused
  connection (nothing was sent) or a 429 (the server did not take it).
- Errors: `ClearMLAuthError` (wrong keys, rejected token), `ClearMLUnavailable` (no connection,
  timeouts, 429/502/503/504 after bounded jittered retries, replies that are not ClearML JSON or
  too large), `ClearMLOutcomeUnknown` (a change without an answer), `ClearMLRequestError` (the
  server answered with an error envelope).
- Nothing secret is logged: requests are logged at DEBUG with the endpoint and status only.
- Bytes on the wire: an `Exchange` does each POST. The tray's is httpx (core/server/http_httpx.py,
  imported only when a client is built without another); `clearml-tray list` uses the standard
  library's for a plain-http server (core/server/http_plain.py), without httpx's ~50 ms of imports.
  Either reports failures as `TransportTimeout` / `TransportFailure` / `UnsupportedURL`, so
  every message is worded here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tray_app import APP_NAME, __version__
from tray_app.core.redact import register_secret
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import (
    ClearMLAuthError,
    ClearMLError,
    ClearMLOutcomeUnknown,
    ClearMLRequestError,
    ClearMLUnavailable,
    TooLarge,
    TransportFailure,
    TransportTimeout,
    UnsupportedURL,
)
from tray_app.core.server.http import Exchange

if TYPE_CHECKING:
    from tray_app.core.server.httpx_import import httpx

log = logging.getLogger(__name__)

USER_AGENT = f"{APP_NAME}/{__version__}"
# The SDK's `_client` list joined as "name-version"; the server logs it with every request.
CLIENT_ID = f"{APP_NAME}-{__version__}"
RETRY_STATUSES = frozenset({502, 503, 504})
TOO_MANY_REQUESTS = 429
# A Retry-After longer than this is not waited for inside one call: the poller's own backoff
# takes over (a call must not sit for an hour because a server said so).
RETRY_AFTER_MAX_S = 30.0
# The largest reply read (after content decoding, so a gzip bomb stops here too). A full page
# of 500 sessions with every field we ask for is well under 2 MB.
MAX_BODY_BYTES = 32 * 1024 * 1024
# The SDK refreshes 360 s before expiry; short-lived tokens refresh at a quarter of their life.
REFRESH_MARGIN_S = 360.0
# A CLEARML_AUTH_TOKEN without keys is renewed this long before it expires (the SDK uses
# max(api.auth.token_expiration_threshold_sec, 3600) for such a token).
TOKEN_RENEW_MARGIN_S = 3600.0
# Not reads by name, but sending them twice changes nothing that matters.
REPEATABLE_ENDPOINTS = frozenset({"auth.login", "debug.ping", "server.info"})
REFUSED = "connection refused"  # the transports' words for "nothing was sent"


def is_read(endpoint: str) -> bool:
    """Whether sending `endpoint` again is harmless: it only reads (`tasks.get_all_ex`,
    `workers.get_stats`, `users.get_vaults`…). Everything else may change the server."""
    action = endpoint.partition(".")[2]
    return action.startswith("get") or endpoint in REPEATABLE_ENDPOINTS


class _Unauthorized(Exception):
    """Internal: a 401 envelope, turned into a refresh or a `ClearMLAuthError` by the caller."""

    def __init__(self, subcode: int, msg: str) -> None:
        super().__init__(msg)
        self.subcode = subcode
        self.msg = msg


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the login token says about the server and the user (no extra request)."""

    api_server: str
    api_version: str = ""
    server_version: str = ""
    feature_set: str = ""
    user_id: str = ""
    user_name: str = ""
    company_id: str = ""
    company_name: str = ""
    token_expires: datetime | None = None


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The JWT payload, *not verified* (only the server can; we only read `exp` and identity).

    Raises `ValueError` when `token` is not a JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected three dot-separated parts")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a JWT: undecodable payload ({type(exc).__name__})") from exc
    if not isinstance(claims, dict):
        raise ValueError("not a JWT: the payload is not an object")
    return claims


def server_info_from_claims(api_server: str, claims: dict[str, Any]) -> ServerInfo:
    identity = claims.get("identity")
    identity = identity if isinstance(identity, dict) else {}
    exp = claims.get("exp")
    expires = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None
    return ServerInfo(
        api_server=api_server,
        api_version=str(claims.get("api_version") or ""),
        server_version=str(claims.get("server_version") or ""),
        feature_set=str(claims.get("feature_set") or ""),
        user_id=str(identity.get("user") or ""),
        user_name=str(identity.get("user_name") or ""),
        company_id=str(identity.get("company") or ""),
        company_name=str(identity.get("company_name") or ""),
        token_expires=expires,
    )


class ClearMLClient:
    """Async client for one ClearML API server. Use as `async with ClearMLClient(cfg) as c:`."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        exchange: Exchange | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        clock: Callable[[], float] = time.time,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        deadline: float | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        on_trouble: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.server = config.api_server.rstrip("/")
        # Whatever logs them by accident (an exception text, a debug dump) shows *** instead.
        register_secret(config.secret_key)
        register_secret(config.auth_token)
        self.timeout = timeout
        # Each attempt as a whole (connect, send, every byte of the reply) ends by this.
        self.deadline = deadline if deadline is not None else max(3 * timeout, 30.0)
        self.max_body_bytes = max_body_bytes
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.requests_sent = 0  # HTTP attempts, retries and logins included
        # Told about every attempt that failed for want of a server (refused, timed out, a
        # gateway error) before it is retried: the tray shows the trouble at once, not after
        # the whole retry round.
        self._on_trouble = on_trouble
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        if exchange is None:
            from tray_app.core.server.http_httpx import HttpxExchange

            exchange = HttpxExchange(
                self.server, config.verify, timeout, default_headers(), transport
            )
        self._http: Exchange = exchange
        self._auth_lock = asyncio.Lock()
        self._token: str | None = None
        self._token_exp: float | None = None
        self._token_iat: float | None = None
        self._config_token_tried = False
        self._server_info: ServerInfo | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def server_info(self) -> ServerInfo | None:
        """Versions and identity from the current token; None before the first call."""
        return self._server_info

    @property
    def has_token(self) -> bool:
        return self._token is not None

    # -- public calls ----------------------------------------------------------------------

    async def login(self) -> ServerInfo:
        """Make sure a valid token is held and return what it says (one request at most)."""
        await self._ensure_token()
        assert self._server_info is not None
        return self._server_info

    async def call(
        self, endpoint: str, payload: dict[str, Any] | None = None, *, version: str | None = None
    ) -> dict[str, Any]:
        """POST `payload` to `endpoint` (e.g. "tasks.get_all_ex") and return the reply's `data`.

        A read is retried after gateway errors and timeouts; a change that got no answer raises
        `ClearMLOutcomeUnknown` instead (see the module docstring)."""
        if self._closed:
            raise ClearMLError("The ClearML client is closed", server=self.server)
        token = await self._ensure_token()
        try:
            return await self._request(endpoint, payload, version=version, bearer=token)
        except _Unauthorized:
            # Expired or revoked token (or a restarted server): log in again, retry once.
            log.debug("%s: token rejected, logging in again", endpoint)
            token = await self._refresh_after_401(token)
        try:
            return await self._request(endpoint, payload, version=version, bearer=token)
        except _Unauthorized as exc:
            raise ClearMLAuthError(
                f"The ClearML server {self.server} rejected a fresh login token ({exc.msg})",
                server=self.server,
                access_key=self.config.access_key,
                result_subcode=exc.subcode,
                result_msg=exc.msg,
            ) from None

    # -- token handling --------------------------------------------------------------------

    def _has_keys(self) -> bool:
        return bool(self.config.access_key and self.config.secret_key)

    def _needs_refresh(self) -> bool:
        if self._token_exp is None:
            return False
        wanted = REFRESH_MARGIN_S if self._has_keys() else TOKEN_RENEW_MARGIN_S
        lifetime = self._token_exp - self._token_iat if self._token_iat is not None else wanted
        margin = min(wanted, max(lifetime, 0.0) / 4)
        return self._clock() >= self._token_exp - margin

    def _adopt_token(self, token: str) -> None:
        try:
            claims = decode_jwt_claims(token)
        except ValueError:
            # Not a JWT we can read: use it, and let the server judge it.
            claims = {}
        exp, iat = claims.get("exp"), claims.get("iat")
        self._token = token
        self._token_exp = float(exp) if isinstance(exp, int | float) else None
        self._token_iat = float(iat) if isinstance(iat, int | float) else None
        self._server_info = server_info_from_claims(self.server, claims)

    async def _ensure_token(self) -> str:
        async with self._auth_lock:
            if self._token is not None and not self._needs_refresh():
                return self._token
            if self._token is None and self.config.auth_token and not self._config_token_tried:
                self._config_token_tried = True
                self._adopt_token(self.config.auth_token)
                if not self._needs_refresh():
                    assert self._token is not None
                    return self._token
            if self._has_keys():
                await self._login()
            elif self._token is not None:
                await self._renew_token(self._token)
            else:
                raise ClearMLAuthError(
                    f"No ClearML credentials for {self.server}: set api.credentials in "
                    "clearml.conf or CLEARML_API_ACCESS_KEY / CLEARML_API_SECRET_KEY",
                    server=self.server,
                )
            assert self._token is not None
            return self._token

    async def _refresh_after_401(self, rejected: str) -> str:
        async with self._auth_lock:
            if self._token is not None and self._token != rejected:
                return self._token  # another call already logged in again
            if not self._has_keys():
                self._token = None
                raise ClearMLAuthError(
                    f"The ClearML server {self.server} rejected the configured auth token "
                    "(expired or revoked) and no access key is configured to log in again",
                    server=self.server,
                )
            await self._login()
            assert self._token is not None
            return self._token

    async def _renew_token(self, current: str) -> None:
        """No keys: trade the token for a fresh one (`auth.login` with the token as bearer)."""
        try:
            data = await self._request("auth.login", {}, version=None, bearer=current)
        except _Unauthorized as exc:
            self._token = None
            raise ClearMLAuthError(
                f"The ClearML server {self.server} refused to renew the configured auth token "
                f"({exc.msg or 'HTTP 401'}); set a new CLEARML_AUTH_TOKEN or configure keys",
                server=self.server,
                result_subcode=exc.subcode,
                result_msg=exc.msg,
            ) from None
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ClearMLUnavailable(
                f"{self.server} answered auth.login without a token: not a ClearML API server?",
                server=self.server,
            )
        register_secret(token)
        self._adopt_token(token)
        log.debug("renewed the auth token for %s", self.server)

    async def _login(self) -> None:
        key = self.config.access_key
        basic = base64.b64encode(f"{key}:{self.config.secret_key}".encode()).decode("ascii")
        try:
            data = await self._request("auth.login", {}, version=None, basic=basic)
        except _Unauthorized as exc:
            self._token = None
            raise ClearMLAuthError(
                f"Wrong access key or secret key: the ClearML server {self.server} rejected "
                f"access key {key} ({exc.msg or 'HTTP 401'})",
                server=self.server,
                access_key=key,
                result_subcode=exc.subcode,
                result_msg=exc.msg,
            ) from None
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ClearMLUnavailable(
                f"{self.server} answered auth.login without a token: not a ClearML API server?",
                server=self.server,
            )
        self._adopt_token(token)
        log.debug(
            "logged in to %s (api %s)",
            self.server,
            self._server_info and self._server_info.api_version,
        )

    # -- one HTTP exchange with retries ----------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2 ** min(attempt, 32)))
        return delay * (0.5 + self._rng.random() / 2)

    async def _request(
        self,
        endpoint: str,
        payload: dict[str, Any] | None,
        *,
        version: str | None,
        bearer: str | None = None,
        basic: str | None = None,
    ) -> dict[str, Any]:
        path = f"v{version}/{endpoint}" if version else endpoint
        url = f"{self.server}/{path}"
        headers = {}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        elif basic is not None:
            headers["Authorization"] = f"Basic {basic}"
        failure = ""
        attempts = self.max_retries + 1
        repeatable = is_read(endpoint)
        for attempt in range(attempts):
            started = time.monotonic()
            self.requests_sent += 1
            delay: float | None = None
            down = True  # no answer or a gateway's error; a rate limit is not an outage
            sent = True  # whether the server may have acted on this attempt
            try:
                async with asyncio.timeout(self.deadline):
                    reply = await self._http.post(url, payload or {}, headers, self.max_body_bytes)
            except TimeoutError:
                failure = (
                    f"The ClearML server {self.server} did not finish answering {endpoint} "
                    f"within {self.deadline:g} s"
                )
            except TransportTimeout:
                failure = (
                    f"The ClearML server {self.server} did not answer {endpoint} "
                    f"within {self.timeout:g} s"
                )
            except TooLarge:
                raise ClearMLUnavailable(
                    f"The ClearML server {self.server} sent a reply to {endpoint} larger than "
                    f"{self.max_body_bytes // (1024 * 1024)} MB; it was not read",
                    server=self.server,
                ) from None
            except UnsupportedURL as exc:
                raise ClearMLUnavailable(
                    f"The ClearML api_server {self.server!r} is not an http(s) URL ({exc})",
                    server=self.server,
                ) from None
            except TransportFailure as exc:
                reason = str(exc)
                if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify" in reason:
                    raise ClearMLUnavailable(
                        f"TLS certificate of {self.server} not trusted ({reason}); set "
                        "api.verify_certificate to a CA bundle path",
                        server=self.server,
                    ) from None
                failure = f"Cannot reach the ClearML server {self.server}: {reason}"
                sent = reason != REFUSED
            else:
                status = reply.status
                elapsed = (time.monotonic() - started) * 1000
                log.debug("POST %s -> HTTP %d (%.0f ms)", path, status, elapsed)
                if status == TOO_MANY_REQUESTS:
                    wait = retry_after_seconds(reply.retry_after, self._clock())
                    if wait is not None and wait > RETRY_AFTER_MAX_S:
                        raise ClearMLUnavailable(
                            f"The ClearML server {self.server} is rate limiting {endpoint} "
                            f"(HTTP 429) and asks to wait {wait:.0f} s",
                            server=self.server,
                        )
                    delay, down = wait, False
                    sent = False  # refused, not taken
                    failure = (
                        f"The ClearML server {self.server} is rate limiting {endpoint} (HTTP 429)"
                    )
                elif status not in RETRY_STATUSES:
                    return self._parse(endpoint, status, reply.body)
                else:
                    failure = (
                        f"The ClearML server {self.server} answered HTTP {status} to {endpoint}"
                    )
            if down and self._on_trouble is not None:
                self._on_trouble(failure)
            if sent and not repeatable:
                # It may have been made: sending it again blindly could report "invalid task
                # id" for a delete that went through. The caller looks first.
                raise ClearMLOutcomeUnknown(
                    f"{failure}; it may or may not have been done",
                    server=self.server,
                    endpoint=endpoint,
                )
            if attempt + 1 < attempts:
                if delay is None:
                    delay = self._backoff(attempt)
                log.debug(
                    "%s: %s; retry %d/%d in %.2f s",
                    endpoint,
                    failure,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                await self._sleep(delay)
        suffix = f" ({attempts} attempts)" if attempts > 1 else ""
        raise ClearMLUnavailable(failure + suffix, server=self.server)

    def _parse(self, endpoint: str, status: int, content: bytes) -> dict[str, Any]:
        try:
            body = json.loads(content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: `[[[[…` nested deeper than Python's stack; not a ClearML reply.
            body = None
        meta = body.get("meta") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(meta, dict):
            if status == 401:
                raise _Unauthorized(0, "HTTP 401")
            raise ClearMLUnavailable(
                f"The ClearML server {self.server} sent a malformed reply to {endpoint} "
                f"(HTTP {status}, not a ClearML JSON envelope): is api_server right?",
                server=self.server,
            )
        code = _as_int(meta.get("result_code"), status)
        subcode = _as_int(meta.get("result_subcode"), 0)
        msg = str(meta.get("result_msg") or "")
        if code == 401 or status == 401:
            raise _Unauthorized(subcode, msg)
        if code != 200 or not 200 <= status < 300:
            raise ClearMLRequestError(
                f"{endpoint} failed: {msg or 'HTTP ' + str(status)} ({code}/{subcode})",
                server=self.server,
                endpoint=endpoint,
                result_code=code,
                result_subcode=subcode,
                result_msg=msg,
                http_status=status,
            )
        data = body.get("data")
        return data if isinstance(data, dict) else {}


def default_headers() -> dict[str, str]:
    """What every request of ours carries."""
    return {"User-Agent": USER_AGENT, "Accept": "application/json", **client_headers()}


def client_headers() -> dict[str, str]:
    """The identification headers the SDK sends with every request (both names, as it does)."""
    # Header values are ASCII: a host name in another script must not break every request.
    name = socket.gethostname().encode("ascii", "ignore").decode("ascii")
    worker = "".join(c for c in name if c.isprintable()) or "localhost"
    headers: dict[str, str] = {}
    for prefix in ("X-ClearML", "X-Trains"):
        headers[f"{prefix}-Client"] = CLIENT_ID
        headers[f"{prefix}-Worker"] = worker
    return headers


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """`Retry-After` (delta seconds or an HTTP date) → seconds from `now`; None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text), 10**9))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default

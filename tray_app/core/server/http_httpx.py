"""The tray's HTTP exchange: httpx, with kept-alive connections, proxies and TLS.

`ClearMLClient` (tray_app/core/server/api.py) owns the API protocol and hands each POST to an
exchange; this one is the default. Its errors reach the client as the neutral
`TransportTimeout` / `TransportFailure` / `UnsupportedURL` of api.py.

Tested in tests/unit/server/test_api.py, test_api_tls.py and test_api_hostile.py.
"""

from __future__ import annotations

import os
import ssl
from typing import Any
from urllib.request import getproxies

from tray_app.core.server.errors import ClearMLError
from tray_app.core.server.http import (
    ExchangeReply,
    TooLarge,
    TransportFailure,
    TransportTimeout,
    UnsupportedURL,
)
from tray_app.core.server.httpx_import import httpx

# Idle connections stay open between refreshes (every 15 s): httpx's default of 5 s would cost
# every refresh a new TCP (and TLS) handshake, one or two round trips before the first byte.
# 45 s stays below the usual idle timeouts in front of a server (load balancers 60 s, nginx
# 75 s); a server that closes sooner only costs the new connection it costs today. A snapshot's
# concurrent requests (workers + task pages) each get a connection of their own.
HTTP_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=45)


def ssl_verify(verify: bool | str) -> bool | ssl.SSLContext:
    """`api.verify_certificate` → what httpx wants: a bool, or a context trusting a CA bundle."""
    if isinstance(verify, bool):
        return verify
    text = str(verify).strip()
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off", ""):
        return False
    path = os.path.expanduser(text)
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ClearMLError(
            f"Cannot use the CA bundle {path} (api.verify_certificate): {exc}"
        ) from exc


def client_verify(server: str, verify: bool | str) -> bool | ssl.SSLContext:
    """What the httpx client of `server` gets as `verify`.

    httpx loads a whole CA bundle into every client it builds (tens of milliseconds: a tenth of
    `clearml-tray list`). A plain-http server reached without an https proxy never does TLS, so
    its client gets a context that verifies but trusts no CA: TLS asked of it would fail, never
    pass unchecked. Everything else gets `ssl_verify(verify)`.
    """
    resolved = ssl_verify(verify)
    if resolved is True and server.lower().startswith("http://") and not _https_proxy():
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname, no CA
    return resolved


def _https_proxy() -> bool:
    """Whether plain-http requests may reach a proxy over TLS (HTTP_PROXY=https://…)."""
    proxies = getproxies()
    return any(str(proxies.get(k) or "").lower().startswith("https://") for k in ("http", "all"))


def _describe_transport_error(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        # anyio says "All connection attempts failed" and keeps why in the exception's chain.
        if "refused" in text.lower() or _caused_by(exc, ConnectionRefusedError):
            return "connection refused"
        if text == "All connection attempts failed":
            return "could not connect"
    return text


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kind):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


class HttpxExchange:
    """POSTs through one httpx.AsyncClient (its connections kept between calls)."""

    def __init__(
        self,
        server: str,
        verify: bool | str,
        timeout: float,
        headers: dict[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # trust_env: HTTPS_PROXY / NO_PROXY / SSL_CERT_FILE apply, as they do for the SDK.
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            verify=client_verify(server, verify) if transport is None else True,
            headers=headers,
            follow_redirects=False,
            trust_env=True,
            limits=HTTP_LIMITS,
        )

    async def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], max_body_bytes: int
    ) -> ExchangeReply:
        try:
            return await self._post(url, payload, headers, max_body_bytes)
        except httpx.TimeoutException:
            raise TransportTimeout from None
        except httpx.UnsupportedProtocol as exc:
            raise UnsupportedURL(str(exc)) from None
        except httpx.TransportError as exc:
            raise TransportFailure(_describe_transport_error(exc)) from None

    async def _post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], max_body_bytes: int
    ) -> ExchangeReply:
        async with self._http.stream("POST", url, json=payload, headers=headers) as reply:
            declared = _as_int(reply.headers.get("content-length"))
            if declared > max_body_bytes:
                raise TooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > max_body_bytes:
                    raise TooLarge
                chunks.append(chunk)
            return ExchangeReply(
                reply.status_code, reply.headers.get("retry-after"), b"".join(chunks)
            )

    async def aclose(self) -> None:
        await self._http.aclose()


def _as_int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0

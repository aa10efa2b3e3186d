"""A lean HTTP exchange for one-shot commands: the standard library's http.client, in threads.

`clearml-tray list` without a tray makes a handful of POSTs and exits. httpx, httpcore and anyio
cost it ~50 ms of imports and set-up before the first byte (a third of the command); http.client
costs ~5. It is used only where it behaves as httpx would (`plain_exchange_for`): a plain-http
server and no proxy in the environment. TLS, proxies and the tray itself stay on httpx.

Only the bytes on the wire are here: the API protocol (login, token renewal, retries, the
envelope, every message) stays in `ClearMLClient` (tray_app/core/server/api.py). Each POST runs in a
worker thread (the snapshot's concurrent requests stay concurrent) on a kept-alive connection
when one is free. A reply is read up to the client's limit, gzip undone within that limit, and
each attempt ends by its deadline even against a server that trickles bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tray_app.core.server.config import ServerConfig
from tray_app.core.server.http import (
    ExchangeReply,
    TooLarge,
    TransportFailure,
    TransportTimeout,
    UnsupportedURL,
)

CHUNK = 64 * 1024
# What httpx would read from the environment to route a plain-http request elsewhere.
PROXY_VARIABLES = ("http_proxy", "all_proxy")


def plain_exchange_for(
    config: ServerConfig,
    timeout: float,
    headers: dict[str, str],
    env: Mapping[str, str] | None = None,
) -> PlainExchange | None:
    """A `PlainExchange` when it can stand in for httpx for this server, else None.

    Not for https (httpx's CA store and TLS settings are the reference), nor when a proxy may
    apply: httpx's `trust_env` reads the environment, and on macOS and Windows the system's
    settings too, which only httpx (urllib) knows how to read.
    """
    env = os.environ if env is None else env
    if not config.api_server.lower().startswith("http://"):
        return None
    if sys.platform in ("darwin", "win32"):
        return None
    if any(value.strip() for name, value in env.items() if name.lower() in PROXY_VARIABLES):
        return None
    return PlainExchange(timeout, headers)


class PlainExchange:
    """POSTs with http.client, one worker thread per request in flight."""

    def __init__(self, timeout: float, headers: dict[str, str]) -> None:
        self.timeout = timeout
        self.headers = {**headers, "Accept-Encoding": "gzip", "Content-Type": "application/json"}
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    async def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], max_body_bytes: int
    ) -> ExchangeReply:
        # httpx's own JSON encoding, so that both send the same bytes.
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        # A backstop: the client's own deadline (the same formula, ClearMLClient.deadline) cancels
        # the wait first, which aborts the socket; this one ends the thread if it does not.
        deadline = time.monotonic() + max(3 * self.timeout, 30.0) + 1.0
        parts = urlsplit(url)
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise UnsupportedURL(f"Request URL has an unsupported protocol '{parts.scheme}://'.")
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise UnsupportedURL(str(exc)) from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(parts.hostname, port)
        # The socket is kept here: http.client drops `conn.sock` once a reply without a length
        # is under way (it closes when read), and that read must still be woken up.
        sockets: list[socket.socket] = []
        try:
            return await asyncio.to_thread(
                self._post, conn, target, body.encode(), {**self.headers, **headers},
                max_body_bytes, deadline, sockets,
            )  # fmt: skip
        except asyncio.CancelledError:
            # The caller's deadline passed: wake the thread's blocking read so that it ends
            # now, not at the next per-read timeout (asyncio.run waits for its threads).
            _abort(conn, sockets)
            with self._lock:
                if conn in self._idle:
                    self._idle.remove(conn)
            raise

    async def aclose(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- in a worker thread ----------------------------------------------------------------

    def _post(
        self,
        conn: http.client.HTTPConnection,
        target: str,
        body: bytes,
        headers: dict[str, str],
        limit: int,
        deadline: float,
        sockets: list[socket.socket],
    ) -> ExchangeReply:
        reusable = False
        try:
            if conn.sock is None:
                conn.connect()
            if conn.sock is not None:
                sockets.append(conn.sock)
            conn.request("POST", target, body=body, headers=headers)
            reply = conn.getresponse()
            sock = sockets[0] if sockets else None
            data = _read_body(reply, limit, deadline, sock, conn.timeout)
            reusable = not reply.will_close
            reply.close()  # read to its end: frees the connection for the next request
            return ExchangeReply(reply.status, reply.getheader("retry-after"), data)
        except TimeoutError:
            raise TransportTimeout from None
        except ConnectionRefusedError:
            raise TransportFailure("connection refused") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportFailure(str(exc) or type(exc).__name__) from None
        finally:
            if reusable:
                with self._lock:
                    self._idle.append(conn)
            else:
                conn.close()

    def _connection(self, host: str, port: int) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if (conn.host, conn.port) == (host, port):
                    return conn
                conn.close()
        return http.client.HTTPConnection(host, port, timeout=self.timeout)


def _abort(conn: http.client.HTTPConnection, sockets: list[socket.socket]) -> None:
    for sock in {id(s): s for s in [*sockets, *([conn.sock] if conn.sock else [])]}.values():
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read_body(
    reply: http.client.HTTPResponse,
    limit: int,
    deadline: float,
    sock: socket.socket | None,
    per_read: float | None,
) -> bytes:
    """The reply's body, decoded, at most `limit` bytes (TooLarge past it); TimeoutError once
    `deadline` (monotonic) has passed."""
    declared = reply.getheader("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise TooLarge
    encoding = (reply.getheader("content-encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise TransportFailure(f"unsupported content encoding {encoding[:40]!r}")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if sock is not None:
            sock.settimeout(min(remaining, per_read or remaining))
        raw = reply.read1(CHUNK)
        if not raw:
            break
        if inflate is None:
            data = raw
        else:
            try:
                # Never more than one byte past the limit: a gzip bomb stops here.
                data = inflate.decompress(raw, limit - size + 1)
            except zlib.error as exc:
                raise TransportFailure(f"undecodable gzip reply ({exc})") from None
            if inflate.unconsumed_tail:
                raise TooLarge
        size += len(data)
        if size > limit:
            raise TooLarge
        chunks.append(data)
    if inflate is not None:
        rest = inflate.flush()
        if size + len(rest) > limit:
            raise TooLarge
        chunks.append(rest)
    return b"".join(chunks)

"""The ASGI application: routing, envelope, authentication and fault injection.

Built on Starlette's request/response types with a small dispatcher of our own, because the
ClearML API routes on `/{service}.{action}` for any HTTP method rather than on fixed paths.

Tested in tests/unit/demo/test_emulator.py (routing, envelope, authentication) and
test_emulator_faults.py (fault injection).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from tray_app.demo.errors import ApiError, unauthorized
from tray_app.demo.services import Call, find_endpoint, verify_token
from tray_app.demo.state import EmulatorState, FaultKind, RequestRecord
from tray_app.demo.webui import is_web_path, render

log = logging.getLogger(__name__)

_PATH_RE = re.compile(r"^/?(v(?P<ver>\d+\.?\d+)/)?(?P<name>[a-zA-Z_]\w+\.[a-zA-Z_]\w+)/?$")


class DroppedConnection(Exception):
    """Raised in-process (ASGI transport) where a real server would close the socket."""


def _convert_query_value(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*", value):
        return float(value)
    return value


def query_args(request: Request) -> dict[str, Any]:
    """Query-string args as the server merges them into the body."""
    out: dict[str, Any] = {}
    for key, raw in request.query_params.multi_items():
        value = _convert_query_value(raw)
        is_list = key.endswith("[]")
        key = key.removesuffix("[]")
        parts = key.split(".")
        cur = out
        for part in parts[:-1]:
            nxt = cur.setdefault(part, {})
            if not isinstance(nxt, dict):
                nxt = {}
                cur[part] = nxt
            cur = nxt
        leaf = parts[-1]
        if leaf in cur:
            existing = cur[leaf]
            cur[leaf] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            cur[leaf] = [value] if is_list else value
    return out


class EmulatorApp:
    """ASGI callable serving the ClearML REST API from an `EmulatorState`."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        on_startup: Callable[[], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
    ) -> None:
        self.state = state
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request, send)
        if response is not None:
            await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._on_startup is not None:
                    result = self._on_startup()
                    if asyncio.iscoroutine(result):
                        await result
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._on_shutdown is not None:
                    result = self._on_shutdown()
                    if asyncio.iscoroutine(result):
                        await result
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- one request ---------------------------------------------------------------------------
    async def handle(self, request: Request, send: Send) -> Response | None:
        state = self.state
        if request.method == "OPTIONS":
            return Response(b"", status_code=200)
        if request.headers.get("content-encoding"):
            return PlainTextResponse("Content encoding is not supported", status_code=415)

        path = request.url.path
        match = _PATH_RE.match(path)
        name = match.group("name") if match else ""
        requested = (match.group("ver") if match else None) or state.api_version
        call_id = uuid.uuid4().hex
        trx = _header(request, "trx") or call_id

        def envelope(code: int, subcode: int, msg: str, data: Any, actual: str = "") -> Response:
            meta = {
                "id": call_id,
                "trx": trx,
                "endpoint": {
                    "name": name,
                    "requested_version": requested,
                    "actual_version": actual or None,
                },
                "result_code": code,
                "result_subcode": subcode,
                "result_msg": msg,
                "error_stack": None
                if code != 200 or not state.server_version.startswith("2.0")
                else "",
                "error_data": {},
            }
            return JSONResponse(
                {"meta": meta, "data": data if code == 200 else {}},
                status_code=code,
                headers={"server": "clearml"},
            )

        with state.lock:
            fault = state.faults.pick(name) if name else None
            latency = state.faults.latency
        if latency > 0:
            await asyncio.sleep(latency)
        late = fault is FaultKind.GATEWAY_TIMEOUT_AFTER
        if fault is not None and not late:
            if fault is FaultKind.DROP:
                # Read the whole request first: closing with some of it still unread makes the
                # kernel reset the connection (ECONNRESET) instead of a plain close, at random.
                await request.body()
            return await self._fault(fault, send, envelope)

        if match is None:
            if request.method in ("GET", "HEAD") and is_web_path(path):
                status_code, page = render(state, path)
                return HTMLResponse(page, status_code=status_code)
            return envelope(400, 0, f"Invalid request path {path}", {})

        raw = await request.body()
        try:
            body = self._parse_body(raw, name)
        except ApiError as err:
            return envelope(err.code, err.subcode, err.msg, {})
        body = {**query_args(request), **body}

        user_id: str | None = None
        status = 200
        actual = ""
        try:
            endpoint = find_endpoint(name, requested)
            actual = endpoint.min_version
            # server.info needed no auth before server 2.3.0.
            open_info = name == "server.info" and state.server_version.startswith("2.0")
            if endpoint.auth and not open_info:
                user_id = self._authenticate(request)
            call = Call(
                state=state,
                endpoint=name,
                requested_version=requested,
                user_id=user_id,
                ip=_client_ip(request),
                worker=_header(request, "worker"),
                raw_body=raw,
                headers=dict(request.headers),
            )
            with state.lock:
                data = endpoint.handler(call, body)
            response = envelope(200, 0, "OK", data, actual)
        except ApiError as err:
            status = err.code
            response = envelope(err.code, err.subcode, err.msg, {}, actual)
        except Exception:  # a bug in a handler must still answer with an envelope
            log.exception("emulator handler %s failed", name)
            status = 500
            response = envelope(500, 0, "Internal server error", {}, actual)
        record = RequestRecord(
            name,
            requested,
            request.method,
            _redact_body(name, body),
            user_id,
            status,
            request_bytes=len(raw),
            response_bytes=len(response.body),
        )
        state.record_request(record)
        if late:
            return Response(
                b"<html><body><h1>504 Gateway Time-out</h1></body></html>",
                status_code=504,
                media_type="text/html",
            )
        return response

    def _parse_body(self, raw: bytes, name: str) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            if name == "events.add_batch":
                return {}  # newline-delimited events: the handler reads the raw body
            raise ApiError(400, 0, f"Failed parsing JSON body: {exc}") from exc
        if isinstance(parsed, dict):
            return parsed
        if name == "events.add_batch" and isinstance(parsed, list):
            return {"requests": parsed}
        raise ApiError(400, 12, "Validation error (request body must be a JSON object)")

    def _authenticate(self, request: Request) -> str:
        state = self.state
        header = request.headers.get("authorization")
        if not header:
            cookie = request.cookies.get("clearml_token_basic")
            if cookie:
                with state.lock:
                    return verify_token(state, cookie)
            raise unauthorized(20, "missing credentials")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
                key, sep, secret = decoded.partition(":")
                if not sep:
                    raise ValueError("missing ':'")
            except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
                raise unauthorized(21, "malformed credentials", str(exc)) from exc
            with state.lock:
                cred = state.credentials.get(key)
            if cred is None or cred.secret_key != secret:
                raise unauthorized(
                    22, "invalid credentials", "failed to locate provided credentials"
                )
            return cred.user_id
        if scheme == "bearer":
            with state.lock:
                return verify_token(state, value)
        raise unauthorized(10, "bad authentication header type")

    async def _fault(
        self,
        kind: FaultKind,
        send: Send,
        envelope: Callable[..., Response],
    ) -> Response | None:
        if kind is FaultKind.ERROR_500:
            return envelope(500, 0, "Internal server error (injected fault)", {})
        if kind is FaultKind.BAD_GATEWAY:
            return Response(
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                status_code=502,
                media_type="text/html",
            )
        if kind is FaultKind.TOKEN_EXPIRED:
            return envelope(
                401, 30, "Invalid token (invalid jwt token): reason=Signature has expired", {}
            )
        if kind is FaultKind.MALFORMED:
            return Response(b'{"meta": {"id": "', status_code=200, media_type="application/json")
        # DROP: close the socket without a response. Under uvicorn the ASGI `send` is a bound
        # method of the protocol's request cycle, which holds the transport.
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is not None:
            # Marking the cycle disconnected stops uvicorn from answering a 500 afterwards.
            cycle.disconnected = True  # type: ignore[union-attr]
            transport.close()
            return None
        raise DroppedConnection("Server disconnected without sending a response.")


def _header(request: Request, suffix: str) -> str | None:
    return request.headers.get(f"x-clearml-{suffix}") or request.headers.get(f"x-trains-{suffix}")


def _client_ip(request: Request) -> str:
    """apiserver/service_repo/apicall.py `real_ip`: the whole X-Forwarded-For header (every
    hop, as sent), else X-Real-IP, else the peer: what workers.get_all reports as `ip`."""
    forwarded = request.headers.get("x-forwarded-for") or request.headers.get("x-real-ip")
    if forwarded:
        return forwarded
    return request.client.host if request.client else "127.0.0.1"


_SECRET_KEYS = ("secret", "password", "token", "_user_key")


def _redact_body(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Request bodies are kept for tests; secrets in them are not."""
    if name in ("events.add_batch", "tasks.edit", "tasks.create"):
        return {k: ("<redacted>" if k == "runtime" else v) for k, v in body.items()}
    return {
        k: ("<redacted>" if any(s in k.lower() for s in _SECRET_KEYS) else v)
        for k, v in body.items()
    }


def create_app(state: EmulatorState, **kwargs: Any) -> EmulatorApp:
    """The ASGI app for `state` (use with uvicorn or `httpx.ASGITransport`)."""
    return EmulatorApp(state, **kwargs)

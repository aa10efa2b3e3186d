"""The endpoint registry and what every service module shares: `Call`, `@endpoint`, helpers.

Handlers run synchronously under `state.lock`; they raise `ApiError` for error replies.

Tested in tests/unit/demo/test_emulator.py (unknown endpoints, minimum versions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tray_app.demo.errors import endpoint_not_found
from tray_app.demo.state import EmulatorState

Doc = dict[str, Any]


@dataclass(slots=True)
class Call:
    """One request as a handler sees it."""

    state: EmulatorState
    endpoint: str
    requested_version: str
    user_id: str | None
    ip: str = "127.0.0.1"
    worker: str | None = None
    raw_body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def user(self) -> Doc:
        assert self.user_id is not None
        return self.state.users[self.user_id]


Handler = Callable[[Call, Doc], Doc]


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    handler: Handler
    min_version: str = "1.0"
    auth: bool = True


ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(
    name: str, *, min_version: str = "1.0", auth: bool = True
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ENDPOINTS[name] = Endpoint(name, fn, min_version, auth)
        return fn

    return register


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)


def find_endpoint(name: str, version: str) -> Endpoint:
    ep = ENDPOINTS.get(name)
    if ep is None or version_tuple(version) < version_tuple(ep.min_version):
        raise endpoint_not_found(name, version)
    return ep


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def updated(fields: Mapping[str, Any]) -> Doc:
    return {"updated": 1, "fields": dict(fields)}

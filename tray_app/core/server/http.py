"""The seam between the client and the bytes on the wire: one POST of JSON, one reply.

`ClearMLClient` (api.py) speaks only to this protocol; the exchanges (httpx for the tray,
http_plain.py for `clearml-tray list`) implement it and import nothing of the client, so
either side can change alone. Failures come as the transport errors of errors.py, which the
client puts in words.

Tested through both exchanges: tests/unit/server/test_api.py (httpx), test_http_plain.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tray_app.core.server.errors import (
    TooLarge,
    TransportFailure,
    TransportTimeout,
    UnsupportedURL,
)

__all__ = [
    "Exchange",
    "ExchangeReply",
    "TooLarge",
    "TransportFailure",
    "TransportTimeout",
    "UnsupportedURL",
]


@dataclass(frozen=True, slots=True)
class ExchangeReply:
    status: int
    retry_after: str | None  # the Retry-After header, if any
    body: bytes  # decoded (Content-Encoding undone), at most the asked size


class Exchange(Protocol):
    """One way to POST JSON and read the reply; failures as the transport errors,
    TooLarge past `max_body_bytes`."""

    async def post(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], max_body_bytes: int
    ) -> ExchangeReply: ...

    async def aclose(self) -> None: ...

"""Value formats the emulator shares: the server's datetime strings and metric-name hashes.

A leaf module (no emulator imports), so that `state`, `bll`, `seed` and the services can all use
it.

Tested in tests/unit/demo/test_emulator_agent.py and test_emulator_conformance.py, which read
metrics and dates through it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def iso(dt: datetime) -> str:
    """The server's datetime format: ISO-8601 UTC with microseconds and offset."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text)

"""Stand-ins for the ports a flow talks through, recording what they were asked."""

from __future__ import annotations

from typing import Any


class Notices:
    """core.ports.Notify that keeps (kind, title, body) of every notification."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def notify(self, kind: str, title: str, body: str, buttons: Any = (), **kw: Any) -> bool:
        self.sent.append((kind, title, body))
        return True

"""Without a notification service on D-Bus the notifier falls back to the tray balloon."""

from __future__ import annotations

from typing import Any

import pytest

from tray_app.core.settings import NotificationPrefs
from tray_app.qt.notifier import Notifier


async def test_no_session_bus_uses_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bus address nothing listens on: as on a desktop without a notification daemon.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    shown: list[Any] = []
    notifier = Notifier(NotificationPrefs, lambda *a: shown.append(a))
    notifier.notify("session_failed", "Session failed", "bad queue", critical=True)
    await notifier.wait_sent()
    assert shown == [("Session failed", "bad queue", True)]
    notifier.notify("session_failed", "Again", "still no daemon")
    await notifier.wait_sent()
    assert shown[-1] == ("Again", "still no daemon", False)

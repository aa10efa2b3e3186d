"""Without a notification service on D-Bus the notifier falls back to the tray balloon."""

from __future__ import annotations

from typing import Any

import pytest

from tray_app.core.settings.settings import NotificationPrefs
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


class FakeBackend:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)
        kwargs["on_dispatched"]()


async def test_server_text_is_escaped_for_markup_and_stripped_of_controls() -> None:
    notifier = Notifier(NotificationPrefs, lambda *a: None)
    backend = FakeBackend()
    notifier._backend = backend
    notifier.notify(
        "session_ready",
        "Session ready: <b>boss</b>\u202e\n& co",
        "<a href='file:///etc/passwd'>open</a>\x1b[2J\nsecond line",
    )
    await notifier.wait_sent()
    (sent,) = backend.sent
    assert sent["title"] == "Session ready: &lt;b&gt;boss&lt;/b&gt; &amp; co"
    assert sent["message"] == ("&lt;a href='file:///etc/passwd'&gt;open&lt;/a&gt;\nsecond line")
    # What the log window lists is the plain text.
    assert notifier.sent[-1][1] == "Session ready: <b>boss</b> & co"


async def test_the_icon_matches_the_severity(tmp_path: Any) -> None:
    icons = {level: tmp_path / f"{level}.png" for level in ("ok", "error", "busy", "offline")}
    notifier = Notifier(NotificationPrefs, lambda *a: None, icon_for=icons.get)
    backend = FakeBackend()
    notifier._backend = backend
    notifier.notify("session_ready", "Session ready", "connected")
    notifier.notify("session_failed", "Session failed", "no such queue", critical=True)
    notifier.notify("info", "Starting a session", "Follow the log")
    notifier.notify("idle_warning", "Idle", "for 2 hours")
    await notifier.wait_sent()
    shown = [sent["icon"].path for sent in backend.sent]
    assert shown == [icons["ok"], icons["error"], icons["busy"], icons["offline"]]
    assert notifier.icons == ["ok", "error", "busy", "offline"]

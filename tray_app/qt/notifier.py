"""Desktop notifications with buttons (desktop-notifier on the asyncio loop).

Falls back to the tray icon's balloon (`QSystemTrayIcon.showMessage`, no buttons) when no
notification service answers on D-Bus. The user's NotificationPrefs decide which kinds show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tray_app import APP_DISPLAY_NAME
from tray_app.core.settings.settings import NotificationPrefs
from tray_app.core.untrusted import display_text, markup_escape

log = logging.getLogger(__name__)

Buttons = Sequence[tuple[str, Callable[[], None]]]
MAX_TITLE = 120
MAX_BODY = 1000
# Kinds the user can switch off in Settings → Notifications; any other kind always shows.
OPTIONAL_KINDS = frozenset(
    {"session_ready", "session_failed", "tunnel_problems", "idle_warning", "server_unreachable"}
)
# Kinds that are good news get the green check; a failure (critical) gets the error icon;
# everything else (progress, information, warnings that are not failures) the neutral one.
GOOD_KINDS = frozenset({"session_ready"})
WARNING_KINDS = frozenset({"idle_warning", "server_unreachable", "tunnel_problems"})


def severity(kind: str, critical: bool) -> str:
    """The icon state ("ok", "error", "offline", "busy") a notification of `kind` shows."""
    if critical:
        return "error"
    if kind in GOOD_KINDS:
        return "ok"
    if kind in WARNING_KINDS:
        return "offline"
    return "busy"


class Notifier:
    def __init__(
        self,
        prefs: Callable[[], NotificationPrefs],
        fallback: Callable[[str, str, bool], None],
        icon: Path | None = None,
        icon_for: Callable[[str], Path | None] | None = None,
    ) -> None:
        self._prefs = prefs
        self._fallback = fallback
        self._icon = icon  # the application's icon
        self._icon_for = icon_for  # severity → the icon of one notification
        self._backend: Any = None
        self._broken = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[tuple[str, str, str]] = []  # (kind, title, body) — for the log window
        self.icons: list[str] = []  # the severity each sent notification showed (tests)
        # tag → the shown notification's id: a later one with the tag replaces it ("Starting a
        # session" gives way to "Session ready" instead of piling up).
        self._shown: dict[str, str] = {}
        self._order: asyncio.Lock | None = None

    def wanted(self, kind: str) -> bool:
        if kind not in OPTIONAL_KINDS:
            return True
        return bool(getattr(self._prefs(), kind, True))

    def message(self, title: str, text: str, error: bool) -> None:
        """A controller's answer to an action: an error stays until dismissed."""
        self.notify("error" if error else "info", title, text, critical=error)

    def notify(
        self,
        kind: str,
        title: str,
        body: str,
        buttons: Buttons = (),
        *,
        critical: bool = False,
        on_clicked: Callable[[], None] | None = None,
        tag: str = "",
    ) -> bool:
        """Show a notification unless the user switched this kind off; never blocks. One with
        the `tag` of a shown one replaces it."""
        if not self.wanted(kind):
            log.debug("notification %s suppressed by the user's settings", kind)
            return False
        # Titles and bodies carry server text (session names, error messages): one plain line
        # each, no controls or bidi overrides; escaped when sent, as dunst renders markup.
        title = display_text(title, MAX_TITLE)
        body = display_text(body, MAX_BODY, multiline=True)
        self.sent.append((kind, title, body))
        level = severity(kind, critical)
        self.icons.append(level)
        icon = self._icon_for(level) if self._icon_for else None
        task = asyncio.ensure_future(
            self._send(title, body, buttons, critical, on_clicked, icon, tag)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def wait_sent(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send(
        self,
        title: str,
        body: str,
        buttons: Buttons,
        critical: bool,
        on_clicked: Callable[[], None] | None,
        icon_path: Path | None = None,
        tag: str = "",
    ) -> None:
        if self._order is None:
            self._order = asyncio.Lock()
        async with self._order:  # a replacement never overtakes the one it replaces
            await self._send_now(title, body, buttons, critical, on_clicked, icon_path, tag)

    async def _send_now(
        self,
        title: str,
        body: str,
        buttons: Buttons,
        critical: bool,
        on_clicked: Callable[[], None] | None,
        icon_path: Path | None,
        tag: str,
    ) -> None:
        delivered: list[bool] = []
        try:
            from desktop_notifier import Button, DesktopNotifier, Icon, Urgency

            if self._backend is None:
                icon = Icon(path=self._icon) if self._icon else None
                self._backend = (
                    DesktopNotifier(app_name=APP_DISPLAY_NAME, app_icon=icon)
                    if icon
                    else DesktopNotifier(app_name=APP_DISPLAY_NAME)
                )
            # desktop-notifier swallows delivery errors (it only logs them); `on_dispatched`
            # runs only when the notification server accepted it.
            extra: dict[str, Any] = {"icon": Icon(path=icon_path)} if icon_path else {}
            previous = self._shown.pop(tag, None) if tag else None
            if previous is not None:
                try:
                    await self._backend.clear(previous)
                except Exception as exc:
                    log.debug("notification %s not withdrawn: %s", previous, exc)
            identifier = await self._backend.send(
                title=markup_escape(title),
                message=markup_escape(body, multiline=True),
                urgency=Urgency.Critical if critical else Urgency.Normal,
                buttons=[Button(title=label, on_pressed=callback) for label, callback in buttons],
                on_clicked=on_clicked,
                on_dispatched=lambda: delivered.append(True),
                **extra,
            )
            if tag and delivered and isinstance(identifier, str):
                self._shown[tag] = identifier
        except Exception as exc:
            log.warning("desktop notification failed: %s", exc)
        if not delivered:
            if not self._broken:
                log.warning("no desktop notification service answered; using the tray balloon")
            self._broken = True
            self._fallback(title, body, critical)
        else:
            self._broken = False

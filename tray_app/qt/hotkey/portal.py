"""Wayland global hotkey through the XDG desktop portal's GlobalShortcuts interface.

Wayland gives no client a global key grab; the desktop (KDE Plasma, GNOME 48+, Hyprland, …)
binds shortcuts for apps through `org.freedesktop.portal.GlobalShortcuts` and may ask the user
to confirm. The dance is asynchronous — CreateSession, then BindShortcuts, each answered by a
`Request.Response` signal — so `register()` starts it on the asyncio loop (qasync in the app)
and reports its outcome through `on_status`. Key presses arrive as `Activated` signals.
D-Bus goes through dbus-fast, which desktop-notifier already brings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from tray_app.qt.hotkey.base import HotkeyResult, HotkeyStatus, parse_hotkey

log = logging.getLogger(__name__)

PORTAL_NAME = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
REQUEST = "org.freedesktop.portal.Request"
SHORTCUT_ID = "quick-pick"

_MODIFIERS = {"Ctrl": "CTRL", "Alt": "ALT", "Shift": "SHIFT", "Super": "LOGO"}
_ORDER = ("CTRL", "ALT", "SHIFT", "LOGO")


def portal_trigger(hotkey: str) -> str:
    """ "Ctrl+Alt+C" → "CTRL+ALT+c" (the XDG shortcuts spec: modifiers, then an xkb key name)."""
    parsed = parse_hotkey(hotkey)
    mods = sorted((_MODIFIERS[m] for m in parsed.modifiers), key=_ORDER.index)
    key = parsed.key.lower() if len(parsed.key) == 1 else parsed.key
    return "+".join([*mods, key])


class PortalError(Exception):
    pass


class PortalHotkey:
    """HotkeyBackend over the GlobalShortcuts portal; `on_status` hears how binding ended."""

    available = True
    reason = ""

    def __init__(
        self,
        bus_address: str | None = None,
        on_status: Callable[[HotkeyResult], None] | None = None,
    ) -> None:
        self._bus_address = bus_address
        self.on_status = on_status or (lambda result: None)
        self._bus: MessageBus | None = None
        self._session: str | None = None
        self._callback: Callable[[], None] = lambda: None
        self._task: asyncio.Task[None] | None = None
        self._responses: dict[str, asyncio.Future[tuple[int, dict[str, Any]]]] = {}

    # --- HotkeyBackend ---------------------------------------------------------------------
    def register(self, hotkey: str, on_activated: Callable[[], None]) -> HotkeyResult:
        self.unregister()
        if not hotkey:
            return HotkeyResult(HotkeyStatus.OK, "")
        try:
            trigger = portal_trigger(hotkey)
        except ValueError as exc:
            return HotkeyResult(HotkeyStatus.INVALID, str(exc))
        self._callback = on_activated
        self._task = asyncio.get_event_loop().create_task(self._bind(hotkey, trigger))
        return HotkeyResult(HotkeyStatus.OK, "")

    def unregister(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._callback = lambda: None
        bus, session = self._bus, self._session
        self._bus, self._session = None, None
        if bus is not None:
            if session is not None:  # closing the session drops its shortcuts
                with contextlib.suppress(Exception):
                    bus.send(
                        Message(
                            destination=PORTAL_NAME,
                            path=session,
                            interface="org.freedesktop.portal.Session",
                            member="Close",
                        )
                    )
            bus.disconnect()

    async def wait_bound(self) -> None:
        """For tests and the self-test: until the binding in flight has ended."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- the portal dance -------------------------------------------------------------------
    async def _bind(self, hotkey: str, trigger: str) -> None:
        try:
            result = await self._bind_or_raise(hotkey, trigger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any D-Bus failure ends as a reason in Settings
            reason = f"the desktop's GlobalShortcuts portal did not bind {hotkey}: {exc}"
            result = HotkeyResult(HotkeyStatus.UNAVAILABLE, reason)
        if result.ok:
            log.info("global hotkey %s bound through the GlobalShortcuts portal", hotkey)
        else:
            log.warning("global hotkey %s: %s", hotkey, result.reason)
        self.on_status(result)

    async def _bind_or_raise(self, hotkey: str, trigger: str) -> HotkeyResult:
        if self._bus_address:
            bus = await MessageBus(bus_address=self._bus_address).connect()
        else:
            bus = await MessageBus(bus_type=BusType.SESSION).connect()
        self._bus = bus
        bus.add_message_handler(self._on_message)
        await self._add_match(bus, f"type='signal',interface='{REQUEST}',member='Response'")
        await self._add_match(bus, f"type='signal',interface='{SHORTCUTS}',member='Activated'")

        version = await self._call(
            bus,
            "org.freedesktop.DBus.Properties",
            "Get",
            "ss",
            [SHORTCUTS, "version"],
            PORTAL_PATH,
        )
        log.debug("GlobalShortcuts portal version %s", version[0].value)

        token = "clearml_tray_" + secrets.token_hex(4)
        options = {
            "handle_token": Variant("s", token),
            "session_handle_token": Variant("s", token),
        }
        code, results = await self._request(bus, token, "CreateSession", "a{sv}", [options])
        if code != 0:
            return HotkeyResult(HotkeyStatus.UNAVAILABLE, "the desktop refused a shortcut session")
        session = results["session_handle"].value
        self._session = str(session)

        token = "clearml_tray_" + secrets.token_hex(4)
        shortcut = (
            SHORTCUT_ID,
            {
                "description": Variant("s", "Connect to a ClearML session"),
                "preferred_trigger": Variant("s", trigger),
            },
        )
        code, results = await self._request(
            bus,
            token,
            "BindShortcuts",
            "oa(sa{sv})sa{sv}",
            [self._session, [shortcut], "", {"handle_token": Variant("s", token)}],
        )
        if code == 1:
            return HotkeyResult(HotkeyStatus.UNAVAILABLE, f"binding {hotkey} was cancelled")
        if code != 0:
            return HotkeyResult(HotkeyStatus.UNAVAILABLE, f"the desktop refused {hotkey}")
        bound = results.get("shortcuts")
        if bound is not None and not any(item[0] == SHORTCUT_ID for item in bound.value):
            return HotkeyResult(HotkeyStatus.TAKEN, f"the desktop did not give {hotkey} to us")
        return HotkeyResult(HotkeyStatus.OK, "")

    async def _request(
        self, bus: MessageBus, token: str, member: str, signature: str, body: list[Any]
    ) -> tuple[int, dict[str, Any]]:
        # Listen on the request path before calling, or a fast portal's answer is lost.
        sender = (bus.unique_name or "").lstrip(":").replace(".", "_")
        path = f"{PORTAL_PATH}/request/{sender}/{token}"
        answer: asyncio.Future[tuple[int, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._responses[path] = answer
        try:
            (handle,) = await self._call(bus, SHORTCUTS, member, signature, body, PORTAL_PATH)
            if handle != path:  # an older portal picks its own path
                self._responses[handle] = self._responses.pop(path)
                path = handle
            async with asyncio.timeout(120):  # the desktop may show a confirmation dialog
                return await answer
        finally:
            self._responses.pop(path, None)

    async def _call(
        self,
        bus: MessageBus,
        interface: str,
        member: str,
        signature: str,
        body: list[Any],
        path: str,
    ) -> list[Any]:
        reply = await bus.call(
            Message(
                destination=PORTAL_NAME,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=body,
            )
        )
        if reply is None or reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply is not None and reply.body else ""
            name = reply.error_name if reply is not None else "no reply"
            raise PortalError(f"{name} {detail}".strip())
        return list(reply.body)

    @staticmethod
    async def _add_match(bus: MessageBus, rule: str) -> None:
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )

    def _on_message(self, message: Message) -> bool:
        if message.message_type != MessageType.SIGNAL:
            return False
        if message.interface == REQUEST and message.member == "Response":
            answer = self._responses.get(message.path or "")
            if answer is not None and not answer.done():
                code, results = message.body
                answer.set_result((int(code), dict(results)))
        elif message.interface == SHORTCUTS and message.member == "Activated":
            session, shortcut_id = message.body[0], message.body[1]
            if session == self._session and shortcut_id == SHORTCUT_ID:
                self._callback()
        return False


def portal_possible(environ: dict[str, str] | None = None) -> bool:
    env = environ if environ is not None else dict(os.environ)
    return bool(env.get("WAYLAND_DISPLAY") and env.get("DBUS_SESSION_BUS_ADDRESS"))

"""Screen lock and sleep on Linux: logind and the screensavers, over D-Bus (dbus-fast).

Three things say that nobody is looking, each optional:

- logind (system bus) `Manager.PrepareForSleep(true)` before a suspend, `(false)` after it;
- logind's session `LockedHint` property (GNOME, KDE Plasma, and whatever locks through
  `loginctl lock-session`), read at start and followed through `PropertiesChanged`;
- the screensaver interfaces on the session bus, `ActiveChanged(bool)` of
  `org.freedesktop.ScreenSaver` (KDE, Xfce, light-locker, xscreensaver's bridge) and
  `org.gnome.ScreenSaver`, with `GetActive` at start.

Nothing here can hold the tray up: every connection and call has a short timeout, everything
runs in a background task, and a bus or a service that is not there is simply one source
less (logged once). With none, the tray behaves as if someone were always looking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from tray_app.core.presence import AwayState, OnChange

log = logging.getLogger(__name__)

LOGIN1 = "org.freedesktop.login1"
LOGIN1_PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
SESSION = "org.freedesktop.login1.Session"
PROPERTIES = "org.freedesktop.DBus.Properties"
# (service, object path, interface) of the screensavers that say whether they are active.
SCREENSAVERS = (
    ("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver"),
    ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver"),
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"),
)
CALL_TIMEOUT_S = 2.0


class DbusPresence:
    def __init__(
        self,
        *,
        system_bus: str | None = None,
        session_bus: str | None = None,
        session_id: str | None = None,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        """`system_bus` / `session_bus`: addresses (tests); None: the usual buses.
        `session_id`: logind's id of this login session (default: $XDG_SESSION_ID, else the
        session of this process)."""
        self._addresses = {"system": system_bus, "session": session_bus}
        self._session_id = (
            session_id if session_id is not None else os.environ.get("XDG_SESSION_ID", "")
        )
        self._timeout = call_timeout_s
        self._state = AwayState()
        self._buses: list[MessageBus] = []
        self._task: asyncio.Task[None] | None = None
        self._session_path = ""
        self.sources: list[str] = []  # what could be listened to (for the log and the tests)

    @property
    def away(self) -> bool:
        return self._state.away

    async def start(self, on_change: OnChange) -> None:
        self._state = AwayState(on_change)
        self._task = asyncio.ensure_future(self._connect())

    async def wait_started(self) -> None:
        """For tests: until the connections in flight have ended."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        buses, self._buses = self._buses, []
        for bus in buses:
            bus.disconnect()

    # --- connecting ----------------------------------------------------------------------------
    async def _connect(self) -> None:
        await asyncio.gather(self._system(), self._session())
        if self.sources:
            log.info("screen lock and sleep followed through %s", ", ".join(self.sources))
        else:
            log.info("no screen lock or sleep signals on D-Bus: polling does not pause")

    async def _bus(self, kind: str) -> MessageBus | None:
        address = self._addresses[kind]
        try:
            async with asyncio.timeout(self._timeout):
                if address:
                    bus = await MessageBus(bus_address=address).connect()
                else:
                    bus_type = BusType.SYSTEM if kind == "system" else BusType.SESSION
                    bus = await MessageBus(bus_type=bus_type).connect()
        except Exception as exc:  # no such bus here (a container, a headless box)
            log.info("no D-Bus %s bus for screen lock and sleep: %s", kind, exc or type(exc))
            return None
        self._buses.append(bus)
        bus.add_message_handler(self._on_message)
        return bus

    async def _system(self) -> None:
        bus = await self._bus("system")
        if bus is None:
            return
        if await self._match(bus, f"type='signal',interface='{MANAGER}',member='PrepareForSleep'"):
            self.sources.append("logind sleep")
        path = await self._logind_session(bus)
        if not path:
            return
        self._session_path = path
        rule = f"type='signal',interface='{PROPERTIES}',member='PropertiesChanged',path='{path}'"
        if not await self._match(bus, rule):
            return
        locked = await self._call(
            bus, LOGIN1, path, PROPERTIES, "Get", "ss", [SESSION, "LockedHint"]
        )
        if locked is not None:
            self.sources.append("logind lock")
            self._state.report("logind lock", bool(_value(locked[0])))

    async def _logind_session(self, bus: MessageBus) -> str:
        if self._session_id:
            found = await self._call(
                bus, LOGIN1, LOGIN1_PATH, MANAGER, "GetSession", "s", [self._session_id]
            )
        else:
            found = await self._call(
                bus, LOGIN1, LOGIN1_PATH, MANAGER, "GetSessionByPID", "u", [os.getpid()]
            )
        return str(found[0]) if found else ""

    async def _session(self) -> None:
        bus = await self._bus("session")
        if bus is None:
            return
        for interface in {i for _, _, i in SCREENSAVERS}:
            await self._match(bus, f"type='signal',interface='{interface}',member='ActiveChanged'")
        for service, path, interface in SCREENSAVERS:
            active = await self._call(bus, service, path, interface, "GetActive", "", [])
            if active is not None:
                source = f"screensaver {service}"
                self.sources.append(source)
                self._state.report(source, bool(active[0]))

    async def _match(self, bus: MessageBus, rule: str) -> bool:
        done = await self._call(
            bus,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [rule],
        )
        return done is not None

    async def _call(
        self,
        bus: MessageBus,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str,
        body: list[Any],
    ) -> list[Any] | None:
        """The reply's body; None when there is no such service, or no answer in time."""
        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
        )
        try:
            async with asyncio.timeout(self._timeout):
                reply = await bus.call(message)
        except Exception:
            return None
        if reply is None or reply.message_type == MessageType.ERROR:
            return None
        return list(reply.body)

    # --- signals -------------------------------------------------------------------------------
    def _on_message(self, message: Message) -> bool:
        if message.message_type != MessageType.SIGNAL:
            return False
        if message.interface == MANAGER and message.member == "PrepareForSleep":
            self._state.report("logind sleep", bool(message.body[0]))
        elif (
            message.interface == PROPERTIES
            and message.member == "PropertiesChanged"
            and message.path == self._session_path
            and message.body
            and message.body[0] == SESSION
        ):
            changed = message.body[1]
            if "LockedHint" in changed:
                self._state.report("logind lock", bool(_value(changed["LockedHint"])))
        elif message.member == "ActiveChanged" and message.body:
            service = next(
                (s for s, _, i in SCREENSAVERS if i == message.interface), message.interface
            )
            self._state.report(f"screensaver {service}", bool(message.body[0]))
        return False


def _value(item: Any) -> Any:
    """A D-Bus variant's value (dbus-fast gives Variants for `v`)."""
    return getattr(item, "value", item)

"""A private D-Bus session bus with a stand-in for the desktop portal's GlobalShortcuts.

It speaks the portal's protocol as xdg-desktop-portal does: method calls return a Request
object path derived from the caller's unique name and its `handle_token`, and the answer comes
afterwards as a `Response` signal on that path; `Activated` is emitted on request.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

PORTAL_NAME = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"


@contextmanager
def private_session_bus() -> Iterator[str]:
    """A throwaway dbus-daemon; yields its address."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        raise RuntimeError("dbus-daemon is missing (Debian package dbus)")
    proc = subprocess.Popen(
        [daemon, "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class FakePortal:
    """`mode`: "ok", "cancel" (the user dismisses the desktop's dialog) or "elsewhere"
    (the desktop binds nothing, as when the combo belongs to another shortcut)."""

    address: str
    mode: str = "ok"
    bound: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    bus: MessageBus | None = None

    async def start(self) -> FakePortal:
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.add_message_handler(self._handle)
        await self.bus.request_name(PORTAL_NAME)
        return self

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()

    def activate(self, shortcut_id: str = "quick-pick") -> None:
        assert self.bus is not None and self.sessions
        self.bus.send(
            Message.new_signal(
                PORTAL_PATH,
                SHORTCUTS,
                "Activated",
                "osta{sv}",
                [self.sessions[-1], shortcut_id, 1234, {}],
            )
        )

    def _respond_later(self, path: str, code: int, results: dict[str, Variant]) -> None:
        assert self.bus is not None
        signal = Message.new_signal(
            path, "org.freedesktop.portal.Request", "Response", "ua{sv}", [code, results]
        )
        asyncio.get_running_loop().call_soon(self.bus.send, signal)

    def _handle(self, msg: Message) -> Message | bool | None:
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        sender = (msg.sender or "").lstrip(":").replace(".", "_")
        if msg.interface == "org.freedesktop.DBus.Properties" and msg.member == "Get":
            if msg.body == [SHORTCUTS, "version"]:
                return Message.new_method_return(msg, "v", [Variant("u", 1)])
            return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownProperty", "no")
        if msg.interface == SHORTCUTS and msg.member == "CreateSession":
            options = msg.body[0]
            token = options["handle_token"].value
            session = f"{PORTAL_PATH}/session/{sender}/{options['session_handle_token'].value}"
            self.sessions.append(session)
            request = f"{PORTAL_PATH}/request/{sender}/{token}"
            self._respond_later(request, 0, {"session_handle": Variant("s", session)})
            return Message.new_method_return(msg, "o", [request])
        if msg.interface == SHORTCUTS and msg.member == "BindShortcuts":
            _session, shortcuts, _parent, options = msg.body
            request = f"{PORTAL_PATH}/request/{sender}/{options['handle_token'].value}"
            wanted = [(sid, {k: v.value for k, v in props.items()}) for sid, props in shortcuts]
            if self.mode == "cancel":
                self._respond_later(request, 1, {})
            else:
                granted = [] if self.mode == "elsewhere" else wanted
                self.bound.extend(granted)
                reply = [
                    (sid, {"trigger_description": Variant("s", props["preferred_trigger"])})
                    for sid, props in granted
                ]
                self._respond_later(request, 0, {"shortcuts": Variant("a(sa{sv})", reply)})
            return Message.new_method_return(msg, "o", [request])
        if msg.interface == "org.freedesktop.portal.Session" and msg.member == "Close":
            self.closed.append(msg.path or "")
            return Message.new_method_return(msg)
        return None

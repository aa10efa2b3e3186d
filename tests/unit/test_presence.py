"""Screen lock and sleep over D-Bus, against stand-ins for logind and a screensaver on private
buses; and the no-op fallback, which never blocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from support.fake_portal import private_session_bus

from tray_app.core.presence import AwayState, NoPresence
from tray_app.platform.presence import choose_presence
from tray_app.platform.presence_dbus import DbusPresence

SESSION_PATH = "/org/freedesktop/login1/session/_33"


@dataclass
class Stand:
    """Answers what the backend asks; emits what a desktop would."""

    address: str
    names: tuple[str, ...]
    locked: bool = False
    screensaver_active: bool = False
    bus: MessageBus | None = None
    calls: list[str] = field(default_factory=list)

    async def start(self) -> Stand:
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.add_message_handler(self._handle)
        for name in self.names:
            await self.bus.request_name(name)
        return self

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()

    def _handle(self, message: Message) -> bool:
        if message.message_type != MessageType.METHOD_CALL:
            return False
        assert self.bus is not None
        self.calls.append(message.member or "")
        if message.member == "GetSession" and message.body == ["33"]:
            self.bus.send(Message.new_method_return(message, "o", [SESSION_PATH]))
        elif message.member == "Get" and message.body == [
            "org.freedesktop.login1.Session",
            "LockedHint",
        ]:
            self.bus.send(Message.new_method_return(message, "v", [Variant("b", self.locked)]))
        elif message.member == "GetActive" and message.path == "/org/freedesktop/ScreenSaver":
            self.bus.send(Message.new_method_return(message, "b", [self.screensaver_active]))
        else:
            self.bus.send(
                Message.new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "no")
            )
        return True

    def emit(self, path: str, interface: str, member: str, signature: str, body: list[Any]) -> None:
        assert self.bus is not None
        self.bus.send(Message.new_signal(path, interface, member, signature, body))

    def lock(self, locked: bool) -> None:
        self.emit(
            SESSION_PATH,
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            "sa{sv}as",
            ["org.freedesktop.login1.Session", {"LockedHint": Variant("b", locked)}, []],
        )

    def sleep(self, going: bool) -> None:
        self.emit(
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
            "PrepareForSleep",
            "b",
            [going],
        )

    def screensaver(self, active: bool) -> None:
        self.emit(
            "/org/freedesktop/ScreenSaver",
            "org.freedesktop.ScreenSaver",
            "ActiveChanged",
            "b",
            [active],
        )


@pytest.fixture
def buses() -> Iterator[tuple[str, str]]:
    with private_session_bus() as system, private_session_bus() as session:
        yield system, session


@pytest.fixture
async def desktop(buses: tuple[str, str]) -> AsyncIterator[tuple[Stand, Stand]]:
    system, session = buses
    logind = await Stand(system, ("org.freedesktop.login1",)).start()
    saver = await Stand(session, ("org.freedesktop.ScreenSaver",)).start()
    yield logind, saver
    logind.stop()
    saver.stop()


class Changes:
    """What the backend reported, in order, waited for one at a time."""

    def __init__(self) -> None:
        self.seen: list[bool] = []
        self._queue: asyncio.Queue[bool] = asyncio.Queue()

    def __call__(self, away: bool) -> None:
        self.seen.append(away)
        self._queue.put_nowait(away)

    async def next(self) -> bool:
        return await asyncio.wait_for(self._queue.get(), 10)


async def _started(buses: tuple[str, str]) -> tuple[DbusPresence, Changes]:
    changes = Changes()
    presence = DbusPresence(system_bus=buses[0], session_bus=buses[1], session_id="33")
    await presence.start(changes)
    await asyncio.wait_for(presence.wait_started(), 10)
    return presence, changes


async def test_a_locked_session_and_a_sleeping_machine_are_away(
    buses: tuple[str, str], desktop: tuple[Stand, Stand]
) -> None:
    logind, _saver = desktop
    presence, changes = await _started(buses)
    try:
        assert set(presence.sources) == {
            "logind sleep",
            "logind lock",
            "screensaver org.freedesktop.ScreenSaver",
        }
        assert presence.away is False
        logind.lock(True)
        assert await changes.next() is True and presence.away
        logind.lock(False)
        assert await changes.next() is False and not presence.away
        logind.sleep(True)
        assert await changes.next() is True
        logind.sleep(False)
        assert await changes.next() is False
        assert changes.seen == [True, False, True, False]
    finally:
        await presence.stop()


async def test_a_screensaver_counts_too(
    buses: tuple[str, str], desktop: tuple[Stand, Stand]
) -> None:
    _logind, saver = desktop
    presence, changes = await _started(buses)
    try:
        saver.screensaver(True)
        assert await changes.next() is True and presence.away
        saver.screensaver(False)
        assert await changes.next() is False and not presence.away
    finally:
        await presence.stop()


async def test_locked_already_at_start_is_away_at_once(buses: tuple[str, str]) -> None:
    logind = await Stand(buses[0], ("org.freedesktop.login1",), locked=True).start()
    try:
        presence, changes = await _started(buses)
        assert presence.away and changes.seen == [True]
        await presence.stop()
    finally:
        logind.stop()


async def test_no_services_no_buses_never_blocks_and_stays_present(tmp_path: Any) -> None:
    nowhere = f"unix:path={tmp_path}/no-bus"
    presence = DbusPresence(system_bus=nowhere, session_bus=nowhere, call_timeout_s=0.5)
    await presence.start(lambda away: None)  # returns at once
    await asyncio.wait_for(presence.wait_started(), 5)
    assert presence.sources == [] and presence.away is False
    await presence.stop()


async def test_buses_without_the_services_leave_it_present(buses: tuple[str, str]) -> None:
    presence, changes = await _started(buses)
    assert presence.sources == ["logind sleep"]  # a match rule is all it could set up
    assert presence.away is False and changes.seen == []
    await presence.stop()


async def test_the_fallback_is_always_present() -> None:
    fallback = NoPresence()
    await fallback.start(lambda away: None)
    assert fallback.away is False
    await fallback.stop()


def test_linux_gets_the_d_bus_backend() -> None:
    assert isinstance(choose_presence(), DbusPresence)


def test_away_when_any_source_says_so() -> None:
    changes: list[bool] = []
    state = AwayState(changes.append)
    state.report("a", True)
    state.report("b", True)
    state.report("a", False)
    assert state.away
    state.forget("b")
    assert not state.away and changes == [True, False]

"""The Wayland hotkey backend against a GlobalShortcuts portal on a private session bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from support.fake_portal import FakePortal, private_session_bus

from tray_app.qt.hotkey import HotkeyResult, HotkeyStatus
from tray_app.qt.hotkey.portal import PortalHotkey, portal_possible, portal_trigger


@pytest.fixture
def bus_address() -> Iterator[str]:
    with private_session_bus() as address:
        yield address


@pytest.fixture
async def portal(bus_address: str) -> AsyncIterator[FakePortal]:
    fake = await FakePortal(bus_address).start()
    yield fake
    fake.stop()


def test_trigger_follows_the_shortcuts_spec() -> None:
    assert portal_trigger("Ctrl+Alt+C") == "CTRL+ALT+c"
    assert portal_trigger("super+shift+F5") == "SHIFT+LOGO+F5"
    with pytest.raises(ValueError):
        portal_trigger("C")
    assert portal_possible({"WAYLAND_DISPLAY": "wayland-0", "DBUS_SESSION_BUS_ADDRESS": "x"})
    assert not portal_possible({"DBUS_SESSION_BUS_ADDRESS": "x"})


async def _bind(
    address: str, hotkey: str = "Ctrl+Alt+C"
) -> tuple[PortalHotkey, list[int], list[HotkeyResult]]:
    pressed: list[int] = []
    statuses: list[HotkeyResult] = []
    backend = PortalHotkey(address, on_status=statuses.append)
    first = backend.register(hotkey, lambda: pressed.append(1))
    assert first.ok  # accepted; the portal answers asynchronously
    await asyncio.wait_for(backend.wait_bound(), 10)
    return backend, pressed, statuses


async def test_binds_through_the_portal_and_fires_on_activated(portal: FakePortal) -> None:
    backend, pressed, statuses = await _bind(portal.address)
    assert statuses == [HotkeyResult(HotkeyStatus.OK, "")]
    assert portal.bound == [
        (
            "quick-pick",
            {"description": "Connect to a ClearML session", "preferred_trigger": "CTRL+ALT+c"},
        )
    ]
    portal.activate("someone-else")  # another shortcut of ours? not ours: ignored
    portal.activate()
    for _ in range(200):
        if pressed:
            break
        await asyncio.sleep(0.01)
    assert pressed == [1]
    session = portal.sessions[-1]
    backend.unregister()  # closes the portal session, which drops the shortcut
    for _ in range(200):
        if portal.closed:
            break
        await asyncio.sleep(0.01)
    assert portal.closed == [session]


async def test_cancelled_and_refused_bindings_are_reported(bus_address: str) -> None:
    portal = await FakePortal(bus_address, mode="cancel").start()
    try:
        _, _, statuses = await _bind(bus_address)
        assert statuses[0].status == HotkeyStatus.UNAVAILABLE
        assert "Ctrl+Alt+C was cancelled" in statuses[0].reason
        portal.mode = "elsewhere"
        _, _, statuses = await _bind(bus_address)
        assert statuses[0].status == HotkeyStatus.TAKEN
    finally:
        portal.stop()


async def test_no_portal_on_the_bus_gives_the_reason(bus_address: str) -> None:
    _, _, statuses = await _bind(bus_address)
    assert statuses[0].status == HotkeyStatus.UNAVAILABLE
    assert "GlobalShortcuts portal did not bind Ctrl+Alt+C" in statuses[0].reason
    assert "ServiceUnknown" in statuses[0].reason


async def test_invalid_combo_is_refused_at_once(bus_address: str) -> None:
    backend = PortalHotkey(bus_address)
    result = backend.register("Hyper+C", lambda: None)
    assert result.status == HotkeyStatus.INVALID

"""Hotkey strings and the backend choice."""

from __future__ import annotations

import pytest

from tray_app.qt.hotkey import Hotkey, NullHotkey, choose_backend, parse_hotkey


def test_parse() -> None:
    assert parse_hotkey("Ctrl+Alt+C") == Hotkey(frozenset({"Ctrl", "Alt"}), "C")
    assert parse_hotkey("super + shift + F5") == Hotkey(frozenset({"Super", "Shift"}), "F5")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("C", "must look like"),
        ("Shift+C", "needs Ctrl"),
        ("Ctrl+Alt", "no key"),
        ("Hyper+C", "not a modifier"),
    ],
)
def test_parse_errors(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_hotkey(text)


def test_no_display_falls_back_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    backend = choose_backend("wayland")
    assert isinstance(backend, NullHotkey) and not backend.available
    result = backend.register("Ctrl+Alt+C", lambda: None)
    assert not result.ok and "GlobalShortcuts portal" in result.reason


def test_windows_combo_mapping() -> None:
    from tray_app.qt.hotkey.windows import (
        MOD_ALT,
        MOD_CONTROL,
        MOD_NOREPEAT,
        MOD_SHIFT,
        MOD_WIN,
        win_combo,
    )

    assert win_combo("Ctrl+Alt+C") == (MOD_CONTROL | MOD_ALT | MOD_NOREPEAT, 0x43)
    assert win_combo("Super+Shift+F5") == (MOD_WIN | MOD_SHIFT | MOD_NOREPEAT, 0x74)
    assert win_combo("Ctrl+Alt+7")[1] == 0x37
    assert win_combo("Ctrl+space")[1] == 0x20
    with pytest.raises(ValueError, match="can bind on Windows"):
        win_combo("Ctrl+Alt+é")


def test_wayland_uses_the_portal_when_a_session_bus_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tray_app.qt.hotkey.portal import PortalHotkey

    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    assert isinstance(choose_backend("wayland"), PortalHotkey)

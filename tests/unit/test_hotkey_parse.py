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
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    backend = choose_backend("wayland")
    assert isinstance(backend, NullHotkey) and not backend.available
    result = backend.register("Ctrl+Alt+C", lambda: None)
    assert not result.ok and "GlobalShortcuts portal" in result.reason

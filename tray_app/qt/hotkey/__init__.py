"""Global hotkey: one small protocol, a backend chosen at run time, a no-op fallback.

X11: XGrabKey through python-xlib, fed by a QSocketNotifier (x11.py). Wayland: the XDG desktop
portal's GlobalShortcuts, asynchronous, its outcome reported through `on_status` (portal.py).
Windows: RegisterHotKey with a native event filter (windows.py). macOS, and anything else, get
the null backend with the reason shown in Settings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

MODIFIER_NAMES = {
    "ctrl": "Ctrl",
    "control": "Ctrl",
    "alt": "Alt",
    "shift": "Shift",
    "meta": "Super",
    "super": "Super",
    "win": "Super",
}


class HotkeyStatus(StrEnum):
    OK = "ok"
    TAKEN = "taken"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class HotkeyResult:
    status: HotkeyStatus
    reason: str = ""  # user-facing, shown in Settings

    @property
    def ok(self) -> bool:
        return self.status == HotkeyStatus.OK


@dataclass(frozen=True, slots=True)
class Hotkey:
    modifiers: frozenset[str]  # canonical: Ctrl, Alt, Shift, Super
    key: str  # as typed: "C", "F5", "space"


def parse_hotkey(text: str) -> Hotkey:
    """ "Ctrl+Alt+C" → Hotkey; ValueError with a reason when it is not one."""
    parts = [p.strip() for p in text.split("+")]
    if len(parts) < 2 or any(not p for p in parts):
        raise ValueError(f"{text!r} must look like Ctrl+Alt+C")
    *mods, key = parts
    canonical = set()
    for mod in mods:
        name = MODIFIER_NAMES.get(mod.lower())
        if name is None:
            raise ValueError(f"{mod!r} is not a modifier (Ctrl, Alt, Shift, Super)")
        canonical.add(name)
    if not canonical - {"Shift"}:
        raise ValueError(f"{text!r} needs Ctrl, Alt or Super")
    if key.lower() in MODIFIER_NAMES:
        raise ValueError(f"{text!r} has no key after the modifiers")
    return Hotkey(frozenset(canonical), key)


class HotkeyBackend(Protocol):
    available: bool
    reason: str

    def register(self, hotkey: str, on_activated: Callable[[], None]) -> HotkeyResult: ...
    def unregister(self) -> None: ...


class NullHotkey:
    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def register(self, hotkey: str, on_activated: Callable[[], None]) -> HotkeyResult:
        return HotkeyResult(HotkeyStatus.UNAVAILABLE, self.reason)

    def unregister(self) -> None:
        return None


def choose_backend(platform_name: str = "") -> HotkeyBackend:
    """The backend for this desktop (`platform_name` is QGuiApplication.platformName())."""
    if sys.platform == "win32":
        try:
            from tray_app.qt.hotkey.windows import WindowsHotkey

            return WindowsHotkey()
        except Exception as exc:
            return NullHotkey(f"the Windows hotkey backend cannot start: {exc}")
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        wayland = platform_name.startswith("wayland") or (
            not platform_name and bool(os.environ.get("WAYLAND_DISPLAY"))
        )
        if wayland:
            from tray_app.qt.hotkey.portal import portal_possible

            if not portal_possible():
                return NullHotkey(
                    "global hotkeys on Wayland need the desktop's GlobalShortcuts portal, "
                    "and there is no D-Bus session bus to reach it"
                )
            try:
                from tray_app.qt.hotkey.portal import PortalHotkey

                return PortalHotkey()
            except Exception as exc:  # dbus-fast missing
                return NullHotkey(f"the Wayland hotkey backend cannot start: {exc}")
        if platform_name == "xcb" or (not platform_name and os.environ.get("DISPLAY")):
            try:
                from tray_app.qt.hotkey.x11 import X11Hotkey

                return X11Hotkey()
            except Exception as exc:  # no X connection, no python-xlib
                return NullHotkey(f"the X11 hotkey backend cannot start: {exc}")
        return NullHotkey("no X11 display: global hotkeys are unavailable")
    if sys.platform == "darwin":
        return NullHotkey(
            "global hotkeys are not available on macOS in this version; "
            "use the menu or the notification buttons"
        )
    return NullHotkey(f"global hotkeys are not supported on {sys.platform}")

"""Global hotkey: one small protocol, a backend chosen at run time, a no-op fallback.

X11: XGrabKey through python-xlib, fed by a QSocketNotifier (x11.py). Wayland: the XDG desktop
portal's GlobalShortcuts, asynchronous, its outcome reported through `on_status` (portal.py).
Windows: RegisterHotKey with a native event filter (windows.py). macOS, and anything else, get
the null backend with the reason shown in Settings.
"""

from __future__ import annotations

import os
import sys

from tray_app.qt.hotkey.base import (
    Hotkey,
    HotkeyBackend,
    HotkeyResult,
    HotkeyStatus,
    NullHotkey,
    parse_hotkey,
)

__all__ = [
    "Hotkey",
    "HotkeyBackend",
    "HotkeyResult",
    "HotkeyStatus",
    "NullHotkey",
    "choose_backend",
    "parse_hotkey",
]


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

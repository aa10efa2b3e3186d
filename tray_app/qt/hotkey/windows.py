"""Windows global hotkey: RegisterHotKey on the GUI thread; WM_HOTKEY read by a native filter.

The combo → (modifiers, virtual-key) mapping is pure and tested everywhere; the ctypes calls
only run on Windows.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any

from tray_app.qt.hotkey.base import HotkeyResult, HotkeyStatus, parse_hotkey

log = logging.getLogger(__name__)

MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x1, 0x2, 0x4, 0x8, 0x4000
WM_HOTKEY = 0x0312
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
HOTKEY_ID = 0xC1EA  # ours within this thread

_MODS = {"Alt": MOD_ALT, "Ctrl": MOD_CONTROL, "Shift": MOD_SHIFT, "Super": MOD_WIN}
_NAMED_KEYS = {
    "space": 0x20,
    "enter": 0x0D,
    "return": 0x0D,
    "tab": 0x09,
    "escape": 0x1B,
    "esc": 0x1B,
    "insert": 0x2D,
    "delete": 0x2E,
    "home": 0x24,
    "end": 0x23,
    "pageup": 0x21,
    "pagedown": 0x22,
    "left": 0x25,
    "up": 0x26,
    "right": 0x27,
    "down": 0x28,
}


def win_combo(hotkey: str) -> tuple[int, int]:
    """ "Ctrl+Alt+C" → (MOD_CONTROL | MOD_ALT | MOD_NOREPEAT, 0x43); ValueError if unknown."""
    parsed = parse_hotkey(hotkey)
    mods = MOD_NOREPEAT
    for name in parsed.modifiers:
        mods |= _MODS[name]
    key = parsed.key
    if len(key) == 1 and key.isascii() and key.isalnum():
        return mods, ord(key.upper())  # VK_A..VK_Z and VK_0..VK_9 are their ASCII codes
    lowered = key.lower()
    if lowered.startswith("f") and lowered[1:].isdigit() and 1 <= int(lowered[1:]) <= 24:
        return mods, 0x70 + int(lowered[1:]) - 1  # VK_F1 = 0x70
    if lowered in _NAMED_KEYS:
        return mods, _NAMED_KEYS[lowered]
    raise ValueError(f"{key!r} is not a key this app can bind on Windows")


class WindowsHotkey:
    available = True
    reason = ""

    def __init__(self) -> None:
        from PySide6.QtCore import QAbstractNativeEventFilter, QCoreApplication

        win_dll = getattr(ctypes, "WinDLL", None)  # only on Windows
        if win_dll is None:
            raise OSError("RegisterHotKey exists only on Windows")
        self._user32: Any = win_dll("user32", use_last_error=True)
        self._registered: bool = False
        self._callback: Callable[[], None] = lambda: None
        owner = self

        class _Filter(QAbstractNativeEventFilter):
            def nativeEventFilter(self, event_type: Any, message: Any) -> Any:
                if bytes(event_type) == b"windows_generic_MSG":
                    from ctypes import wintypes

                    msg = wintypes.MSG.from_address(int(message))
                    if msg.message == WM_HOTKEY and msg.wParam == HOTKEY_ID:
                        owner._callback()
                        return True, 0
                return False, 0

        self._filter = _Filter()
        app = QCoreApplication.instance()
        if app is not None:
            app.installNativeEventFilter(self._filter)

    def register(self, hotkey: str, on_activated: Callable[[], None]) -> HotkeyResult:
        self.unregister()
        if not hotkey:
            return HotkeyResult(HotkeyStatus.OK, "")
        try:
            mods, vk = win_combo(hotkey)
        except ValueError as exc:
            return HotkeyResult(HotkeyStatus.INVALID, str(exc))
        if not self._user32.RegisterHotKey(None, HOTKEY_ID, mods, vk):
            code = getattr(ctypes, "get_last_error", lambda: 0)()
            if code == ERROR_HOTKEY_ALREADY_REGISTERED:
                return HotkeyResult(
                    HotkeyStatus.TAKEN, f"{hotkey} is already used by another program"
                )
            return HotkeyResult(
                HotkeyStatus.UNAVAILABLE, f"Windows refused {hotkey} (error {code})"
            )
        self._registered = True
        self._callback = on_activated
        log.info("global hotkey %s registered (RegisterHotKey)", hotkey)
        return HotkeyResult(HotkeyStatus.OK, "")

    def unregister(self) -> None:
        if self._registered:
            self._user32.UnregisterHotKey(None, HOTKEY_ID)
            self._registered = False
        self._callback = lambda: None

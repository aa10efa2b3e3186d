"""X11 global hotkey: XGrabKey on the root window; events read through a QSocketNotifier."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSocketNotifier
from Xlib import XK, X, display, error

from tray_app.qt.hotkey.base import HotkeyResult, HotkeyStatus, parse_hotkey

log = logging.getLogger(__name__)

_MASKS = {"Ctrl": X.ControlMask, "Alt": X.Mod1Mask, "Shift": X.ShiftMask, "Super": X.Mod4Mask}
# NumLock (Mod2) and CapsLock (Lock) must not stop the combo from working.
_IGNORED = (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask)


class X11Hotkey:
    available = True
    reason = ""

    def __init__(self) -> None:
        self._display: Any = display.Display()  # our own connection, not Qt's
        self._root = self._display.screen().root
        self._grabs: list[tuple[int, int]] = []
        self._notifier: QSocketNotifier | None = None
        self._callback: Callable[[], None] = lambda: None

    def register(self, hotkey: str, on_activated: Callable[[], None]) -> HotkeyResult:
        self.unregister()
        if not hotkey:
            return HotkeyResult(HotkeyStatus.OK, "")
        try:
            parsed = parse_hotkey(hotkey)
        except ValueError as exc:
            return HotkeyResult(HotkeyStatus.INVALID, str(exc))
        keysym = XK.string_to_keysym(parsed.key.lower() if len(parsed.key) == 1 else parsed.key)
        keycode = self._display.keysym_to_keycode(keysym) if keysym else 0
        if not keycode:
            return HotkeyResult(
                HotkeyStatus.INVALID, f"{parsed.key!r} is not a key on this keyboard"
            )
        mask = 0
        for name in parsed.modifiers:
            mask |= _MASKS[name]
        catcher = error.CatchError(error.BadAccess)
        for extra in _IGNORED:
            self._root.grab_key(
                keycode, mask | extra, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher
            )
            self._grabs.append((keycode, mask | extra))
        self._display.sync()
        if catcher.get_error():
            self.unregister()
            return HotkeyResult(HotkeyStatus.TAKEN, f"{hotkey} is already used by another program")
        self._callback = on_activated
        self._notifier = QSocketNotifier(self._display.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)
        log.info("global hotkey %s registered (X11)", hotkey)
        return HotkeyResult(HotkeyStatus.OK, "")

    def unregister(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier = None
        for keycode, mask in self._grabs:
            self._root.ungrab_key(keycode, mask)
        if self._grabs:
            self._display.sync()
        self._grabs.clear()

    def _drain(self) -> None:
        fired = False
        while self._display.pending_events():
            event = self._display.next_event()
            if event.type == X.KeyPress:
                fired = True
        if fired:
            self._callback()

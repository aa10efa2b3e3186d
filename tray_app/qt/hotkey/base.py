"""The hotkey's protocol and data: what every backend implements and returns, and the parser.

Its own module so that the backends (x11.py, portal.py, windows.py) never import the package
that chooses among them.
"""

from __future__ import annotations

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

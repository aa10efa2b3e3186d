"""`clearml-tray --benchmark-startup`: the tray's own startup milestones, printed as one JSON line.

Every milestone is in seconds since the process started:

- `qt_imported`: PySide6 (QtWidgets) and qasync are imported;
- `event_loop`: the QApplication exists and the qasync loop runs its first callback;
- `tray_shown`: the QSystemTrayIcon is shown and visible;
- `tray_embedded`: the tray host has embedded and mapped the icon's window (an XEmbed tray, as on
  X11 without a StatusNotifier host). null where the icon is a D-Bus StatusNotifierItem: what the
  desktop does with it is not visible to the app;
- `first_snapshot_in_menu`: the poller delivered its first snapshot and the menu model built from
  `app.view()` holds every session of it that the menu shows.

Then the line goes to stdout and the tray quits through its usual Quit path. The tray state is
checked every few milliseconds (`CHECK_MS`); the snapshot milestone is taken in the poller's
signal.

The process start comes from /proc/self/stat on Linux: its `starttime` field counts clock ticks
(10 ms at the usual USER_HZ of 100) on the boot-time clock, so it is compared with
CLOCK_BOOTTIME (the `btime` of /proc/stat is whole seconds, too coarse to add to it). Elsewhere
the origin is the moment this module was imported, and the `origin` field says so.

Nothing here imports Qt at module level: `cli` only imports it for the tray path.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tray_app.core.view.menu import MenuItem, build_menu

MILESTONES = ("qt_imported", "event_loop", "tray_shown", "tray_embedded", "first_snapshot_in_menu")
CHECK_MS = 5
TIMEOUT_S = 60.0
# The icon's native window on an XEmbed tray (Qt's xcb platform names it so).
XEMBED_WINDOW = "QSystemTrayIconSysWindow"

ORIGIN_PROC = "process start (/proc/self/stat starttime, 10 ms clock ticks)"
ORIGIN_IMPORT = "startup_probe import (process start not available on this system)"

_IMPORTED_AT = time.monotonic()


def stat_starttime(stat_text: str) -> int:
    """Field 22 (`starttime`, clock ticks since boot) of a /proc/<pid>/stat line.

    The command name (field 2) is in parentheses and may hold spaces or parentheses itself, so
    the fields are counted from the last ')'.
    """
    rest = stat_text[stat_text.rindex(")") + 1 :].split()
    return int(rest[22 - 3])  # rest[0] is field 3 (state)


def _proc_clock() -> tuple[Callable[[], float], float] | None:
    """The boot-time clock and this process's start on it, where /proc and CLOCK_BOOTTIME exist."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return None
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = stat_starttime(f.read())
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return (lambda: time.clock_gettime(boottime)), ticks / hz


def sessions_in_menu(items: Iterable[MenuItem]) -> int:
    """Session submenus in a menu model (the "All users" submenu's included)."""
    count = 0
    for item in items:
        if item.session_id is not None and item.children:
            count += 1
        elif item.children:
            count += sessions_in_menu(item.children)
    return count


@dataclass(slots=True)
class StartupReport:
    origin: str
    milestones: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(MILESTONES))
    tray: str = "pending"  # "xembed", "statusnotifier or other", "none (fallback window)"
    sessions_in_snapshot: int | None = None
    sessions_in_menu: int | None = None
    error: str = ""

    @property
    def tray_settled(self) -> bool:
        return self.tray != "pending" and (
            self.tray != "xembed" or self.milestones["tray_embedded"] is not None
        )

    @property
    def complete(self) -> bool:
        return self.tray_settled and self.milestones["first_snapshot_in_menu"] is not None

    def as_json(self) -> str:
        doc: dict[str, Any] = {
            "milestones": {
                k: None if v is None else round(v, 4) for k, v in self.milestones.items()
            },
            "origin": self.origin,
            "tray": self.tray,
            "sessions_in_snapshot": self.sessions_in_snapshot,
            "sessions_in_menu": self.sessions_in_menu,
            "complete": self.complete,
            "pid": os.getpid(),
        }
        if self.error:
            doc["error"] = self.error
        return json.dumps(doc)


class StartupProbe:
    """Records the milestones of one start; `attach()` watches a TrayApplication until done."""

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        proc = _proc_clock()
        if proc is not None:
            self._clock, self._start = proc
            origin = ORIGIN_PROC
        else:
            self._clock, self._start = time.monotonic, _IMPORTED_AT
            origin = ORIGIN_IMPORT
        self.report = StartupReport(origin)
        self.timeout_s = timeout_s
        self.exit_code = 1  # until a complete report is printed
        self._app: Any = None
        self._timer: Any = None
        self._deadline: Any = None  # the loop's TimerHandle for the timeout
        self._quit_task: Any = None
        self._done = False

    def mark(self, name: str) -> None:
        if self.report.milestones[name] is None:
            self.report.milestones[name] = self._clock() - self._start

    def attach(self, app: Any, loop: Any) -> None:
        """Watch `app` (a TrayApplication) from the first turn of `loop` on."""
        from PySide6.QtCore import QTimer

        self._app = app
        loop.call_soon(self.mark, "event_loop")
        app.poller.snapshot_changed.connect(self._snapshot)
        self._timer = QTimer()
        self._timer.setInterval(CHECK_MS)
        self._timer.timeout.connect(self._check_tray)
        self._timer.start()
        self._deadline = loop.call_later(self.timeout_s, self._give_up)

    def _check_tray(self) -> None:
        tray, report = self._app.tray, self.report
        if report.tray == "pending":
            if tray.window is not None:  # no system tray: the fallback window is shown
                report.tray = "none (fallback window)"
            elif tray.icon.isVisible():
                self.mark("tray_shown")
                xembed = _xembed_window() is not None
                report.tray = "xembed" if xembed else "statusnotifier or other"
        if report.tray == "xembed" and report.milestones["tray_embedded"] is None:
            window = _xembed_window()
            if window is not None and window.isExposed():
                self.mark("tray_embedded")
        if report.tray_settled:
            self._timer.stop()
            self._finish_if_complete()

    def _snapshot(self, snapshot: Any) -> None:
        if snapshot is None or self.report.milestones["first_snapshot_in_menu"] is not None:
            return
        view = self._app.view()
        shown = len(snapshot.own) + (len(snapshot.others) if view.show_all_users else 0)
        in_menu = sessions_in_menu(build_menu(view))
        if in_menu != shown:
            return
        self.mark("first_snapshot_in_menu")
        self.report.sessions_in_snapshot = len(snapshot.sessions)
        self.report.sessions_in_menu = in_menu
        self._finish_if_complete()

    def _finish_if_complete(self) -> None:
        if self.report.complete:
            self._finish(0)

    def _give_up(self) -> None:
        self.report.error = f"not every milestone reached within {self.timeout_s:g} s"
        self._finish(1)

    def _finish(self, code: int) -> None:
        if self._done:
            return
        self._done = True
        self._timer.stop()
        self._deadline.cancel()
        self.exit_code = code
        print(self.report.as_json(), flush=True)  # the flag's output: one line on stdout
        self._quit_task = asyncio.ensure_future(self._app.quit())


def _xembed_window() -> Any:
    """The icon's native window when the tray is an XEmbed one, else None."""
    from PySide6.QtGui import QGuiApplication

    return next((w for w in QGuiApplication.allWindows() if w.objectName() == XEMBED_WINDOW), None)


def probe_for(args: Any) -> StartupProbe | None:
    """A probe when `--benchmark-startup` was given, else None."""
    return StartupProbe() if getattr(args, "benchmark_startup", False) else None

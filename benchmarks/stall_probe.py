"""Runs the real tray in this process and measures how late the Qt event loop gets.

Started by benchmarks/ui.py with a private HOME and a clearml.conf for an emulator in another
process: `python -m benchmarks.stall_probe --config PATH --refreshes N`. A 5 ms precise QTimer
records how late each tick fires; the longest lateness inside each refresh window (from
`refresh_now()` until the new snapshot has been handed to the tray, plus 300 ms for the work it
triggers) is the longest stall the user could feel. With `--menu` it opens the tray menu while a
refresh is in flight and reports how long opening took and whether it waited for the answer.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any


class LatenessSampler:
    """A repeating timer that records the worst lateness seen since the last `reset()`."""

    def __init__(self, interval_ms: int = 5) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval = interval_ms / 1000
        self.worst = 0.0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self._last - self.interval)
        self._last = now

    def reset(self) -> None:
        self.worst = 0.0


async def _next_snapshot(app: Any) -> Any:
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def got(snapshot: Any) -> None:
        if snapshot is not None and not done.done():
            done.set_result(snapshot)

    app.poller.snapshot_changed.connect(got)
    try:
        async with asyncio.timeout(60):
            return await done
    finally:
        app.poller.snapshot_changed.disconnect(got)


async def measure(app: Any, refreshes: int, menu: bool, all_users: bool) -> dict[str, Any]:
    sampler = LatenessSampler()
    await app.start()
    first = app.poller.snapshot or await _next_snapshot(app)
    if all_users:  # after start(), which loads the (private, default) settings
        app.settings.show_all_users = True
        app.poller.refresh_now()
        first = await _next_snapshot(app)
    sampler.start()
    await asyncio.sleep(1.0)  # idle baseline: what the timer's own jitter looks like
    baseline = sampler.worst
    stalls: list[float] = []
    durations: list[float] = []
    menu_ms: list[float] = []
    menu_waited = 0
    for _ in range(refreshes):
        sampler.reset()
        start = time.perf_counter()
        before = app.poller.snapshot
        app.poller.refresh_now()
        if menu:
            await asyncio.sleep(0.02)  # the request is on the wire now
            t0 = time.perf_counter()
            app.tray.menu.popup(app.tray.menu.pos())  # aboutToShow rebuilds it, synchronously
            menu_ms.append((time.perf_counter() - t0) * 1000)
            menu_waited += app.poller.snapshot is not before
            app.tray.menu.hide()
        await _next_snapshot(app)
        durations.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.3)
        stalls.append(sampler.worst * 1000)
    return {
        "sessions_shown": first.count,
        "baseline_ms": baseline * 1000,
        "stalls_ms": stalls,
        "refresh_ms": durations,
        "menu_open_ms": menu_ms,
        "menu_opens_that_saw_the_new_snapshot": menu_waited,
    }


def main() -> int:
    from benchmarks.tray_child import run_tray

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--all-users", action="store_true")
    parser.add_argument("--menu", action="store_true")
    args = parser.parse_args()
    return run_tray(
        args.config, lambda app: measure(app, args.refreshes, args.menu, args.all_users)
    )


if __name__ == "__main__":
    raise SystemExit(main())

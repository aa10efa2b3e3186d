"""UI cost: building the menu, and how long the event loop stalls while 1000 sessions refresh.

- Menu build: the menu model and the QMenu for 10, 200 and 1000 sessions (all users shown),
  median of 5 builds, in this process.
- Event-loop stall: the real tray (`TrayApplication`) in a child process against an emulator in
  another, showing all users; a 5 ms timer measures its own lateness during each refresh
  (benchmarks/stall_probe.py).
- Menu open during a refresh: the same with 200 ms of server latency; the menu is opened while
  the refresh is on the wire, and we check that it showed the cached snapshot without waiting.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Context, Figure, median, tool_env
from benchmarks.emulator_proc import ChildEmulator

SECTION = "ui"


async def _snapshot_of(sessions: int) -> Any:
    import httpx

    from tray_app.core.server.api import ClearMLClient
    from tray_app.core.server.config import ServerConfig
    from tray_app.core.server.sessions import SessionService
    from tray_app.demo import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, create_app, seeded_state

    state = seeded_state(sessions=sessions)
    url = "http://emulator.test"
    config = ServerConfig(url, url, url, DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    transport = httpx.ASGITransport(app=create_app(state))
    async with ClearMLClient(config, transport=transport) as client:
        return await SessionService(client, web_server=url).snapshot(all_users=True)


def menu_build(ctx: Context) -> list[Figure]:
    from PySide6.QtWidgets import QApplication, QMenu

    from tray_app.core.server.refresh import PollStatus, TrayState
    from tray_app.core.view.menu import TrayView, build_menu
    from tray_app.qt.tray import populate

    app = QApplication.instance() or QApplication(sys.argv[:1])
    figures = []
    for size in (10, 200) if ctx.quick else (10, 200, 1000):
        snapshot = asyncio.run(_snapshot_of(size))
        view = TrayView(PollStatus(TrayState.OK), snapshot, show_all_users=True)
        model_ms, qt_ms = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            items = build_menu(view)
            t1 = time.perf_counter()
            menu = QMenu()
            populate(menu, items, lambda _item: None)
            t2 = time.perf_counter()
            model_ms.append((t1 - t0) * 1000)
            qt_ms.append((t2 - t1) * 1000)
            menu.deleteLater()
        app.processEvents()
        total = median(model_ms) + median(qt_ms)
        ctx.say(f"menu {size} sessions ({snapshot.count} shown): {total:.1f} ms")
        figures.append(
            Figure(
                SECTION,
                f"menu build, {size} sessions on server ({snapshot.count} shown): model + QMenu",
                total,
                "ms",
                note=f"model {median(model_ms):.1f} ms + QMenu {median(qt_ms):.1f} ms; session "
                "submenus are filled when they open, so this is the top level only",
            )
        )
    return figures


def _probe(ctx: Context, sessions: int, latency_ms: float, refreshes: int, menu: bool) -> Any:
    home = ctx.workdir / f"ui-home-{sessions}-{int(latency_ms)}"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "clearml.conf"
    with ChildEmulator(sessions, latency=latency_ms / 1000, config=config):
        env = tool_env(config, home)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent)])
        argv = [sys.executable, "-m", "benchmarks.stall_probe", "--config", str(config)]
        argv += ["--all-users", "--refreshes", str(refreshes)] + (["--menu"] if menu else [])
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"stall probe failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def event_loop(ctx: Context) -> list[Figure]:
    sessions = 200 if ctx.quick else 1000
    refreshes = 2 if ctx.quick else 10
    result = _probe(ctx, sessions, 0, refreshes, menu=False)
    worst = max(result["stalls_ms"])
    ctx.say(f"stalls during refresh: {[round(s) for s in result['stalls_ms']]} ms")
    figures = [
        Figure(
            SECTION,
            f"longest event-loop stall during a refresh of {sessions} sessions "
            f"({result['sessions_shown']} shown), worst of {refreshes}",
            worst,
            "ms",
            "< 50",
            worst < 50,
            note=f"median {median(result['stalls_ms']):.0f} ms; idle baseline "
            f"{result['baseline_ms']:.0f} ms (timer jitter); the emulator shares the 2 cores",
        ),
        Figure(
            SECTION,
            f"refresh wall time, {sessions} sessions, loopback",
            median(result["refresh_ms"]),
            "ms",
            note="median; mostly the emulator building its answer in another process",
        ),
    ]
    menu = _probe(ctx, 200, 200, 2 if ctx.quick else 5, menu=True)
    figures.append(
        Figure(
            SECTION,
            "menu open while a refresh is on the wire (200 ms server latency)",
            max(menu["menu_open_ms"]),
            "ms",
            "no wait",
            menu["menu_opens_that_saw_the_new_snapshot"] == 0,
            note="worst of the opens; none waited for the refresh (it showed the cached snapshot)"
            if menu["menu_opens_that_saw_the_new_snapshot"] == 0
            else f"{menu['menu_opens_that_saw_the_new_snapshot']} opens saw the new snapshot",
        )
    )
    return figures


def run(ctx: Context) -> list[Figure]:
    return menu_build(ctx) + event_loop(ctx)


if __name__ == "__main__":
    for figure in run(Context()):
        print(figure)

"""How long opening the tray menu takes: build the menu model + the QMenu from a snapshot.

Run: `python benchmarks/menu_bench.py [--repeat 5] [--sizes 0,50,200,1000]`. Offscreen Qt, data
from the emulator's seed (all users shown). Prints figures only; no network is involved by design.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication, QMenu

from tray_app.core.api import ClearMLClient
from tray_app.core.config import ServerConfig
from tray_app.core.menu_model import TrayView, build_menu
from tray_app.core.models import Snapshot
from tray_app.core.refresh import PollStatus, TrayState
from tray_app.core.sessions import SessionService
from tray_app.demo import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, EmulatorState, create_app
from tray_app.qt.tray import populate


async def snapshot_of(sessions: int) -> Snapshot:
    import httpx

    state = EmulatorState.seeded(sessions=sessions)
    transport = httpx.ASGITransport(app=create_app(state))
    url = "http://emulator.test"
    config = ServerConfig(url, url, url, DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    async with ClearMLClient(config, transport=transport) as client:
        return await SessionService(client, web_server=url).snapshot(all_users=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="0,50,200,1000")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    print("menu benchmark: model + QMenu build when the menu opens (median of", args.repeat, ")")
    print(f"{'sessions':>8} {'shown':>6} {'model ms':>9} {'qmenu ms':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        snapshot = asyncio.run(snapshot_of(size))
        view = TrayView(PollStatus(TrayState.OK), snapshot, show_all_users=True)
        model_ms, qt_ms = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            items = build_menu(view)
            t1 = time.perf_counter()
            menu = QMenu()
            populate(menu, items, lambda _item: None)
            t2 = time.perf_counter()
            model_ms.append((t1 - t0) * 1000)
            qt_ms.append((t2 - t1) * 1000)
            menu.deleteLater()
        print(
            f"{size:>8} {snapshot.count:>6} {statistics.median(model_ms):>9.1f}"
            f" {statistics.median(qt_ms):>9.1f}"
        )
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the real tray (`TrayApplication` on a qasync loop) in this process for a probe.

The probes (stall_probe, ready_probe) run in a child process with a private HOME; each hands
its measurement coroutine here and gets one JSON line printed on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any


def run_tray(config: str, measure: Callable[[Any], Awaitable[dict[str, Any]]]) -> int:
    import qasync
    from PySide6.QtWidgets import QApplication

    from tray_app.app import TrayApplication
    from tray_app.applog import setup_logging
    from tray_app.cli import build_parser

    # BENCH_DEBUG=1: the app's own log on stderr, to see where the milliseconds go.
    setup_logging(debug=bool(os.environ.get("BENCH_DEBUG")))
    qapp = QApplication(sys.argv[:1])
    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    from tray_app.qt.single_instance import SingleInstance

    app = TrayApplication(build_parser().parse_args(["--config-file", config]))
    # As run.py: the askpass helper asks the tray for session passwords over this socket.
    instance = SingleInstance(app.requests.handle)
    instance.listen()
    result: dict[str, Any] = {}

    async def run() -> None:
        result.update(await measure(app))
        app.tray.icon.hide()

    with loop:
        loop.run_until_complete(run())
    instance.close()
    print(json.dumps(result), flush=True)
    return 0

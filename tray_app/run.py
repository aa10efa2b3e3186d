"""Run the tray: the QApplication, the qasync loop, the single-instance socket and signals.

`clearml-tray` without a headless command lands here (tray_app.cli imports it lazily, so that
`list`, `demo-server` and `--version` never import Qt).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from tray_app import APP_DISPLAY_NAME, APP_NAME, __version__
from tray_app.app import TrayApplication
from tray_app.applog import setup_logging

# The tray's HTTP stack (httpx), loaded here before the event loop runs, as it was when api.py
# imported it: api.py now leaves it to the first client built, so that `clearml-tray list` can
# do without it, and that would put the import on the event loop.
from tray_app.core.server import http_httpx  # noqa: F401
from tray_app.core.server.refresh import TrayState

log = logging.getLogger("tray_app.app")


def _instance_message(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "connect":
        return {"cmd": "connect", "session_id": args.session_id}
    return {"cmd": "show"}


def run_app(args: argparse.Namespace) -> int:
    """Start the tray (or hand the request to the one already running)."""
    from tray_app.startup_probe import probe_for

    probe = probe_for(args)  # None unless --benchmark-startup
    import qasync
    from PySide6.QtWidgets import QApplication

    from tray_app.qt.single_instance import SingleInstance, forward_to_running

    if probe is not None:
        probe.mark("qt_imported")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.xcb.warning=false")
    qapp = QApplication(sys.argv[:1])
    qapp.setApplicationName(APP_NAME)
    qapp.setApplicationDisplayName(APP_DISPLAY_NAME)
    qapp.setApplicationVersion(__version__)
    qapp.setQuitOnLastWindowClosed(False)

    reply = forward_to_running(_instance_message(args))
    if reply is not None:
        if not reply.ok:
            print(f"clearml-tray: {reply.message}", file=sys.stderr)
            return 1
        print(reply.message or "clearml-tray is already running: request forwarded to it.")
        return 0

    log_file = setup_logging(debug=bool(getattr(args, "debug", False)))
    log.info("%s %s starting (log %s)", APP_DISPLAY_NAME, __version__, log_file)

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    app = TrayApplication(args, on_quit=qapp.quit)
    instance = SingleInstance(app.requests.handle)
    instance.listen()
    if probe is not None:
        probe.attach(app, loop)

    signals = None
    if os.name == "posix":
        from tray_app.qt.quit_signals import QuitOnSignals

        signals = QuitOnSignals(app.quit_on_signal)

    def started(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            qapp.exit(1)  # a start that failed ends the run; the error is raised below

    with loop:
        # The loop runs until Quit stops Qt, which may come (a logout, a quick Quit) while
        # start() is still awaiting: that unfinished start is then cancelled, not an error.
        starting = loop.create_task(app.start())
        starting.add_done_callback(started)
        try:
            loop.run_forever()
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(starting)  # let it unwind
            elif not starting.cancelled() and (error := starting.exception()) is not None:
                raise error
        finally:
            instance.close()
            if signals is not None:
                signals.close()
    state = app.poller.status.state
    log.info("stopped (last state %s)", state.value if isinstance(state, TrayState) else state)
    return probe.exit_code if probe is not None else 0

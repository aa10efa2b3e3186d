"""Qt tests run on the app's own event loop: qasync's QEventLoop, not asyncio's default one.

pytest-asyncio asks this hook (from the Qt, desktop and e2e conftests) for the loop of each
async test. On the default loop, a modal dialog inside a coroutine looks harmless; on qasync,
as in the app, it wedges every other task — the tests must see what users see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any


def qasync_loop() -> asyncio.AbstractEventLoop:
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)  # as the tray does: closing a dialog ends nothing
    loop: asyncio.AbstractEventLoop = qasync.QEventLoop(app)
    return loop


def loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"qasync": qasync_loop}

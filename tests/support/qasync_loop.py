"""Qt tests run on the app's own event loop: qasync's QEventLoop, not asyncio's default one.

pytest-asyncio asks this hook (from the Qt, desktop and e2e conftests) for the loop of each
async test. On the default loop, a modal dialog inside a coroutine looks harmless; on qasync,
as in the app, it wedges every other task — the tests must see what users see.

Like the app's, the loop lives as long as the process: each test's tasks are cancelled when it
ends, but the loop is not closed. A closed qasync loop frees the Qt object that worker threads
signal their results through; a thread still finishing a test's `asyncio.to_thread` call would
then signal a freed object and crash a later test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

_loop: asyncio.AbstractEventLoop | None = None


def qasync_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None:
        import qasync
        from PySide6.QtWidgets import QApplication

        class ProcessLoop(qasync.QEventLoop):  # type: ignore[misc]
            def close(self) -> None:
                """Kept open: the process's one loop, as in the app."""

            def close_at_exit(self) -> None:
                # Joins the executor's QThreads: Qt aborts the process if one is still running
                # when the application object goes away.
                super().close()

        app = QApplication.instance() or QApplication([])
        app.setQuitOnLastWindowClosed(False)  # as the tray does: closing a dialog ends nothing
        _loop = ProcessLoop(app)
    return _loop


def loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"qasync": qasync_loop}


def close_process_loop() -> None:
    """At the end of the test run (root conftest's pytest_unconfigure)."""
    global _loop
    loop, _loop = _loop, None
    if loop is not None and not loop.is_running():
        loop.close_at_exit()  # type: ignore[attr-defined]

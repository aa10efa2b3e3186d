"""Waiting in async tests for visible state, on the app's qasync loop or a plain one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtWidgets import QApplication


async def until(predicate: Callable[[], object], what: str = "", limit_s: float = 15.0) -> None:
    """Poll `predicate`, letting Qt deliver QProcess output and widget events meanwhile."""
    loop = asyncio.get_running_loop()
    # On qasync (the app's loop) Qt delivers events while we sleep; processing them by hand
    # from inside this task would run other tasks re-entrantly.
    on_qt_loop = any(cls.__module__.startswith("qasync") for cls in type(loop).__mro__)
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what or 'the condition'}"
        if not on_qt_loop:
            QApplication.processEvents()
        await asyncio.sleep(0.02)

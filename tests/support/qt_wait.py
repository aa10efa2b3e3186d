"""Waiting in async tests that run on pytest-asyncio's loop rather than the app's qasync loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtWidgets import QApplication


async def until(predicate: Callable[[], object], what: str = "", limit_s: float = 15.0) -> None:
    """Poll `predicate`, letting Qt deliver QProcess output and widget events meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what or 'the condition'}"
        QApplication.processEvents()
        await asyncio.sleep(0.02)

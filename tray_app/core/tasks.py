"""The tray's background work: coroutines run as tasks that are kept alive and awaited on Quit.

One `Tasks` per app: every flow spawns through it (`ports.Spawn`), so nothing started by a
click is garbage-collected half-way, and Quit waits for what is still running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Tasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def wait_idle(self) -> None:
        """Wait for every running task (tests, and Quit)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

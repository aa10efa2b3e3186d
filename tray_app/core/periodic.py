"""A coroutine run every few seconds on the asyncio loop until stopped (tunnel watch, prewarm).

Tested through its users: tests/unit/tunnels/test_watch.py, test_prewarm.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, every_s: float, step: Callable[[], Awaitable[None]], what: str) -> None:
        self.every_s = every_s
        self._step = step
        self._what = what  # for the log when a step fails
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self._step()
            except Exception:  # a bug in one step must not end the checks for good
                log.exception("%s failed", self._what)

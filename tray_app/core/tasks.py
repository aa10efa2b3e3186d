"""The tray's background work: coroutines run as tasks that are kept alive and awaited on Quit.

One `Tasks` per app: every flow spawns through it (`ports.Spawn`), so nothing started by a
click is garbage-collected half-way, and Quit waits for what is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

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

    async def wait_idle(self, timeout_s: float | None = None) -> None:
        """Wait for every running task (tests, and Quit); after `timeout_s` the ones still
        running are cancelled: Quit never hangs on one (a keyring's prompt left open)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        except TimeoutError:
            log.warning("%d background task(s) still running: cancelled", len(self._tasks))
            for task in list(self._tasks):
                task.cancel()


def in_daemon_thread(function: Callable[[], T], name: str = "blocking-call") -> asyncio.Future[T]:
    """`function()` in a daemon thread, for calls that may never return (a keyring waiting for
    its unlock prompt): unlike `asyncio.to_thread`, no executor thread is kept that Quit or
    the interpreter's exit would wait for. Await it with a timeout."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (function(), None)
        except BaseException as exc:  # handed to whoever awaits it
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (Quit)
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future

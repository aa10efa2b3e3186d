"""Cancel on a launch or a connect that is still coming up: nothing of it stays behind.

A connect is simply ended (the remote session keeps running). A launch has created, or is
creating, a ClearML task: the user says what becomes of it — deleted, stopped and kept, or the
launch goes on. Either way the CLI is ended, the "Starting a session" notice is replaced by one
that says it was cancelled, the menu's row goes with the child, and the task is stopped or
deleted on the server as chosen.

Tested in tests/unit/tunnels/test_cancel.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from tray_app.core.ports import Ask, Notify, Question, Spawn
from tray_app.core.server.errors import ClearMLError
from tray_app.core.server.sessions import SessionService
from tray_app.core.tunnels.model import TunnelInfo

log = logging.getLogger(__name__)

DELETE, STOP, KEEP_GOING = 0, 1, 2


class Cancellable(Protocol):
    """The registry, as this flow sees it."""

    def launching(self, key: str) -> bool: ...

    def cancel(self, key: str, title: str, body: str) -> None: ...

    def info(self, key: str) -> TunnelInfo | None: ...


class CancelFlow:
    def __init__(
        self,
        tunnels: Cancellable,
        *,
        ask: Ask,
        notify: Notify,
        spawn: Spawn,
        server: Callable[[], SessionService | None],
        refresh: Callable[[], None],
    ) -> None:
        self._tunnels = tunnels
        self._ask = ask
        self._notify = notify
        self._spawn = spawn
        self._server = server
        self._refresh = refresh

    def cancel(self, key: str) -> None:
        self._spawn(self.cancel_now(key))

    async def cancel_now(self, key: str) -> None:
        info = self._tunnels.info(key)
        if info is None or not info.live:
            return
        label = info.label or "the new session"
        if not self._tunnels.launching(key):
            self._tunnels.cancel(
                key, "Connection cancelled", f"{label}: the session keeps running."
            )
            self._refresh()
            return
        answer = await self._ask.ask(
            Question(
                f"Cancel “{label}”?",
                "The session stops starting. What becomes of its ClearML task?",
                ("Delete the session", "Stop it, keep it in ClearML", "Keep starting"),
                destructive=DELETE,
            )
        )
        if answer not in (DELETE, STOP):
            return
        # Read again: the CLI may have created the task while the question was open.
        info = self._tunnels.info(key) or info
        label = info.label or label
        session_id = info.session_id
        if session_id is None:
            self._tunnels.cancel(key, "Launch cancelled", f"{label}: no session was created.")
            return
        what = "deleted" if answer == DELETE else "stopped; it stays in ClearML"
        self._tunnels.cancel(key, "Launch cancelled", f"{label}: {what}.")
        await self._end_task(session_id, label, answer)
        self._refresh()

    async def _end_task(self, session_id: str, label: str, answer: int) -> None:
        service = self._server()
        if service is None:
            return
        try:
            if answer == DELETE:
                await service.delete(session_id)
            else:
                await service.stop(session_id)
        except ClearMLError as exc:
            log.warning("cancelled launch %s not ended on the server: %s", session_id, exc)
            verb = "delete" if answer == DELETE else "stop"
            self._notify.notify(
                "error", f"Could not {verb} {label}", f"{exc} Use Stop… in its menu.", critical=True
            )

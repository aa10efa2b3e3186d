"""Idle sessions: snapshots → verdicts → warn (with Keep alive / Stop now) or stop.

The verdicts need `workers.get_stats` (one request per ten machines), and an hour's window of
60 s buckets changes little in a minute: the check runs when the sessions to judge change or
the policy does, else at most every CHECK_EVERY_S (5 min; every minute while a session is in
its grace period before a stop). The rest of the refreshes cost the server nothing here.

Tested in tests/unit/idle/test_flow.py and, with the real tray, tests/qt/test_app.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tray_app.core.idle.monitor import IdleAction, IdleMonitor
from tray_app.core.idle.policy import IdleState, idle_note
from tray_app.core.ports import Notify, Spawn
from tray_app.core.server.errors import ClearMLError
from tray_app.core.server.models import Snapshot
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy
from tray_app.core.wording import session_title

log = logging.getLogger(__name__)

CHECK_EVERY_S = 300.0
CHECK_IN_GRACE_S = 60.0


class IdleFlow:
    def __init__(
        self,
        *,
        notify: Notify,
        spawn: Spawn,
        policy: Callable[[], IdlePolicy],
        stop_session: Callable[[str], None],
        refresh: Callable[[], None],
        server: Callable[[], SessionService | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notify = notify
        self._spawn = spawn
        self._policy = policy
        self._stop_session = stop_session  # the user's own Stop (asks, then stops)
        self._refresh = refresh
        self._server = server  # the server in use (a new configuration brings another)
        self._monitor: IdleMonitor | None = None
        self._running = False
        self._clock = clock
        # What the last check judged (the monitor, the sessions and workers, the policy), when.
        self._last: tuple[object, ...] = ()
        self._last_at = 0.0

    @property
    def monitor(self) -> IdleMonitor | None:
        """The monitor of the server in use: its verdicts and keep-alives are that server's."""
        service = self._server()
        if service is None:
            return None
        if self._monitor is None or self._monitor.service is not service:
            self._monitor = IdleMonitor(service, self._policy)
        return self._monitor

    def snapshot_changed(self, snapshot: Snapshot | None) -> None:
        monitor = self.monitor
        if snapshot is None or monitor is None or self._running:
            return
        judged = (
            id(monitor),
            frozenset((s.id, s.worker_id) for s in monitor.candidates(snapshot)),
            repr(self._policy()),
        )
        now = self._clock()
        every = CHECK_IN_GRACE_S if monitor.stop_pending() else CHECK_EVERY_S
        if judged == self._last and now - self._last_at < every:
            return  # nothing new to judge yet: no request
        self._last, self._last_at = judged, now
        self._running = True
        self._spawn(self._check(monitor, snapshot))

    def notes(self) -> dict[str, str]:
        """Menu rows: why a session counts as idle, or until when it is kept alive."""
        monitor = self.monitor
        if monitor is None:
            return {}
        notes = {sid: idle_note(v) for sid, v in monitor.verdicts.items() if idle_note(v)}
        for sid in list(monitor.verdicts):
            until = monitor.kept_alive_until(sid)
            if until is not None:
                notes[sid] = "Kept alive until " + time.strftime("%H:%M", time.localtime(until))
        return notes

    def idle_sessions(self) -> frozenset[str]:
        """The sessions judged idle now and not kept alive: their menu rows carry the mark."""
        monitor = self.monitor
        if monitor is None:
            return frozenset()
        return frozenset(
            sid
            for sid, verdict in monitor.verdicts.items()
            if verdict.state == IdleState.IDLE and monitor.kept_alive_until(sid) is None
        )

    def keep_alive(self, session_id: str, hours: float = 2.0) -> None:
        monitor = self.monitor
        if monitor is not None:
            monitor.keep_alive(session_id, time.time() + hours * 3600)

    async def _check(self, monitor: IdleMonitor, snapshot: Snapshot) -> None:
        try:
            try:
                actions = await monitor.check(snapshot)
            except ClearMLError as exc:
                log.info("idle check skipped: %s", exc)
                return
            for action in actions:
                if action.kind == "warn":
                    self._warn(action)
                elif action.kind == "stop":
                    await self._stop(monitor, action)
        finally:
            self._running = False

    async def _stop(self, monitor: IdleMonitor, action: IdleAction) -> None:
        log.info("stopping idle session %s: %s", action.session_id, action.reason)
        name = session_title(action.session_name, action.session_id)
        self._notify.notify("idle_warning", f"Stopping idle session {name}", action.reason)
        try:
            await monitor.stop(action.session_id, action.reason)
        except ClearMLError as exc:
            self._notify.notify("error", f"Could not stop {name}", str(exc), critical=True)
        self._refresh()

    def _warn(self, action: IdleAction) -> None:
        policy = self._policy()
        body = idle_note(action.verdict) + "."
        if policy.mode == IdleMode.NOTIFY_THEN_STOP:
            body += f" It will be stopped in {policy.grace_minutes} min unless you keep it alive."
        self._notify.notify(
            "idle_warning",
            f"Idle session: {session_title(action.session_name, action.session_id)}",
            body,
            [
                ("Keep alive 2h", lambda: self.keep_alive(action.session_id)),
                ("Stop now", lambda: self._stop_session(action.session_id)),
            ],
        )

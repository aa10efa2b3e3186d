"""Idle sessions: snapshots → verdicts → warn (with Keep alive / Stop now) or stop; and, when
asked for, "the GPUs went quiet" (with Connect / Show log / Stop).

The verdicts also go to the menu (a mark on the session's row, a note in its submenu) and to
`clearml-tray list` answered by the tray: one judgement for all of them. They need
`workers.get_stats` (one request per ten machines), and an hour's window of 60 s buckets
changes little in a minute: the check runs when the sessions to judge change or the policy
does, else at most every CHECK_EVERY_S (5 min; every minute while a session is in its grace
period before a stop). The rest of the refreshes cost the server nothing here.

Tested in tests/unit/idle/test_flow.py and, with the real tray, tests/qt/test_app.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from tray_app.core.idle.monitor import IdleAction, IdleMonitor
from tray_app.core.idle.policy import (
    JOB_BUSY_S,
    IdleVerdict,
    idle_mark,
    idle_note,
    judged,
    sentence,
)
from tray_app.core.ports import Notify, Spawn
from tray_app.core.server.errors import ClearMLError
from tray_app.core.server.models import Snapshot, format_duration
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy
from tray_app.core.view.actions import MenuAction

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
        act: Callable[[MenuAction, str], None],
        refresh: Callable[[], None],
        server: Callable[[], SessionService | None],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notify = notify
        self._spawn = spawn
        self._policy = policy
        self._act = act  # what the user's own menu rows do (Stop asks first)
        self._refresh = refresh
        self._server = server  # the server in use (a new configuration brings another)
        self._clock = clock
        self._monotonic = monotonic  # the check's pace (wall time may jump)
        self._monitor: IdleMonitor | None = None
        self._running = False
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
            self._monitor = IdleMonitor(service, self._policy, self._clock)
        return self._monitor

    def snapshot_changed(self, snapshot: Snapshot | None) -> None:
        monitor = self.monitor
        if snapshot is None or monitor is None or self._running:
            return
        subject = (
            id(monitor),
            frozenset((s.id, s.worker_id) for s in judged(snapshot)),
            repr(self._policy()),
        )
        now = self._monotonic()
        every = CHECK_IN_GRACE_S if monitor.stop_pending() else CHECK_EVERY_S
        if subject == self._last and now - self._last_at < every:
            return  # nothing new to judge yet: no request
        self._last, self._last_at = subject, now
        self._running = True
        self._spawn(self._check(monitor, snapshot))

    def verdicts(self) -> Mapping[str, IdleVerdict]:
        """The latest verdict of each of the user's running sessions (for `list`)."""
        monitor = self.monitor
        return dict(monitor.verdicts) if monitor is not None else {}

    def marks(self) -> dict[str, str]:
        """Session rows: "idle 1h 10m" for the idle ones (not for one kept alive)."""
        monitor = self.monitor
        if monitor is None:
            return {}
        now = self._clock()
        marks = {
            sid: idle_mark(v, now)
            for sid, v in monitor.verdicts.items()
            if monitor.kept_alive_until(sid) is None
        }
        return {sid: mark for sid, mark in marks.items() if mark}

    def notes(self) -> dict[str, str]:
        """Submenu rows: why a session counts as idle, or until when it is kept alive."""
        monitor = self.monitor
        if monitor is None:
            return {}
        notes = {sid: idle_note(v) for sid, v in monitor.verdicts.items() if idle_note(v)}
        for sid in list(monitor.verdicts):
            until = monitor.kept_alive_until(sid)
            if until is not None:
                notes[sid] = "Kept alive until " + time.strftime("%H:%M", time.localtime(until))
        return notes

    def keep_alive(self, session_id: str, hours: float = 2.0) -> None:
        monitor = self.monitor
        if monitor is not None:
            monitor.keep_alive(session_id, self._clock() + hours * 3600)

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
                elif action.kind == "finished":
                    self._finished(action)
        finally:
            self._running = False

    async def _stop(self, monitor: IdleMonitor, action: IdleAction) -> None:
        log.info("stopping idle session %s: %s", action.session_id, action.reason)
        self._notify.notify(
            "idle_warning", f"Stopping idle session {action.label}", sentence(action.reason)
        )
        try:
            await monitor.stop(action.session_id, action.reason)
        except ClearMLError as exc:
            self._notify.notify("error", f"Could not stop {action.label}", str(exc), critical=True)
        self._refresh()

    def _warn(self, action: IdleAction) -> None:
        policy = self._policy()
        body = sentence(action.verdict.reason)
        if policy.mode == IdleMode.NOTIFY_THEN_STOP:
            body += f" It will be stopped in {policy.grace_minutes} min unless you keep it alive."
        sid = action.session_id
        self._notify.notify(
            "idle_warning",
            f"Idle session: {action.label}",
            body,
            [
                ("Keep alive 2h", lambda: self.keep_alive(sid)),
                ("Stop now", lambda: self._act(MenuAction.STOP, sid)),
            ],
        )

    def _finished(self, action: IdleAction) -> None:
        quiet_since = action.quiet_since if action.quiet_since is not None else self._clock()
        ago = format_duration(max(0.0, self._clock() - quiet_since))
        where = action.host or action.label
        sid = action.session_id
        log.info("the GPUs of %s went quiet %s ago", sid, ago)
        self._notify.notify(
            "job_finished",
            f"{where}: the GPUs went quiet {ago} ago — training finished?",
            f"{action.label} was busy on its GPUs for at least "
            f"{format_duration(JOB_BUSY_S)} before.",
            [
                ("Connect", lambda: self._act(MenuAction.CONNECT, sid)),
                ("Show log", lambda: self._act(MenuAction.SHOW_LOG, sid)),
                ("Stop", lambda: self._act(MenuAction.STOP, sid)),
            ],
            tag=f"job-finished-{sid}",
        )

"""Periodic snapshot refresh on the asyncio (qasync) loop; results go out as Qt signals.

How often is `RefreshSchedule`'s decision (core/server/refresh.py): 15 s while someone looks or
something is coming up, 60 s when nobody has opened the menu for 10 minutes, and nothing at all
while the screen is locked or the machine sleeps (`Presence`, core/presence.py); the menu
opening, and someone coming back, refresh at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from PySide6.QtCore import QObject, Signal

from tray_app.core.presence import NoPresence, Presence
from tray_app.core.server.errors import ClearMLError, ClearMLUnavailable
from tray_app.core.server.models import Session, Snapshot
from tray_app.core.server.refresh import (
    PollStatus,
    RefreshSchedule,
    TrayState,
    classify_error,
    first_failure,
)

log = logging.getLogger(__name__)

Fetch = Callable[[bool], Awaitable[Snapshot]]
FETCH_DEADLINE_S = 120.0


class Poller(QObject):
    """Calls `fetch(all_users)` every few seconds; never more than one call at a time.

    `refresh_now()` wakes it at once; `refresh_if_stale()` only when the data is older than a
    few seconds (the menu calls it when it opens, and shows the cached snapshot meanwhile).
    """

    snapshot_changed = Signal(object)  # Snapshot
    status_changed = Signal(object)  # PollStatus

    def __init__(
        self,
        schedule: RefreshSchedule | None = None,
        *,
        all_users: Callable[[], bool] = lambda: False,
        busy: Callable[[], bool] = lambda: False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fetch_deadline: float = FETCH_DEADLINE_S,
        presence: Presence | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.fetch_deadline = fetch_deadline
        self.schedule = schedule or RefreshSchedule()
        self._all_users = all_users
        self._busy = busy
        self._clock = clock
        self._presence = presence or NoPresence()
        self._monotonic = monotonic
        self._looked_at = monotonic()  # the user's last look (menu, window); start counts
        self.away = False  # screen locked or asleep: no polls
        self.polls = 0  # snapshots asked for (the benchmark counts them)
        self._fetch: Fetch | None = None
        self.status = PollStatus(TrayState.CONNECTING)
        self.snapshot: Snapshot | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._presence_start: asyncio.Future[None] | None = None
        self._generation = 0  # a new source invalidates an answer still in flight
        self._polling = False

    def session(self, session_id: str) -> Session | None:
        """A session of the latest snapshot (None: not in it, or no snapshot yet)."""
        return self.snapshot.by_id(session_id) if self.snapshot is not None else None

    def set_interval(self, seconds: float) -> None:
        """The refresh interval of the settings (the schedule adds jitter and backoff)."""
        self.schedule.interval = seconds

    # --- source -------------------------------------------------------------------------
    def set_source(self, fetch: Fetch, server: str) -> None:
        self._generation += 1
        self._fetch = fetch
        self.snapshot = None
        self._set_status(PollStatus(TrayState.CONNECTING, server=server))
        self.snapshot_changed.emit(None)
        self.refresh_now()

    def set_unconfigured(self, message: str, keys_needed: bool = False) -> None:
        self._generation += 1
        self._fetch = None
        self.snapshot = None
        self._set_status(
            PollStatus(TrayState.UNCONFIGURED, message=message, keys_needed=keys_needed)
        )
        self.snapshot_changed.emit(None)

    # --- control ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
            self._presence_start = asyncio.ensure_future(self._presence.start(self.set_away))

    async def stop(self) -> None:
        await self._presence.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def refresh_now(self) -> None:
        self._wake.set()

    def request_failed(self, message: str) -> None:
        """A request to the server failed and is being retried: the icon and the menu say so
        now; a poll (at once, unless one is running) then tells for sure."""
        status = first_failure(self.status, message)
        if status is None:
            return
        log.info("server trouble: %s", message)
        self._set_status(status)
        if not self._polling:
            self.refresh_now()

    def refresh_if_stale(self, max_age_s: float = 5.0) -> bool:
        last = self.status.last_success
        if last is None or (self._clock() - last).total_seconds() > max_age_s:
            self.refresh_now()
            return True
        return False

    def looked_at(self, max_age_s: float = 5.0) -> bool:
        """The user opened the menu (or a window): polling goes back to the normal pace and
        data older than `max_age_s` is refreshed at once. Someone is evidently there, whatever
        the lock signals last said."""
        self._looked_at = self._monotonic()
        if self.away:
            self.set_away(False)
        return self.refresh_if_stale(max_age_s)

    def idle_for(self) -> float:
        """Seconds since the user last looked."""
        return self._monotonic() - self._looked_at

    def set_away(self, away: bool) -> None:
        """The screen was locked or the machine is going to sleep (True), or someone is back."""
        if away == self.away:
            return
        self.away = away
        log.info("%s", "nobody can look: polling paused" if away else "back: refreshing now")
        if not away:
            self._looked_at = self._monotonic()  # an unlock is a look
            self.refresh_now()

    # --- loop ---------------------------------------------------------------------------
    async def poll_once(self) -> None:
        fetch = self._fetch
        if fetch is None:
            return
        generation = self._generation
        server = self.status.server
        self._polling = True
        self.polls += 1
        try:
            # Each request has its own deadline, but a snapshot is several: the whole poll has
            # one too, so a server that answers slowly enough never keeps "ok" on old data.
            async with asyncio.timeout(self.fetch_deadline):
                snapshot = await fetch(self._all_users())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                exc = ClearMLUnavailable(
                    f"The ClearML server {server} did not send the session list within "
                    f"{self.fetch_deadline:g} s",
                    server=server,
                )
            if generation != self._generation:
                return
            state, message = classify_error(exc)
            failures = self.status.failures + 1
            if failures == 1 or state != self.status.state:
                log.warning(
                    "refresh failed (%s): %s",
                    state.value,
                    message,
                    exc_info=not isinstance(exc, ClearMLError),
                )
            self._set_status(PollStatus(state, message, server, self.status.last_success, failures))
            return
        finally:
            self._polling = False
        if generation != self._generation:
            return
        busy = snapshot.any_starting or self._busy()
        self.snapshot = snapshot
        if self.status.failures:
            log.info("refresh works again after %d failures", self.status.failures)
        self._set_status(
            PollStatus(TrayState.BUSY if busy else TrayState.OK, "", server, self._clock(), 0)
        )
        self.snapshot_changed.emit(snapshot)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if not self.away:
                await self.poll_once()
            # Away: no timeout; someone coming back (or the menu opening) wakes the loop.
            delay = (
                None
                if self.away
                else self.schedule.next_delay(self.status, self._busy(), self.idle_for())
            )
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # lands together with the wake-up, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _set_status(self, status: PollStatus) -> None:
        self.status = status
        self.status_changed.emit(status)

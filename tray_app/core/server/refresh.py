"""When to poll the server next, and what the last poll means for the tray (Qt-free).

The poller (qt/poller.py) only sleeps and calls; every decision lives here so that it can be
tested with an injected clock and random source.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tray_app.core.redact import redact
from tray_app.core.server.errors import (
    ClearMLAuthError,
    ClearMLError,
    ClearMLUnavailable,
    ConfigError,
    ConfigNotFound,
)


class TrayState(StrEnum):
    """The overall state the tray icon and tooltip show."""

    UNCONFIGURED = "unconfigured"  # no usable clearml.conf
    CONNECTING = "connecting"  # configured, nothing fetched yet
    OK = "ok"
    BUSY = "busy"  # ok, and a session is queued/starting or a tunnel is launching
    OFFLINE = "offline"  # server unreachable
    AUTH = "auth"  # wrong keys / rejected token
    ERROR = "error"  # anything else the server said no to


ICON_FOR_STATE: dict[TrayState, str] = {
    TrayState.UNCONFIGURED: "error",
    TrayState.CONNECTING: "busy",
    TrayState.OK: "ok",
    TrayState.BUSY: "busy",
    TrayState.OFFLINE: "offline",
    TrayState.AUTH: "error",
    TrayState.ERROR: "error",
}


# Data older than this is shown as stale even while the poller still reports no error (a poll
# can take up to a request deadline per page before it fails).
STALE_AFTER_S = 90.0
# The backoff doubles per failure up to `max_backoff`; past this exponent (far beyond any cap)
# it stops growing, so a week offline never reaches float overflow (2.0 ** 1024).
MAX_BACKOFF_EXPONENT = 32


@dataclass(frozen=True, slots=True)
class PollStatus:
    state: TrayState
    message: str = ""  # a user-facing sentence for errors ("" when fine)
    server: str = ""
    last_success: datetime | None = None
    failures: int = 0  # consecutive failed polls
    keys_needed: bool = False  # unconfigured for want of keys: the credentials dialog helps

    def is_stale(self, now: datetime, max_age_s: float = STALE_AFTER_S) -> bool:
        """Whether sessions shown now are older than they should be: the last poll failed, or
        no poll has succeeded for `max_age_s` (one still hanging on a slow server)."""
        if self.last_success is None:
            return False
        if self.state in (TrayState.OFFLINE, TrayState.AUTH, TrayState.ERROR):
            return True
        return (now - self.last_success).total_seconds() > max_age_s


def first_failure(status: PollStatus, message: str) -> PollStatus | None:
    """A request to the server just failed while its retries go on: the status to show at once,
    or None when the tray already says the server is in trouble (or has no server at all).

    Without this the icon and the menu stayed "ok" for the whole retry round of a request and
    until the next poll fell due (13 s into an outage); the poll that follows settles it either
    way (its failure keeps "offline", a success brings "ok" back).
    """
    if status.state not in (TrayState.OK, TrayState.BUSY, TrayState.CONNECTING):
        return None
    return PollStatus(
        TrayState.OFFLINE,
        redact(f"{message}; retrying"),
        status.server,
        status.last_success,
        status.failures,
    )


def classify_error(exc: BaseException) -> tuple[TrayState, str]:
    """Map an exception from a poll to the tray state and the sentence the menu shows
    (secrets such as a password inside the server URL masked)."""
    state, message = _classify(exc)
    return state, redact(message)


def _classify(exc: BaseException) -> tuple[TrayState, str]:
    if isinstance(exc, ConfigNotFound):
        return TrayState.UNCONFIGURED, "ClearML is not configured on this computer."
    if isinstance(exc, ConfigError):
        return TrayState.UNCONFIGURED, str(exc)
    if isinstance(exc, ClearMLAuthError):
        return TrayState.AUTH, str(exc)
    if isinstance(exc, ClearMLUnavailable):
        return TrayState.OFFLINE, str(exc)
    if isinstance(exc, ClearMLError):
        return TrayState.ERROR, str(exc)
    # A bug of ours or a server answer we did not expect: the user gets a sentence, the
    # exception goes to the log (the poller logs it with its traceback).
    return (
        TrayState.ERROR,
        "The session list could not be read (an unexpected problem); see the log.",
    )


# Nobody has opened the menu for this long: poll at `idle_interval` instead of `interval`.
IDLE_AFTER_S = 600.0
IDLE_INTERVAL_S = 60.0


@dataclass(slots=True)
class RefreshSchedule:
    """Seconds until the next poll: an API budget (hosted servers meter calls).

    Someone looking (the menu used in the last `idle_after` seconds), a session starting or
    queued, a tunnel coming up: `interval` (the setting, 15 s). Nobody looking: `idle_interval`
    (60 s, or `interval` if that is longer). The screen locked or the machine asleep: no poll at
    all (the poller waits; qt/poller.py). While the server is down: jittered exponential backoff
    from `retry_first` up to `max_backoff`, back to normal on the first success. Wrong keys will
    not fix themselves: poll slowly (`max_backoff`).
    """

    interval: float = 15.0
    retry_first: float = 3.0
    max_backoff: float = 120.0
    idle_interval: float = IDLE_INTERVAL_S
    idle_after: float = IDLE_AFTER_S
    jitter: float = 0.2  # ± fraction
    rng: Callable[[], float] = random.random

    def _jittered(self, value: float) -> float:
        return value * (1.0 + self.jitter * (2.0 * self.rng() - 1.0))

    def next_delay(self, status: PollStatus, busy: bool = False, idle_for: float = 0.0) -> float:
        """`busy`: something is coming up; `idle_for`: seconds since the user last looked."""
        if status.state in (TrayState.OFFLINE, TrayState.ERROR):
            exponent = min(max(0, status.failures - 1), MAX_BACKOFF_EXPONENT)
            backoff = self.retry_first * (2**exponent)
            return min(self.max_backoff, self._jittered(min(backoff, self.max_backoff)))
        if status.state in (TrayState.AUTH, TrayState.UNCONFIGURED):
            return self.max_backoff
        if status.state == TrayState.CONNECTING:
            return self.retry_first
        if busy or status.state == TrayState.BUSY or idle_for < self.idle_after:
            return self._jittered(self.interval)
        return self._jittered(max(self.idle_interval, self.interval))

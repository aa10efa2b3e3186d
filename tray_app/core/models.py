"""Immutable data the UI shows: one `Session` per live ClearML interactive session.

The snapshot never carries secrets: the API client asks only for the fields listed here, never
for `runtime._user_key`, `runtime._user_secret` or `runtime._ssh_password`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class SessionState(StrEnum):
    """What the user sees; derived from the task status plus its status message."""

    QUEUED = "queued"
    STARTING = "starting"  # in_progress, but the remote side has not published its SSH port yet
    RUNNING = "running"
    STOPPING = "stopping"  # in_progress with status_message "stopping"


STATE_GLYPHS: dict[SessionState, str] = {
    SessionState.QUEUED: "◌",
    SessionState.STARTING: "◐",
    SessionState.RUNNING: "●",
    SessionState.STOPPING: "◑",
}


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    name: str
    status: str  # the raw ClearML task status: queued / in_progress / stopped ...
    state: SessionState
    status_message: str = ""
    project_id: str = ""
    project_name: str = ""
    queue_id: str = ""
    queue_name: str = ""
    creator_id: str = ""
    creator_name: str = ""
    is_own: bool = True
    tags: tuple[str, ...] = ()
    created: datetime | None = None
    started: datetime | None = None
    last_update: datetime | None = None
    worker_id: str = ""
    private_ip: str = ""
    public_address: str = ""
    ssh_port: int | None = None
    ssh_user: str = ""
    cpu_cores: int | None = None
    ram_total_gb: float | None = None
    gpu_count: int | None = None
    gpu_type: str = ""
    gpu_memory: str = ""
    cpu_percent: float | None = None
    ram_used_gb: float | None = None
    gpu_percent: float | None = None
    jupyter_port: int | None = None
    vscode_port: int | None = None
    web_url: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def uptime_seconds(self, now: datetime | None = None) -> float | None:
        start = self.started or self.created
        if start is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (now - start).total_seconds())

    def uptime(self, now: datetime | None = None) -> str:
        seconds = self.uptime_seconds(now)
        return "" if seconds is None else format_duration(seconds)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one refresh learned. `sessions` holds the user's own sessions first."""

    sessions: tuple[Session, ...]
    fetched_at: datetime
    user_id: str = ""
    user_name: str = ""
    server: str = ""
    web_server: str = ""
    all_users: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def own(self) -> tuple[Session, ...]:
        return tuple(s for s in self.sessions if s.is_own)

    @property
    def others(self) -> tuple[Session, ...]:
        return tuple(s for s in self.sessions if not s.is_own)

    def by_id(self, session_id: str) -> Session | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    @property
    def any_starting(self) -> bool:
        return any(s.state in (SessionState.QUEUED, SessionState.STARTING) for s in self.sessions)


def format_duration(seconds: float) -> str:
    """Human uptime: "45s", "12m", "3h 4m", "1d 2h 5m"."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def format_gb(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f} GB" if value >= 10 else f"{value:.1f} GB"


def format_percent(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} %"

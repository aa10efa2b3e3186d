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
    # Added by the client work: where the values came from / extra detail for the UI.
    status_changed: datetime | None = None
    hostname: str = ""
    jupyter_url: str = ""
    gpu_memory_used_gb: float | None = None

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
    # Every live worker's id (all users'): the idle policy tells from them which machines
    # several workers share.
    workers: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.sessions)

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


@dataclass(frozen=True, slots=True)
class LogLine:
    """One console-log event of a task (`events.get_task_log`)."""

    timestamp: datetime | None
    msg: str
    level: str = "info"
    worker: str = ""


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as the preset dialog and the menu show it."""

    id: str
    name: str
    display_name: str = ""
    free_workers: int = 0  # workers serving this queue with no task
    total_workers: int = 0
    pending: int = 0  # tasks waiting in the queue
    interactive: bool = False  # system tag "interactive": meant for sessions
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    name: str
    company_id: str = ""
    company_name: str = ""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def session_to_json(session: Session, now: datetime | None = None) -> dict[str, object]:
    """The JSON form of a session (`clearml-tray list --json`); datetimes are ISO-8601 strings."""
    return {
        "id": session.id,
        "name": session.name,
        "status": session.status,
        "state": str(session.state),
        "status_message": session.status_message,
        "project": {"id": session.project_id, "name": session.project_name},
        "queue": {"id": session.queue_id, "name": session.queue_name},
        "creator": {"id": session.creator_id, "name": session.creator_name},
        "is_own": session.is_own,
        "tags": list(session.tags),
        "created": _iso(session.created),
        "started": _iso(session.started),
        "last_update": _iso(session.last_update),
        "status_changed": _iso(session.status_changed),
        "uptime_seconds": session.uptime_seconds(now),
        "uptime": session.uptime(now),
        "worker_id": session.worker_id,
        "hostname": session.hostname,
        "private_ip": session.private_ip,
        "public_address": session.public_address,
        "ssh_port": session.ssh_port,
        "ssh_user": session.ssh_user,
        "jupyter_port": session.jupyter_port,
        "vscode_port": session.vscode_port,
        "jupyter_url": session.jupyter_url,
        "hardware": {
            "cpu_cores": session.cpu_cores,
            "ram_total_gb": session.ram_total_gb,
            "gpu_count": session.gpu_count,
            "gpu_type": session.gpu_type,
            "gpu_memory": session.gpu_memory,
        },
        "usage": {
            "cpu_percent": session.cpu_percent,
            "ram_used_gb": session.ram_used_gb,
            "gpu_percent": session.gpu_percent,
            "gpu_memory_used_gb": session.gpu_memory_used_gb,
        },
        "web_url": session.web_url,
    }


SNAPSHOT_JSON_SCHEMA_VERSION = 1


def snapshot_to_json(snapshot: Snapshot, now: datetime | None = None) -> dict[str, object]:
    """The JSON document `clearml-tray list --json` prints (schema version 1)."""
    now = now or snapshot.fetched_at
    return {
        "schema": SNAPSHOT_JSON_SCHEMA_VERSION,
        "fetched_at": snapshot.fetched_at.isoformat(),
        "server": snapshot.server,
        "web_server": snapshot.web_server,
        "user": {"id": snapshot.user_id, "name": snapshot.user_name},
        "all_users": snapshot.all_users,
        "sessions": [session_to_json(s, now) for s in snapshot.sessions],
    }

"""What the tray knows about one `clearml-session` child: its tunnel, as data.

`TunnelInfo` is what menus, notices and flows read (no secrets in it); `TunnelModel` adds what
the reducer (`reducer.react`) keeps between events; `LaunchPolicy` is what the user's settings
and the preset decide about a child's questions and failures.

Tested through the reducer and the registry: tests/unit/tunnels/test_reducer.py,
test_registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path


class TunnelState(StrEnum):
    LAUNCHING = "launching"  # a new remote session is being created and set up
    CONNECTING = "connecting"  # the SSH tunnel is being (re)established
    READY = "ready"  # tunnel up; ports known
    RETRYING = "retrying"  # the CLI says "SSH tunneling failed, retrying"
    FAILED = "failed"  # the child gave up or was stopped by our retry policy
    CLOSED = "closed"  # the child exited normally


ENDED = (TunnelState.CLOSED, TunnelState.FAILED)
COMING_UP = (TunnelState.LAUNCHING, TunnelState.CONNECTING, TunnelState.RETRYING)


@dataclass(frozen=True, slots=True)
class TunnelInfo:
    """What the menu needs to know about one `clearml-session` child (no secrets in here)."""

    key: str  # session id once known, else a launch id ("launch-1")
    session_id: str | None
    state: TunnelState
    label: str = ""  # preset or session name for menus and notifications
    ssh_host_alias: str | None = None  # the Host in our ssh config, e.g. "clearml-1a2b3c4d"
    local_ssh_port: int | None = None
    user: str | None = None
    jupyter_url: str | None = None
    vscode_url: str | None = None
    remote_folder: str = ""  # the preset's --user-folder: what the editor opens
    log_path: Path | None = None
    last_message: str = ""  # the latest meaningful line, for tooltips and error rows
    generation: int = 0  # how many times the tunnel came up: a reconnect makes a new login
    # Opened ahead of a Connect nobody has clicked yet (the user pointed at the session, or
    # warm tunnels are on): silent, not in the menu, ended quietly when unused.
    prewarmed: bool = False

    @property
    def live(self) -> bool:
        return self.state not in ENDED


@dataclass(frozen=True, slots=True)
class LaunchPolicy:
    """What the user's settings and the preset decide about a child's questions and failures."""

    retry_limit: int = 3
    open_editor_when_ready: bool = True
    creating: bool = False  # a new session from a preset (else an attach)
    restore_workspace: bool = True
    queue: str = ""
    quiet: bool = False  # a prewarmed attach: nobody asked for it yet, so it never speaks


@dataclass(frozen=True, slots=True)
class TunnelModel:
    info: TunnelInfo
    retries: int = 0  # consecutive tunnel failures since the last ready
    stopping: bool = False  # we end it on purpose (disconnect, retry policy, quit)
    failed_reported: bool = False
    ready_count: int = 0  # how many times the tunnel came up (reconnects re-print the banner)
    login_asked: bool = False  # the password hand-over was asked for (once, the first tunnel)

    def with_info(self, **changes: object) -> TunnelModel:
        return replace(self, info=replace(self.info, **changes))  # type: ignore[arg-type]

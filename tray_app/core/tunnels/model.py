"""The contract between the tray (menu, controller) and the launcher of `clearml-session` children.

The tray shows which sessions have a live tunnel and offers Reconnect / Disconnect / Shut down;
the launcher (a QProcess per child) owns the processes. Both sides only know this module, so
either can be built, replaced or faked in tests without the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tray_app.core.settings.presets import Preset


class TunnelState(StrEnum):
    LAUNCHING = "launching"  # a new remote session is being created and set up
    CONNECTING = "connecting"  # the SSH tunnel is being (re)established
    READY = "ready"  # tunnel up; ports known
    RETRYING = "retrying"  # the CLI says "SSH tunneling failed, retrying"
    FAILED = "failed"  # the child gave up or was stopped by our retry policy
    CLOSED = "closed"  # the child exited normally


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


class Launcher(Protocol):
    """Implemented by the Qt launcher; the controller calls it, the tray reads `tunnels()`."""

    def create(self, preset: Preset) -> str:
        """Start a new remote session from a preset; returns the tunnel key."""
        ...

    def attach(self, session_id: str) -> str:
        """Open a tunnel to a running session (`clearml-session --attach <id>`)."""
        ...

    def reconnect(self, key: str) -> None: ...

    def disconnect(self, key: str) -> None:
        """End the child (and its tunnel) but leave the remote session running."""
        ...

    def shutdown(self, key: str) -> None:
        """Ask the child to shut the remote session down (writes `Shutdown`)."""
        ...

    def tunnels(self) -> Mapping[str, TunnelInfo]: ...

    def stop_all(self, shutdown_remote: bool) -> None:
        """End every child before the app quits; never leaves an orphan behind."""
        ...

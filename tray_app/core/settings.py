"""App settings (and presets) persisted as JSON under the platformdirs config dir.

SKELETON: the dataclasses below are the contract other modules use; persistence
(`SettingsStore.load/save`, atomic writes, corrupt-file backup) is implemented by the
settings work item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

SCHEMA_VERSION = 1


class IdleMode(StrEnum):
    OFF = "off"
    NOTIFY = "notify"
    NOTIFY_THEN_STOP = "notify_then_stop"


@dataclass(slots=True)
class ServerProfile:
    """One ClearML server the user can switch to; `config_file` "" means the SDK's lookup."""

    name: str = "default"
    config_file: str = ""


@dataclass(slots=True)
class NotificationPrefs:
    session_ready: bool = True
    session_failed: bool = True
    tunnel_problems: bool = True
    idle_warning: bool = True
    server_unreachable: bool = False


@dataclass(slots=True)
class IdlePolicy:
    mode: IdleMode = IdleMode.NOTIFY
    cpu_threshold_percent: float = 5.0
    gpu_threshold_percent: float = 5.0
    window_minutes: int = 60
    grace_minutes: int = 15


@dataclass(slots=True)
class Settings:
    profiles: list[ServerProfile] = field(default_factory=lambda: [ServerProfile()])
    active_profile: str = "default"
    poll_interval_s: int = 15
    show_all_users: bool = False
    editor_command: str = ""  # "" = detect VS Code / Cursor / VSCodium
    open_editor_when_ready: bool = True
    notifications: NotificationPrefs = field(default_factory=NotificationPrefs)
    hotkey: str = "Ctrl+Alt+C"
    start_on_login: bool = False
    idle: IdlePolicy = field(default_factory=IdlePolicy)
    tunnel_retry_limit: int = 3
    workspace_folder: str = ""  # a folder whose .vscode/clearml.json adds presets

    def active(self) -> ServerProfile:
        for profile in self.profiles:
            if profile.name == self.active_profile:
                return profile
        return self.profiles[0] if self.profiles else ServerProfile()

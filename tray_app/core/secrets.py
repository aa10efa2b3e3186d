"""Secrets in the system keyring (service `clearml-tray`), with a visible file fallback."""

from __future__ import annotations

SERVICE = "clearml-tray"


def api_secret_key(profile: str) -> str:
    """Keyring entry name of the ClearML API secret of server profile `profile`."""
    return f"api-secret/{profile}"


def session_password_key(task_id: str) -> str:
    """Keyring entry name of the SSH password of session `task_id`."""
    return f"session-password/{task_id}"


def preset_password_key(preset_name: str) -> str:
    """Keyring entry name of the fixed SSH password of preset `preset_name`."""
    return f"preset-password/{preset_name}"

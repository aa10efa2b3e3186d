"""The unit tests' keyring backend: a plain JSON file in the test's HOME.

A real `keyring` backend (keyring loads it by name from PYTHON_KEYRING_BACKEND, tests/conftest.py)
that lives in the test tree, not in an installed package: keyring finds installed backends by
their entry points, so a test-only backend installed into the venv (keyrings.alt) would also be
offered to the app a user runs from that venv. Desktop and e2e tests use a real GNOME Keyring
instead (support/secret_service.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend
import keyring.errors

BACKEND = "support.file_keyring.FileKeyring"


class FileKeyring(keyring.backend.KeyringBackend):
    """service/username → password in $XDG_DATA_HOME/test-keyring.json (unencrypted)."""

    priority = 1  # type: ignore[assignment]

    @property
    def file_path(self) -> Path:
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
        return Path(base) / "test-keyring.json"

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.file_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, str]) -> None:
        self.file_path.parent.mkdir(parents=True, exist_ok=True)
        self.file_path.write_text(json.dumps(data))

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}/{username}", None) is None:
            raise keyring.errors.PasswordDeleteError(username)
        self._save(data)

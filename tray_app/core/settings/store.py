"""The settings file in use: the app's settings and the user's presets, loaded and saved together.

One owner: the settings flow (Settings window), the presets flow (save, import, the last used
queue) and every reader (`store.settings`) share this object, so a save never writes an older
copy of the other half.

Tested in tests/unit/settings/test_apply.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tray_app.core.settings.presets import Preset
from tray_app.core.settings.settings import (
    LoadedSettings,
    Settings,
    default_settings_path,
    load_settings,
    save_settings,
)


class SettingsStore:
    def __init__(self, path: Path | None = None) -> None:
        self._path = path  # None: the platform's config folder
        self.settings = Settings()
        self.presets: list[Preset] = []

    @property
    def path(self) -> Path:
        return self._path if self._path is not None else default_settings_path()

    async def load(self) -> LoadedSettings:
        """Read the file (off the event loop); its warnings are sentences for the user."""
        loaded = await asyncio.to_thread(load_settings, self._path)
        self.settings, self.presets = loaded.settings, list(loaded.presets)
        return loaded

    def replace_settings(self, settings: Settings) -> Settings:
        """Use `settings` from now on; the previous ones are returned."""
        old, self.settings = self.settings, settings
        return old

    def replace_presets(self, presets: list[Preset]) -> None:
        self.presets = list(presets)

    async def save(self) -> Path:
        """Write both, atomically; raises SettingsError or OSError (the old file stays)."""
        return await asyncio.to_thread(save_settings, self.settings, self.presets, self._path)

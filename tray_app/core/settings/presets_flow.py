"""The user's presets: the list, saving one, import and export (files atomically written).

Tested in tests/unit/tunnels/test_launch.py and tests/qt/test_app.py.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from tray_app.core.atomic import atomic_write_text
from tray_app.core.ports import Notify
from tray_app.core.settings.errors import PresetError, SettingsError
from tray_app.core.settings.presets import (
    WORKSPACE_PRESETS_PATH,
    Preset,
    load_workspace_presets,
    presets_from_json,
    presets_to_json,
    read_presets_text,
)
from tray_app.core.settings.store import SettingsStore
from tray_app.core.wording import plural

log = logging.getLogger(__name__)

WORKSPACE_TAG = "workspace-presets"


class PresetsFlow:
    def __init__(self, *, notify: Notify, store: SettingsStore) -> None:
        self._notify = notify
        self._file = store
        self.workspace_names: set[str] = set()  # shown from a repository's .vscode/clearml.json
        self._workspace_broken = False

    @property
    def presets(self) -> list[Preset]:
        return self._file.presets

    async def for_dialog(self) -> list[Preset]:
        """Ours, then the workspace folder's (`.vscode/clearml.json`) under names not taken."""
        presets = list(self.presets)
        folder = self._file.settings.workspace_folder
        if folder:
            try:
                workspace = await asyncio.to_thread(load_workspace_presets, folder)
            except PresetError as exc:
                self._notify.notify("error", "Workspace presets ignored", str(exc), critical=True)
                workspace = []
            names = {p.name for p in presets}
            presets += [p for p in workspace if p.name not in names]
            self.workspace_names = {p.name for p in workspace if p.name not in names}
        return presets

    def workspace_file(self) -> list[Path]:
        """The workspace folder's presets file, when the settings name a folder (followed)."""
        folder = self._file.settings.workspace_folder
        return [Path(folder).expanduser() / WORKSPACE_PRESETS_PATH] if folder else []

    async def workspace_changed(self) -> None:
        """The workspace presets file changed: checked now, so that a mistake is said while
        the user still has the file open (New session… reads it again when it opens)."""
        folder = self._file.settings.workspace_folder
        if not folder:
            return
        try:
            found = await asyncio.to_thread(load_workspace_presets, folder)
        except PresetError as exc:
            self._workspace_broken = True
            self._notify.notify(
                "error", "Workspace presets ignored", str(exc), critical=True, tag=WORKSPACE_TAG
            )
            return
        if self._workspace_broken:
            self._workspace_broken = False
            self._notify.notify(
                "info",
                "Workspace presets fixed",
                f"{plural(len(found), 'preset')} from {folder}.",
                tag=WORKSPACE_TAG,
            )

    def from_workspace(self, preset: Preset) -> bool:
        """Written by someone else (a repository), not saved by this user."""
        own = {p.name: p for p in self.presets}
        return preset.name in self.workspace_names and own.get(preset.name) != preset

    async def save(self, preset: Preset) -> bool:
        self._file.replace_presets([p for p in self.presets if p.name != preset.name] + [preset])
        # Saved is said in the dialog that saved it; only a failure needs a notice.
        return await self._store("Preset not saved")

    async def remember_queue(self, queue: str) -> None:
        """The next New session dialog starts on the queue of this launch (kept in settings)."""
        settings = self._file.settings
        queue = queue.strip()
        if not queue or settings.last_queue == queue:
            return
        settings.last_queue = queue
        try:
            await self._file.save()
        except (SettingsError, OSError) as exc:
            # A convenience, not the user's data: no error notice over a launch that started.
            log.warning("the last used queue was not saved: %s", exc)

    async def import_from(self, path: Path) -> list[str]:
        """Add (or replace by name) the presets of an exported JSON file; returns their names."""
        try:
            text = await asyncio.to_thread(read_presets_text, path)
            imported = presets_from_json(text, source=str(path))
        except (OSError, UnicodeDecodeError, PresetError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._notify.notify("error", "Presets not imported", message, critical=True)
            return []
        names = {p.name for p in imported}
        self._file.replace_presets([p for p in self.presets if p.name not in names] + imported)
        if await self._store("Presets not saved"):
            self._notify.notify("info", "Presets imported", ", ".join(sorted(names)))
        return sorted(names)

    async def export_to(self, path: Path) -> bool:
        try:
            await asyncio.to_thread(atomic_write_text, path, presets_to_json(self.presets))
        except OSError as exc:
            detail = f"{exc.strerror or 'the system refused'} ({path})"
            self._notify.notify("error", "Presets not exported", detail, critical=True)
            return False
        self._notify.notify("info", "Presets exported", str(path))
        return True

    async def _store(self, failure_title: str) -> bool:
        try:
            await self._file.save()
        except (SettingsError, OSError) as exc:
            log.error("presets not saved: %s", exc)
            self._notify.notify("error", failure_title, str(exc), critical=True)
            return False
        return True

"""The Settings window's OK: save the settings, then apply each change without a restart.

What a change touches elsewhere (the refresh interval, warm tunnels, the hotkey, the server) is
reached through plain callbacks the composition root passes in; starting on login goes through
the platform's autostart backend. A save that fails is said in words; what was accepted is
applied anyway (the next save may succeed).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tray_app.core.ports import Notify
from tray_app.core.settings.errors import SettingsError
from tray_app.core.settings.settings import Settings, SettingsProblem, read_settings_file
from tray_app.core.settings.store import SettingsStore
from tray_app.platform.autostart import Autostart, choose_autostart

log = logging.getLogger(__name__)

FILE_TAG = "settings-file"  # a notice about the file replaces the one before


@dataclass(frozen=True, slots=True)
class Appliers:
    """What the rest of the app does when a setting changes."""

    poll_interval: Callable[[float], None]
    tunnels: Callable[[], None]  # warm tunnels or pointing switched on or off
    hotkey: Callable[[str], None]
    server: Callable[[], Awaitable[None]]  # another clearml.conf or profile
    refresh: Callable[[], None]


class SettingsFlow:
    def __init__(
        self,
        store: SettingsStore,
        *,
        notify: Notify,
        appliers: Appliers,
        autostart: Callable[[], Autostart] = choose_autostart,
    ) -> None:
        self._store = store
        self._notify = notify
        self._appliers = appliers
        self._autostart = autostart

    async def apply(self, new: Settings) -> None:
        """Save and apply accepted settings."""
        # The Settings window edits a copy made when it opened: a launch meanwhile may have
        # remembered a newer queue, which the window knows nothing of.
        new.last_queue = self._store.settings.last_queue
        old = self._store.replace_settings(new)
        try:
            await self._store.save()
        except (SettingsError, OSError) as exc:
            log.error("settings not saved: %s", exc)
            reason = (
                str(exc)
                if isinstance(exc, SettingsError)
                else f"The settings file could not be written ({exc.strerror or 'error'})."
            )
            self._notify.notify("error", "Settings not saved", reason, critical=True)
        await self._changed(old, new)
        log.info("settings applied")

    async def file_changed(self) -> None:
        """The settings file was changed by hand (or by another program): what it says now is
        used, without a restart. A file that has a problem is not used at all; the settings in
        use stay, and the notice says what is wrong, with the line."""
        result = await asyncio.to_thread(read_settings_file, self._store.path)
        if isinstance(result, SettingsProblem):
            log.warning("the changed settings file is not used: %s", result)
            self._notify.notify(
                "error",
                "Settings file change not used",
                f"{result}\nThe tray keeps the settings it had until the file is fixed.",
                critical=True,
                tag=FILE_TAG,
            )
            return
        store = self._store
        if (result.settings, result.presets) == (store.settings, store.presets):
            return  # what the tray wrote itself, or an edit that changed nothing
        old = store.replace_settings(result.settings)
        store.replace_presets(result.presets)
        await self._changed(old, result.settings)
        log.info("settings file changed on disk: applied")
        self._notify.notify(
            "info", "Settings reloaded", f"{store.path} changed; it is in use.", tag=FILE_TAG
        )

    async def _changed(self, old: Settings, new: Settings) -> None:
        """Each change reaches what it changes elsewhere."""
        if new.start_on_login != old.start_on_login:
            autostart = self._autostart()
            try:
                await asyncio.to_thread(
                    autostart.enable if new.start_on_login else autostart.disable
                )
            except OSError as exc:
                self._notify.notify(
                    "error", "Start on login", f"Could not change it: {exc.strerror}", critical=True
                )
        self._appliers.poll_interval(float(new.poll_interval_s))
        self._appliers.tunnels()
        if new.hotkey != old.hotkey:
            self._appliers.hotkey(new.hotkey)
        if (old.active().config_file, old.active_profile) != (
            new.active().config_file,
            new.active_profile,
        ):
            await self._appliers.server()
        else:
            self._appliers.refresh()

    async def use_config_file(self, path: str) -> None:
        """The user picked a clearml.conf: remember it in the active profile and use it."""
        new = copy.deepcopy(self._store.settings)
        new.active().config_file = path
        await self.apply(new)

"""The app's own windows, each with what its answer leads to: Settings, the setup window, New
session, the presets file pickers, the ClearML keys.

`Windows` only shows; this decides nothing either but connects a window's answer to the flow
that carries it out (all non-modal: the answers arrive as callbacks, run as tasks).

Tested through the app: tests/qt/test_app.py, tests/qt/test_settings_dialog.py.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from tray_app.core.ports import Ask, Notify, Spawn
from tray_app.core.server.connection import ServerConnection
from tray_app.core.server.credentials import CredentialsFlow, Saved, login_with
from tray_app.core.server.source import TAG, ServerSource
from tray_app.core.settings.apply import SettingsFlow
from tray_app.core.settings.presets import Preset
from tray_app.core.settings.presets_flow import PresetsFlow
from tray_app.core.settings.settings import Settings
from tray_app.qt.windows import Windows


class DialogFlows:
    def __init__(
        self,
        windows: Windows,
        *,
        spawn: Spawn,
        ask: Ask,
        settings: Callable[[], Settings],
        settings_flow: SettingsFlow,
        hotkey_status: Callable[[], str],
        connection: ServerConnection,
        source: ServerSource,
        presets: PresetsFlow,
        launch: Callable[[Preset], Coroutine[Any, Any, str | None]],
        notify: Notify,
        why_keys: Callable[[], str] = lambda: "",
    ) -> None:
        self._windows = windows
        self._spawn = spawn
        self._ask = ask
        self._settings = settings
        self._settings_flow = settings_flow
        self._hotkey_status = hotkey_status
        self._connection = connection
        self._source = source
        self._presets = presets
        self._launch = launch
        # Keys entered here are checked with their server, then written where the
        # configuration lives; the source reads it again at once.
        self._keys = CredentialsFlow(
            target=source.keys_file,
            current=lambda: connection.config,
            login=login_with,
            reload=source.reload,
        )
        self._notify = notify
        self._why_keys = why_keys  # what the server said about the keys in use, if anything

    def settings(self) -> None:
        spawn, flow = self._spawn, self._settings_flow
        self._windows.settings(
            self._settings(),
            self._hotkey_status(),
            lambda s: spawn(flow.apply(s)),
            in_use=self._source.in_use(),
        )

    def onboarding(self) -> None:
        spawn, source = self._spawn, self._source
        self._windows.show_onboarding(
            self._connection.error,
            config_file=lambda path: spawn(self._settings_flow.use_config_file(path)),
            demo=lambda: spawn(source.use_demo()),
            retry=lambda: spawn(source.apply()),
            keys=self.credentials,
        )

    async def new_session(self) -> None:
        service, spawn = await self._source.ensure(self._ask), self._spawn
        if service is not None:
            self._windows.new_session(
                await self._presets.for_dialog(),
                service.queues,
                launch=lambda p: spawn(self._launch(p)),
                save=lambda p: spawn(self._save_preset(p)),
                last_queue=self._settings().last_queue,
            )

    async def _save_preset(self, preset: Preset) -> None:
        if await self._presets.save(preset):
            self._windows.preset_saved(preset)

    def pick_presets_file(self, save: bool) -> None:
        flow, spawn = self._presets, self._spawn
        self._windows.pick_presets_file(
            save, lambda path: spawn(flow.export_to(path) if save else flow.import_from(path))
        )

    def credentials(self) -> None:
        """Enter ClearML keys: checked with the server, then written to clearml.conf."""
        config = self._connection.config
        self._windows.credentials(
            self._keys.submit,
            server=config.web_server if config is not None else "",
            web=config.web_server if config is not None else "",
            problem=self._why_keys(),
            saved=self._saved,
        )

    def _saved(self, saved: Saved) -> None:
        kept = f"; the old file is kept as {saved.backup.name}" if saved.backup else ""
        who = f"Signed in as {saved.user}: " if saved.user else ""
        self._notify.notify(
            "info", "ClearML keys saved", f"{who}the keys are in {saved.path}{kept}.", tag=TAG
        )

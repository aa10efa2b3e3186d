"""Composition root: the QApplication on a qasync loop, the services and the UI wired together.

No logic of its own beyond wiring: decisions live in tray_app.core, widgets in tray_app.qt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import platformdirs

from tray_app import APP_DISPLAY_NAME, APP_NAME, __version__
from tray_app.applog import log_dir, setup_logging
from tray_app.core.api import ClearMLClient, ClearMLError
from tray_app.core.config import ConfigError, ConfigNotFound, load_server_config
from tray_app.core.idle import idle_note
from tray_app.core.idle_monitor import IdleAction, IdleMonitor
from tray_app.core.menu_model import TrayView
from tray_app.core.models import LogLine, Snapshot
from tray_app.core.refresh import PollStatus, RefreshSchedule, TrayState
from tray_app.core.sessions import SessionService
from tray_app.core.settings import IdleMode, Settings, load_settings
from tray_app.core.tunnels import TunnelInfo, TunnelState

log = logging.getLogger(__name__)


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class TrayApplication:
    """Owns the long-lived objects of one running tray."""

    def __init__(self, args: argparse.Namespace) -> None:
        from PySide6.QtWidgets import QApplication

        from tray_app.qt.controller import Controller
        from tray_app.qt.icons import notification_icon
        from tray_app.qt.launcher import SessionLauncher
        from tray_app.qt.notifier import Notifier
        from tray_app.qt.poller import Poller
        from tray_app.qt.tray import Tray

        self.args = args
        self.qapp = QApplication.instance()
        self.settings = Settings()
        self.presets: list[Any] = []
        self.config_override: str | None = getattr(args, "config_file", None)
        self.config_error: ConfigError | None = None
        self.client: ClearMLClient | None = None
        self.demo: Any = None  # tray_app.demo.DemoServer when --demo
        self.pending_connect: str | None = None
        self._windows: list[Any] = []  # keep dialogs alive while shown
        self.idle: IdleMonitor | None = None
        self._idle_running = False
        self.launcher: Any = None  # SessionLauncher, built below
        self._log_windows: dict[str, Any] = {}
        self._masters: dict[str, Path] = {}  # ssh alias → config file of its master connection
        self._ssh_hosts: set[str] = set()  # session ids with a Host block written by this run
        self._ssh_blocks: dict[str, int] = {}  # session id → tunnel port its block was written for
        self._master_logins: set[str] = set()  # aliases whose master login is under way
        self._ssh_lock = asyncio.Lock()
        self._remote_ssh_checked: set[tuple[str, ...]] = set()  # editors known to have it
        self._remote_ssh_checks: dict[tuple[str, ...], asyncio.Future[bool]] = {}  # under way
        self.onboarding: Any = None
        self.hotkey: Any = None  # the HotkeyBackend, chosen at start
        self.quick_pick: Any = None
        self._last_state = TrayState.CONNECTING
        self._quit_task: asyncio.Future[None] | None = None
        self.hotkey_status = ""  # why the global hotkey is unavailable ("" = fine)

        self.poller = Poller(
            RefreshSchedule(),
            all_users=lambda: self.settings.show_all_users,
            busy=self._launching,
        )
        self.controller = Controller(lambda: self.poller.snapshot)
        self.tray = Tray(self.view, self.controller.handle, on_open=self._menu_opening)
        self.notifier = Notifier(
            lambda: self.settings.notifications, self.tray.notify, icon=notification_icon()
        )
        self.poller.status_changed.connect(self._status_changed)
        self.poller.snapshot_changed.connect(self._snapshot_changed)
        self.controller.message.connect(
            lambda title, text, error: self.notifier.notify(
                "error" if error else "info", title, text, critical=error
            )
        )
        self.controller.keep_alive_requested.connect(self.keep_alive)
        self.launcher = SessionLauncher(
            lambda: self.settings,
            self.notifier,
            env=self._child_env,
            show_log=self._follow_log,
            on_ready=self._on_tunnel_ready,
            open_editor=self._open_editor,
        )
        self.controller.launcher = self.launcher
        self.controller.editor_opener = self._connect
        self.controller.terminal_opener = self._open_terminal
        self.controller.follow_log_requested.connect(self._follow_log)
        self.launcher.tunnels_changed.connect(self.tray.update_state)
        self.launcher.tunnels_changed.connect(self._prune_ssh_entries)
        self.launcher.tunnels_changed.connect(self.poller.refresh_now)
        self.launcher.prompt_needed.connect(self._ask_user)
        self.launcher.output.connect(self._child_output)
        self.controller.refresh_requested.connect(self.poller.refresh_now)
        self.controller.log_loaded.connect(self._show_log)
        self.controller.quit_requested.connect(self._quit_soon)
        self.controller.about_requested.connect(self._about)
        self.controller.settings_requested.connect(self._settings)
        self.controller.onboarding_requested.connect(self._onboarding)
        self.controller.demo_requested.connect(lambda: self.controller.spawn(self.use_demo()))
        self.controller.log_folder_requested.connect(self._open_log_folder)
        self.controller.new_session_requested.connect(
            lambda: self.controller.spawn(self._new_session())
        )
        self.controller.import_presets_requested.connect(self._import_presets)
        self.controller.export_presets_requested.connect(self._export_presets)

    # --- state for the menu ---------------------------------------------------------------
    def view(self) -> TrayView:
        return TrayView(
            status=self.poller.status,
            snapshot=self.poller.snapshot,
            tunnels=self.controller.launcher.tunnels() if self.controller.launcher else {},
            show_all_users=self.settings.show_all_users,
            idle_notes=self._idle_notes(),
        )

    def _idle_notes(self) -> dict[str, str]:
        if self.idle is None:
            return {}
        notes = {sid: idle_note(v) for sid, v in self.idle.verdicts.items() if idle_note(v)}
        for sid in list(self.idle.verdicts):
            until = self.idle.kept_alive_until(sid)
            if until is not None:
                notes[sid] = "Kept alive until " + time.strftime("%H:%M", time.localtime(until))
        return notes

    def _menu_opening(self) -> None:
        self.poller.refresh_if_stale(5.0)

    # --- startup --------------------------------------------------------------------------
    async def start(self) -> None:
        loaded = await asyncio.to_thread(load_settings)
        self.settings, self.presets = loaded.settings, loaded.presets
        self.poller.schedule.interval = float(self.settings.poll_interval_s)
        self.tray.show()
        for warning in loaded.warnings:
            log.warning("settings: %s", warning)
            self.tray.notify("Settings", warning, True)
        if self.args.demo:
            await self.use_demo()
        else:
            await self.apply_config()
        self.poller.start()
        self.apply_hotkey()
        # Host blocks left by a run that did not quit cleanly point at tunnels that are gone.
        self.controller.spawn(self._remove_ssh_entries(None))
        if self.args.show:
            self.tray.popup()
        # Everything built so far (Qt bindings, modules, the app's objects) lives as long as the
        # process. Frozen, the collector stops walking it on every full collection: those walks
        # were the longest event-loop stalls (30-50 ms) during a refresh of 1000 sessions.
        gc.freeze()

    def _config_file(self) -> str | None:
        if self.config_override:
            return self.config_override
        active = next(
            (p for p in self.settings.profiles if p.name == self.settings.active_profile), None
        )
        return active.config_file if active and active.config_file else None

    async def apply_config(self) -> None:
        path = self._config_file()
        try:
            config = await asyncio.to_thread(load_server_config, path)
        except ConfigError as exc:
            self.config_error = exc
            log.warning("configuration: %s", exc)
            self.poller.set_unconfigured(str(exc))
            if isinstance(exc, ConfigNotFound):
                self.tray.notify("ClearML is not configured", "Open the tray menu to set it up.")
                self._onboarding()
            else:
                self.tray.notify("ClearML configuration problem", str(exc), True)
            return
        self.config_error = None
        if self.onboarding is not None:
            self.onboarding.close()
        if self.client is not None:
            await self.client.aclose()
        self.client = ClearMLClient(config)
        service = SessionService(self.client, web_server=config.web_server)
        self.controller.service = service
        self.idle = IdleMonitor(service, lambda: self.settings.idle)
        log.info("using ClearML server %s (config: %s)", config.api_server, config.source)
        self.poller.set_source(service.snapshot, config.api_server)

    async def use_demo(self) -> None:
        from tray_app.demo import DemoServer, EmulatorState

        if self.demo is None:
            server = DemoServer(EmulatorState.seeded(sessions=6), port=0, agent_tick=1.0)
            await asyncio.to_thread(server.start)
            path = data_dir() / "demo-clearml.conf"
            await asyncio.to_thread(_write_demo_config, server, path)
            self.demo = server
            log.info("demo server running at %s (config %s)", server.url, path)
            self.tray.notify("Demo server", f"Running at {server.url} with sample sessions.")
        self.config_override = str(data_dir() / "demo-clearml.conf")
        await self.apply_config()

    # --- windows --------------------------------------------------------------------------
    def _show_log(self, _session_id: str, title: str, lines: list[LogLine]) -> None:
        from tray_app.qt.console_log import format_lines
        from tray_app.qt.dialogs.log_window import LogWindow

        dialog = LogWindow(title, format_lines(lines))
        self._keep(dialog)
        dialog.show()

    def _keep(self, window: Any) -> None:
        self._windows.append(window)
        window.finished.connect(lambda *_: self._windows.remove(window))

    def _about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        from tray_app.core.secrets import SecretStore

        store = SecretStore()
        secrets = store.warning or f"Secrets are kept in the system keyring ({store.backend_name})."
        QMessageBox.about(
            None,
            f"About {APP_DISPLAY_NAME}",
            f"<b>{APP_DISPLAY_NAME}</b> {__version__}<br>"
            "Your ClearML interactive sessions in the system tray.<br><br>"
            f"Log folder: {log_dir()}<br>{secrets}",
        )

    def _settings(self) -> None:
        from tray_app.platform.autostart import choose_autostart
        from tray_app.qt.dialogs.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings)
        autostart = choose_autostart()
        if not autostart.available:
            dialog.set_autostart_status(autostart.reason)
        dialog.set_hotkey_status(self.hotkey_status)
        dialog.settings_accepted.connect(lambda s: self.controller.spawn(self.apply_settings(s)))
        self._keep(dialog)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    async def apply_settings(self, new: Settings) -> None:
        """Save and apply accepted settings without a restart."""
        from tray_app.core.settings import SettingsError, save_settings
        from tray_app.platform.autostart import choose_autostart

        old, self.settings = self.settings, new
        try:
            await asyncio.to_thread(save_settings, new, self.presets)
        except (SettingsError, OSError) as exc:
            log.error("settings not saved: %s", exc)
            self.tray.notify("Settings not saved", str(exc), True)
        if new.start_on_login != old.start_on_login:
            autostart = choose_autostart()
            try:
                await asyncio.to_thread(
                    autostart.enable if new.start_on_login else autostart.disable
                )
            except OSError as exc:
                self.tray.notify("Start on login", f"Could not change it: {exc}", True)
        self.poller.schedule.interval = float(new.poll_interval_s)
        if new.hotkey != old.hotkey:
            self.apply_hotkey()
        if (old.active().config_file, old.active_profile) != (
            new.active().config_file,
            new.active_profile,
        ):
            self.config_override = None
            await self.apply_config()
        else:
            self.poller.refresh_now()
        log.info("settings applied")

    def _onboarding(self) -> None:
        from tray_app.qt.dialogs.onboarding import OnboardingDialog

        if self.onboarding is None:
            dialog = OnboardingDialog(self.config_error)
            dialog.config_file_chosen.connect(
                lambda path: self.controller.spawn(self.use_config_file(path))
            )
            dialog.demo_requested.connect(lambda: self.controller.spawn(self.use_demo()))
            dialog.retry_requested.connect(lambda: self.controller.spawn(self.apply_config()))
            dialog.finished.connect(lambda *_: setattr(self, "onboarding", None))
            self.onboarding = dialog
        self.onboarding.set_error(self.config_error)
        self.onboarding.show()
        self.onboarding.raise_()

    async def use_config_file(self, path: str) -> None:
        """The user picked a clearml.conf: remember it in the active profile and use it."""
        import copy

        new = copy.deepcopy(self.settings)
        new.active().config_file = path
        await self.apply_settings(new)

    # --- launching and connecting ---------------------------------------------------------
    def _launching(self) -> bool:
        launcher = getattr(self, "launcher", None)
        if launcher is None:
            return False
        busy = (TunnelState.LAUNCHING, TunnelState.CONNECTING, TunnelState.RETRYING)
        return any(t.state in busy for t in launcher.tunnels().values())

    def _child_env(self) -> dict[str, str]:
        """clearml-session must talk to the server the tray shows: same config file."""
        env = dict(os.environ)
        path = self._config_file()
        if path:
            env["CLEARML_CONFIG_FILE"] = str(Path(path).expanduser())
        return env

    async def _new_session(self) -> None:
        from tray_app.core.presets import PresetError, load_workspace_presets
        from tray_app.qt.dialogs.new_session import NewSessionDialog

        presets = list(self.presets)
        folder = self.settings.workspace_folder
        if folder:
            try:
                workspace = await asyncio.to_thread(load_workspace_presets, folder)
            except PresetError as exc:
                self.notifier.notify("error", "Workspace presets ignored", str(exc), critical=True)
                workspace = []
            names = {p.name for p in presets}
            presets += [p for p in workspace if p.name not in names]
        service = self.controller.service
        loader = service.queues if service is not None else None
        dialog = NewSessionDialog(presets, load_queues=loader)
        dialog.launch_requested.connect(self.launch)
        dialog.save_requested.connect(lambda p: self.controller.spawn(self.save_preset(p)))
        self._keep(dialog)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        self.new_session_dialog = dialog

    def _import_presets(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            None, "Import presets", str(Path.home()), "Presets (*.json)"
        )
        if path:
            self.controller.spawn(self.import_presets(Path(path)))

    async def import_presets(self, path: Path) -> list[str]:
        """Add (or replace by name) the presets of an exported JSON file; returns their names."""
        from tray_app.core.presets import PresetError, presets_from_json
        from tray_app.core.settings import SettingsError, save_settings

        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
            imported = presets_from_json(text, source=str(path))
        except (OSError, UnicodeDecodeError, PresetError) as exc:
            self.notifier.notify("error", "Presets not imported", str(exc), critical=True)
            return []
        names = {p.name for p in imported}
        self.presets = [p for p in self.presets if p.name not in names] + imported
        try:
            await asyncio.to_thread(save_settings, self.settings, self.presets)
        except (SettingsError, OSError) as exc:
            self.notifier.notify("error", "Presets not saved", str(exc), critical=True)
        self.notifier.notify("info", "Presets imported", ", ".join(sorted(names)))
        return sorted(names)

    def _export_presets(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            None, "Export presets", str(Path.home() / "clearml-presets.json"), "Presets (*.json)"
        )
        if path:
            self.controller.spawn(self.export_presets(Path(path)))

    async def export_presets(self, path: Path) -> None:
        from tray_app.core.atomic import atomic_write_text
        from tray_app.core.presets import presets_to_json

        try:
            await asyncio.to_thread(atomic_write_text, path, presets_to_json(self.presets))
        except OSError as exc:
            self.notifier.notify("error", "Presets not exported", str(exc), critical=True)
            return
        self.notifier.notify("info", "Presets exported", str(path))

    def launch(self, preset: Any) -> str:
        key: str = self.launcher.create(preset)
        self._check_editor_soon()
        log.info("launching a session from preset %r (%s)", preset.name, key)
        self.notifier.notify("info", "Starting a session", f"Preset “{preset.name}”: see the menu.")
        return key

    async def save_preset(self, preset: Any) -> None:
        from tray_app.core.settings import SettingsError, save_settings

        self.presets = [p for p in self.presets if p.name != preset.name] + [preset]
        try:
            await asyncio.to_thread(save_settings, self.settings, self.presets)
        except (SettingsError, OSError) as exc:
            self.notifier.notify("error", "Preset not saved", str(exc), critical=True)
            return
        self.notifier.notify("info", "Preset saved", f"“{preset.name}” is in the preset list.")

    def _connect(self, session_id: str) -> None:
        tunnel = next(
            (t for t in self.launcher.tunnels().values() if t.session_id == session_id), None
        )
        if tunnel is not None and tunnel.state == TunnelState.READY:
            self.launcher.open_editor(tunnel)
        elif tunnel is not None and tunnel.state not in (TunnelState.FAILED, TunnelState.CLOSED):
            self.notifier.notify("info", "Connecting", f"The tunnel is {tunnel.state.value}.")
        else:
            self.launcher.attach(session_id)
            self._check_editor_soon()

    def _on_tunnel_ready(self, info: TunnelInfo) -> None:
        self.controller.spawn(self._write_ssh_entry(info))

    async def _write_ssh_entry(self, info: TunnelInfo) -> str | None:
        """One Host block for the tunnel in our ssh config, Include'd from ~/.ssh/config."""

        if not (info.session_id and info.local_ssh_port):
            return None
        async with self._ssh_lock:  # on_ready and open_editor both arrive at once
            return await self._write_ssh_entry_locked(info)

    async def _write_ssh_entry_locked(self, info: TunnelInfo) -> str | None:
        from tray_app.core.ssh_config import HostEntry, SshConfig, host_alias
        from tray_app.core.ssh_master import (
            master_supported,
            pending_marker,
            wait_command,
            write_wait_script,
        )

        assert info.session_id and info.local_ssh_port
        if self._ssh_blocks.get(info.session_id) == info.local_ssh_port:
            return host_alias(info.session_id)  # written by on_ready a moment ago
        config = SshConfig()
        alias = host_alias(info.session_id)
        password = self.launcher.password(info.key) if self.launcher else None
        control = str(config.control_dir / "%C") if master_supported() else ""
        # The login runs in the background; until it is done, ssh for this alias waits for it
        # (the Match exec in the block), so the editor can be started at once.
        login = bool(control and password) and alias not in self._masters
        wait = wait_command(config.control_dir, alias) if control else ""
        entry = HostEntry(
            info.session_id, info.local_ssh_port, info.user or "root", "127.0.0.1", control, wait
        )

        def write(include_agreed: bool) -> str:
            """The Include line still to be agreed to, else "" once everything is written."""
            if not include_agreed:
                diff = config.include_pending()
                if diff:
                    return diff
            config.ensure_include()
            if wait:
                write_wait_script(config.control_dir)
            if login:
                pending_marker(config.control_dir, alias).touch()
            config.add(entry)
            return ""

        try:
            # One trip to a worker thread in the usual case (the Include line is there).
            diff = await asyncio.to_thread(write, False)
            if diff:
                if not self._confirm_include(diff, config.user_config):
                    self.notifier.notify(
                        "error",
                        "SSH config not changed",
                        f"Editors will not find the host until {config.user_config} includes "
                        f"{config.managed}.",
                        critical=True,
                    )
                    return None
                await asyncio.to_thread(write, True)
        except OSError as exc:
            self.notifier.notify("error", "Could not write the SSH config", str(exc), critical=True)
            return None
        log.info("ssh config: Host %s → localhost:%s", alias, info.local_ssh_port)
        self._ssh_hosts.add(info.session_id)
        self._ssh_blocks[info.session_id] = info.local_ssh_port
        if login and alias not in self._master_logins:
            self._master_logins.add(alias)
            self.controller.spawn(self._open_master(info, alias, config))
        elif not control and password:
            self._offer_password(
                password,
                "Session password copied",
                "This system's ssh cannot share a connection: paste the password when asked.",
                error=False,
            )
        return alias

    def _prune_ssh_entries(self) -> None:
        """A session whose tunnel has ended loses its Host block, master and stored password."""
        live = {
            t.session_id
            for t in self.launcher.tunnels().values()
            if t.session_id and t.state not in (TunnelState.CLOSED, TunnelState.FAILED)
        }
        gone = self._ssh_hosts - live
        if gone:
            self._ssh_hosts -= gone
            self.controller.spawn(self._remove_ssh_entries(gone))

    async def _remove_ssh_entries(self, session_ids: set[str] | None) -> None:
        """Remove these sessions' blocks (None: every block in our file)."""
        from tray_app.core.secrets import SecretStore, session_password_key
        from tray_app.core.ssh_config import SshConfig, host_alias
        from tray_app.core.ssh_master import exit_argv

        config = SshConfig()
        async with self._ssh_lock:
            try:
                if session_ids is None:
                    await asyncio.to_thread(_clear_pending_markers, config.control_dir)
                    removed = await asyncio.to_thread(config.remove_aliases, None)
                    if removed:
                        log.info("ssh config: removed %d stale Host blocks", removed)
                    return
                for session_id in session_ids:
                    alias = host_alias(session_id)
                    self._ssh_blocks.pop(session_id, None)
                    config_file = self._masters.pop(alias, None)
                    if config_file is not None:
                        await run_process(exit_argv(alias, config_file), dict(os.environ), 10)
                    await asyncio.to_thread(config.remove, session_id)
                    with contextlib.suppress(Exception):  # no keyring: nothing was stored
                        await asyncio.to_thread(
                            SecretStore().delete, session_password_key(session_id)
                        )
                    log.info("ssh config: Host %s removed (its tunnel ended)", alias)
            except OSError as exc:
                log.warning("ssh config: could not remove Host blocks: %s", exc)

    async def _open_master(self, info: TunnelInfo, alias: str, config: Any) -> None:
        """Authenticate once (askpass reads the keyring) so that the editor's ssh never asks."""
        from tray_app.core.ssh_master import pending_marker

        try:
            await self._log_in_master(info, alias, config)
        finally:
            self._master_logins.discard(alias)
            with contextlib.suppress(OSError):  # ssh waiting on it goes on now
                await asyncio.to_thread(pending_marker(config.control_dir, alias).unlink, True)

    async def _log_in_master(self, info: TunnelInfo, alias: str, config: Any) -> None:
        from tray_app.core.secrets import SecretStore, session_password_key
        from tray_app.core.ssh_master import askpass_env, askpass_launcher, master_argv

        password = self.launcher.password(info.key) if self.launcher else None
        if not password or not info.session_id:
            return
        name = session_password_key(info.session_id)
        try:
            await asyncio.to_thread(SecretStore().set, name, password)
            helper = await asyncio.to_thread(askpass_launcher, config.managed.parent)
        except OSError as exc:
            self.notifier.notify(
                "error", "Could not prepare the SSH login", str(exc), critical=True
            )
            return
        env = askpass_env(dict(os.environ), helper, name)
        code, errors = await run_process(master_argv(alias, config.user_config), env)
        if code == 0:
            self._masters[alias] = config.user_config
            log.info("ssh master connection for %s is up", alias)
        else:
            log.warning("ssh master for %s failed (%s): %s", alias, code, errors.strip()[-300:])
            self._offer_password(
                password,
                "Could not log in ahead of the editor",
                "The session password is in the clipboard: paste it when the editor asks.",
                error=True,
            )

    def _offer_password(self, password: str, title: str, text: str, error: bool) -> None:
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.clipboard().setText(password)
        self.notifier.notify("error" if error else "info", title, text)

    def _confirm_include(self, diff: str, path: Path) -> bool:
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox()
        box.setWindowTitle("Connect in VS Code")
        box.setText(
            f"To let VS Code Remote-SSH reach your sessions, one Include line is added at the "
            f"top of {path} (a backup is kept; nothing else changes)."
        )
        box.setDetailedText(diff)
        add = box.addButton("Add the line", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is add

    def _open_editor(self, info: TunnelInfo) -> None:
        self.controller.spawn(self._open_editor_async(info))

    async def _open_editor_async(self, info: TunnelInfo) -> None:
        from PySide6.QtCore import QProcess, QUrl
        from PySide6.QtGui import QDesktopServices

        from tray_app.core.editors import fallback_url, find_editor, open_argv, remote_folder

        alias = await self._write_ssh_entry(info)
        if alias is None:
            return
        folder = remote_folder(info.user or "root", info.remote_folder)
        editor = await asyncio.to_thread(find_editor, self.settings.editor_command)
        if editor is None:
            QDesktopServices.openUrl(QUrl(fallback_url(alias, folder)))
            return
        await self.ensure_remote_ssh(editor)
        argv = open_argv(editor, alias, folder)
        log.info("opening %s: %s", editor.name, " ".join(argv))
        if not QProcess.startDetached(argv[0], argv[1:]):
            self.notifier.notify("error", f"Could not start {editor.name}", argv[0], critical=True)

    def _check_editor_soon(self) -> None:
        """While a tunnel comes up, check the editor's extensions, so that the editor opens
        the moment the session is ready instead of after `--list-extensions` (a second or so)."""

        async def check() -> None:
            from tray_app.core.editors import find_editor

            editor = await asyncio.to_thread(find_editor, self.settings.editor_command)
            if editor is not None:
                await self.ensure_remote_ssh(editor)

        self.controller.spawn(check())

    async def ensure_remote_ssh(self, editor: Any) -> bool:
        """Check the editor's extensions once per run; offer to install Remote-SSH if missing.

        The editor is opened either way: without the extension it shows its own error, and the
        user may have a Remote-SSH build we do not know by id. A check under way (started
        while the tunnel came up) is joined, not repeated; one that failed or was declined is
        done again next time.
        """
        from tray_app.core.editors import needs_extension_check

        if not needs_extension_check(editor) or editor.argv in self._remote_ssh_checked:
            return True
        running = self._remote_ssh_checks.get(editor.argv)
        if running is None:
            running = asyncio.ensure_future(self._check_remote_ssh(editor))
            self._remote_ssh_checks[editor.argv] = running
            running.add_done_callback(lambda _t: self._remote_ssh_checks.pop(editor.argv, None))
        return await asyncio.shield(running)

    async def _check_remote_ssh(self, editor: Any) -> bool:
        from tray_app.core.editors import (
            REMOTE_SSH,
            has_remote_ssh,
            install_extension_argv,
            list_extensions_argv,
        )

        code, listed = await run_process(list_extensions_argv(editor), dict(os.environ))
        if code != 0:
            log.warning("%s --list-extensions failed (%s): %s", editor.name, code, listed[-300:])
            return False
        if has_remote_ssh(editor, listed):
            self._remote_ssh_checked.add(editor.argv)
            return True
        extension = REMOTE_SSH[editor.kind]
        if not self._confirm_extension_install(editor.name, extension):
            log.info("Remote-SSH install declined for %s", editor.name)
            return False
        self.notifier.notify("info", "Installing Remote - SSH", f"{extension} into {editor.name}")
        code, output = await run_process(install_extension_argv(editor), dict(os.environ), 300)
        if code == 0:
            log.info("installed %s into %s", extension, editor.name)
            self._remote_ssh_checked.add(editor.argv)
            return True
        log.warning("installing %s failed (%s): %s", extension, code, output[-500:])
        self.notifier.notify(
            "error",
            "Remote - SSH was not installed",
            f"{editor.name} said: {output.strip().splitlines()[-1] if output.strip() else code}",
            critical=True,
        )
        return False

    def _confirm_extension_install(self, editor_name: str, extension: str) -> bool:
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            None,
            "Connect in VS Code",
            f"{editor_name} needs the Remote - SSH extension ({extension}) to open a session. "
            "Install it now?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def _open_terminal(self, session_id: str) -> None:
        self.controller.spawn(self._open_terminal_async(session_id))

    async def _open_terminal_async(self, session_id: str) -> None:
        """The user's terminal running `ssh <alias>` over the session's tunnel."""
        from PySide6.QtCore import QProcess
        from PySide6.QtGui import QGuiApplication

        from tray_app.core.editors import terminal_argv

        tunnel = next(
            (t for t in self.launcher.tunnels().values() if t.session_id == session_id), None
        )
        if tunnel is None or tunnel.state != TunnelState.READY:
            self.notifier.notify("info", "Terminal", "Connect the session first.")
            return
        alias = await self._write_ssh_entry(tunnel)
        if alias is None:
            return
        argv = terminal_argv(alias)
        if argv is None:
            QGuiApplication.clipboard().setText(f"ssh {alias}")
            self.notifier.notify(
                "error",
                "No terminal program found",
                f"“ssh {alias}” is in the clipboard. Set $TERMINAL to choose a terminal.",
            )
            return
        log.info("opening a terminal: %s", " ".join(argv))
        if not QProcess.startDetached(argv[0], argv[1:]):
            self.notifier.notify("error", "Could not start the terminal", argv[0], critical=True)

    def _ask_user(self, key: str, question: str) -> None:
        from PySide6.QtWidgets import QInputDialog

        answer, ok = QInputDialog.getText(None, "clearml-session asks", question)
        if ok:
            self.launcher.answer(key, answer)
        else:
            self.launcher.disconnect(key)

    def _follow_log(self, key: str) -> None:
        from tray_app.qt.dialogs.log_window import LogWindow

        window = self._log_windows.get(key)
        if window is None:
            window = LogWindow(f"clearml-session — {key}", self.launcher.log_text(key))
            window.finished.connect(lambda *_: self._log_windows.pop(key, None))
            self._log_windows[key] = window
        window.show()
        window.raise_()

    def _child_output(self, key: str, text: str) -> None:
        window = self._log_windows.get(key)
        if window is not None:
            window.append(text)

    def _open_log_folder(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir())))

    def _status_changed(self, status: PollStatus) -> None:
        previous, self._last_state = self._last_state, status.state
        self.tray.update_state()
        if status.state == TrayState.OFFLINE and previous in (TrayState.OK, TrayState.BUSY):
            self.notifier.notify("server_unreachable", "ClearML server unreachable", status.message)

    def _snapshot_changed(self, snapshot: Any) -> None:
        self.tray.update_state()
        if snapshot is not None and self.idle is not None and not self._idle_running:
            self._idle_running = True
            self.controller.spawn(self._check_idle(snapshot))
        if snapshot is not None and self.pending_connect:
            session_id, self.pending_connect = self.pending_connect, None
            self.controller.handle("connect", session_id)

    # --- global hotkey --------------------------------------------------------------------
    def apply_hotkey(self) -> None:
        from tray_app.qt.hotkey import choose_backend

        if self.hotkey is None:
            from PySide6.QtGui import QGuiApplication

            self.hotkey = choose_backend(QGuiApplication.platformName())
            if hasattr(self.hotkey, "on_status"):  # the portal answers later
                self.hotkey.on_status = self._hotkey_result
        self._hotkey_result(self.hotkey.register(self.settings.hotkey, self._hotkey_pressed))

    def _hotkey_result(self, result: Any) -> None:
        self.hotkey_status = "" if result.ok else result.reason
        if not result.ok and self.settings.hotkey:
            log.warning("global hotkey %s: %s", self.settings.hotkey, result.reason)

    def _hotkey_pressed(self) -> None:
        from tray_app.qt.quick_pick import QuickPick

        if self.quick_pick is None:
            self.quick_pick = QuickPick()
            self.quick_pick.chosen.connect(lambda sid: self.controller.handle("connect", sid))
        self.quick_pick.open_or_choose(self.poller.snapshot)

    # --- idle sessions --------------------------------------------------------------------
    async def _check_idle(self, snapshot: Snapshot) -> None:
        monitor = self.idle
        try:
            if monitor is None:
                return
            try:
                actions = await monitor.check(snapshot)
            except ClearMLError as exc:
                log.info("idle check skipped: %s", exc)
                return
            for action in actions:
                if action.kind == "warn":
                    self._warn_idle(action)
                elif action.kind == "stop":
                    self.notifier.notify(
                        "idle_warning",
                        f"Stopping idle session {action.session_name}",
                        action.reason,
                    )
                    try:
                        await monitor.stop(action.session_id, action.reason)
                    except ClearMLError as exc:
                        self.notifier.notify(
                            "error",
                            f"Could not stop {action.session_name}",
                            str(exc),
                            critical=True,
                        )
                    self.poller.refresh_now()
        finally:
            self._idle_running = False

    def _warn_idle(self, action: IdleAction) -> None:
        policy = self.settings.idle
        body = idle_note(action.verdict) + "."
        if policy.mode == IdleMode.NOTIFY_THEN_STOP:
            body += f" It will be stopped in {policy.grace_minutes} min unless you keep it alive."
        self.notifier.notify(
            "idle_warning",
            f"Idle session: {action.session_name}",
            body,
            [
                ("Keep alive 2h", lambda: self.keep_alive(action.session_id)),
                ("Stop now", lambda: self.controller.handle("stop", action.session_id)),
            ],
        )

    def keep_alive(self, session_id: str, hours: float = 2.0) -> None:
        if self.idle is not None:
            self.idle.keep_alive(session_id, time.time() + hours * 3600)

    # --- other instances ------------------------------------------------------------------
    def on_instance_message(self, message: dict[str, Any]) -> None:
        cmd = message.get("cmd")
        log.info("request from another instance: %s", cmd)
        if cmd == "show":
            self.tray.popup()
        elif cmd == "connect" and isinstance(message.get("session_id"), str):
            self.controller.handle("connect", message["session_id"])

    # --- shutdown -------------------------------------------------------------------------
    def quit_on_signal(self, signum: int) -> None:
        """Logout, `kill` or Ctrl-C: quit without asking, remote sessions left running."""
        log.info("signal %d: quitting", signum)
        if self._quit_task is None:
            self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote=False))

    def _quit_soon(self) -> None:
        shutdown_remote = False
        live = [
            t
            for t in self.launcher.tunnels().values()
            if t.state not in (TunnelState.CLOSED, TunnelState.FAILED)
        ]
        if live:
            from PySide6.QtWidgets import QMessageBox

            box = QMessageBox()
            box.setWindowTitle("Quit ClearML Session Tray")
            box.setText(
                f"{len(live)} session tunnel(s) are open. Their remote sessions can keep running "
                "(reconnect later from the menu) or be shut down now."
            )
            keep = box.addButton("Keep sessions running", QMessageBox.ButtonRole.AcceptRole)
            stop = box.addButton("Shut them down", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(keep)
            box.exec()
            if box.clickedButton() not in (keep, stop):
                return
            shutdown_remote = box.clickedButton() is stop
        self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote))

    async def quit(self, shutdown_remote: bool = False) -> None:
        log.info("quitting (%s remote sessions)", "shutting down" if shutdown_remote else "keeping")
        await self.poller.stop()
        if self.launcher is not None:
            self.launcher.stop_all(shutdown_remote=shutdown_remote)
        from tray_app.core.ssh_master import exit_argv

        for alias, config_file in list(self._masters.items()):  # pruning may pop meanwhile
            await run_process(exit_argv(alias, config_file), dict(os.environ))
        self._masters.clear()
        await self._remove_ssh_entries(set(self._ssh_hosts))  # the tunnels are gone
        self._ssh_hosts.clear()
        await self.controller.wait_idle()
        if self.client is not None:
            await self.client.aclose()
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)
        if self.hotkey is not None:
            self.hotkey.unregister()
        self.tray.icon.hide()
        if self.qapp is not None:
            self.qapp.quit()


async def run_process(
    argv: list[str], env: dict[str, str], timeout_s: float = 60
) -> tuple[int, str]:
    """Run a short command as a QProcess on the event loop; (exit code, merged output)."""
    from PySide6.QtCore import QProcess, QProcessEnvironment

    process = QProcess()
    qenv = QProcessEnvironment()
    for name, value in env.items():
        qenv.insert(name, value)
    process.setProcessEnvironment(qenv)
    process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
    process.setStandardInputFile(QProcess.nullDevice())  # never a terminal prompt
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finish(code: int) -> None:
        if not done.done():
            done.set_result(code)

    process.finished.connect(lambda code, _status: finish(int(code)))
    process.errorOccurred.connect(
        lambda _error: finish(-1) if process.state() == QProcess.ProcessState.NotRunning else None
    )
    process.start(argv[0], argv[1:])
    try:
        async with asyncio.timeout(timeout_s):
            code = await done
    except TimeoutError:
        process.kill()
        return -1, "timed out"
    return code, bytes(process.readAll().data()).decode("utf-8", "replace")


def _clear_pending_markers(control_dir: Path) -> None:
    """Markers of master logins that a crashed run never finished: ssh must not wait on them."""
    for marker in control_dir.glob("*.pending") if control_dir.is_dir() else ():
        marker.unlink(missing_ok=True)


def _write_demo_config(server: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    server.write_config(path)


def _instance_message(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "connect":
        return {"cmd": "connect", "session_id": args.session_id}
    return {"cmd": "show"}


def run_app(args: argparse.Namespace) -> int:
    """Start the tray (or hand the request to the one already running)."""
    from tray_app.startup_probe import probe_for

    probe = probe_for(args)  # None unless --benchmark-startup
    import qasync
    from PySide6.QtWidgets import QApplication

    from tray_app.qt.single_instance import SingleInstance, forward_to_running

    if probe is not None:
        probe.mark("qt_imported")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.xcb.warning=false")
    qapp = QApplication(sys.argv[:1])
    qapp.setApplicationName(APP_NAME)
    qapp.setApplicationDisplayName(APP_DISPLAY_NAME)
    qapp.setApplicationVersion(__version__)
    qapp.setQuitOnLastWindowClosed(False)

    if forward_to_running(_instance_message(args)):
        print("clearml-tray is already running: request forwarded to it.")
        return 0

    log_file = setup_logging(debug=bool(getattr(args, "debug", False)))
    log.info("%s %s starting (log %s)", APP_DISPLAY_NAME, __version__, log_file)

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    instance = SingleInstance()
    instance.listen()
    app = TrayApplication(args)
    instance.message_received.connect(app.on_instance_message)
    if args.command == "connect":
        app.pending_connect = args.session_id
    if probe is not None:
        probe.attach(app, loop)

    signals = None
    if os.name == "posix":
        from tray_app.qt.quit_signals import QuitOnSignals

        signals = QuitOnSignals(app.quit_on_signal)

    def started(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            qapp.exit(1)  # a start that failed ends the run; the error is raised below

    with loop:
        # The loop runs until Quit stops Qt, which may come (a logout, a quick Quit) while
        # start() is still awaiting: that unfinished start is then cancelled, not an error.
        starting = loop.create_task(app.start())
        starting.add_done_callback(started)
        try:
            loop.run_forever()
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(starting)  # let it unwind
            elif not starting.cancelled() and (error := starting.exception()) is not None:
                raise error
        finally:
            instance.close()
            if signals is not None:
                signals.close()
    state = app.poller.status.state
    log.info("stopped (last state %s)", state.value if isinstance(state, TrayState) else state)
    return probe.exit_code if probe is not None else 0

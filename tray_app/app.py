"""Composition root: the QApplication on a qasync loop, the services, flows and views wired.

No logic of its own beyond wiring: workflows live in tray_app.core.flows (Qt-free, talking to the
user through core.ports), widgets and adapters in tray_app.qt.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from tray_app import APP_DISPLAY_NAME, APP_NAME, __version__
from tray_app.applog import log_dir
from tray_app.core.api import ClearMLClient
from tray_app.core.config import ConfigError, ConfigNotFound, load_server_config
from tray_app.core.flows.connect import ConnectFlow
from tray_app.core.flows.idle import IdleFlow
from tray_app.core.flows.launch import LaunchFlow
from tray_app.core.flows.password_ahead import PasswordAhead
from tray_app.core.flows.presets import PresetsFlow
from tray_app.core.flows.prewarm import PrewarmFlow
from tray_app.core.flows.quit import ask_quit
from tray_app.core.flows.tunnel_watch import TunnelWatch
from tray_app.core.idle_monitor import IdleMonitor
from tray_app.core.menu_model import TrayView
from tray_app.core.models import LogLine, Session, Snapshot
from tray_app.core.ports import Question
from tray_app.core.presets import Preset
from tray_app.core.refresh import PollStatus, RefreshSchedule, TrayState
from tray_app.core.secrets import SecretStore
from tray_app.core.session_ref import connectable
from tray_app.core.sessions import SessionService
from tray_app.core.settings import Settings, load_settings
from tray_app.core.ssh_config import default_control_dir
from tray_app.core.ssh_master import write_ssh_shim
from tray_app.core.tunnels import TunnelInfo, TunnelState

if TYPE_CHECKING:
    from tray_app.qt.single_instance import Reply

log = logging.getLogger(__name__)


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class TrayApplication:
    """Owns the long-lived objects of one running tray."""

    def __init__(self, args: argparse.Namespace) -> None:
        from tray_app.qt.controller import Controller
        from tray_app.qt.desktop import QtDesktop, QtRunner
        from tray_app.qt.hotkey.control import GlobalHotkey
        from tray_app.qt.icons import notification_icon
        from tray_app.qt.launcher import SessionLauncher
        from tray_app.qt.notifier import Notifier
        from tray_app.qt.poller import Poller
        from tray_app.qt.questions import QtAsk
        from tray_app.qt.tray import Tray
        from tray_app.qt.windows import Windows

        self.args = args
        self.settings = Settings()
        self.config_override: str | None = getattr(args, "config_file", None)
        self.config_error: ConfigError | None = None
        self.client: ClearMLClient | None = None
        self.demo: Any = None  # tray_app.demo.DemoServer when --demo
        self.pending_connect: str | None = None
        self.windows = Windows()
        self._last_state = TrayState.CONNECTING
        self._told_unconfigured = False
        self._ssh_shim: Path | None = None
        self._marker_dir: Path | None = None
        self._quit_task: asyncio.Future[None] | None = None
        self.on_quit: Callable[[], None] = lambda: None  # run_app: end Qt's event loop

        self.ask = QtAsk()
        self.desktop = QtDesktop()
        self.poller = Poller(
            RefreshSchedule(), all_users=lambda: self.settings.show_all_users, busy=self._busy
        )
        self.controller = Controller(lambda: self.poller.snapshot)
        spawn = self.controller.spawn
        self.notifier = Notifier(
            lambda: self.settings.notifications,
            lambda title, text, error: self.tray.notify(title, text, error),
            icon=notification_icon(),
            icon_for=notification_icon,
        )
        self.launcher = SessionLauncher(
            lambda: self.settings,
            self.notifier,
            env=self._child_env,
            show_log=self._follow_log,
            login_markers=self._login_markers,
        )
        self.launcher.output.connect(self.windows.child_output)
        self.password_ahead = PasswordAhead(
            server=lambda: self.controller.service, shim_in_use=lambda: self._ssh_shim is not None
        )
        self.connect_flow = ConnectFlow(
            self.launcher,
            ask=self.ask,
            notify=self.notifier,
            desktop=self.desktop,
            runner=QtRunner(),
            spawn=spawn,
            settings=lambda: self.settings,
            password_ahead=self.password_ahead,
            session=self._session,
        )
        self.idle = IdleFlow(
            notify=self.notifier,
            spawn=spawn,
            policy=lambda: self.settings.idle,
            stop_session=lambda sid: self.controller.handle("stop", sid),
            refresh=self.poller.refresh_now,
        )
        self.presets = PresetsFlow(notify=self.notifier, settings=lambda: self.settings)
        self.tunnel_watch = TunnelWatch(self.launcher, self.notifier)
        self.prewarm = PrewarmFlow(
            self.launcher,
            attach=lambda sid, name: self.connect_flow.attach(sid, name, prewarm=True),
            sessions=lambda: [(s.id, s.name) for s in connectable(self.poller.snapshot)],
            on_intent=lambda: self.settings.tunnel_on_intent,
            warm_all=lambda: self.settings.warm_tunnels,
        )
        self.launch_flow = LaunchFlow(
            self.launcher.create,
            notify=self.notifier,
            started=self.connect_flow.check_editor_soon,
            ask=self.ask,
            foreign=self.presets.from_workspace,
            remember_queue=self.presets.remember_queue,
        )
        self.hotkey = GlobalHotkey(
            lambda: self.poller.snapshot,
            lambda sid: self.controller.handle("connect", sid),
            self.prewarm.intent,
        )
        self.tray = Tray(self.view, self.controller.handle, self._menu_opening, ask=self.ask)

        self.launcher.on_ready = self.connect_flow.tunnel_up
        self.launcher.open_editor = self.connect_flow.open_editor
        self.launcher.copy_ssh = self.connect_flow.copy_ssh
        self.launcher.login_ahead = self.connect_flow.login_ahead
        self.launcher.tunnels_changed.connect(self.tray.update_state)
        self.launcher.tunnels_changed.connect(self.connect_flow.tunnels_changed)
        self.launcher.tunnels_changed.connect(self.poller.refresh_now)
        self.launcher.prompt_needed.connect(lambda k, q: spawn(self._ask_child(k, q)))
        self.controller.launcher = self.launcher
        self.controller.connect_flow = self.connect_flow
        self.poller.status_changed.connect(self._status_changed)
        self.poller.snapshot_changed.connect(self._snapshot_changed)
        self.controller.message.connect(
            lambda title, text, error: self.notifier.notify(
                "error" if error else "info", title, text, critical=error
            )
        )
        self.controller.keep_alive_requested.connect(self.idle.keep_alive)
        self.controller.intent.connect(self.prewarm.intent)
        self.controller.follow_log_requested.connect(self._follow_log)
        self.controller.refresh_requested.connect(self.poller.refresh_now)
        self.controller.log_loaded.connect(
            lambda sid, t, lines: self.windows.console_log(t, lines, self._log_loader(sid))
        )
        self.controller.quit_requested.connect(lambda: spawn(self._ask_quit()))
        self.controller.about_requested.connect(self._about)
        self.controller.settings_requested.connect(self._settings)
        self.controller.onboarding_requested.connect(self._onboarding)
        self.controller.demo_requested.connect(lambda: spawn(self.use_demo()))
        self.controller.log_folder_requested.connect(
            lambda: self.desktop.open_url(_file_url(log_dir()))
        )
        self.controller.new_session_requested.connect(lambda: spawn(self._new_session()))
        self.controller.quick_pick_requested.connect(self.hotkey.open_pick)
        self.controller.launch_preset_requested.connect(
            lambda name: spawn(self._launch_preset(name))
        )
        self.controller.import_presets_requested.connect(lambda: self._pick_presets_file(False))
        self.controller.export_presets_requested.connect(lambda: self._pick_presets_file(True))

    # --- state for the menu ---------------------------------------------------------------
    def view(self) -> TrayView:
        return TrayView(
            status=self.poller.status,
            snapshot=self.poller.snapshot,
            tunnels=self._tunnels(),
            show_all_users=self.settings.show_all_users,
            idle_notes=self.idle.notes(),
            presets=tuple(p.name for p in self.presets.presets),
        )

    def _session(self, session_id: str) -> Session | None:
        snapshot = self.poller.snapshot
        return snapshot.by_id(session_id) if snapshot is not None else None

    def _menu_opening(self) -> None:
        self.poller.refresh_if_stale(5.0)

    def _tunnels(self) -> dict[str, TunnelInfo]:
        """The tunnels the user asked for (prewarmed ones stay out of sight until used)."""
        launcher = getattr(self, "launcher", None)
        tunnels = launcher.tunnels() if launcher is not None else {}
        return {k: t for k, t in tunnels.items() if not t.prewarmed}

    def _busy(self) -> bool:
        busy = (TunnelState.LAUNCHING, TunnelState.CONNECTING, TunnelState.RETRYING)
        return any(t.state in busy for t in self._tunnels().values())

    # --- startup and configuration --------------------------------------------------------
    async def start(self) -> None:
        loaded = await asyncio.to_thread(load_settings)
        self.settings, self.presets.presets = loaded.settings, loaded.presets
        self.poller.schedule.interval = float(self.settings.poll_interval_s)
        self.tray.show()
        for warning in loaded.warnings:
            log.warning("settings: %s", warning)
            self.notifier.notify("error", "Settings", warning, critical=True)
        # What a run that did not quit cleanly left: children, Host blocks, login markers.
        await asyncio.to_thread(self.launcher.registry.reap_stale)
        # In the app's data folder: nothing in ~/.ssh changes before a Connect.
        self._ssh_shim = await asyncio.to_thread(write_ssh_shim, data_dir())
        self._marker_dir = await asyncio.to_thread(default_control_dir)
        self.controller.spawn(self.connect_flow.remove_hosts(None))
        if self.args.demo:
            await self.use_demo()
        else:
            await self.apply_config()
        self.poller.start()
        self.tunnel_watch.start()
        self.prewarm.start()
        self.hotkey.apply(self.settings.hotkey)
        if self.args.show:
            self.tray.popup()
        # Everything built so far lives as long as the process. Frozen, the collector stops
        # walking it on every full collection (the longest stalls of a 1000-session refresh).
        gc.freeze()

    def _log_loader(self, session_id: str) -> Callable[[], Awaitable[list[LogLine]]]:
        """Reloads a session's server log for its window (the service of the moment)."""

        async def load() -> list[LogLine]:
            service = self.controller.service
            if service is None:
                raise RuntimeError("no ClearML server configured")
            return await service.console_log(session_id)

        return load

    def _config_file(self) -> str | None:
        if self.config_override:
            return self.config_override
        active = self.settings.active()
        return active.config_file or None

    async def apply_config(self) -> None:
        try:
            config = await asyncio.to_thread(load_server_config, self._config_file())
        except ConfigError as exc:
            self.config_error = exc
            log.warning("configuration: %s", exc)
            self.poller.set_unconfigured(str(exc))
            if isinstance(exc, ConfigNotFound):
                # Once per run, through the desktop's notification service: the setup window
                # opens next to it and says the rest.
                if not self._told_unconfigured:
                    self._told_unconfigured = True
                    self.notifier.notify(
                        "info",
                        "ClearML is not configured",
                        "Connect the tray to a ClearML server to see and start sessions.",
                    )
                self._onboarding()
            else:
                self.notifier.notify(
                    "error", "ClearML configuration problem", str(exc), critical=True
                )
            return
        self.config_error = None
        self.windows.close_onboarding()
        if self.client is not None:
            await self.client.aclose()
        self.client = ClearMLClient(config)
        service = SessionService(self.client, web_server=config.web_server)
        self.controller.service = service
        self.idle.monitor = IdleMonitor(service, lambda: self.settings.idle)
        files = ", ".join(str(path) for path in config.source) or "environment"
        log.info("using ClearML server %s (config: %s)", config.api_server, files)
        self.poller.set_source(service.snapshot, config.api_server)

    async def use_demo(self) -> None:
        from tray_app.demo import DemoServer, seeded_state

        if self.demo is None:
            server = DemoServer(seeded_state(sessions=6), port=0, agent_tick=1.0)
            await asyncio.to_thread(server.start)
            path = data_dir() / "demo-clearml.conf"
            await asyncio.to_thread(_write_demo_config, server, path)
            self.demo = server
            log.info("demo server running at %s (config %s)", server.url, path)
            self.notifier.notify(
                "info", "Demo server", f"Running at {server.url} with sample sessions."
            )
        self.config_override = str(data_dir() / "demo-clearml.conf")
        await self.apply_config()

    async def apply_settings(self, new: Settings) -> None:
        """Save and apply accepted settings without a restart."""
        from tray_app.core.settings import SettingsError, save_settings
        from tray_app.platform.autostart import choose_autostart

        # The Settings window edits a copy made when it opened: a launch meanwhile may have
        # remembered a newer queue, which the window knows nothing of.
        new.last_queue = self.settings.last_queue
        old, self.settings = self.settings, new
        try:
            await asyncio.to_thread(save_settings, new, self.presets.presets)
        except (SettingsError, OSError) as exc:
            log.error("settings not saved: %s", exc)
            reason = (
                str(exc)
                if isinstance(exc, SettingsError)
                else f"The settings file could not be written ({exc.strerror or 'error'})."
            )
            self.notifier.notify("error", "Settings not saved", reason, critical=True)
        if new.start_on_login != old.start_on_login:
            autostart = choose_autostart()
            try:
                await asyncio.to_thread(
                    autostart.enable if new.start_on_login else autostart.disable
                )
            except OSError as exc:
                self.notifier.notify(
                    "error", "Start on login", f"Could not change it: {exc.strerror}", critical=True
                )
        self.poller.schedule.interval = float(new.poll_interval_s)
        self.prewarm.apply()  # warm tunnels switched on or off
        if new.hotkey != old.hotkey:
            self.hotkey.apply(self.settings.hotkey)
        old_source = (old.active().config_file, old.active_profile)
        if old_source != (new.active().config_file, new.active_profile):
            self.config_override = None
            await self.apply_config()
        else:
            self.poller.refresh_now()
        log.info("settings applied")

    async def use_config_file(self, path: str) -> None:
        """The user picked a clearml.conf: remember it in the active profile and use it."""
        import copy

        new = copy.deepcopy(self.settings)
        new.active().config_file = path
        await self.apply_settings(new)

    def _login_markers(self) -> Path | None:
        """Where a new session's CLI finds its login marker (None: no shim, no password ahead)."""
        return self._marker_dir if self._ssh_shim is not None else None

    def _child_env(self) -> dict[str, str]:
        """clearml-session must talk to the server the tray shows: same config file."""
        env = dict(os.environ)
        path = self._config_file()
        if path:
            env["CLEARML_CONFIG_FILE"] = str(Path(path).expanduser())
        if self._ssh_shim is not None:  # its ssh may get the password by askpass (ssh_master)
            env["PATH"] = f"{self._ssh_shim}{os.pathsep}{env.get('PATH', '')}"
        return env

    # --- launching ------------------------------------------------------------------------
    async def launch(self, preset: Preset) -> str | None:
        return await self.launch_flow.launch(preset)

    async def _launch_preset(self, name: str) -> str | None:
        """The Presets submenu: one click, one launch."""
        preset = next((p for p in self.presets.presets if p.name == name), None)
        if preset is None:
            self.notifier.notify("error", "Preset not found", f"No preset is named “{name}”.")
            return None
        return await self.launch(preset)

    def _follow_log(self, key: str) -> None:
        self.windows.follow_log(key, self.launcher.log_text(key))

    async def _ask_child(self, key: str, question: str) -> None:
        """A question of clearml-session's that we do not answer for the user."""
        answer = await self.ask.ask_text("clearml-session asks", question)
        if answer is None:
            self.launcher.disconnect(key)
        else:
            self.launcher.answer(key, answer)

    # --- windows (all non-modal) ----------------------------------------------------------
    def _about(self) -> None:
        store = SecretStore()
        secrets = store.warning or f"Secrets are kept in the system keyring ({store.backend_name})."
        self.windows.message(
            f"About {APP_DISPLAY_NAME}",
            f"<b>{APP_DISPLAY_NAME}</b> {__version__}<br>"
            "Your ClearML interactive sessions in the system tray.<br><br>"
            f"Log folder: {log_dir()}<br>{secrets}",
        )

    def _settings(self) -> None:
        spawn = self.controller.spawn
        self.windows.settings(
            self.settings, self.hotkey.status, lambda s: spawn(self.apply_settings(s))
        )

    def _onboarding(self) -> None:
        spawn = self.controller.spawn
        self.windows.show_onboarding(
            self.config_error,
            config_file=lambda path: spawn(self.use_config_file(path)),
            demo=lambda: spawn(self.use_demo()),
            retry=lambda: spawn(self.apply_config()),
        )

    async def _new_session(self) -> None:
        service = self.controller.service
        spawn = self.controller.spawn
        if service is None:
            # Sessions run on a server's machines: without one the dialog could launch nothing.
            answer = await self.ask.ask(
                Question(
                    "A ClearML server is needed first",
                    "New sessions run on the machines of a ClearML server. Connect the tray to "
                    "your server first, or try the built-in demo server.",
                    ("Set up ClearML…", "Try the demo server", "Cancel"),
                )
            )
            if answer == 0:
                self._onboarding()
            elif answer == 1:
                await self.use_demo()
            return
        self.windows.new_session(
            await self.presets.for_dialog(),
            service.queues if service is not None else None,
            launch=lambda p: spawn(self.launch(p)),
            save=lambda p: spawn(self.presets.save(p)),
            last_queue=self.settings.last_queue,
        )

    def _pick_presets_file(self, save: bool) -> None:
        flow, spawn = self.presets, self.controller.spawn
        self.windows.pick_presets_file(
            save, lambda path: spawn(flow.export_to(path) if save else flow.import_from(path))
        )

    # --- state changes --------------------------------------------------------------------
    def _status_changed(self, status: PollStatus) -> None:
        previous, self._last_state = self._last_state, status.state
        self.tray.update_state()
        if status.state == TrayState.OFFLINE and previous in (TrayState.OK, TrayState.BUSY):
            self.notifier.notify("server_unreachable", "ClearML server unreachable", status.message)

    def _snapshot_changed(self, snapshot: Snapshot | None) -> None:
        self.tray.update_state()
        self.idle.snapshot_changed(snapshot)
        self.prewarm.apply()
        if snapshot is not None and self.pending_connect:
            ref, self.pending_connect = self.pending_connect, None
            reply = self.connect_request(ref)
            if not reply.ok:
                self.notifier.notify("error", "Cannot connect", reply.message, critical=True)

    # --- other instances ------------------------------------------------------------------
    def on_instance_message(self, message: dict[str, Any]) -> Reply:
        from tray_app.qt.single_instance import Reply

        cmd = message.get("cmd")
        # A status bar asks for the snapshot every few seconds: not worth a log line each time.
        (log.debug if cmd == "snapshot" else log.info)("request from another instance: %s", cmd)
        if cmd == "connect" and isinstance(message.get("session_id"), str):
            return self.connect_request(message["session_id"])
        if cmd == "snapshot":  # `clearml-tray list` asking for the latest snapshot
            from tray_app.core.shared_snapshot import snapshot_reply

            ok, why, output = snapshot_reply(self.poller.snapshot, self.poller.status, message)
            return Reply(ok, why, {"output": output} if output is not None else {})
        self.tray.popup()
        return Reply(True)

    def connect_request(self, ref: str) -> Reply:
        """`clearml-tray connect <id or short id>`, answered in words."""
        from tray_app.qt.single_instance import Reply

        snapshot = self.poller.snapshot
        if snapshot is None:
            self.pending_connect = ref
            return Reply(True, "The tray is still loading sessions; it connects once they are in.")
        return Reply(*self.connect_flow.connect_ref(snapshot, ref))

    # --- shutdown -------------------------------------------------------------------------
    def quit_on_signal(self, signum: int) -> None:
        """Logout, `kill` or Ctrl-C: quit without asking, remote sessions left running."""
        log.info("signal %d: quitting", signum)
        if self._quit_task is None:
            self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote=False))

    async def _ask_quit(self) -> None:
        shutdown_remote = await ask_quit(self.ask, self.launcher.tunnels().values())
        if shutdown_remote is not None and self._quit_task is None:
            self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote))

    async def quit(self, shutdown_remote: bool = False) -> None:
        log.info("quitting (%s remote sessions)", "shutting down" if shutdown_remote else "keeping")
        self.ask.cancel_all()
        await self.poller.stop()
        await self.tunnel_watch.stop()
        await self.prewarm.stop()
        self.launcher.stop_all(shutdown_remote=shutdown_remote)
        await self.connect_flow.close()
        await self.controller.wait_idle()
        if self.client is not None:
            await self.client.aclose()
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)
        self.hotkey.unregister()
        self.tray.close()
        self.windows.close_all()
        self.on_quit()


def _file_url(path: Path) -> str:
    return path.resolve().as_uri()


def _write_demo_config(server: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    server.write_config(path)

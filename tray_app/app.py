"""Composition root: the QApplication on a qasync loop, the services, flows and views wired.

No logic of its own beyond wiring: workflows live in tray_app.core.flows (Qt-free, talking to the
user through core.ports), widgets and adapters in tray_app.qt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from tray_app import APP_DISPLAY_NAME, APP_NAME, __version__
from tray_app.applog import log_dir, setup_logging
from tray_app.core.api import ClearMLClient
from tray_app.core.config import ConfigError, ConfigNotFound, load_server_config
from tray_app.core.flows.connect import ConnectFlow
from tray_app.core.flows.idle import IdleFlow
from tray_app.core.flows.presets import PresetsFlow
from tray_app.core.flows.tunnel_watch import TunnelWatch
from tray_app.core.idle_monitor import IdleMonitor
from tray_app.core.menu_model import TrayView
from tray_app.core.models import LogLine, Snapshot
from tray_app.core.ports import Question
from tray_app.core.presets import Preset
from tray_app.core.refresh import PollStatus, RefreshSchedule, TrayState
from tray_app.core.secrets import SecretStore
from tray_app.core.session_ref import resolve
from tray_app.core.sessions import SessionService
from tray_app.core.settings import Settings, load_settings
from tray_app.core.tunnels import TunnelState

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
        from tray_app.qt.icons import notification_icon
        from tray_app.qt.launcher import SessionLauncher
        from tray_app.qt.notifier import Notifier
        from tray_app.qt.poller import Poller
        from tray_app.qt.questions import QtAsk
        from tray_app.qt.tray import Tray

        self.args = args
        self.settings = Settings()
        self.config_override: str | None = getattr(args, "config_file", None)
        self.config_error: ConfigError | None = None
        self.client: ClearMLClient | None = None
        self.demo: Any = None  # tray_app.demo.DemoServer when --demo
        self.pending_connect: str | None = None
        self._windows: list[Any] = []  # keep non-modal windows alive while shown
        self._log_windows: dict[str, Any] = {}
        self.onboarding: Any = None
        self.new_session_dialog: Any = None
        self.hotkey: Any = None  # the HotkeyBackend, chosen at start
        self.quick_pick: Any = None
        self._last_state = TrayState.CONNECTING
        self._quit_task: asyncio.Future[None] | None = None
        self.hotkey_status = ""  # why the global hotkey is unavailable ("" = fine)
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
        )
        self.launcher = SessionLauncher(
            lambda: self.settings, self.notifier, env=self._child_env, show_log=self._follow_log
        )
        self.connect_flow = ConnectFlow(
            self.launcher,
            ask=self.ask,
            notify=self.notifier,
            desktop=self.desktop,
            runner=QtRunner(),
            spawn=spawn,
            settings=lambda: self.settings,
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
        self.tray = Tray(self.view, self.controller.handle, self._menu_opening, ask=self.ask)

        self.launcher.on_ready = self.connect_flow.tunnel_up
        self.launcher.open_editor = self.connect_flow.open_editor
        self.launcher.copy_ssh = self.connect_flow.copy_ssh
        self.launcher.tunnels_changed.connect(self.tray.update_state)
        self.launcher.tunnels_changed.connect(self.connect_flow.tunnels_changed)
        self.launcher.tunnels_changed.connect(self.poller.refresh_now)
        self.launcher.prompt_needed.connect(lambda k, q: spawn(self._ask_child(k, q)))
        self.launcher.output.connect(self._child_output)
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
        self.controller.follow_log_requested.connect(self._follow_log)
        self.controller.refresh_requested.connect(self.poller.refresh_now)
        self.controller.log_loaded.connect(self._show_log)
        self.controller.quit_requested.connect(lambda: spawn(self._ask_quit()))
        self.controller.about_requested.connect(self._about)
        self.controller.settings_requested.connect(self._settings)
        self.controller.onboarding_requested.connect(self._onboarding)
        self.controller.demo_requested.connect(lambda: spawn(self.use_demo()))
        self.controller.log_folder_requested.connect(
            lambda: self.desktop.open_url(_file_url(log_dir()))
        )
        self.controller.new_session_requested.connect(lambda: spawn(self._new_session()))
        self.controller.import_presets_requested.connect(lambda: self._pick_file(save=False))
        self.controller.export_presets_requested.connect(lambda: self._pick_file(save=True))

    # --- state for the menu ---------------------------------------------------------------
    def view(self) -> TrayView:
        return TrayView(
            status=self.poller.status,
            snapshot=self.poller.snapshot,
            tunnels=self.launcher.tunnels(),
            show_all_users=self.settings.show_all_users,
            idle_notes=self.idle.notes(),
        )

    def _menu_opening(self) -> None:
        self.poller.refresh_if_stale(5.0)

    def _busy(self) -> bool:
        launcher = getattr(self, "launcher", None)
        busy = (TunnelState.LAUNCHING, TunnelState.CONNECTING, TunnelState.RETRYING)
        return launcher is not None and any(t.state in busy for t in launcher.tunnels().values())

    # --- startup and configuration --------------------------------------------------------
    async def start(self) -> None:
        loaded = await asyncio.to_thread(load_settings)
        self.settings, self.presets.presets = loaded.settings, loaded.presets
        self.poller.schedule.interval = float(self.settings.poll_interval_s)
        self.tray.show()
        for warning in loaded.warnings:
            log.warning("settings: %s", warning)
            self.tray.notify("Settings", warning, True)
        # What a run that did not quit cleanly left: children, Host blocks, login markers.
        await asyncio.to_thread(self.launcher.registry.reap_stale)
        self.controller.spawn(self.connect_flow.remove_hosts(None))
        if self.args.demo:
            await self.use_demo()
        else:
            await self.apply_config()
        self.poller.start()
        self.tunnel_watch.start()
        self.apply_hotkey()
        if self.args.show:
            self.tray.popup()
        # Everything built so far lives as long as the process. Frozen, the collector stops
        # walking it on every full collection (the longest stalls of a 1000-session refresh).
        gc.freeze()

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
        self.idle.monitor = IdleMonitor(service, lambda: self.settings.idle)
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

    async def apply_settings(self, new: Settings) -> None:
        """Save and apply accepted settings without a restart."""
        from tray_app.core.settings import SettingsError, save_settings
        from tray_app.platform.autostart import choose_autostart

        old, self.settings = self.settings, new
        try:
            await asyncio.to_thread(save_settings, new, self.presets.presets)
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
                self.tray.notify("Start on login", f"Could not change it: {exc.strerror}", True)
        self.poller.schedule.interval = float(new.poll_interval_s)
        if new.hotkey != old.hotkey:
            self.apply_hotkey()
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

    def _child_env(self) -> dict[str, str]:
        """clearml-session must talk to the server the tray shows: same config file."""
        env = dict(os.environ)
        path = self._config_file()
        if path:
            env["CLEARML_CONFIG_FILE"] = str(Path(path).expanduser())
        return env

    # --- launching ------------------------------------------------------------------------
    async def launch(self, preset: Preset) -> str | None:
        from tray_app.qt.launcher import LaunchProblem

        password = None
        if preset.password_policy == "fixed":
            try:
                name = preset.password_keyring_key()
                password = await asyncio.to_thread(SecretStore().get, name)
            except Exception as exc:  # a locked or absent keyring: say which
                log.warning("fixed password of %r not read: %s", preset.name, exc)
        try:
            key = self.launcher.create(preset, password)
        except LaunchProblem as exc:
            self.notifier.notify("error", "Session not started", str(exc), critical=True)
            return None
        self.connect_flow.check_editor_soon()
        log.info("launching a session from preset %r (%s)", preset.name, key)
        self.notifier.notify("info", "Starting a session", f"Preset “{preset.name}”: see the menu.")
        return key

    async def _ask_child(self, key: str, question: str) -> None:
        """A question of clearml-session's that we do not answer for the user."""
        answer = await self.ask.ask_text("clearml-session asks", question)
        if answer is None:
            self.launcher.disconnect(key)
        else:
            self.launcher.answer(key, answer)

    # --- windows (all non-modal) ----------------------------------------------------------
    def _keep(self, window: Any) -> None:
        self._windows.append(window)
        window.finished.connect(lambda *_: self._windows.remove(window))
        window.show()
        window.raise_()
        window.activateWindow()

    def _show_log(self, _session_id: str, title: str, lines: list[LogLine]) -> None:
        from tray_app.qt.console_log import format_lines
        from tray_app.qt.dialogs.log_window import LogWindow

        self._keep(LogWindow(title, format_lines(lines)))

    def _about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        store = SecretStore()
        secrets = store.warning or f"Secrets are kept in the system keyring ({store.backend_name})."
        box = QMessageBox(
            QMessageBox.Icon.Information,
            f"About {APP_DISPLAY_NAME}",
            f"<b>{APP_DISPLAY_NAME}</b> {__version__}<br>"
            "Your ClearML interactive sessions in the system tray.<br><br>"
            f"Log folder: {log_dir()}<br>{secrets}",
        )
        self._keep(box)

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

    def _onboarding(self) -> None:
        from tray_app.qt.dialogs.onboarding import OnboardingDialog

        spawn = self.controller.spawn
        if self.onboarding is None:
            dialog = OnboardingDialog(self.config_error)
            dialog.config_file_chosen.connect(lambda path: spawn(self.use_config_file(path)))
            dialog.demo_requested.connect(lambda: spawn(self.use_demo()))
            dialog.retry_requested.connect(lambda: spawn(self.apply_config()))
            dialog.finished.connect(lambda *_: setattr(self, "onboarding", None))
            self.onboarding = dialog
        self.onboarding.set_error(self.config_error)
        self.onboarding.show()
        self.onboarding.raise_()

    async def _new_session(self) -> None:
        from tray_app.qt.dialogs.new_session import NewSessionDialog

        service = self.controller.service
        loader = service.queues if service is not None else None
        dialog = NewSessionDialog(await self.presets.for_dialog(), load_queues=loader)
        dialog.launch_requested.connect(lambda p: self.controller.spawn(self.launch(p)))
        dialog.save_requested.connect(lambda p: self.controller.spawn(self.presets.save(p)))
        self._keep(dialog)
        self.new_session_dialog = dialog

    def _pick_file(self, save: bool) -> None:
        from PySide6.QtWidgets import QFileDialog

        title = "Export presets" if save else "Import presets"
        start = Path.home() / "clearml-presets.json" if save else Path.home()
        dialog = QFileDialog(None, title, str(start), "Presets (*.json)")
        if save:
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            dialog.setDefaultSuffix("json")
        else:
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        flow = self.presets
        dialog.fileSelected.connect(
            lambda path: self.controller.spawn(
                flow.export_to(Path(path)) if save else flow.import_from(Path(path))
            )
        )
        self._keep(dialog)

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

    # --- state changes --------------------------------------------------------------------
    def _status_changed(self, status: PollStatus) -> None:
        previous, self._last_state = self._last_state, status.state
        self.tray.update_state()
        if status.state == TrayState.OFFLINE and previous in (TrayState.OK, TrayState.BUSY):
            self.notifier.notify("server_unreachable", "ClearML server unreachable", status.message)

    def _snapshot_changed(self, snapshot: Snapshot | None) -> None:
        self.tray.update_state()
        self.idle.snapshot_changed(snapshot)
        if snapshot is not None and self.pending_connect:
            ref, self.pending_connect = self.pending_connect, None
            reply = self.connect_request(ref)
            if not reply.ok:
                self.notifier.notify("error", "Cannot connect", reply.message, critical=True)

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

    # --- other instances ------------------------------------------------------------------
    def on_instance_message(self, message: dict[str, Any]) -> Reply:
        from tray_app.qt.single_instance import Reply

        cmd = message.get("cmd")
        log.info("request from another instance: %s", cmd)
        if cmd == "connect" and isinstance(message.get("session_id"), str):
            return self.connect_request(message["session_id"])
        self.tray.popup()
        return Reply(True)

    def connect_request(self, ref: str) -> Reply:
        """`clearml-tray connect <id or short id>`, answered in words."""
        from tray_app.qt.single_instance import Reply

        snapshot = self.poller.snapshot
        if snapshot is None:
            self.pending_connect = ref
            return Reply(True, "The tray is still loading sessions; it connects once they are in.")
        found = resolve(snapshot, ref)
        if found.session_id is None:
            return Reply(False, found.error)
        self.connect_flow.connect(found.session_id, found.label)
        return Reply(True, f"Connecting to {found.label or found.session_id[:8]}.")

    # --- shutdown -------------------------------------------------------------------------
    def quit_on_signal(self, signum: int) -> None:
        """Logout, `kill` or Ctrl-C: quit without asking, remote sessions left running."""
        log.info("signal %d: quitting", signum)
        if self._quit_task is None:
            self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote=False))

    async def _ask_quit(self) -> None:
        live = [t for t in self.launcher.tunnels().values() if t.state not in _ENDED]
        shutdown_remote = False
        if live:
            answer = await self.ask.ask(
                Question(
                    "Quit ClearML Session Tray",
                    f"{len(live)} session tunnel(s) are open. Their remote sessions can keep "
                    "running (reconnect later from the menu) or be shut down now.",
                    ("Keep sessions running", "Shut them down", "Cancel"),
                    destructive=1,
                )
            )
            if answer not in (0, 1):
                return
            shutdown_remote = answer == 1
        if self._quit_task is None:
            self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote))

    async def quit(self, shutdown_remote: bool = False) -> None:
        log.info("quitting (%s remote sessions)", "shutting down" if shutdown_remote else "keeping")
        self.ask.cancel_all()
        await self.poller.stop()
        await self.tunnel_watch.stop()
        self.launcher.stop_all(shutdown_remote=shutdown_remote)
        await self.connect_flow.close()
        await self.controller.wait_idle()
        if self.client is not None:
            await self.client.aclose()
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)
        if self.hotkey is not None:
            self.hotkey.unregister()
        self.tray.icon.hide()
        self.on_quit()


_ENDED = (TunnelState.CLOSED, TunnelState.FAILED)


def _file_url(path: Path) -> str:
    return path.resolve().as_uri()


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

    reply = forward_to_running(_instance_message(args))
    if reply is not None:
        if not reply.ok:
            print(f"clearml-tray: {reply.message}", file=sys.stderr)
            return 1
        print(reply.message or "clearml-tray is already running: request forwarded to it.")
        return 0

    log_file = setup_logging(debug=bool(getattr(args, "debug", False)))
    log.info("%s %s starting (log %s)", APP_DISPLAY_NAME, __version__, log_file)

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    instance = SingleInstance()
    instance.listen()
    app = TrayApplication(args)
    instance.handler = app.on_instance_message
    app.on_quit = qapp.quit
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

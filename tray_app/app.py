"""Composition root: the services, flows and views of one running tray, built and connected.

Construct, then connect: every collaborator goes into a constructor, nothing is assigned into
another object afterwards. The workflows live in the Qt-free core (`core/tunnels`,
`core/settings`, `core/idle`, `core/server`), the widgets and adapters in `qt/`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import Callable

from tray_app.applog import log_dir
from tray_app.core.about import describe
from tray_app.core.app_dirs import data_dir
from tray_app.core.file_watch import FileWatch
from tray_app.core.idle.flow import IdleFlow
from tray_app.core.instance_requests import InstanceRequests
from tray_app.core.instance_socket import socket_path
from tray_app.core.quit import ask_quit
from tray_app.core.server.connection import ServerConnection
from tray_app.core.server.models import Snapshot
from tray_app.core.server.refresh import RefreshSchedule
from tray_app.core.server.session_ref import connectable
from tray_app.core.server.source import ServerSource, StatusNotices
from tray_app.core.settings.apply import Appliers, SettingsFlow
from tray_app.core.settings.presets import Preset
from tray_app.core.settings.presets_flow import PresetsFlow
from tray_app.core.settings.secrets import SecretStore
from tray_app.core.settings.settings import Settings
from tray_app.core.settings.store import SettingsStore
from tray_app.core.tasks import Tasks
from tray_app.core.tunnels import (
    CancelFlow,
    ChildEnvironment,
    ConnectFlow,
    EditorOpener,
    LaunchFlow,
    PasswordAhead,
    PrewarmFlow,
    SessionHosts,
    SessionPasswords,
    TunnelRegistry,
    TunnelWatch,
)
from tray_app.core.view.actions import MenuAction
from tray_app.core.view.menu import TrayView, coming_up, visible_tunnels
from tray_app.platform.presence import choose_presence

log = logging.getLogger(__name__)


class TrayApplication:
    """Owns the long-lived objects of one running tray."""

    def __init__(
        self, args: argparse.Namespace, on_quit: Callable[[], None] = lambda: None
    ) -> None:
        from tray_app.qt.controller import Controller
        from tray_app.qt.desktop import QtDesktop, QtRunner
        from tray_app.qt.dialog_flows import DialogFlows
        from tray_app.qt.hotkey.control import GlobalHotkey
        from tray_app.qt.icons import notification_icon
        from tray_app.qt.notifier import Notifier
        from tray_app.qt.poller import Poller
        from tray_app.qt.questions import QtAsk
        from tray_app.qt.session_process import QtChildren
        from tray_app.qt.tray import Tray
        from tray_app.qt.tunnel_signals import TunnelSignals
        from tray_app.qt.windows import Windows

        self.args = args
        self.on_quit = on_quit  # run_app: end Qt's event loop
        self._quit_task: asyncio.Future[None] | None = None

        # --- the app's own state --------------------------------------------------------------
        self.tasks = Tasks()
        spawn = self.tasks.spawn
        self.store = SettingsStore()
        self.secrets = SecretStore()  # the one store: the keyring is chosen on first use
        self.session_passwords = SessionPasswords()  # in memory only, one askpass answer each
        self.poller = Poller(
            RefreshSchedule(),
            all_users=lambda: self.settings.show_all_users,
            busy=lambda: coming_up(self.tunnels.tunnels()),
            presence=choose_presence(),
        )
        self.connection = ServerConnection(on_trouble=self.poller.request_failed)
        self.windows = Windows()
        self.ask = QtAsk()
        self.desktop = QtDesktop()
        runner = QtRunner()
        self.notifier = Notifier(
            lambda: self.settings.notifications,
            lambda title, text, error: self.tray.notify(title, text, error),
            icon=notification_icon(),
            icon_for=notification_icon,
        )
        notify, ask, desktop = self.notifier, self.ask, self.desktop

        # --- tunnels: one clearml-session child from argv to editor ---------------------------
        self.hosts = SessionHosts(
            ask=ask,
            notify=notify,
            desktop=desktop,
            runner=runner,
            spawn=spawn,
            passwords=self.session_passwords,
            socket=socket_path,
        )
        self.editor = EditorOpener(
            self.hosts,
            ask=ask,
            notify=notify,
            desktop=desktop,
            runner=runner,
            spawn=spawn,
            settings=lambda: self.settings,
        )
        self.source = ServerSource(
            self.connection,
            notify=notify,
            data_dir=data_dir(),
            profile_config=lambda: self.settings.active().config_file,
            override=getattr(args, "config_file", None),
            use=lambda service, server: self.poller.set_source(service.snapshot, server),
            unusable=self.poller.set_unconfigured,
            setup=lambda show: (
                self.dialogs.onboarding() if show else self.windows.close_onboarding()
            ),
            keys=lambda: self.dialogs.credentials(),
            ask=ask,
            spawn=spawn,
            tunnels=lambda: self.tunnels,
        )
        self.environment = ChildEnvironment(
            data_dir(),
            config_file=self.source.config_file,
            configured=lambda: self.settings.clearml_session,
        )
        self.password_ahead = PasswordAhead(
            server=lambda: self.connection.service,
            passwords=self.session_passwords,
            usable=lambda: self.environment.hand_over_possible,
            socket=socket_path,
        )
        self.tunnel_signals = TunnelSignals()
        self.children = QtChildren()
        self.tunnels = TunnelRegistry(
            start_child=self.children,
            environment=self.environment,
            events=self.tunnel_signals,
            notify=notify,
            ask=ask,
            desktop=desktop,
            spawn=spawn,
            settings=lambda: self.settings,
            hosts=self.hosts,
            editor=self.editor,
            ahead=self.password_ahead,
            session=self.poller.session,
            cancel=lambda key: self.cancel_flow.cancel(key),
            stop_session=lambda sid: self.controller.handle(MenuAction.STOP, sid),
        )
        self.cancel_flow = CancelFlow(
            self.tunnels,
            ask=ask,
            notify=notify,
            spawn=spawn,
            server=lambda: self.connection.service,
            refresh=self.poller.refresh_now,
        )
        self.connect_flow = ConnectFlow(
            self.tunnels,
            hosts=self.hosts,
            editor=self.editor,
            notify=notify,
            spawn=spawn,
            ahead=self.password_ahead,
        )
        self.tunnel_watch = TunnelWatch(self.tunnels, notify)
        self.prewarm = PrewarmFlow(
            self.tunnels,
            attach=lambda sid, name: self.tunnels.attach(sid, name, prewarm=True),
            sessions=lambda: [(s.id, s.name) for s in connectable(self.poller.snapshot)],
            settings=lambda: self.settings,
        )

        # --- the rest of the workflows ----------------------------------------------------------
        self.controller = Controller(
            lambda: self.poller.snapshot,
            connection=self.connection,
            tunnels=self.tunnels,
            connect=self.connect_flow,
            desktop=desktop,
            tasks=self.tasks,
        )
        self.idle = IdleFlow(
            notify=notify,
            spawn=spawn,
            policy=lambda: self.settings.idle,
            act=self.controller.handle,
            refresh=self.poller.refresh_now,
            server=lambda: self.connection.service,
        )
        self.presets = PresetsFlow(notify=notify, store=self.store)
        self.launch_flow = LaunchFlow(
            self.tunnels,
            notify=notify,
            secrets=self.secrets,
            ask=ask,
            foreign=self.presets.from_workspace,
            remember_queue=self.presets.remember_queue,
            include=self.hosts.include_up_front,
            wants_editor=lambda: self.settings.open_editor_when_ready,
            spawn=spawn,
            server=lambda: self.connection.service,
        )
        self.hotkey = GlobalHotkey(
            lambda: self.poller.snapshot,
            lambda sid: self.controller.handle(MenuAction.CONNECT, sid),
            self.prewarm.intent,
        )
        self.settings_flow = SettingsFlow(
            self.store,
            notify=notify,
            appliers=Appliers(
                poll_interval=self.poller.set_interval,
                tunnels=self.prewarm.apply,
                hotkey=self.hotkey.apply,
                server=self.source.profile_changed,
                refresh=self.poller.refresh_now,
            ),
        )
        self.dialogs = DialogFlows(
            self.windows,
            spawn=spawn,
            ask=ask,
            settings=lambda: self.settings,
            settings_flow=self.settings_flow,
            hotkey_status=lambda: self.hotkey.status,
            connection=self.connection,
            source=self.source,
            presets=self.presets,
            launch=self.launch,
            notify=notify,
            why_keys=lambda: self.poller.status.message,
        )
        self.status_notices = StatusNotices(notify, keys=self.dialogs.credentials)
        # The user's files, followed: an edit is in use within seconds, without a restart.
        self.files = FileWatch()
        self.files.watch("clearml.conf", self.source.watched_files, self.source.reload)
        self.files.watch("settings", lambda: [self.store.path], self.settings_flow.file_changed)
        self.files.watch("workspace", self.presets.workspace_file, self.presets.workspace_changed)
        # The menu opening: the user looks now. What it shows is checked at once (an answer under
        # a second old is current), the normal pace resumes, and the open menu follows.
        self.tray = Tray(
            self.view, self.controller.handle, lambda: self.poller.looked_at(1.0), ask=ask
        )
        self.requests = InstanceRequests(
            snapshot=lambda: self.poller.snapshot,
            status=lambda: self.poller.status,
            idle=self.idle.verdicts,
            connect=self.connect_flow.connect_ref,
            show=self.tray.popup,
            pending=args.session_id if args.command == "connect" else None,
            config_file=self.source.config_file,
            askpass=self.session_passwords.ask,
        )
        self._connect_signals()

    def _connect_signals(self) -> None:
        spawn, controller, windows = self.tasks.spawn, self.controller, self.windows
        self.tunnel_signals.tunnels_changed.connect(self.tray.update_state)
        self.tunnel_signals.tunnels_changed.connect(lambda: self.poller.refresh_if_stale(3.0))
        self.tunnel_signals.tunnels_changed.connect(
            lambda: windows.retitle_logs(self.tunnels.log_labels())
        )
        self.tunnel_signals.output_received.connect(windows.child_output)
        follow_log = lambda key: windows.follow_log(*self.tunnels.log_view(key))  # noqa: E731
        self.tunnel_signals.follow_log_requested.connect(follow_log)
        self.poller.status_changed.connect(lambda _status: self.tray.update_state())
        self.poller.status_changed.connect(self.status_notices.changed)
        self.poller.snapshot_changed.connect(self._snapshot_changed)
        controller.message.connect(self.notifier.message)
        controller.keep_alive_requested.connect(self.idle.keep_alive)
        controller.intent.connect(self.prewarm.intent)
        controller.follow_log_requested.connect(follow_log)
        controller.cancel_requested.connect(self.cancel_flow.cancel)
        controller.refresh_requested.connect(self.poller.refresh_now)
        # Refresh also reads clearml.conf again: a fix made a moment ago is not waited for.
        controller.refresh_requested.connect(lambda: spawn(self.source.reload()))
        controller.credentials_requested.connect(self.dialogs.credentials)
        controller.log_loaded.connect(
            lambda sid, t, lines: windows.console_log(
                t, lines, lambda: self.connection.console_log(sid), self.tunnels.launcher_log(sid)
            )
        )
        controller.quit_requested.connect(lambda: spawn(self._ask_quit()))
        controller.about_requested.connect(lambda: spawn(self._about()))
        controller.settings_requested.connect(self.dialogs.settings)
        controller.onboarding_requested.connect(self.dialogs.onboarding)
        controller.demo_requested.connect(lambda: spawn(self.source.use_demo()))
        controller.log_folder_requested.connect(
            lambda: self.desktop.open_url(log_dir().resolve().as_uri())
        )
        controller.new_session_requested.connect(lambda: spawn(self.dialogs.new_session()))
        controller.quick_pick_requested.connect(self.hotkey.open_pick)
        controller.launch_preset_requested.connect(
            lambda name: spawn(self.launch_flow.launch_named(name, self.presets.presets))
        )
        controller.import_presets_requested.connect(lambda: self.dialogs.pick_presets_file(False))
        controller.export_presets_requested.connect(lambda: self.dialogs.pick_presets_file(True))

    # --- state for the menu ---------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.store.settings

    def view(self) -> TrayView:
        return TrayView(
            status=self.poller.status,
            snapshot=self.poller.snapshot,
            tunnels=visible_tunnels(self.tunnels.tunnels()),
            show_all_users=self.settings.show_all_users,
            idle_notes=self.idle.notes(),
            idle_marks=self.idle.marks(),
            presets=tuple(p.name for p in self.presets.presets),
        )

    # --- startup and configuration --------------------------------------------------------
    async def start(self) -> None:
        loaded = await self.store.load()
        self.poller.set_interval(float(self.settings.poll_interval_s))
        self.tray.show()
        for warning in loaded.warnings:
            log.warning("settings: %s", warning)
            self.notifier.notify("error", "Settings", warning, critical=True)
        await self.tunnels.start()  # what a run that did not quit cleanly left is ended
        self.secrets.remove_stale_session_passwords_later()  # an earlier version's, if any
        await (self.source.use_demo() if self.args.demo else self.source.apply())
        self.poller.start()
        await self.files.start()
        self.tunnel_watch.start()
        self.prewarm.start()
        self.hotkey.apply(self.settings.hotkey)
        if self.args.show:
            self.tray.popup()
        # Everything built so far lives as long as the process. Frozen, the collector stops
        # walking it on every full collection (the longest stalls of a 1000-session refresh).
        gc.freeze()

    # --- launching ------------------------------------------------------------------------
    async def launch(self, preset: Preset) -> str | None:
        return await self.launch_flow.launch(preset)

    # --- windows (all non-modal) ----------------------------------------------------------
    async def _about(self) -> None:
        self.windows.about(await describe(self.secrets, self.environment, str(log_dir())))

    # --- state changes --------------------------------------------------------------------
    def _snapshot_changed(self, snapshot: Snapshot | None) -> None:
        self.tray.update_state()
        self.idle.snapshot_changed(snapshot)
        self.prewarm.apply()
        reply = self.requests.snapshot_arrived()
        if reply is not None and not reply.ok:
            self.notifier.notify("error", "Cannot connect", reply.message, critical=True)

    # --- shutdown -------------------------------------------------------------------------
    def quit_on_signal(self, signum: int) -> None:
        """Logout, `kill` or Ctrl-C: quit without asking, remote sessions left running."""
        log.info("signal %d: quitting", signum)
        if self._quit_task is None:
            self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote=False))

    async def _ask_quit(self) -> None:
        shutdown_remote = await ask_quit(self.ask, self.tunnels.tunnels().values())
        if shutdown_remote is not None and self._quit_task is None:
            self._quit_task = asyncio.ensure_future(self.quit(shutdown_remote))

    async def quit(self, shutdown_remote: bool = False) -> None:
        log.info("quitting (%s remote sessions)", "shutting down" if shutdown_remote else "keeping")
        self.ask.cancel_all()
        await self.poller.stop()
        await self.files.stop()
        await self.tunnel_watch.stop()
        await self.prewarm.stop()
        self.tunnels.stop_all(shutdown_remote=shutdown_remote)
        await self.connect_flow.close()
        await self.tasks.wait_idle(10.0)  # then what still runs is cancelled: no hang
        await self.source.close()
        self.hotkey.unregister()
        self.tray.close()
        self.windows.close_all()
        self.on_quit()

"""Which server the tray shows, and what the user hears when its configuration cannot be used.

The server comes from `--config-file`, the built-in demo server, or the active profile of the
settings (its clearml.conf, else the SDK's own search). A configuration that is missing opens
the setup window (and says so once per run); one that is broken says what is wrong, with its
file and line; one without keys, or with keys the server refuses, offers the credentials dialog.
The views learn the outcome through the callbacks passed in.

The files are followed (core/file_watch.py): `reload` takes what they say now. A new server
gets a new client and a fresh session list, and the tunnels still open to the old one are kept
or ended as the user says; new keys for the same server get a new client; an edit that cannot
be used keeps the last configuration that worked, and says why.

Tested in tests/unit/server/test_source.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tray_app.core.ports import Ask, Notify, Question, Spawn
from tray_app.core.server.config import ServerConfig, candidate_files
from tray_app.core.server.config_files import config_files
from tray_app.core.server.connection import ServerConnection
from tray_app.core.server.errors import ConfigError, ConfigNotFound, CredentialsMissing
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.server.sessions import SessionService
from tray_app.core.wording import plural

if TYPE_CHECKING:
    from tray_app.demo.server import DemoServer

log = logging.getLogger(__name__)

DEMO_CONFIG = "demo-clearml.conf"
TAG = "clearml-config"  # every notice about the configuration replaces the one before


class Tunnel(Protocol):
    @property
    def live(self) -> bool: ...

    @property
    def prewarmed(self) -> bool: ...


class OpenTunnels(Protocol):
    """The tunnel registry, as a change of server sees it."""

    def tunnels(self) -> Mapping[str, Tunnel]: ...

    def disconnect(self, key: str) -> None: ...


class ServerSource:
    def __init__(
        self,
        connection: ServerConnection,
        *,
        notify: Notify,
        data_dir: Path,
        profile_config: Callable[[], str | None],
        override: str | None,
        use: Callable[[SessionService, str], None],
        unusable: Callable[[str, bool], None],
        setup: Callable[[bool], None],
        keys: Callable[[], None] = lambda: None,
        ask: Ask | None = None,
        spawn: Spawn | None = None,
        tunnels: Callable[[], OpenTunnels | None] = lambda: None,
    ) -> None:
        self._connection = connection
        self._notify = notify
        self._data_dir = data_dir
        self._profile_config = profile_config  # the settings' clearml.conf ("" or None: none)
        self._override = override  # --config-file, or the demo's
        self._use = use  # (service, server address): the poller's new source
        self._unusable = unusable  # (why there is no server to show, keys would fix it)
        self._setup = setup  # True: open the setup window; False: close it
        self._keys = keys  # open the credentials dialog
        self._ask = ask
        self._spawn = spawn
        self._tunnels = tunnels
        self._told_unconfigured = False
        self.demo: DemoServer | None = None

    def config_file(self) -> str | None:
        """The clearml.conf the tray and its clearml-session children read."""
        return self._override or self._profile_config() or None

    def watched_files(self) -> list[Path]:
        """The files whose change `reload` follows: the configuration's, with its includes."""
        return config_files(self.config_file())

    def keys_file(self) -> Path:
        """Where keys entered in the tray go: the file the configuration came from, else the
        one `clearml-init` would write (the last candidate: ~/clearml.conf)."""
        config = self._connection.config
        if config is not None and config.source and not self.is_demo:
            return config.source[-1]
        candidates = candidate_files(self.config_file())
        existing = [c for c in candidates if c.is_file()]
        return existing[-1] if existing else candidates[-1]

    def in_use(self) -> str:
        """The server shown now, and where that comes from, in words (Settings shows it)."""
        config = self._connection.config
        if self.is_demo and self.demo is not None:
            return (
                f"the built-in demo server at {self.demo.url}, with sample sessions (it runs "
                f"while the tray runs; its clearml.conf is {self._data_dir / DEMO_CONFIG}). "
                "Choose a profile and press OK to leave it."
            )
        if config is None:
            return "no ClearML server yet."
        files = ", ".join(str(p) for p in config.source) or "the CLEARML_* environment"
        how = " (--config-file)" if self._override else ""
        return f"{config.api_server}, from {files}{how}."

    @property
    def is_demo(self) -> bool:
        return self.demo is not None and self._override == str(self._data_dir / DEMO_CONFIG)

    async def apply(self) -> None:
        """(Re)read the configuration and show its server."""
        error = await self._connection.use(self.config_file())
        if error is not None:
            self._refused(error)
            return
        self._setup(False)
        service, config = self._connection.service, self._connection.config
        assert service is not None and config is not None
        self._use(service, config.api_server)

    def _refused(self, error: ConfigError) -> None:
        keys_needed = isinstance(error, CredentialsMissing)
        self._unusable(str(error), keys_needed)
        if not isinstance(error, ConfigNotFound):
            buttons = (("Enter ClearML keys…", self._keys),) if keys_needed else ()
            self._notify.notify(
                "error",
                "ClearML configuration problem",
                str(error),
                buttons,
                critical=True,
                tag=TAG,
            )
            return
        # Once per run, through the desktop's notification service: the setup window
        # opens next to it and says the rest.
        if not self._told_unconfigured:
            self._told_unconfigured = True
            self._notify.notify(
                "info",
                "ClearML is not configured",
                "Connect the tray to a ClearML server to see and start sessions.",
                tag=TAG,
            )
        self._setup(True)

    async def reload(self) -> None:
        """The configuration's files changed (or the user asked to try again): use what they
        say now, unless it cannot be used; then the last that worked stays, and why is said."""
        current = self._connection.config
        try:
            config = await self._connection.load(self.config_file())
        except ConfigError as error:
            if current is None:
                self._refused(error)
                return
            log.warning("the changed configuration is not used: %s", error)
            self._notify.notify(
                "error",
                "clearml.conf change not used",
                f"{error}\nThe tray goes on with the configuration that worked "
                f"({current.api_server}) until this is fixed.",
                critical=True,
                tag=TAG,
            )
            return
        if current is not None and _same(current, config):
            return  # a comment, the sdk section: nothing the tray uses
        moved = current is not None and current.api_server != config.api_server
        await self._connection.adopt(config)
        service = self._connection.service
        assert service is not None
        self._setup(False)
        self._use(service, config.api_server)
        if current is None:  # it could not be used before: the server did not change
            self._notify.notify(
                "info",
                "ClearML configuration in use",
                f"clearml.conf can be used now: showing {config.api_server}.",
                tag=TAG,
            )
        elif moved:
            self._notify.notify(
                "info", "ClearML server changed", f"Now showing {config.api_server}.", tag=TAG
            )
        else:
            self._notify.notify(
                "info",
                "ClearML configuration reloaded",
                f"New keys for {config.api_server} are in use.",
                tag=TAG,
            )
        if moved and current is not None and self._spawn is not None:
            self._spawn(self._old_tunnels(current.api_server, config.api_server))

    async def _old_tunnels(self, old: str, new: str) -> None:
        """Tunnels to sessions of the server left behind: the user keeps or ends them (their
        clearml-session children hold their own connection to it)."""
        registry = self._tunnels()
        if registry is None or self._ask is None:
            return
        live = [k for k, t in registry.tunnels().items() if t.live]
        for key in [k for k in live if registry.tunnels()[k].prewarmed]:
            registry.disconnect(key)  # opened ahead for the old server's sessions: not wanted
        shown = [k for k in live if not registry.tunnels()[k].prewarmed]
        if not shown:
            return
        count = plural(len(shown), "tunnel")
        answer = await self._ask.ask(
            Question(
                "ClearML server changed",
                f"clearml.conf now names {new}. {count} to sessions on {old} "
                f"{'is' if len(shown) == 1 else 'are'} still open: keep them until you "
                "disconnect them, or end them now? The sessions themselves keep running.",
                ("Keep them", "End them"),
            )
        )
        if answer == 1:
            for key in shown:
                registry.disconnect(key)

    async def ensure(self, ask: Ask) -> SessionService | None:
        """The server in use; without one, the user is asked how to get one (New session…:
        sessions run on a server's machines, a dialog without one could launch nothing)."""
        service = self._connection.service
        if service is not None:
            return service
        answer = await ask.ask(
            Question(
                "A ClearML server is needed first",
                "New sessions run on the machines of a ClearML server. Connect the tray to "
                "your server first, or try the built-in demo server.",
                ("Set up ClearML…", "Try the demo server", "Cancel"),
            )
        )
        if answer == 0:
            self._setup(True)
        elif answer == 1:
            await self.use_demo()
        return None

    async def profile_changed(self) -> None:
        """The settings name another clearml.conf or profile: it replaces a --config-file."""
        self._override = None
        await self.apply()

    async def use_demo(self) -> None:
        """The built-in demo server, with sample sessions, started once per run."""
        path = self._data_dir / DEMO_CONFIG
        if self.demo is None:
            self.demo = await asyncio.to_thread(_start_demo, path)
            log.info("demo server running at %s (config %s)", self.demo.url, path)
            # The same tag as "not configured": the stale notice goes, this one takes its place.
            self._notify.notify(
                "info",
                "Demo server",
                f"Running at {self.demo.url} with sample sessions.",
                tag=TAG,
            )
        self._override = str(path)
        await self.apply()

    async def close(self) -> None:
        await self._connection.close()
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)


def _same(a: ServerConfig, b: ServerConfig) -> bool:
    """The same server with the same keys: the files that said so do not matter."""
    return dataclasses.replace(a, source=()) == dataclasses.replace(b, source=())


def _start_demo(config: Path) -> DemoServer:
    from tray_app.demo import DemoServer, seeded_state

    server = DemoServer(seeded_state(sessions=6), port=0, agent_tick=1.0)
    server.start()
    config.parent.mkdir(parents=True, exist_ok=True)
    server.write_config(config)
    return server


class StatusNotices:
    """What the poll status is worth a notification for: the server going away (a kind the
    user may switch on), and keys the server refuses (with the button that fixes it)."""

    def __init__(self, notify: Notify, *, keys: Callable[[], None]) -> None:
        self._notify = notify
        self._keys = keys
        self._last = TrayState.CONNECTING

    def changed(self, status: PollStatus) -> None:
        previous, self._last = self._last, status.state
        if status.state == TrayState.OFFLINE and previous in (TrayState.OK, TrayState.BUSY):
            self._notify.notify("server_unreachable", "ClearML server unreachable", status.message)
        if status.state == TrayState.AUTH and previous != TrayState.AUTH:
            self._notify.notify(
                "error",
                "ClearML refused the keys",
                status.message,
                (("Enter ClearML keys…", self._keys),),
                critical=True,
                tag=TAG,
            )

"""Which server the tray shows, and what the user hears when its configuration cannot be used.

The server comes from `--config-file`, the built-in demo server, or the active profile of the
settings (its clearml.conf, else the SDK's own search). A configuration that is missing opens
the setup window (and says so once per run); one that is broken says what is wrong, with its
file and line. The views learn the outcome through the callbacks passed in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tray_app.core.ports import Ask, Notify, Question
from tray_app.core.server.connection import ServerConnection
from tray_app.core.server.errors import ConfigNotFound
from tray_app.core.server.sessions import SessionService

if TYPE_CHECKING:
    from tray_app.demo.server import DemoServer

log = logging.getLogger(__name__)

DEMO_CONFIG = "demo-clearml.conf"


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
        unusable: Callable[[str], None],
        setup: Callable[[bool], None],
    ) -> None:
        self._connection = connection
        self._notify = notify
        self._data_dir = data_dir
        self._profile_config = profile_config  # the settings' clearml.conf ("" or None: none)
        self._override = override  # --config-file, or the demo's
        self._use = use  # (service, server address): the poller's new source
        self._unusable = unusable  # why there is no server to show
        self._setup = setup  # True: open the setup window; False: close it
        self._told_unconfigured = False
        self.demo: DemoServer | None = None

    def config_file(self) -> str | None:
        """The clearml.conf the tray and its clearml-session children read."""
        return self._override or self._profile_config() or None

    async def apply(self) -> None:
        """(Re)read the configuration and show its server."""
        error = await self._connection.use(self.config_file())
        if error is not None:
            self._unusable(str(error))
            if not isinstance(error, ConfigNotFound):
                self._notify.notify(
                    "error", "ClearML configuration problem", str(error), critical=True
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
                )
            self._setup(True)
            return
        self._setup(False)
        service, config = self._connection.service, self._connection.config
        assert service is not None and config is not None
        self._use(service, config.api_server)

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
            self._notify.notify(
                "info", "Demo server", f"Running at {self.demo.url} with sample sessions."
            )
        self._override = str(path)
        await self.apply()

    async def close(self) -> None:
        await self._connection.close()
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)


def _start_demo(config: Path) -> DemoServer:
    from tray_app.demo import DemoServer, seeded_state

    server = DemoServer(seeded_state(sessions=6), port=0, agent_tick=1.0)
    server.start()
    config.parent.mkdir(parents=True, exist_ok=True)
    server.write_config(config)
    return server

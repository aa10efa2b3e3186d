"""The server in use: clearml.conf → client → the one `SessionService` everyone reads.

The poller, the controller, the idle checks and the password hand-over all talk to the server
of the moment through this object, so a new configuration (another file, the demo) reaches
them all at once; the old client is closed when a new one takes over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig, load_server_config
from tray_app.core.server.errors import ClearMLUnavailable, ConfigError
from tray_app.core.server.models import LogLine
from tray_app.core.server.sessions import SessionService

log = logging.getLogger(__name__)


class ServerConnection:
    def __init__(self, on_trouble: Callable[[str], None] | None = None) -> None:
        # Every client built here reports a failed attempt at once (the poller shows it).
        self._on_trouble = on_trouble
        self._service: SessionService | None = None
        self._config: ServerConfig | None = None
        self.error: ConfigError | None = None  # why the last configuration was refused

    @property
    def service(self) -> SessionService | None:
        return self._service

    @property
    def config(self) -> ServerConfig | None:
        return self._config

    async def use(self, config_file: str | None) -> ConfigError | None:
        """Read `config_file` (None: the SDK's own search) and talk to its server from now on.
        A configuration that cannot be used keeps the server in use and is returned."""
        try:
            config = await self.load(config_file)
        except ConfigError as exc:
            return exc
        await self.adopt(config)
        return None

    async def load(self, config_file: str | None) -> ServerConfig:
        """What `config_file` says now (off the event loop); raises ConfigError, and keeps it
        as `error`, when it cannot be used."""
        try:
            config = await asyncio.to_thread(load_server_config, config_file)
        except ConfigError as exc:
            self.error = exc
            log.warning("configuration: %s", exc)
            raise
        self.error = None
        return config

    async def adopt(self, config: ServerConfig) -> None:
        """Talk to `config`'s server with its keys from now on: a new client; the old one is
        closed (a request still on it ends with the client)."""
        self.error = None
        old, self._config = self._service, config
        client = ClearMLClient(config, on_trouble=self._on_trouble)
        self._service = SessionService(client, web_server=config.web_server)
        if old is not None:
            await old.client.aclose()
        files = ", ".join(str(path) for path in config.source) or "environment"
        log.info("using ClearML server %s (config: %s)", config.api_server, files)
        return None

    async def console_log(self, session_id: str) -> list[LogLine]:
        """A session's server log, from the server of the moment (a log window reloads it)."""
        service = self._service
        if service is None:
            raise ClearMLUnavailable("No ClearML server is configured.")
        return await service.console_log(session_id)

    async def close(self) -> None:
        if self._service is not None:
            await self._service.client.aclose()

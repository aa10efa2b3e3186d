"""Live tests against a real ClearML server: run only when one is configured.

Set CLEARML_API_HOST, CLEARML_API_ACCESS_KEY and CLEARML_API_SECRET_KEY (the stock server's
built-in test user works, see README "Live tests"); otherwise every test here is skipped with
that reason. The values are read from the environment captured before the suite-wide isolation
(tests/conftest.py) removes CLEARML_* variables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.live_env import LIVE_ENV

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig, derive_files_server, derive_web_server

REQUIRED = ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY")


def live_config() -> ServerConfig:
    missing = [name for name in REQUIRED if not LIVE_ENV.get(name)]
    if missing:
        pytest.skip("live server tests need " + ", ".join(missing) + " (see README: Live tests)")
    api = LIVE_ENV["CLEARML_API_HOST"].rstrip("/")
    web = LIVE_ENV.get("CLEARML_WEB_HOST") or derive_web_server(api)
    files = LIVE_ENV.get("CLEARML_FILES_HOST") or derive_files_server(api, web)
    return ServerConfig(
        api_server=api,
        web_server=web,
        files_server=files,
        access_key=LIVE_ENV["CLEARML_API_ACCESS_KEY"],
        secret_key=LIVE_ENV["CLEARML_API_SECRET_KEY"],
    )


@pytest.fixture
def live() -> ServerConfig:
    return live_config()


@pytest.fixture
async def live_client(live: ServerConfig) -> AsyncIterator[ClearMLClient]:
    async with ClearMLClient(live, timeout=30.0) as client:
        yield client

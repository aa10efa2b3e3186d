"""The hostile-server cases of test_api_hostile.py again, with the standard-library exchange
that `clearml-tray list` uses for a plain-http server (tray_app/core/server/http_plain.py): the same
limits, deadlines, retries and messages as with httpx."""

from __future__ import annotations

from typing import Any

import pytest
import test_api_hostile
from support.hostile_server import HostileServer
from test_api_hostile import *  # noqa: F403 (the cases themselves, collected here once more)
from test_api_hostile import Sleeps

from tray_app.core.server.api import ClearMLClient, default_headers
from tray_app.core.server.http_plain import PlainExchange

original_client_for = test_api_hostile.client_for


@pytest.fixture(autouse=True)
def plain_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    def client_for(
        srv: HostileServer, sleeps: Sleeps | None = None, **kwargs: Any
    ) -> ClearMLClient:
        timeout = kwargs.get("timeout", 10.0)
        kwargs["exchange"] = PlainExchange(timeout, default_headers())
        return original_client_for(srv, sleeps, **kwargs)

    monkeypatch.setattr(test_api_hostile, "client_for", client_for)

"""Shared fixtures of the desktop tests (a real X server, run under xvfb-run).

Every desktop test keeps its secrets where a user's desktop does: in a real GNOME Keyring on the
session bus (`real_keyring`), not in the plaintext file the unit tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.desktop import Window, require_desktop, trayer
from support.qasync_loop import loop_factories
from support.secret_service import SecretService


@pytest.fixture(autouse=True)
def _desktop_keyring(real_keyring: SecretService) -> SecretService:
    return real_keyring


@pytest.fixture
def panel() -> Iterator[Window]:
    """trayer, the real tray host, docked on the display; yields its panel window."""
    require_desktop()
    with trayer() as window:
        yield window


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Any:
    """Async tests here run on qasync's loop, as the app does."""
    return loop_factories(config, item)

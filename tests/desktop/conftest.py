"""Shared fixtures of the desktop tests (a real X server, run under xvfb-run)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.desktop import Window, require_desktop, trayer
from support.qasync_loop import loop_factories


@pytest.fixture
def panel() -> Iterator[Window]:
    """trayer, the real tray host, docked on the display; yields its panel window."""
    require_desktop()
    with trayer() as window:
        yield window


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Any:
    """Async tests here run on qasync's loop, as the app does."""
    return loop_factories(config, item)

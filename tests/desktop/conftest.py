"""Shared fixtures of the desktop tests (a real X server, run under xvfb-run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.desktop import Window, require_desktop, trayer


@pytest.fixture
def panel() -> Iterator[Window]:
    """trayer, the real tray host, docked on the display; yields its panel window."""
    require_desktop()
    with trayer() as window:
        yield window

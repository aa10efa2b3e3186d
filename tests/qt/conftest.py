"""pytest-qt: the real X display when there is one (CI runs under xvfb-run), else offscreen."""

from __future__ import annotations

import os
from typing import Any

from support.qasync_loop import loop_factories

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Any:
    """Async tests here run on qasync's loop, as the app does."""
    return loop_factories(config, item)

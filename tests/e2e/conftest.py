"""Fixtures of the end-to-end tests (the real clearml-session, ssh and the emulator)."""

from __future__ import annotations

from typing import Any

from support.qasync_loop import loop_factories


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Any:
    """Async tests here run on qasync's loop, as the app does."""
    return loop_factories(config, item)

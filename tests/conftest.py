"""Suite-wide isolation: no test ever sees the developer's real home, config, keyring or server.

Area-specific fixtures live in `tests/<area>/conftest.py`; shared ones are plugins in
`tests/support/` (registered below).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.live_env import LIVE_ENV  # captured now, before isolation removes CLEARML_*

# support.leaks: fails the run when a process a test started outlives it.
# support.secret_service: `real_keyring`, a real GNOME Keyring for desktop and e2e tests.
# support.modal_guard: fails a test in which a modal dialog runs inside an asyncio task.
pytest_plugins = [
    "pytester",
    "support.emulator",
    "support.leaks",
    "support.secret_service",
    "support.modal_guard",
]

# Environment variables that would let a test reach a real server or real user files.
_LEAKY_ENV_PREFIXES = ("CLEARML_", "TRAINS_")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh HOME and XDG tree per test; ClearML env overrides removed."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(_LEAKY_ENV_PREFIXES) and name not in _KEEP_ENV:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # The keyring backend of unit tests: a real file-backed keyring inside the temp HOME
    # (support/file_keyring.py). Desktop and e2e tests use a real GNOME Keyring instead
    # (`real_keyring`).
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "support.file_keyring.FileKeyring")
    # The single-instance socket lives here; a short path keeps it under the AF_UNIX limit.
    runtime = tempfile.mkdtemp(prefix="ctray-rt-")
    os.chmod(runtime, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    yield home
    shutil.rmtree(runtime, ignore_errors=True)


# Live-server tests (tests/live) read these before isolation removes them.
_KEEP_ENV: frozenset[str] = frozenset()
__all__ = ["LIVE_ENV"]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the Qt tests' event loop (only if they ran: headless runs never import Qt)."""
    loop_module = sys.modules.get("support.qasync_loop")
    if loop_module is not None:
        loop_module.close_process_loop()

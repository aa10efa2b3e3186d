"""Import httpx without its command-line client.

httpx's `__init__` imports `httpx._main` (its `httpx` console command) whenever click, rich and
pygments happen to be installed (uvicorn brings click, pytest brings pygments): about 45 ms of
every `clearml-tray list` and of the tray's start, for a command we never run. A placeholder
module stands in for it; `import httpx` then skips the client. Everything else is untouched.

Tested in tests/unit/test_list_command.py (what `list` imports).
"""

from __future__ import annotations

import sys
import types

if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    _placeholder = types.ModuleType("httpx._main")

    def _main() -> None:
        raise SystemExit("httpx's command-line client is not loaded in clearml-tray")

    _placeholder.main = _main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = _placeholder

import httpx

__all__ = ["httpx"]

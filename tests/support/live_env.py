"""The CLEARML_*/TRAINS_* environment as it was when the test session started.

tests/conftest.py imports this before any test runs (and before it removes those variables from
every test's environment), so the live-server tests can still read the values they need.
"""

from __future__ import annotations

import os

LIVE_ENV: dict[str, str] = {
    k: v for k, v in os.environ.items() if k.startswith(("CLEARML_", "TRAINS_"))
}

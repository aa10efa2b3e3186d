"""The emulator's API, one module per service as clearml-server lays out `apiserver/services/`.

Importing this package registers every endpoint in `ENDPOINTS` (each module's `@endpoint`
decorators run on import).

Tested in tests/unit/demo/test_emulator.py (routing); each module names its files.
"""

from __future__ import annotations

from tray_app.demo.services import (  # noqa: F401  (imported for their endpoints)
    auth,
    events,
    models,
    projects,
    queues,
    server,
    tasks,
    users,
    workers,
)
from tray_app.demo.services.auth import issue_token, verify_token
from tray_app.demo.services.base import ENDPOINTS, Call, Endpoint, find_endpoint

__all__ = ["ENDPOINTS", "Call", "Endpoint", "find_endpoint", "issue_token", "verify_token"]

"""ClearML REST API emulator: stateful server, seed data, simulated agent, fault injection.

Qt-free. `seeded_state(...)` builds the data, `create_app(state)` is the ASGI app (also
for `httpx.ASGITransport`), `DemoServer(state).start()` serves it on loopback, `SimulatedAgent`
runs the queued sessions.

Its tests are in tests/unit/demo/; each module names the files that test it.
"""

from __future__ import annotations

from tray_app.demo.agent import AgentMode, SimulatedAgent, StepReport
from tray_app.demo.app import DroppedConnection, create_app
from tray_app.demo.seed import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    DEMO_USER_NAME,
    OTHER_USERS,
    SECRET_MARKER,
    seeded_state,
)
from tray_app.demo.server import DemoServer, ServerStartError, clearml_conf_text
from tray_app.demo.state import EmulatorState, FaultKind, Faults

__all__ = [
    "DEMO_ACCESS_KEY",
    "DEMO_SECRET_KEY",
    "DEMO_USER_NAME",
    "OTHER_USERS",
    "SECRET_MARKER",
    "AgentMode",
    "DemoServer",
    "DroppedConnection",
    "EmulatorState",
    "FaultKind",
    "Faults",
    "ServerStartError",
    "SimulatedAgent",
    "StepReport",
    "clearml_conf_text",
    "create_app",
    "seeded_state",
]

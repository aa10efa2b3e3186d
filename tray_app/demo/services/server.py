"""server.info and debug.ping (apiserver/services/server/__init__.py, services/debug.py).

Tested in tests/unit/demo/test_emulator.py (server.info, debug.ping).
"""

from __future__ import annotations

from tray_app.demo.services.base import Call, Doc, endpoint


@endpoint("debug.ping", auth=False)
def debug_ping(call: Call, body: Doc) -> Doc:
    return {**body, "msg": "ClearML server"}


@endpoint("server.info", min_version="2.1")
def server_info(call: Call, body: Doc) -> Doc:
    return {
        "version": call.state.server_version,
        "build": call.state.server_build,
        "commit": "emulator",
        "api_version": call.state.api_version,
    }

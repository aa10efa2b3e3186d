"""Runs the real tray in this process and times Connect on a running session with no tunnel.

Started by benchmarks/logparse.py like ready_probe.py (private HOME, file keyring, a stand-in
`code` first on PATH, an emulator with its agent and SSH endpoints in another process). Once
the first snapshot is in, Connect is asked for the first running session of the user as the
menu, the notification and the hotkey pick ask it (`controller.handle("connect", id)`): the
tray starts `clearml-session --attach <id>`, and the time to its parsed ready line and to the
editor's first instruction (stamped by the stand-in) is taken. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from benchmarks.ready_probe import _spawns


async def measure(app: Any, record: Path) -> dict[str, Any]:
    from tray_app.core.models import SessionState
    from tray_app.core.ssh_config import SshConfig

    ready_at: list[float] = []
    hook = app.launcher.on_ready

    def on_ready(info: Any) -> None:
        ready_at.append(time.time())
        hook(info)

    app.launcher.on_ready = on_ready
    # A user who agreed to the Include line on an earlier connect: no question on this one.
    await asyncio.to_thread(SshConfig().ensure_include)
    await app.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.poller.snapshot is not None:
            break
        await asyncio.sleep(0.02)
    snapshot = app.poller.snapshot
    if snapshot is None:
        raise TimeoutError("no snapshot within 60 s")
    session = next(
        s for s in snapshot.own if s.state == SessionState.RUNNING and s.ssh_port is not None
    )
    clicked = time.time()
    app.controller.handle("connect", session.id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ready_at and _spawns(record):
            break
        await asyncio.sleep(0.01)
    else:
        raise TimeoutError("the tunnel did not become ready / the editor was not started")
    spawned = _spawns(record)[0][0]
    await app.quit(shutdown_remote=False)
    return {
        "session_id": session.id,
        "connect_to_ready_s": ready_at[0] - clicked,
        "connect_to_editor_s": spawned - clicked,
    }


def main() -> int:
    from benchmarks.tray_child import run_tray

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--record", required=True, type=Path)
    args = parser.parse_args()
    return run_tray(args.config, lambda app: measure(app, args.record))


if __name__ == "__main__":
    raise SystemExit(main())

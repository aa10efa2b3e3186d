"""Runs the real tray in this process and times Connect on a running session with no tunnel.

Started by benchmarks/connect.py (private HOME, the keyring it sets up, a stand-in `code` first
on PATH, an emulator with its agent and SSH endpoints in another process). Once the first
snapshot is in, Connect is asked for the first running session of the user as the menu, the
notification and the hotkey pick ask it (`controller.handle("connect", id)`), and three times
are taken: to the tunnel's ready line, to the editor's first instruction (stamped by the
stand-in), and to what the user waits for — `ssh -o BatchMode=yes <alias> echo ok` answering,
started the moment the Host block exists (as the editor's ssh is: it waits for the tray's login
through the block's Match exec, and needs no password). `--mode`:

- cold: nothing before the click; on it the tray starts `clearml-session --attach <id>` and
  meanwhile hands its ssh the session password (askpass), so the CLI sees no prompt.
- intent: the session's submenu opens (`controller.handle("intent", id)`, what its aboutToShow
  sends) `--think` seconds before the click: the attach starts then, silently.
- warm: warm tunnels on; the click comes once the session's silent tunnel is up. The memory of
  the warm tunnel (clearml-session and its ssh, resident set) is measured too.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.ready_probe import _spawns


def _tree_rss_mb(pid: int) -> float:
    import psutil  # type: ignore[import-untyped]

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs) / 2**20


async def measure(app: Any, record: Path, mode: str, think_s: float) -> dict[str, Any]:
    from tray_app.core.server.models import SessionState
    from tray_app.core.tunnels.model import TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig

    ready_at: list[float] = []

    def tunnels_changed() -> None:
        # The first time a tunnel the user asked for is ready (a prewarmed one is not, yet).
        tunnels = app.tunnels.tunnels().values()
        if not ready_at and any(t.state == TunnelState.READY and not t.prewarmed for t in tunnels):
            ready_at.append(time.time())

    app.tunnel_signals.tunnels_changed.connect(tunnels_changed)
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
    extra: dict[str, Any] = {}
    if mode == "intent":
        app.controller.handle("intent", session.id)
        await asyncio.sleep(think_s)
    elif mode == "warm":
        app.settings.warm_tunnels = True
        app.prewarm.apply()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            warm = [t for t in app.tunnels.tunnels().values() if t.session_id == session.id]
            if warm and warm[0].state == TunnelState.READY:
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("the warm tunnel did not come up")
        child = app.tunnels.child(warm[0].key)
        extra["warm_tunnel_rss_mb"] = _tree_rss_mb(child.process.pid)
        ready_at.clear()
    alias = f"clearml-{session.id[:8]}"
    clicked = time.time()
    app.controller.handle("connect", session.id)
    answered = asyncio.ensure_future(asyncio.to_thread(ssh_answers, alias, clicked + 120))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (ready_at or mode == "warm") and _spawns(record) and answered.done():
            break
        await asyncio.sleep(0.01)
    else:
        raise TimeoutError("the tunnel did not become ready / the editor was not started")
    spawned = _spawns(record)[0][0]
    ssh_at = answered.result()
    await app.quit(shutdown_remote=False)
    return {
        "session_id": session.id,
        "mode": mode,
        # A tunnel up before the click has no ready line after it: 0 (it was ready already).
        "connect_to_ready_s": max(0.0, (ready_at[0] if ready_at else clicked) - clicked),
        "connect_to_editor_s": spawned - clicked,
        "connect_to_ssh_s": ssh_at - clicked,
        **extra,
    }


def ssh_answers(alias: str, deadline: float) -> float:
    """When `ssh -o BatchMode=yes <alias> echo ok` answers: started as soon as the Host block
    names the alias (the editor's ssh starts no sooner), again if it fails."""
    home = Path.home()
    managed = home / ".ssh" / "clearml-tray" / "config"
    argv = ["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", alias, "echo", "ok"]
    while time.time() < deadline:
        try:
            block = f"Host {alias}" in managed.read_text()
        except OSError:
            block = False
        if not block:
            time.sleep(0.005)
            continue
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        if done.returncode == 0 and done.stdout.strip() == "ok":
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"ssh {alias} did not answer")


def main() -> int:
    from benchmarks.tray_child import run_tray

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--record", required=True, type=Path)
    parser.add_argument("--mode", choices=("cold", "intent", "warm"), default="cold")
    parser.add_argument("--think", type=float, default=1.5, help="intent: seconds to the click")
    args = parser.parse_args()
    return run_tray(args.config, lambda app: measure(app, args.record, args.mode, args.think))


if __name__ == "__main__":
    raise SystemExit(main())

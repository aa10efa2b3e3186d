"""API calls per hour: what the tray, and a `clearml-session` tunnel, cost a metered server.

The hosted free tier counts API calls. Three desktops, each with 3 running sessions of the
user's (no session starting or queued) on the emulator:

- idle: nobody has opened the menu for 10 minutes, no tunnel;
- the same with one tunnel open: the tray's share, and the CLI's (`clearml-session --attach`
  asks the server for its task every 3 s, `tasks.get_all` through the SDK's `get_status`);
- the same with the screen locked.

The tray's share is the real Poller, IdleFlow and SessionService (core/server/refresh.py's
schedule, the idle check's cadence, the workers cache) against the emulator, with every
interval of the schedule divided by `SCALE` so that an hour passes in `3600 / SCALE` seconds;
the requests the emulator answers are counted and scaled back to an hour. "Before" is the same
with the schedule this replaced: every 15 s whoever looks, and the idle check on every refresh.
The CLI's share is the real `clearml-session --attach` on a session with an SSH endpoint,
counted for a minute of real time once its tunnel is up. The locked screen: the real Poller
with a presence backend that says "locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.child import describe, requests_by_endpoint, stop_tree
from benchmarks.common import Context, Figure, tool_env, venv_bin

SECTION = "api_budget"
SCALE = 100.0  # an hour in 36 s
RUNNING = 3
TARGET = 150.0


def three_running_sessions(sessions: int = 16) -> Any:
    """A seeded emulator state where the user has exactly RUNNING running sessions with SSH,
    and nothing starting, queued or stopping (those keep the tray at its quicker pace)."""
    from tray_app.demo import seeded_state

    state = seeded_state(sessions=sessions)
    with state.lock:
        me = state.current_user_id
        kept = 0
        for task in state.tasks.values():
            if "interactive" not in (task.get("system_tags") or []) or task["user"] != me:
                continue
            ports = ((task.get("hyperparams") or {}).get("properties") or {}).get(
                "internal_ssh_port"
            )
            running = task["status"] == "in_progress" and ports and not task.get("status_message")
            if running and kept < RUNNING:
                kept += 1
            elif task["status"] in ("queued", "in_progress"):
                task["status"] = "stopped"
                task["status_message"] = ""
    if kept < RUNNING:
        raise RuntimeError(f"the seed has only {kept} running sessions of the user")
    return state


@contextlib.contextmanager
def scaled(factor: float, *, old: bool) -> Iterator[None]:
    """The tray's clocks run `factor` times faster: every interval the schedule, the idle check
    and the workers cache use, divided by it. `old`: the schedule this work replaced."""
    from tray_app.core.idle import flow
    from tray_app.core.server import sessions

    saved = (flow.CHECK_EVERY_S, flow.CHECK_IN_GRACE_S, sessions.WORKERS_MAX_AGE_S)
    flow.CHECK_EVERY_S = 0.0 if old else saved[0] / factor
    flow.CHECK_IN_GRACE_S = 0.0 if old else saved[1] / factor
    sessions.WORKERS_MAX_AGE_S = saved[2] / factor
    try:
        yield
    finally:
        flow.CHECK_EVERY_S, flow.CHECK_IN_GRACE_S, sessions.WORKERS_MAX_AGE_S = saved


class Switch:
    """A presence backend the benchmark locks by hand, as logind would."""

    away = False

    def __init__(self) -> None:
        self._on_change: Callable[[bool], None] = lambda away: None

    async def start(self, on_change: Callable[[bool], None]) -> None:
        self._on_change = on_change

    async def stop(self) -> None:
        return None

    def lock(self) -> None:
        self.away = True
        self._on_change(True)


async def tray_share(
    url: str, access: str, secret: str, state: Any, seconds: float, mode: str
) -> Counter[str]:
    """The real poller and idle check against `url`: a scaled minute to settle (the first
    snapshot fetches names and workers), then `seconds` (an hour / SCALE) counted.

    `mode`: "idle" (nobody looked for 10 minutes), "before" (the old pace), "locked"."""
    from PySide6.QtCore import QCoreApplication

    from tray_app.core.idle.flow import IdleFlow
    from tray_app.core.server.api import ClearMLClient
    from tray_app.core.server.config import ServerConfig
    from tray_app.core.server.refresh import RefreshSchedule
    from tray_app.core.server.sessions import SessionService
    from tray_app.core.settings.settings import IdlePolicy
    from tray_app.qt.poller import Poller

    QCoreApplication.instance() or QCoreApplication([])
    offset = [0.0]
    schedule = RefreshSchedule(
        interval=15.0 / SCALE,
        retry_first=3.0 / SCALE,
        max_backoff=120.0 / SCALE,
        idle_interval=60.0 / SCALE,
        idle_after=float("inf") if mode == "before" else 600.0 / SCALE,
    )
    presence = Switch()
    poller = Poller(schedule, presence=presence, monotonic=lambda: time.monotonic() + offset[0])
    offset[0] = 600.0 / SCALE  # nobody has opened the menu for 10 minutes already
    config = ServerConfig(url, url, url, access, secret)
    client = ClearMLClient(config)
    service = SessionService(client, web_server=url)
    pending: set[asyncio.Future[Any]] = set()

    def spawn(coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        pending.add(task)
        task.add_done_callback(pending.discard)

    idle = IdleFlow(
        notify=_Quiet(),
        spawn=spawn,
        policy=IdlePolicy,
        act=lambda action, sid: None,
        refresh=lambda: None,
        server=lambda: service,
    )
    poller.snapshot_changed.connect(idle.snapshot_changed)
    poller.set_source(service.snapshot, url)
    poller.start()
    await asyncio.sleep(60.0 / SCALE)
    if mode == "locked":
        presence.lock()
    if pending:
        await asyncio.gather(*pending)
    before = requests_by_endpoint(state)
    await asyncio.sleep(seconds)
    counted = requests_by_endpoint(state) - before
    await poller.stop()
    if pending:
        await asyncio.gather(*pending)
    await client.aclose()
    return counted


class _Quiet:
    def notify(self, kind: str, title: str, body: str, buttons: Any = (), **kw: Any) -> bool:
        return True


def per_hour(count: int, seconds: float) -> float:
    return count * 3600.0 / seconds


def measure_tray(ctx: Context, mode: str) -> tuple[float, Counter[str]]:
    """Calls per hour of the tray itself in `mode`, and what they were."""
    from tray_app.demo import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DemoServer

    state = three_running_sessions()
    server = DemoServer(state, port=0, ssh_endpoints=False)
    server.start()
    hour = 3600.0 / SCALE
    seconds = hour / (4 if ctx.quick else 1)
    try:
        with scaled(SCALE, old=mode == "before"):
            counted = asyncio.run(
                tray_share(server.url, DEMO_ACCESS_KEY, DEMO_SECRET_KEY, state, seconds, mode)
            )
    finally:
        server.stop()
    counted.pop("auth.login", None)  # once per token (30 days on the hosted server), not hourly
    rate = per_hour(sum(counted.values()), seconds * SCALE)
    ctx.say(f"tray, {mode}: {rate:.0f} calls/hour ({describe(counted)} in a scaled hour)")
    return rate, counted


def measure_cli(ctx: Context) -> tuple[float, Counter[str]]:
    """Calls per hour of one `clearml-session --attach` once its tunnel is up."""
    from tray_app.core.tunnels.parser import Ready, SessionLogParser
    from tray_app.demo import DemoServer

    state = three_running_sessions()
    server = DemoServer(state, port=0, agent_tick=0.3, ssh_endpoints=True)
    server.start()
    window = 15.0 if ctx.quick else 60.0
    try:
        home = ctx.workdir / "api-budget-cli"
        config = server.write_config(home / "clearml.conf")
        env = tool_env(config, home / "home")
        with state.lock:
            session = next(
                t["id"]
                for t in state.tasks.values()
                if t["user"] == state.current_user_id
                and t["status"] == "in_progress"
                and "interactive" in (t.get("system_tags") or [])
            )
        time.sleep(1.0)  # the agent's first tick gives the sessions their SSH endpoints
        proc = subprocess.Popen(
            [venv_bin("clearml-session"), "--attach", session, "--yes"],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,  # kept open: the CLI reads its commands there
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            parser = SessionLogParser()
            for raw in iter(proc.stdout.readline, b""):
                if any(isinstance(e, Ready) for e in parser.feed(raw.decode("utf-8", "replace"))):
                    break
            else:
                raise RuntimeError(f"clearml-session --attach ended ({proc.wait()}) before ready")
            before = requests_by_endpoint(state)
            time.sleep(window)
            counted = requests_by_endpoint(state) - before
        finally:
            stop_tree(proc)
    finally:
        server.stop()
    rate = per_hour(sum(counted.values()), window)
    ctx.say(f"clearml-session tunnel: {rate:.0f} calls/hour ({describe(counted)} in {window:g} s)")
    return rate, counted


def run(ctx: Context) -> list[Figure]:
    before, _ = measure_tray(ctx, "before")
    idle, idle_calls = measure_tray(ctx, "idle")
    locked, _ = measure_tray(ctx, "locked")
    cli, cli_calls = measure_cli(ctx)
    scaled_note = (
        f"the real poller, idle check and caches against the emulator, intervals divided by "
        f"{SCALE:g} ({describe(idle_calls)} in the idle hour); auth.login (once per token) left out"
    )
    return [
        Figure(
            SECTION,
            f"tray itself, idle desktop, {RUNNING} running sessions, no tunnel",
            idle,
            "calls/hour",
            f"<= {TARGET:g}",
            idle <= TARGET,
            note=scaled_note,
        ),
        Figure(
            SECTION,
            "the same, before this schedule (every 15 s, idle check on every refresh)",
            before,
            "calls/hour",
            note="the replaced pace, replayed the same way",
        ),
        Figure(
            SECTION,
            "the same with one tunnel open: the tray's share",
            idle,
            "calls/hour",
            f"<= {TARGET:g}",
            idle <= TARGET,
            note="a tunnel that is up keeps nothing coming up: the tray's pace does not change;"
            " its health probes go to the local port, not the server",
        ),
        Figure(
            SECTION,
            "the same with one tunnel open: the clearml-session CLI's share",
            cli,
            "calls/hour",
            note=f"the real CLI once its tunnel is up ({describe(cli_calls)}): tasks.get_all"
            " every 3 s through the SDK's get_status, whatever the tray does",
        ),
        Figure(
            SECTION,
            "the same with the screen locked: the tray's share",
            locked,
            "calls/hour",
            "0",
            locked == 0,
            note="the poller waits until the screen is unlocked (logind / screensaver over D-Bus);"
            " an open tunnel's CLI keeps its own pace",
        ),
    ]


def _main() -> None:  # `python -m benchmarks --only api_budget` is the way; this helps debugging
    import sys

    for figure in run(Context(quick="--quick" in sys.argv, workdir=Path("/tmp"))):
        print(figure)


if __name__ == "__main__":
    _main()

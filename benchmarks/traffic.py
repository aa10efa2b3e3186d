"""Requests and bytes per refresh against the emulator, at 1, 10, 100 and 1000 seeded sessions.

Four clients list the same sessions from the same emulator (`DemoServer` on 127.0.0.1):

- ours: `SessionService.snapshot()` in its steady state (after a warm-up that logged in and
  learnt how many pages each scope needs), for own sessions and for all users;
- the original VS Code extension's query, replayed with httpx as it sent it: a new
  `GET auth.login` (Basic) on every refresh, `POST projects.get_all {"name": "DevOps"}`, then
  `POST tasks.get_all_ex` with project, name and status filters and no `only_fields`;
- the real `clearml-session list` and `list --all_users`: everything one run of the CLI makes
  the emulator handle, from its start to its exit.

Counts come from the emulator (`state.traffic()`, `state.requests`). Bytes are the request and
response bodies as sent (uncompressed JSON; headers not counted). Before measuring, every seeded
interactive task gets the `script.diff` and pip requirements clearml-session stores in the tasks
it creates (`prepare_like_clearml_session`), read from the installed package at run time.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.common import Context, Figure, at_most, run_measured, tool_env, venv_bin
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.sessions import WORKERS_MAX_AGE_S, SessionService
from tray_app.demo import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DemoServer, EmulatorState, seeded_state
from tray_app.demo.state import Traffic

SECTION = "traffic"
SIZES = (1, 10, 100, 1000)
QUICK_SIZES = (1, 10)
REFRESHES = 3
POLL_S = 15.0  # the tray's default poll interval
TARGET_REQUESTS = 3

# What clearml-session stores as the task's pip requirements with its defaults (Jupyter Lab and
# the VS Code server on): see `create_base_task` in clearml_session/__main__.py.
CLEARML_SESSION_REQUIREMENTS = (
    "clearml>=1.1.5",
    "jupyter",
    "jupyterlab",
    "jupyterlab_git",
    "traitlets",
    "pylint",
)

BYTES_NOTE = (
    "Emulator on 127.0.0.1, not a real server. Bytes are uncompressed JSON bodies (request + "
    "response), headers excluded; a server behind a gzip proxy sends fewer. Seeded interactive "
    "tasks carry the script.diff (~72 KB: tcp_proxy.py + interactive_session_task.py, read at "
    "run time from the installed clearml_session package) and pip requirements that "
    "clearml-session writes into every session it creates."
)
NOTES = {
    "ours": (
        "Average over 2 minutes of polling every 15 s after a warm-up snapshot (login and "
        "page count learnt): tasks.get_all_ex with only the shown fields and names joined (one "
        "request per 500 live sessions, sent together) on every refresh; workers.get_all (every "
        "live worker, whatever the scope; no field selection) once in those 2 minutes, or when "
        "a session names a worker not yet seen. "
    ),
    "extension": (
        "Replay of the VS Code extension 0.0.6 (login + projects.get_all + tasks.get_all_ex, no "
        "only_fields: whole task documents incl. script.diff and runtime secrets). It shows "
        "everyone's sessions, only those named 'Interactive Session' in project DevOps, and at "
        "most 500 (no paging; the server caps the page). "
    ),
    "list": (
        "One run of the real clearml-session CLI (its login and SDK start-up included). It asks "
        "one page of 500 in_progress sessions (queued ones are not listed), then one "
        "projects.get_by_id per listed session, so requests grow with sessions. "
    ),
}


def clearml_session_script() -> dict[str, object]:
    """The `script` fields clearml-session sets on a new session task, from the installed
    package's own files (as its `create_base_task` reads them)."""
    spec = importlib.util.find_spec("clearml_session")
    if spec is None or spec.origin is None:
        raise RuntimeError("clearml_session is not installed in this environment")
    package = Path(spec.origin).parent
    diff = (package / "tcp_proxy.py").read_text(encoding="utf-8")
    diff += "\n\n" + (package / "interactive_session_task.py").read_text(encoding="utf-8")
    return {"diff": diff, "requirements": {"pip": "\n".join(CLEARML_SESSION_REQUIREMENTS)}}


def prepare_like_clearml_session(state: EmulatorState) -> int:
    """Give every seeded interactive task the script clearml-session stores; returns the
    diff's size in bytes."""
    script = clearml_session_script()
    with state.lock:
        for task in state.tasks.values():
            if "interactive" in (task.get("system_tags") or []):
                task.setdefault("script", {}).update(json.loads(json.dumps(script)))
    return len(str(script["diff"]).encode("utf-8"))


@contextmanager
def serving(sessions: int) -> Iterator[DemoServer]:
    state = seeded_state(sessions=sessions)
    prepare_like_clearml_session(state)
    server = DemoServer(state, port=0, ssh_endpoints=False).start()
    try:
        yield server
    finally:
        server.stop()


def server_config(url: str) -> ServerConfig:
    return ServerConfig(url, url, "", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)


@dataclass(frozen=True, slots=True)
class Refresh:
    """What one refresh of one client cost, averaged over the measured refreshes."""

    client: str  # "ours (own)", "extension", "clearml-session list --all_users", ...
    kind: str  # "ours", "extension", "list": picks the note
    requests: float
    request_bytes: float
    response_bytes: float
    shown: int  # sessions the refresh returned
    task_pages: float = 0.0  # tasks.get_all_ex requests per refresh (ours)
    seconds: float = 0.0  # wall time of one refresh (the CLI's whole run)

    @property
    def bytes(self) -> float:
        return self.request_bytes + self.response_bytes

    @property
    def bytes_per_session(self) -> float:
        return self.bytes / self.shown if self.shown else float("nan")


def _per(window: Traffic, refreshes: int) -> tuple[float, float, float]:
    return (
        window.requests / refreshes,
        window.request_bytes / refreshes,
        window.response_bytes / refreshes,
    )


async def measure_ours(server: DemoServer, all_users: bool, refreshes: int = REFRESHES) -> Refresh:
    state = server.state
    # A clock that moves one poll interval per refresh, so the window holds as many refreshes
    # as two minutes of polling and the workers list is asked for as often as in the tray.
    now = [0.0]
    refreshes = max(refreshes, int(WORKERS_MAX_AGE_S / POLL_S))
    async with ClearMLClient(server_config(server.url)) as client:
        service = SessionService(client, clock=lambda: now[0])
        await service.snapshot(all_users=all_users)  # warm-up: login, page count
        state.clear_requests()
        before = state.traffic()
        shown = 0
        for _ in range(refreshes):
            now[0] += POLL_S
            shown = len((await service.snapshot(all_users=all_users)).sessions)
        window = state.traffic() - before
        pages = state.count_requests("tasks.get_all_ex") / refreshes
    label = "ours (all users)" if all_users else "ours (own)"
    return Refresh(label, "ours", *_per(window, refreshes), shown=shown, task_pages=pages)


def _extension_json(body: Mapping[str, object]) -> bytes:
    # JSON.stringify: no spaces. Node's fetch sends a string body as text/plain.
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


async def extension_refresh(http: httpx.AsyncClient, url: str) -> int:
    """One refresh as the VS Code extension 0.0.6 does it; returns the sessions it lists."""
    basic = base64.b64encode(f"{DEMO_ACCESS_KEY}:{DEMO_SECRET_KEY}".encode()).decode("ascii")
    login = await http.get(f"{url}/auth.login", headers={"Authorization": f"Basic {basic}"})
    login.raise_for_status()
    headers = {
        "Authorization": f"Bearer {login.json()['data']['token']}",
        "Content-Type": "text/plain;charset=UTF-8",
    }
    projects = await http.post(
        f"{url}/projects.get_all", content=_extension_json({"name": "DevOps"}), headers=headers
    )
    project_id = projects.json()["data"]["projects"][0]["id"]
    body = {
        "project": [project_id],
        "name": "Interactive Session",
        "status": ["in_progress", "queued"],
    }
    tasks = await http.post(
        f"{url}/tasks.get_all_ex", content=_extension_json(body), headers=headers
    )
    return len(tasks.json()["data"]["tasks"])


async def measure_extension(server: DemoServer, refreshes: int = REFRESHES) -> Refresh:
    state = server.state
    # One connection pool for all refreshes, as Node's global fetch keeps one.
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
        before = state.traffic()
        shown = 0
        for _ in range(refreshes):
            shown = await extension_refresh(http, server.url)
        window = state.traffic() - before
    return Refresh("extension", "extension", *_per(window, refreshes), shown=shown)


def measure_list(server: DemoServer, workdir: Path, all_users: bool) -> Refresh:
    """One run of `clearml-session list [--all_users]`: what it made the emulator handle."""
    home = workdir / "clearml-session-home"
    config = server.write_config(home / "clearml.conf")
    argv = [venv_bin("clearml-session"), "list"] + (["--all_users"] if all_users else [])
    state = server.state
    before = state.traffic()
    run = run_measured(argv, tool_env(config, home), timeout=600)
    window = state.traffic() - before
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} exited with {run.returncode}")
    shown = sum(1 for line in run.stdout.splitlines() if "] id=" in line)
    label = "clearml-session list" + (" --all_users" if all_users else "")
    return Refresh(label, "list", *_per(window, 1), shown=shown, seconds=run.seconds)


def measure_size(sessions: int, workdir: Path) -> list[Refresh]:
    with serving(sessions) as server:
        return [
            asyncio.run(measure_ours(server, all_users=False)),
            asyncio.run(measure_ours(server, all_users=True)),
            asyncio.run(measure_extension(server)),
            measure_list(server, workdir, all_users=False),
            measure_list(server, workdir, all_users=True),
        ]


def _figures_for(sessions: int, refresh: Refresh) -> list[Figure]:
    name = f"{refresh.client}, {sessions} sessions"
    note = NOTES[refresh.kind] + BYTES_NOTE
    return [
        Figure(SECTION, f"requests/refresh, {name}", refresh.requests, "requests", note=note),
        Figure(SECTION, f"KB/refresh, {name}", refresh.bytes / 1000, "KB", note=note),
        Figure(
            SECTION,
            f"bytes/session, {name} ({refresh.shown} listed)",
            refresh.bytes_per_session,
            "B",
            note=note,
        ),
    ]


def target_figures(results: dict[int, list[Refresh]]) -> list[Figure]:
    ours = [(size, r) for size, refreshes in results.items() for r in refreshes if r.kind == "ours"]
    worst = max(r.requests for _, r in ours)
    # Without the extra task pages (one per 500 live sessions past the first), the count must
    # not depend on the number of sessions.
    unpaged = {r.requests - (r.task_pages - 1) for _, r in ours}
    spread = max(unpaged) - min(unpaged)
    sizes = f"{min(results)}..{max(results)} sessions"
    return [
        Figure(
            SECTION,
            f"requests per refresh, ours, {sizes} (worst of own/all users)",
            worst,
            "requests",
            target=f"<= {TARGET_REQUESTS}",
            met=at_most(worst, TARGET_REQUESTS),
            note=NOTES["ours"] + "Past 500 live sessions in a scope, one more page request.",
        ),
        Figure(
            SECTION,
            f"requests per refresh, ours, spread across {sizes} apart from paging",
            spread,
            "requests",
            target="= 0 (constant)",
            met=spread == 0,
            note="max - min over sizes and scopes of (requests - extra task pages).",
        ),
    ]


def run(ctx: Context) -> list[Figure]:
    sizes = QUICK_SIZES if ctx.quick else SIZES
    results: dict[int, list[Refresh]] = {}
    for sessions in sizes:
        ctx.say(f"traffic: {sessions} sessions")
        results[sessions] = measure_size(sessions, ctx.workdir)
        for r in results[sessions]:
            ctx.say(
                f"  {r.client:34} {r.requests:7.1f} req {r.bytes / 1000:10.1f} KB"
                f" {r.shown:4d} listed"
            )
    figures: list[Figure] = target_figures(results)
    for sessions, refreshes in results.items():
        for refresh in refreshes:
            figures += _figures_for(sessions, refresh)
    return figures


__all__ = [
    "Refresh",
    "clearml_session_script",
    "extension_refresh",
    "measure_extension",
    "measure_list",
    "measure_ours",
    "prepare_like_clearml_session",
    "run",
    "serving",
]

"""A tiny stand-in for the ClearML web UI, so "open in web UI" links of the demo lead somewhere.

The demo's clearml.conf points `web_server` at the emulator itself; task pages use the web app's
URL shapes (`/projects/<project>/experiments/<task>/...`, also `/tasks/<task>`).

Tested in tests/unit/demo/test_emulator.py (test_web_ui_pages_show_sessions_with_escaped_logs).
"""

from __future__ import annotations

import html
import re

from tray_app.demo.bll.users import user_name
from tray_app.demo.state import EmulatorState

_TASK_PAGE = re.compile(r"^/projects/(?P<project>[^/]+)/(?:experiments|tasks)/(?P<task>\w+)")


def is_web_path(path: str) -> bool:
    return path in ("/", "/dashboard") or path.startswith("/projects")


def render(state: EmulatorState, path: str) -> tuple[int, str]:
    """(HTTP status, HTML page) for a web UI path."""
    with state.lock:
        match = _TASK_PAGE.match(path)
        if match:
            return _task_page(state, match.group("task"))
        return 200, _index(state)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        "<p><em>ClearML Session Tray demo server (emulated ClearML web UI)</em></p>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _index(state: EmulatorState) -> str:
    rows = []
    for task in state.tasks.values():
        if "interactive" not in (task.get("system_tags") or []):
            continue
        link = f"/projects/{task.get('project') or '*'}/experiments/{task['id']}/output/log"
        rows.append(
            f"<tr><td><a href='{html.escape(link)}'>{html.escape(task['name'])}</a></td>"
            f"<td>{html.escape(task['status'])}</td>"
            f"<td>{html.escape(user_name(state, task.get('user')))}</td>"
            f"<td><code>{task['id']}</code></td></tr>"
        )
    table = "<table><tr><th>Session</th><th>Status</th><th>Owner</th><th>Id</th></tr>"
    return _page("Interactive sessions", table + "".join(rows) + "</table>")


def _task_page(state: EmulatorState, task_id: str) -> tuple[int, str]:
    task = state.tasks.get(task_id)
    if task is None:
        return 404, _page("Task not found", f"<p>No task <code>{html.escape(task_id)}</code></p>")
    props = (task.get("hyperparams") or {}).get("properties") or {}
    facts = [
        (
            "Status",
            task["status"] + (f" ({task['status_message']})" if task.get("status_message") else ""),
        ),
        ("Owner", user_name(state, task.get("user"))),
        ("Project", (state.projects.get(task.get("project") or "") or {}).get("name", "")),
        (
            "Queue",
            (state.queues.get((task.get("execution") or {}).get("queue") or "") or {}).get(
                "name", ""
            ),
        ),
        ("Worker", task.get("last_worker") or ""),
        ("Created", task.get("created") or ""),
        ("Started", task.get("started") or ""),
    ]
    facts += [(f"properties/{k}", str(v.get("value", ""))) for k, v in sorted(props.items())]
    info = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts
    )
    log = "".join(e["msg"] for e in state.logs.get(task_id, [])[-200:])
    body = f"<table>{info}</table><h2>Console</h2><pre>{html.escape(log)}</pre>"
    return 200, _page(task["name"], body)

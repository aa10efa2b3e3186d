"""The client, the snapshot and the actions against a real ClearML server."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support.live_env import LIVE_ENV

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.sessions import SessionService

pytestmark = pytest.mark.live


async def _create_session_task(client: ClearMLClient, name: str) -> str:
    projects = await client.call("projects.get_all", {"name": "^DevOps$", "only_fields": ["id"]})
    if projects.get("projects"):
        project = projects["projects"][0]["id"]
    else:
        project = (await client.call("projects.create", {"name": "DevOps"}))["id"]
    data = await client.call(
        "tasks.create",
        {
            "name": name,
            "type": "application",
            "project": project,
            "system_tags": ["interactive"],
            "tags": ["clearml-tray-live-test"],
        },
    )
    return str(data["id"])


async def test_login_and_server_info(live_client: ClearMLClient) -> None:
    info = await live_client.login()
    assert info.api_version and info.server_version


async def test_snapshot_has_only_live_interactive_sessions(live_client: ClearMLClient) -> None:
    snapshot = await SessionService(live_client).snapshot(all_users=True)
    assert all(s.status in ("queued", "in_progress") for s in snapshot.sessions)


async def test_queued_session_shows_up_then_stop_and_delete(live_client: ClearMLClient) -> None:
    service = SessionService(live_client)
    name = f"clearml-tray live test {uuid.uuid4().hex[:8]}"
    task_id = await _create_session_task(live_client, name)
    try:
        queues = await service.queues()
        assert queues, "the server has at least the default queue"
        # An unused queue of our own: nothing will pick the task up.
        queue = await live_client.call(
            "queues.create", {"name": f"tray-live-{uuid.uuid4().hex[:6]}"}
        )
        await live_client.call("tasks.enqueue", {"task": task_id, "queue": queue["id"]})
        snapshot = await service.snapshot()
        session = snapshot.by_id(task_id)
        assert session is not None and session.status == "queued" and session.name == name
        assert await service.stop(task_id) == "stopped"
        assert await service.delete(task_id) is True
        await live_client.call("queues.delete", {"queue": queue["id"], "force": True})
    finally:
        with contextlib.suppress(Exception):
            await live_client.call("tasks.delete", {"task": task_id, "force": True})


def test_clearml_session_launch_reaches_the_tunnel(live: ServerConfig, tmp_path: Path) -> None:
    queue = LIVE_ENV.get("CLEARML_TRAY_LIVE_QUEUE")
    if not queue:
        pytest.skip("set CLEARML_TRAY_LIVE_QUEUE to a queue served by an agent to test a launch")
    env = {
        **os.environ,
        "CLEARML_API_HOST": live.api_server,
        "CLEARML_WEB_HOST": live.web_server,
        "CLEARML_FILES_HOST": live.files_server,
        "CLEARML_API_ACCESS_KEY": live.access_key,
        "CLEARML_API_SECRET_KEY": live.secret_key,
        "PYTHONUNBUFFERED": "1",
    }
    cli = Path(sys.executable).with_name("clearml-session")
    proc = subprocess.Popen(
        [str(cli), "--queue", queue, "--yes", "--config-file", str(tmp_path / "state.json")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "Starting SSH tunnel" in line:
                break
        assert any("Starting SSH tunnel" in line for line in seen), "".join(seen[-30:])
    finally:
        proc.terminate()
        proc.wait(30)

"""The real `clearml` SDK (2.1.x) against the emulator, each case in a fresh subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.emulator import ClientEnv, EmulatorHandle

pytestmark = [pytest.mark.sdk, pytest.mark.e2e]


def run_sdk(client_env: ClientEnv, tmp_path: Path, code: str) -> dict[str, Any]:
    """Run `code` (which fills the dict `out`) with the SDK; return `out`."""
    script = tmp_path / "sdk_script.py"
    script.write_text(
        "import json\nout = {}\n"
        + textwrap.dedent(code)
        + "\nprint('RESULT ' + json.dumps(out, default=str))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=client_env.env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    assert client_env.network_attempts() == [], "the SDK tried to leave the machine"
    assert client_env.processes_reported() >= 1  # the guard really ran in the subprocess
    return dict(json.loads(line.removeprefix("RESULT ")))


@pytest.fixture
def sdk(
    emulator: EmulatorHandle,
    clearml_client_env: Callable[[EmulatorHandle], ClientEnv],
    tmp_path: Path,
) -> Callable[[str], dict[str, Any]]:
    client_env = clearml_client_env(emulator)
    return lambda code: run_sdk(client_env, tmp_path, code)


def running_sessions(emu: EmulatorHandle, *, mine_only: bool = False) -> list[dict[str, Any]]:
    tasks = [
        t
        for t in emu.state.tasks.values()
        if "interactive" in t["system_tags"]
        and t["status"] == "in_progress"
        and (not mine_only or t["user"] == emu.state.current_user_id)
    ]
    return sorted(tasks, key=lambda t: t["last_update"], reverse=True)


def test_apiclient_lists_seeded_sessions(
    emulator: EmulatorHandle, sdk: Callable[[str], dict[str, Any]]
) -> None:
    out = sdk(
        """
        from clearml.backend_api.session.client import APIClient
        client = APIClient()
        tasks = client.tasks.get_all(
            system_tags=["interactive"], status=["in_progress"], order_by=["-last_update"],
            only_fields=["id", "name", "user", "runtime.cpu_cores", "hyperparams.properties"],
        )
        out["tasks"] = [
            {"id": t.id, "name": t.name, "user": t.user,
             "cores": (t.runtime or {}).get("cpu_cores"),
             "address": getattr((t.hyperparams or {}).get("properties", {})
                                .get("external_address"), "value", None)}
            for t in tasks
        ]
        out["queues"] = sorted(q.name for q in client.queues.get_all(system_tags=["interactive"]))
        out["me"] = client.session.send_request("users", "get_current_user").json()["data"]["user"]
        """
    )
    expected = running_sessions(emulator)
    assert [t["id"] for t in out["tasks"]] == [t["id"] for t in expected]
    for got, task in zip(out["tasks"], expected, strict=True):
        assert got["name"] == task["name"] and got["user"] == task["user"]
        assert got["cores"] == task["runtime"]["cpu_cores"]
        props = task["hyperparams"].get("properties")
        if props:
            assert got["address"] == props["external_address"]["value"]
    assert out["queues"] == ["gpu-a100", "sessions"]
    assert out["me"]["name"] == "Demo User"
    versions = {r.version for r in emulator.state.requests if r.endpoint == "tasks.get_all"}
    assert versions == {"2.23"}  # the SDK negotiated its newest services module


def test_apiclient_creates_edits_and_deletes_tasks(
    emulator: EmulatorHandle, sdk: Callable[[str], dict[str, Any]]
) -> None:
    project_id = next(p["id"] for p in emulator.state.projects.values() if p["name"] == "DevOps")
    out = sdk(
        f"""
        from clearml.backend_api.session.client import APIClient
        client = APIClient()
        kept = client.tasks.create(name="sdk kept", type="application",
                                   project="{project_id}", system_tags=["interactive"]).id
        client.tasks.edit(task=kept, comment="edited by the sdk", force=True)
        client.tasks.edit_hyper_params(
            task=kept, hyperparams=[{{"section": "properties", "name": "x", "value": "1"}}])
        doomed = client.tasks.create(name="sdk doomed", type="training").id
        client.tasks.delete(task=doomed, force=True)
        got = client.tasks.get_by_id(task=kept)
        out.update(kept=kept, doomed=doomed, comment=got.comment, status=str(got.status))
        """
    )
    kept = emulator.state.tasks[out["kept"]]
    assert kept["comment"] == "edited by the sdk" == out["comment"]
    assert kept["hyperparams"]["properties"]["x"]["value"] == "1"
    assert kept["project"] == project_id and out["status"] == "created"
    assert out["doomed"] not in emulator.state.tasks


def test_task_get_tasks_and_get_task_see_seeded_data(
    emulator: EmulatorHandle, sdk: Callable[[str], dict[str, Any]]
) -> None:
    first = running_sessions(emulator)[0]
    out = sdk(
        f"""
        from clearml import Task
        tasks = Task.get_tasks(
            project_name="DevOps",
            task_filter={{"system_tags": ["interactive"], "status": ["in_progress"]}},
        )
        out["ids"] = sorted(t.id for t in tasks)
        task = Task.get_task(task_id="{first["id"]}")
        params = task.get_parameters()
        out["task"] = {{
            "name": task.name, "status": str(task.get_status()),
            "project": task.get_project_name(),
            "ssh_port": params.get("properties/internal_ssh_port"),
            "address": params.get("properties/external_address"),
        }}
        """
    )
    assert out["ids"] == sorted(t["id"] for t in running_sessions(emulator))
    props = first["hyperparams"]["properties"]
    assert out["task"] == {
        "name": first["name"],
        "status": "in_progress",
        "project": "DevOps",
        "ssh_port": props["internal_ssh_port"]["value"],
        "address": props["external_address"]["value"],
    }


def test_task_create_and_enqueue_reach_the_agent(
    emulator: EmulatorHandle, sdk: Callable[[str], dict[str, Any]]
) -> None:
    out = sdk(
        """
        from clearml import Task
        task = Task.create(project_name="DevOps", task_name="sdk session",
                           task_type="application")
        task.set_parameters({"General/lr": 0.1})
        Task.enqueue(task, queue_name="sessions")
        out["id"] = task.id
        out["status"] = str(Task.get_task(task_id=task.id).get_status())
        """
    )
    task = emulator.state.tasks[out["id"]]
    assert out["status"] == "queued" and task["status"] == "queued"
    assert task["hyperparams"]["General"]["lr"]["value"] == "0.1"
    assert emulator.state.queues[task["execution"]["queue"]]["name"] == "sessions"
    emulator.agent.step()
    emulator.agent.step()
    assert task["status"] == "in_progress"
    assert task["hyperparams"]["properties"]["internal_ssh_port"]["value"] == "10022"


def test_sdk_logs_in_again_after_token_expiry(
    emulator_factory: Callable[..., EmulatorHandle],
    clearml_client_env: Callable[[EmulatorHandle], ClientEnv],
    tmp_path: Path,
) -> None:
    emu = emulator_factory(sessions=1)
    emu.state.faults.only_endpoints = frozenset({"tasks.get_all"})
    emu.state.faults.fail_next("401")
    out = run_sdk(
        clearml_client_env(emu),
        tmp_path,
        """
        from clearml.backend_api.session.client import APIClient
        client = APIClient()
        out["n"] = len(client.tasks.get_all(system_tags=["interactive"]))
        """,
    )
    assert out["n"] == 1
    logins = [r for r in emu.state.requests if r.endpoint == "auth.login"]
    assert len(logins) >= 2  # the injected 401 made the SDK re-login and retry


def test_loopback_guard_catches_outside_addresses(
    emulator: EmulatorHandle,
    clearml_client_env: Callable[[EmulatorHandle], ClientEnv],
    tmp_path: Path,
) -> None:
    client_env = clearml_client_env(emulator)
    code = (
        "import socket\n"
        "for target in (('192.0.2.1', 80), ('pypi.org', 443)):\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=1)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        env=client_env.env,
        check=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert client_env.network_attempts() == ["192.0.2.1", "pypi.org"]


def test_sdk_works_against_the_server_2_0_profile(
    emulator_factory: Callable[..., EmulatorHandle],
    clearml_client_env: Callable[[EmulatorHandle], ClientEnv],
    tmp_path: Path,
) -> None:
    emu = emulator_factory(sessions=5, server_version="2.0.0")
    first = running_sessions(emu)[0]
    out = run_sdk(
        clearml_client_env(emu),
        tmp_path,
        f"""
        from clearml import Task
        from clearml.backend_api import Session
        from clearml.backend_api.session.client import APIClient
        client = APIClient()
        out["n"] = len(client.tasks.get_all(system_tags=["interactive"], status=["in_progress"]))
        out["name"] = Task.get_task(task_id="{first["id"]}").name
        out["api_version"] = Session.max_api_version
        """,
    )
    assert out == {"n": len(running_sessions(emu)), "name": first["name"], "api_version": "2.31"}

"""Emulator task lifecycle: create/edit/enqueue/stop/delete and the status machine."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.emulator import AsgiEmulator, make_asgi_emulator

from tray_app.demo.bll.queues import default_queue, queue_by_name
from tray_app.demo.bll.tasks import TRANSITIONS
from tray_app.demo.state import EmulatorState


async def call(emu: AsgiEmulator, endpoint: str, body: dict[str, Any]) -> httpx.Response:
    async with emu.client(headers=emu.basic_header) as client:
        return await client.post(f"/{endpoint}", json=body)


async def ok(emu: AsgiEmulator, endpoint: str, body: dict[str, Any]) -> Any:
    response = await call(emu, endpoint, body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def error(response: httpx.Response) -> tuple[int, int, str]:
    m = response.json()["meta"]
    assert response.status_code == m["result_code"]
    return m["result_code"], m["result_subcode"], m["result_msg"]


def find(state: EmulatorState, status: str, *, message: str | None = "", mine: bool = True) -> str:
    for task in state.tasks.values():
        if (
            "interactive" in task["system_tags"]
            and task["status"] == status
            and (message is None or task.get("status_message", "") == message)
            and (task["user"] == state.current_user_id) == mine
        ):
            return str(task["id"])
    raise AssertionError(f"no {status} session")


@pytest.fixture
def emu() -> AsgiEmulator:
    return make_asgi_emulator(sessions=13)


async def new_task(emu: AsgiEmulator, **extra: Any) -> str:
    body = {"name": "my session", "type": "application", **extra}
    return str((await ok(emu, "tasks.create", body))["id"])


async def test_create_makes_a_created_task_without_runtime(emu: AsgiEmulator) -> None:
    project = next(p for p in emu.state.projects.values() if p["name"] == "DevOps")
    tid = await new_task(
        emu,
        project=project["id"],
        system_tags=["interactive"],
        runtime={"x": "1"},
        script={"entry_point": ".interactive_session.py"},
    )
    task = (await ok(emu, "tasks.get_by_id", {"task": tid}))["task"]
    assert task["status"] == "created" and task["project"] == project["id"]
    assert task["user"] == emu.state.current_user_id
    assert task["runtime"] == {} and task["script"]["entry_point"] == ".interactive_session.py"
    assert len(tid) == 32


@pytest.mark.parametrize(
    ("body", "subcode"),
    [
        ({"type": "application"}, 12),  # a data model's required field: 400/12
        ({"name": "ab", "type": "application"}, 12),
        ({"name": "abc", "type": "bogus"}, 12),
    ],
)
async def test_create_validates(emu: AsgiEmulator, body: dict[str, Any], subcode: int) -> None:
    code, sub, msg = error(await call(emu, "tasks.create", body))
    assert (code, sub) == (400, subcode) and msg.startswith("Validation error")


async def test_unknown_task_id_errors(emu: AsgiEmulator) -> None:
    assert error(await call(emu, "tasks.get_by_id", {"task": "abc"})) == (
        400,
        101,
        "Invalid task id: ids=(abc)",
    )
    assert error(await call(emu, "tasks.stop", {"task": "abc"})) == (
        400,
        101,
        f"Invalid task id: id=abc, company={emu.state.company_id}",
    )


async def test_edit_requires_created_unless_forced(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    code, sub, msg = error(await call(emu, "tasks.edit", {"task": running, "comment": "x"}))
    assert (code, sub) == (400, 110)
    assert msg == "Invalid task status: expected=created, status=in_progress"
    reply = await ok(emu, "tasks.edit", {"task": running, "force": True, "runtime": {"a": "1"}})
    assert reply["updated"] == 1 and reply["fields"]["runtime"] == {"a": "1"}
    assert emu.state.tasks[running]["runtime"] == {"a": "1"}  # replaced wholesale


async def test_edit_merges_embedded_documents(emu: AsgiEmulator) -> None:
    tid = await new_task(emu, script={"entry_point": "a.py", "working_dir": "."})
    await ok(emu, "tasks.edit", {"task": tid, "script": {"entry_point": "b.py"}})
    assert emu.state.tasks[tid]["script"] == {"entry_point": "b.py", "working_dir": "."}


async def test_properties_hyperparams_editable_in_any_status(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    item = {"section": "properties", "name": "jupyter_port", "value": "9999"}
    assert (await ok(emu, "tasks.edit_hyper_params", {"task": running, "hyperparams": [item]}))[
        "updated"
    ] == 1
    other = {"section": "General", "name": "x", "value": "1"}
    code, sub, _ = error(
        await call(emu, "tasks.edit_hyper_params", {"task": running, "hyperparams": [other]})
    )
    assert (code, sub) == (400, 110)
    params = (await ok(emu, "tasks.get_hyper_params", {"tasks": [running]}))["params"][0]
    values = {(p["section"], p["name"]): p["value"] for p in params["hyperparams"]}
    assert values[("properties", "jupyter_port")] == "9999"
    assert [p["section"] for p in params["hyperparams"]] == sorted(
        p["section"] for p in params["hyperparams"]
    )


async def test_configuration_roundtrip(emu: AsgiEmulator) -> None:
    tid = await new_task(emu)
    conf = [{"name": "SSH", "value": "k=v", "type": "dictionary"}]
    await ok(emu, "tasks.edit_configuration", {"task": tid, "configuration": conf})
    got = (await ok(emu, "tasks.get_configurations", {"tasks": [tid]}))["configurations"]
    assert got[0]["configuration"][0]["value"] == "k=v"
    names = (await ok(emu, "tasks.get_configuration_names", {"tasks": [tid]}))["configurations"]
    assert names == [{"task": tid, "names": ["SSH"]}]


async def test_enqueue_by_name_and_dequeue(emu: AsgiEmulator) -> None:
    tid = await new_task(emu)
    reply = await ok(emu, "tasks.enqueue", {"task": tid, "queue_name": "sessions"})
    queue = queue_by_name(emu.state, "sessions")
    assert queue is not None
    assert reply["queued"] == 1 and reply["fields"]["status"] == "queued"
    assert reply["fields"]["execution.queue"] == queue["id"]
    assert queue["entries"][-1]["task"] == tid
    code, sub, _ = error(await call(emu, "tasks.enqueue", {"task": tid, "queue": queue["id"]}))
    assert (code, sub) == (400, 706)
    await ok(emu, "tasks.dequeue", {"task": tid})
    assert emu.state.tasks[tid]["status"] == "created"
    assert all(e["task"] != tid for e in queue["entries"])


async def test_enqueue_without_queue_uses_default(emu: AsgiEmulator) -> None:
    tid = await new_task(emu)
    reply = await ok(emu, "tasks.enqueue", {"task": tid})
    assert reply["fields"]["execution.queue"] == default_queue(emu.state)["id"]
    assert (await ok(emu, "queues.get_default", {}))["name"] == "default"


async def test_enqueue_unknown_queue_is_701(emu: AsgiEmulator) -> None:
    tid = await new_task(emu)
    assert error(await call(emu, "tasks.enqueue", {"task": tid, "queue": "nope"}))[:2] == (400, 701)


async def test_enqueue_running_task_is_refused(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    code, sub, msg = error(await call(emu, "tasks.enqueue", {"task": running}))
    assert (code, sub) == (400, 110)
    assert msg == (
        "Invalid task status (Invalid status change): current_status=in_progress, new_status=queued"
    )


async def test_stop_on_live_running_session_requests_stopping(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    reply = await ok(
        emu, "tasks.stop", {"task": running, "force": False, "status_reason": "abort request"}
    )
    assert reply["fields"]["status_message"] == "stopping"
    task = emu.state.tasks[running]
    assert task["status"] == "in_progress" and task["status_message"] == "stopping"
    report = emu.agent.step()
    assert running in report.stopped and task["status"] == "stopped"


async def test_stop_on_queued_session_stops_at_once(emu: AsgiEmulator) -> None:
    queued = find(emu.state, "queued")
    reply = await ok(emu, "tasks.stop", {"task": queued})
    assert reply["fields"]["status"] == "stopped"
    assert reply["fields"]["status_message"] == "Stopped by Demo User"
    assert all(e["task"] != queued for q in emu.state.queues.values() for e in q["entries"])


async def test_stop_without_live_worker_stops_at_once(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    emu.state.advance_time(3600)  # the worker's last report is now an hour old
    reply = await ok(emu, "tasks.stop", {"task": running})
    assert reply["fields"]["status"] == "stopped"


async def test_stopped_force_is_a_hard_stop(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    reply = await ok(emu, "tasks.stopped", {"task": running, "force": True})
    assert reply["fields"]["status"] == "stopped" and emu.state.tasks[running]["completed"]


async def test_delete_needs_force_unless_created(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    code, sub, msg = error(await call(emu, "tasks.delete", {"task": running}))
    assert (code, sub) == (400, 123)
    assert msg.startswith("Task cannot be deleted (due to status, use force=True)")
    reply = await ok(emu, "tasks.delete", {"task": running, "force": True})
    assert reply["deleted"] is True and running not in emu.state.tasks
    assert all(w.task_id != running for w in emu.state.workers.values())
    created = await new_task(emu)
    assert (await ok(emu, "tasks.delete", {"task": created}))["deleted"] is True


@pytest.mark.parametrize("current", sorted(TRANSITIONS))
@pytest.mark.parametrize(
    "endpoint", ["tasks.stopped", "tasks.started", "tasks.failed", "tasks.completed", "tasks.close"]
)
async def test_status_endpoints_follow_the_state_machine(
    emu: AsgiEmulator, current: str, endpoint: str
) -> None:
    target = {
        "tasks.stopped": "stopped",
        "tasks.started": "in_progress",
        "tasks.failed": "failed",
        "tasks.completed": "completed",
        "tasks.close": "closed",
    }[endpoint]
    tid = await new_task(emu)
    emu.state.tasks[tid]["status"] = current
    response = await call(emu, endpoint, {"task": tid})
    allowed = target == current or target in TRANSITIONS[current]
    if allowed:
        assert response.status_code == 200
        assert emu.state.tasks[tid]["status"] == target
    else:
        assert error(response)[:2] == (400, 110)
        assert emu.state.tasks[tid]["status"] == current
        forced = await call(emu, endpoint, {"task": tid, "force": True})
        assert forced.status_code == 200 and emu.state.tasks[tid]["status"] == target


async def test_status_change_updates_timestamps(emu: AsgiEmulator) -> None:
    tid = await new_task(emu)
    before = dict(emu.state.tasks[tid])
    emu.state.advance_time(5)
    fields = (await ok(emu, "tasks.started", {"task": tid}))["fields"]
    task = emu.state.tasks[tid]
    for key in ("status_changed", "last_update", "last_change", "started"):
        assert task[key] > before[key] if key in before else task[key]
        assert fields[key] == task[key]


async def test_reset_returns_task_to_created(emu: AsgiEmulator) -> None:
    failed = find(emu.state, "failed")
    await ok(emu, "tasks.reset", {"task": failed})
    task = emu.state.tasks[failed]
    assert task["status"] == "created" and task["last_metrics"] == {} and "started" not in task


async def test_reset_drops_the_console_log(emu: AsgiEmulator) -> None:
    failed = find(emu.state, "failed")
    lines = len(emu.state.logs[failed])
    reply = await ok(emu, "tasks.reset", {"task": failed})
    assert lines and reply["events"] == {"deleted": lines} and failed not in emu.state.logs


async def test_clone_copies_the_definition(emu: AsgiEmulator) -> None:
    source = find(emu.state, "stopped", message=None)
    new_id = (await ok(emu, "tasks.clone", {"task": source, "new_task_name": "again"}))["id"]
    clone = emu.state.tasks[new_id]
    assert clone["status"] == "created" and clone["name"] == "again"
    assert (
        clone["hyperparams"]["interactive_session"]
        == (emu.state.tasks[source]["hyperparams"]["interactive_session"])
    )


async def test_clone_into_a_new_project_creates_it(emu: AsgiEmulator) -> None:
    source = find(emu.state, "stopped", message=None)
    body = {"task": source, "new_project_name": "Clones"}
    reply = await ok(emu, "tasks.clone", body)
    project = reply["new_project"]
    assert project["name"] == "Clones" and emu.state.projects[project["id"]]["name"] == "Clones"
    assert emu.state.tasks[reply["id"]]["project"] == project["id"]
    again = await ok(emu, "tasks.clone", body)
    assert "new_project" not in again
    assert emu.state.tasks[again["id"]]["project"] == project["id"]


async def test_ping_bumps_last_update(emu: AsgiEmulator) -> None:
    running = find(emu.state, "in_progress")
    before = emu.state.tasks[running]["last_update"]
    emu.state.advance_time(10)
    await ok(emu, "tasks.ping", {"task": running})
    assert emu.state.tasks[running]["last_update"] > before


async def test_projects_create_and_lookup(emu: AsgiEmulator) -> None:
    pid = (await ok(emu, "projects.create", {"name": "Sandbox"}))["id"]
    got = await ok(emu, "projects.get_all", {"name": "^Sandbox$", "only_fields": ["id"]})
    assert got["projects"] == [{"id": pid}]
    assert (await ok(emu, "projects.get_by_id", {"project": pid}))["project"]["name"] == "Sandbox"
    assert error(await call(emu, "projects.get_by_id", {"project": "x"}))[:2] == (400, 401)


async def test_queues_listing_and_filters(emu: AsgiEmulator) -> None:
    interactive = (await ok(emu, "queues.get_all", {"system_tags": ["interactive"]}))["queues"]
    assert sorted(q["name"] for q in interactive) == ["gpu-a100", "sessions"]
    public = (await ok(emu, "queues.get_all", {"system_tags": ["-internal"]}))["queues"]
    assert "services" not in {q["name"] for q in public}
    queue = interactive[0]
    for key in (
        "id",
        "name",
        "display_name",
        "user",
        "company",
        "created",
        "tags",
        "system_tags",
        "entries",
        "metadata",
    ):
        assert key in queue
    by_id = (await ok(emu, "queues.get_by_id", {"queue": queue["id"]}))["queue"]
    assert by_id["name"] == queue["name"]
    code, sub, _ = error(await call(emu, "queues.get_by_id", {"queue": "sessions"}))
    assert (code, sub) == (400, 701)
    ex = (await ok(emu, "queues.get_all_ex", {"name": "^sessions$"}))["queues"][0]
    assert ex["workers"] and all(w["ip"].startswith("127.") for w in ex["workers"])


async def test_models_listing_is_empty(emu: AsgiEmulator) -> None:
    """The emulator keeps no models; clearml-session asks for a session's when it deletes it."""
    body = {"task": [find(emu.state, "stopped", message=None)]}
    for endpoint in ("models.get_all", "models.get_all_ex"):
        assert await ok(emu, endpoint, body) == {"models": []}


async def test_users_listing(emu: AsgiEmulator) -> None:
    users = (await ok(emu, "users.get_all_ex", {"only_fields": ["id", "name"]}))["users"]
    assert len(users) == 4 and all(set(u) == {"id", "name"} for u in users)
    me = (await ok(emu, "users.get_current_user", {}))["user"]
    assert me["company"] == {"id": emu.state.company_id, "name": "clearml"}

"""Emulator workers, metrics, logs and the simulated agent."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from support.emulator import AsgiEmulator, make_asgi_emulator

from tray_app.demo import AgentMode
from tray_app.demo.bll.queues import queue_by_name
from tray_app.demo.values import md5_hex


async def ok(emu: AsgiEmulator, endpoint: str, body: dict[str, Any]) -> Any:
    async with emu.client(headers=emu.basic_header) as client:
        response = await client.post(f"/{endpoint}", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def create_session(emu: AsgiEmulator, queue: str = "sessions") -> str:
    tid = (
        await ok(
            emu,
            "tasks.create",
            {"name": "Interactive Session", "type": "application", "system_tags": ["interactive"]},
        )
    )["id"]
    await ok(emu, "tasks.enqueue", {"task": tid, "queue_name": queue})
    return str(tid)


def props(emu: AsgiEmulator, tid: str) -> dict[str, str]:
    section = emu.state.tasks[tid]["hyperparams"].get("properties", {})
    return {k: v["value"] for k, v in section.items()}


async def test_agent_pulls_then_publishes_ports(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    tid = await create_session(emu)
    first = emu.agent.step()
    task = emu.state.tasks[tid]
    assert tid in first.pulled and task["status"] == "in_progress"
    assert "internal_ssh_port" not in props(emu, tid)  # "starting": no ports yet
    worker = emu.state.workers[task["last_worker"]]
    assert worker.task_id == tid and worker.ip.startswith("127.")
    second = emu.agent.step()
    assert tid in second.published
    p = props(emu, tid)
    assert p["internal_ssh_port"] == "10022" and p["external_address"].startswith("127.")
    assert p["jupyter_port"] and p["vscode_port"]
    runtime = task["runtime"]
    assert runtime["_ssh_user"] == "root" and runtime["external_address"] == p["external_address"]
    assert runtime["cpu_cores"] > 0 and "gpu_count" in runtime
    log = await ok(emu, "events.get_task_log", {"task": tid, "order": "asc"})
    messages = "\n".join(e["msg"] for e in log["events"])
    assert f"# SSH Server running on {worker.hostname} [{p['external_address']}] port 10022" in (
        messages
    )
    # The SDK's resource monitor first reports after 180 s (clearml resource_monitor.py).
    assert md5_hex(":monitor:machine") not in (task.get("last_metrics") or {})
    emu.state.advance_time(181)
    emu.agent.step()
    machine = task["last_metrics"][md5_hex(":monitor:machine")]
    assert machine[md5_hex("cpu_usage")]["value"] > 0


async def test_agent_hang_leaves_sessions_queued(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    emu.agent.set_mode(AgentMode.HANG)
    tid = await create_session(emu)
    for _ in range(3):
        emu.agent.step()
    assert emu.state.tasks[tid]["status"] == "queued"


async def test_agent_serves_only_the_queues_its_workers_claim(asgi_emulator: AsgiEmulator) -> None:
    """As clearml-agent serves its --queue list: a session in a queue no worker serves waits
    (the tray marks such a queue and asks before launching there)."""
    emu = asgi_emulator
    default = queue_by_name(emu.state, "default")
    assert default is not None
    assert not any(default["id"] in w.queue_ids for w in emu.state.workers.values())
    waiting = await create_session(emu, queue="default")
    served = await create_session(emu, queue="sessions")
    for _ in range(3):
        report = emu.agent.step()
        assert waiting not in report.pulled
    assert emu.state.tasks[waiting]["status"] == "queued"
    assert emu.state.tasks[served]["status"] == "in_progress"


async def test_agent_no_ports_never_publishes(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    tid = await create_session(emu)
    emu.agent.set_mode("no_ports", task_id=tid)
    for _ in range(3):
        emu.agent.step()
    assert emu.state.tasks[tid]["status"] == "in_progress" and "internal_ssh_port" not in props(
        emu, tid
    )


async def test_agent_fail_marks_session_failed_with_log(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    tid = await create_session(emu)
    emu.agent.set_mode(AgentMode.FAIL, task_id=tid)
    emu.agent.step()
    report = emu.agent.step()
    assert tid in report.failed and emu.state.tasks[tid]["status"] == "failed"
    log = await ok(emu, "events.get_task_log", {"task": tid})
    assert any(e["level"] == "error" for e in log["events"])


async def test_agent_idle_reports_near_zero_usage(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    running = [t for t in emu.state.tasks.values() if t["status"] == "in_progress"]
    tid = running[0]["id"]
    emu.agent.set_mode(AgentMode.IDLE, task_id=tid)
    emu.state.advance_time(30)  # the agent reports every 30 s
    emu.agent.step()
    metrics = emu.state.tasks[tid]["last_metrics"]
    assert metrics[md5_hex(":monitor:machine")][md5_hex("cpu_usage")]["value"] < 2
    gpu = metrics.get(md5_hex(":monitor:gpu"), {})
    for entry in gpu.values():
        if entry["variant"].endswith("_utilization"):
            assert entry["value"] == 0


async def test_agent_completes_stop_request_and_frees_worker(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    tid = next(t["id"] for t in emu.state.tasks.values() if t["status"] == "in_progress")
    worker_id = emu.state.tasks[tid]["last_worker"]
    await ok(emu, "tasks.stop", {"task": tid})
    emu.agent.step()
    assert emu.state.tasks[tid]["status"] == "stopped"
    assert emu.state.workers[worker_id].task_id is None


async def test_workers_get_all_shape(asgi_emulator: AsgiEmulator) -> None:
    workers = (await ok(asgi_emulator, "workers.get_all", {"last_seen": 600}))["workers"]
    assert workers
    busy = [w for w in workers if w["task"]]
    idle = [w for w in workers if not w["task"]]
    assert busy and idle
    w = busy[0]
    for key in (
        "id",
        "key",
        "ip",
        "user",
        "company",
        "register_time",
        "last_activity_time",
        "last_report_time",
        "task",
        "queue",
        "queues",
        "tags",
        "system_tags",
    ):
        assert key in w, key
    assert set(w["task"]) == {"id", "name", "running_time", "last_iteration"}
    assert w["task"]["running_time"] > 0 and w["ip"].startswith("127.")
    assert w["queues"][0]["name"] in ("sessions", "gpu-a100")


async def test_workers_get_all_last_seen_filters_stale(asgi_emulator: AsgiEmulator) -> None:
    asgi_emulator.state.advance_time(4000)
    assert (await ok(asgi_emulator, "workers.get_all", {}))["workers"] == []
    assert (await ok(asgi_emulator, "workers.get_all", {"last_seen": 0}))["workers"]


async def test_worker_register_and_status_report_link_the_task(
    asgi_emulator: AsgiEmulator,
) -> None:
    emu = asgi_emulator
    queue = queue_by_name(emu.state, "sessions")
    assert queue is not None
    await ok(emu, "workers.register", {"worker": "laptop:0", "queues": [queue["id"]]})
    tid = (await ok(emu, "tasks.create", {"name": "abc", "type": "training"}))["id"]
    await ok(emu, "tasks.started", {"task": tid})
    stats = {"cpu_usage": [12.0, 14.0], "memory_used": 2048, "gpu_usage": [50.0]}
    await ok(
        emu,
        "workers.status_report",
        {
            "worker": "laptop:0",
            "timestamp": int(time.time() * 1000),
            "task": tid,
            "machine_stats": stats,
        },
    )
    task = emu.state.tasks[tid]
    assert task["last_worker"] == "laptop:0" and task["last_worker_report"]
    listed = (await ok(emu, "workers.get_all", {}))["workers"]
    mine = next(w for w in listed if w["id"] == "laptop:0")
    assert mine["task"]["id"] == tid and mine["ip"] == "127.0.0.1"
    await ok(emu, "workers.unregister", {"worker": "laptop:0"})
    assert "laptop:0" not in emu.state.workers


def _stats_request(emu: AsgiEmulator, worker_ids: list[str]) -> dict[str, Any]:
    now = emu.state.now().timestamp()
    return {
        "worker_ids": worker_ids,
        "from_date": now - 600,
        "to_date": now,
        "interval": 60,
        "items": [
            {"key": "cpu_usage", "aggregation": "avg"},
            {"key": "gpu_usage", "aggregation": "max"},
            {"key": "memory_used", "aggregation": "avg"},
        ],
    }


@pytest.mark.parametrize("shape", ["2.0", "2.3"])
async def test_get_stats_both_shapes(shape: str) -> None:
    emu = make_asgi_emulator(sessions=1)
    emu.state.stats_shape = shape  # type: ignore[assignment]
    wid = next(w.id for w in emu.state.workers.values() if w.task_id)
    reply = await ok(emu, "workers.get_stats", _stats_request(emu, [wid]))
    (worker,) = reply["workers"]
    assert worker["worker"] == wid
    metrics = {m["metric"]: m for m in worker["metrics"]}
    assert set(metrics) == {"cpu_usage", "gpu_usage", "memory_used"}
    cpu = metrics["cpu_usage"]
    stat = cpu["stats"][0]
    assert stat["aggregation"] == "avg"
    if shape == "2.0":
        dates = cpu["dates"]
        assert "dates" not in stat
    else:
        dates = stat["dates"]
        assert "dates" not in cpu and "resource_series" in stat
    assert len(dates) == len(stat["values"]) >= 5
    assert dates == sorted(dates) and all(d > 10**12 for d in dates)  # epoch milliseconds
    assert all(0 <= v <= 100 for v in stat["values"])


def test_server_version_2_0_selects_old_profile() -> None:
    emu = make_asgi_emulator(sessions=1, server_version="2.0.0")
    assert emu.state.stats_shape == "2.0" and emu.state.api_version == "2.31"


async def test_get_stats_rejects_unknown_key(asgi_emulator: AsgiEmulator) -> None:
    body = _stats_request(asgi_emulator, [])
    body["items"] = [{"key": "bogus", "aggregation": "avg"}]
    async with asgi_emulator.client(headers=asgi_emulator.basic_header) as client:
        response = await client.post("/workers.get_stats", json=body)
    assert response.status_code == 400 and response.json()["meta"]["result_subcode"] == 12


async def test_task_log_paging_and_order(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    tid = next(t["id"] for t in emu.state.tasks.values() if t["status"] == "in_progress")
    every = (await ok(emu, "events.get_task_log", {"task": tid, "order": "asc"}))["events"]
    assert len(every) >= 5
    stamps = [e["timestamp"] for e in every]
    assert stamps == sorted(stamps)
    last3 = await ok(
        emu,
        "events.get_task_log",
        {"task": tid, "batch_size": 3, "navigate_earlier": True, "order": "asc"},
    )
    assert last3["events"] == every[-3:] and last3["returned"] == 3
    assert last3["total"] == len(every)
    older = await ok(
        emu,
        "events.get_task_log",
        {"task": tid, "batch_size": 2, "from_timestamp": every[-3]["timestamp"], "order": "desc"},
    )
    assert [e["timestamp"] for e in older["events"]] == sorted(
        [e["timestamp"] for e in every if e["timestamp"] < every[-3]["timestamp"]][-2:],
        reverse=True,
    )


async def test_add_batch_accepts_ndjson_and_updates_metrics(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    tid = (await ok(emu, "tasks.create", {"name": "abc", "type": "training"}))["id"]
    lines = [
        {
            "type": "log",
            "task": tid,
            "msg": "hello",
            "level": "info",
            "timestamp": 1_700_000_000_000,
        },
        {
            "type": "training_stats_scalar",
            "task": tid,
            "metric": "loss",
            "variant": "train",
            "value": 0.5,
            "iter": 3,
        },
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    async with emu.client(headers=emu.basic_header) as client:
        response = await client.post("/events.add_batch", content=body)
    assert response.status_code == 200 and response.json()["data"]["added"] == 2
    log = await ok(emu, "events.get_task_log", {"task": tid})
    assert [e["msg"] for e in log["events"]] == ["hello"]
    latest = await ok(emu, "events.get_task_latest_scalar_values", {"task": tid})
    assert latest["metrics"][0]["variants"][0]["last_value"] == 0.5


async def test_requests_are_recorded_without_secrets(asgi_emulator: AsgiEmulator) -> None:
    emu = asgi_emulator
    emu.state.clear_requests()
    tid = (await ok(emu, "tasks.create", {"name": "abc", "type": "training"}))["id"]
    await ok(emu, "tasks.edit", {"task": tid, "runtime": {"_user_secret": "hunter2"}})
    assert emu.state.count_requests() == 2 and emu.state.count_requests("tasks.edit") == 1
    assert "hunter2" not in repr(list(emu.state.requests))


def test_agent_handles_a_thousand_sessions_quickly() -> None:
    emu = make_asgi_emulator(sessions=1000)
    report = emu.agent.step()
    assert report.pulled and report.reported
    # Each worker's agent reports every 30 s: within 30 s, every machine has.
    emu.state.advance_time(30)
    again = emu.agent.step()
    assert again.reported == sum(1 for w in emu.state.workers.values() if w.machine is not None)
    assert all(emu.state.tasks[t]["status"] == "in_progress" for t in report.pulled)


async def test_agent_publishes_only_the_servers_the_session_asked_for(
    asgi_emulator: AsgiEmulator,
) -> None:
    emu = asgi_emulator
    section = "interactive_session"
    params = {
        name: {"section": section, "name": name, "value": "False"}
        for name in ("jupyterlab", "vscode_server")
    }
    tid = (
        await ok(
            emu,
            "tasks.create",
            {
                "name": "Interactive Session",
                "type": "application",
                "system_tags": ["interactive"],
                "hyperparams": {section: params},
            },
        )
    )["id"]
    await ok(emu, "tasks.enqueue", {"task": tid, "queue_name": "sessions"})
    emu.agent.step()
    emu.agent.step()
    published = props(emu, tid)
    assert published["internal_ssh_port"] and published["external_address"]
    assert "jupyter_port" not in published and "vscode_port" not in published
    assert "_jupyter_token" not in emu.state.tasks[tid]["runtime"]

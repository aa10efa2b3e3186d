"""Workers (apiserver/bll/workers/): registration, status reports, a worker as workers.get_all
describes it.

Tested in tests/unit/demo/test_emulator_agent.py (register, status report, workers.get_all)
and test_emulator_conformance.py (the worker's ip).
"""

from __future__ import annotations

import copy
from typing import Any

from tray_app.demo.bll.tasks import get_task
from tray_app.demo.state import Doc, EmulatorState, Worker
from tray_app.demo.values import iso, parse_iso


def register_worker(
    state: EmulatorState,
    worker_id: str,
    user_id: str,
    ip: str,
    *,
    queue_ids: list[str] | None = None,
    timeout: int = 600,
    tags: list[str] | None = None,
    system_tags: list[str] | None = None,
    simulated: bool = False,
    hostname: str = "",
) -> Worker:
    now = state.now()
    worker = state.workers.get(worker_id)
    if worker is None:
        worker = Worker(
            id=worker_id,
            user_id=user_id,
            ip=ip,
            register_time=now,
            last_activity_time=now,
            register_timeout=timeout,
            simulated=simulated,
            hostname=hostname or worker_id.split(":", 1)[0],
        )
        state.workers[worker_id] = worker
    worker.last_activity_time = now
    worker.register_timeout = timeout
    if queue_ids is not None:
        worker.queue_ids = list(queue_ids)
    if tags is not None:
        worker.tags = list(tags)
    if system_tags is not None:
        worker.system_tags = list(system_tags)
    return worker


def worker_report(
    state: EmulatorState,
    worker: Worker,
    *,
    task_id: str | None,
    machine_stats: dict[str, Any] | None,
    timestamp_ms: int | None = None,
    queue_ids: list[str] | None = None,
) -> None:
    now = state.now()
    worker.last_activity_time = now
    worker.last_report_time = now
    if queue_ids is not None:
        worker.queue_ids = list(queue_ids)
    if task_id:
        task = get_task(state, task_id)
        task["last_worker"] = worker.id
        task["last_worker_report"] = iso(now)
        task["last_update"] = iso(now)
    worker.task_id = task_id or None
    if machine_stats:
        ts = timestamp_ms if timestamp_ms is not None else int(now.timestamp() * 1000)
        worker.stats.append((ts, copy.deepcopy(machine_stats)))


def worker_doc(state: EmulatorState, worker: Worker) -> Doc:
    task_doc: Doc | None = None
    project_doc: Doc | None = None
    task = state.tasks.get(worker.task_id or "")
    if task is not None:
        started = parse_iso(task.get("started"))
        running_ms = int((state.now() - started).total_seconds() * 1000) if started else 0
        task_doc = {
            "id": task["id"],
            "name": task["name"],
            "running_time": running_ms,
            "last_iteration": task.get("last_iteration", 0),
        }
        proj = state.projects.get(task.get("project") or "")
        if proj is not None:
            project_doc = {"id": proj["id"], "name": proj["name"]}
    queues = [_queue_brief(state, qid) for qid in worker.queue_ids if qid in state.queues]
    user = state.users.get(worker.user_id)
    return {
        "id": worker.id,
        "key": f"worker_{state.company_id}_{worker.user_id}_{worker.id}",
        "ip": worker.ip,
        "user": {"id": worker.user_id, "name": user["name"] if user else ""},
        "company": {"id": state.company_id, "name": state.company_name},
        "register_time": iso(worker.register_time),
        "register_timeout": worker.register_timeout,
        "last_activity_time": iso(worker.last_activity_time),
        "last_report_time": iso(worker.last_report_time) if worker.last_report_time else None,
        "task": task_doc,
        "project": project_doc,
        "queue": queues[0] if queues else None,
        "queues": queues,
        "tags": list(worker.tags),
        "system_tags": list(worker.system_tags),
    }


def _queue_brief(state: EmulatorState, queue_id: str) -> Doc:
    queue = state.queues[queue_id]
    entries = queue["entries"]
    next_task = None
    if entries:
        t = state.tasks.get(entries[0]["task"])
        next_task = {"id": entries[0]["task"], "name": t["name"] if t else ""}
    return {
        "id": queue["id"],
        "name": queue["name"],
        "display_name": queue.get("display_name"),
        "next_task": next_task,
        "num_tasks": len(entries),
    }


__all__ = ["register_worker", "worker_doc", "worker_report"]

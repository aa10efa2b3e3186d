"""Tasks (apiserver/bll/task/): the status machine, enqueueing, deleting, hyperparameters and
the last metrics of a task.

Tested in tests/unit/demo/test_emulator_tasks.py (the status machine, enqueue, delete) and
test_emulator_conformance.py (stop), test_emulator_agent.py (metrics).
"""

from __future__ import annotations

from typing import Any

from tray_app.demo.bll.events import delete_task_log
from tray_app.demo.bll.queues import remove_from_queues
from tray_app.demo.errors import bad_request, invalid_task_id, invalid_task_status
from tray_app.demo.state import Doc, EmulatorState
from tray_app.demo.values import iso, md5_hex, parse_iso

TASK_STATUSES = (
    "created",
    "queued",
    "in_progress",
    "stopped",
    "published",
    "publishing",
    "closed",
    "failed",
    "completed",
    "unknown",
)
TASK_TYPES = (
    "training",
    "testing",
    "inference",
    "data_processing",
    "application",
    "monitor",
    "controller",
    "optimizer",
    "service",
    "qc",
    "custom",
)

# Allowed status changes without `force` (the server's state machine).
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"queued", "in_progress"}),
    "queued": frozenset({"created", "in_progress", "stopped"}),
    "in_progress": frozenset({"stopped", "failed", "created", "completed"}),
    "stopped": frozenset(
        {
            "closed",
            "created",
            "failed",
            "queued",
            "in_progress",
            "published",
            "publishing",
            "completed",
        }
    ),
    "failed": frozenset({"created", "stopped", "published", "queued"}),
    "completed": frozenset({"published", "in_progress", "created"}),
    "closed": frozenset({"created", "failed", "published", "publishing", "stopped"}),
    "published": frozenset(),
    "publishing": frozenset({"published", "created", "failed"}),
    "unknown": frozenset(TASK_STATUSES),
}

# A task no worker has updated for this long is not run by one (tasks.stop then stops it at once).
WORKER_LIVENESS_S = 600


def get_task(state: EmulatorState, task_id: Any, *, plural: bool = False) -> Doc:
    task = state.tasks.get(task_id) if isinstance(task_id, str) else None
    if task is None:
        if plural:
            raise invalid_task_id(ids=[task_id])
        raise invalid_task_id(id=task_id, company=state.company_id)
    return task


def new_task_doc(
    state: EmulatorState, task_id: str, user_id: str, name: str, task_type: str
) -> Doc:
    now = state.now_iso()
    return {
        "id": task_id,
        "name": name,
        "type": task_type,
        "status": "created",
        "status_reason": "",
        "status_message": "",
        "status_changed": now,
        "comment": "",
        "created": now,
        "last_update": now,
        "last_change": now,
        "last_changed_by": user_id,
        "user": user_id,
        "company": state.company_id,
        "project": None,
        "parent": None,
        "tags": [],
        "system_tags": [],
        "execution": {"queue": None, "parameters": {}, "artifacts": []},
        "script": {},
        "container": {},
        "hyperparams": {},
        "configuration": {},
        "runtime": {},
        "last_metrics": {},
        "last_iteration": 0,
        "models": {"input": [], "output": []},
        "output": {},
        "active_duration": 0,
    }


def touch(state: EmulatorState, task: Doc, user_id: str | None) -> dict[str, Any]:
    """Stamp a change by `user_id` on `task`; the stamped fields, for an answer's `fields`."""
    now = state.now_iso()
    task["last_update"] = now
    task["last_change"] = now
    if user_id:
        task["last_changed_by"] = user_id
    return {"last_update": now, "last_change": now, "last_changed_by": task["last_changed_by"]}


def set_status(
    state: EmulatorState,
    task: Doc,
    new_status: str,
    *,
    force: bool = False,
    status_reason: str | None = None,
    status_message: str | None = None,
    user_id: str | None = None,
    dequeue: bool = True,
) -> dict[str, Any]:
    """Change a task's status by the server's rules; return the updated fields.

    `dequeue=False` is the status endpoints' way (clearml-server's ChangeStatusRequest,
    bll/task/utils.py, never touches a queue): a queued task set to stopped stays queued.
    """
    current = task.get("status", "created")
    if new_status not in TASK_STATUSES:
        raise bad_request(12, "Validation error", "invalid status", status=new_status)
    if not force and new_status != current and new_status not in TRANSITIONS[current]:
        raise invalid_task_status(
            "Invalid status change", current_status=current, new_status=new_status
        )
    now_dt = state.now()
    now = iso(now_dt)
    fields: dict[str, Any] = {
        "status": new_status,
        "status_reason": status_reason or "",
        "status_message": status_message or "",
        "status_changed": now,
    }
    if new_status == "in_progress" and current != "in_progress":
        fields["started"] = now
    if new_status in ("completed", "stopped", "failed", "published"):
        fields["completed"] = now
        started = parse_iso(task.get("started"))
        if started is not None and current == "in_progress":
            fields["active_duration"] = int((now_dt - started).total_seconds())
    if dequeue and new_status != "queued" and current == "queued":
        remove_from_queues(state, task["id"])
    task.update(fields)
    fields.update(touch(state, task, user_id))
    return fields


def enqueue(
    state: EmulatorState,
    task: Doc,
    queue: Doc,
    *,
    force: bool = False,
    status_reason: str | None = None,
    status_message: str | None = None,
    user_id: str | None = None,
) -> dict[str, Any]:
    status = task.get("status")
    if status not in ("created", "stopped", "failed", "queued", "completed", "closed") and not (
        force
    ):
        raise invalid_task_status(
            "Invalid status change", current_status=status, new_status="queued"
        )
    for q in state.queues.values():
        if any(e["task"] == task["id"] for e in q["entries"]):
            raise bad_request(706, "Task already queued", None, task=task["id"])
    fields = set_status(
        state,
        task,
        "queued",
        force=True,
        status_reason=status_reason,
        status_message=status_message,
        user_id=user_id,
    )
    task.setdefault("execution", {})["queue"] = queue["id"]
    queue["entries"].append({"task": task["id"], "added": state.now_iso()})
    queue["last_update"] = state.now_iso()
    fields["execution.queue"] = queue["id"]
    return fields


def run_by_worker(state: EmulatorState, task: Doc) -> bool:
    """clearml-server's `is_run_by_worker` (bll/task/task_operations.py stop_task): the
    task names a worker and was updated within apiserver.workers.task_update_timeout."""
    last_update = parse_iso(task.get("last_update"))
    return bool(task.get("last_worker")) and (
        last_update is not None and (state.now() - last_update).total_seconds() < WORKER_LIVENESS_S
    )


def delete_task(state: EmulatorState, task_id: str) -> None:
    """The task, its queue entries and its console log are gone; its worker runs nothing."""
    remove_from_queues(state, task_id)
    state.tasks.pop(task_id, None)
    delete_task_log(state, task_id)
    for worker in state.workers.values():
        if worker.task_id == task_id:
            worker.task_id = None


def set_hyperparam(
    task: Doc,
    section: str,
    name: str,
    value: Any,
    *,
    type_: str | None = None,
    description: str | None = None,
) -> None:
    item: Doc = {"section": section, "name": name, "value": "" if value is None else str(value)}
    if type_ is not None:
        item["type"] = type_
    if description is not None:
        item["description"] = description
    task.setdefault("hyperparams", {}).setdefault(section, {})[name] = item


def set_metric(task: Doc, metric: str, variant: str, value: float, iteration: int = 0) -> None:
    bucket = task.setdefault("last_metrics", {}).setdefault(md5_hex(metric), {})
    key = md5_hex(variant)
    entry = bucket.get(key)
    value = float(value)
    if entry is None:
        bucket[key] = {
            "metric": metric,
            "variant": variant,
            "value": value,
            "min_value": value,
            "min_value_iteration": iteration,
            "max_value": value,
            "max_value_iteration": iteration,
            "first_value": value,
            "first_value_iteration": iteration,
            "mean_value": value,
            "count": 1,
        }
        return
    count = int(entry.get("count", 1)) + 1
    entry["mean_value"] = (float(entry.get("mean_value", value)) * (count - 1) + value) / count
    entry["count"] = count
    entry["value"] = value
    if value < entry["min_value"]:
        entry["min_value"], entry["min_value_iteration"] = value, iteration
    if value > entry["max_value"]:
        entry["max_value"], entry["max_value_iteration"] = value, iteration


__all__ = [
    "TASK_STATUSES",
    "TASK_TYPES",
    "TRANSITIONS",
    "delete_task",
    "enqueue",
    "get_task",
    "new_task_doc",
    "run_by_worker",
    "set_hyperparam",
    "set_metric",
    "set_status",
    "touch",
]

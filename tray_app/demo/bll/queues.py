"""Queues (apiserver/bll/queue/): lookups, the default queue, a new queue, a task's entries.

Tested in tests/unit/demo/test_emulator_tasks.py (enqueue, dequeue, stop) and
test_emulator_conformance.py.
"""

from __future__ import annotations

from typing import Any

from tray_app.demo.errors import bad_request, invalid_queue_id
from tray_app.demo.state import Doc, EmulatorState


def get_queue(state: EmulatorState, queue_id: Any) -> Doc:
    queue = state.queues.get(queue_id) if isinstance(queue_id, str) else None
    if queue is None:
        raise invalid_queue_id(id=queue_id)
    return queue


def queue_by_name(state: EmulatorState, name: str) -> Doc | None:
    for queue in state.queues.values():
        if queue["name"] == name:
            return queue
    return None


def default_queue(state: EmulatorState) -> Doc:
    for queue in state.queues.values():
        if "default" in queue.get("system_tags", []):
            return queue
    raise bad_request(707, "No queue was provided and no default queue could be found")


def add_queue(
    state: EmulatorState,
    name: str,
    *,
    system_tags: list[str] | None = None,
    tags: list[str] | None = None,
    display_name: str | None = None,
    queue_id: str | None = None,
    user_id: str | None = None,
) -> Doc:
    qid = queue_id or state.seeded_id()
    now = state.now_iso()
    queue: Doc = {
        "id": qid,
        "name": name,
        "display_name": display_name,
        "user": user_id or state.current_user_id,
        "company": state.company_id,
        "created": now,
        "last_update": now,
        "tags": list(tags or []),
        "system_tags": list(system_tags or []),
        "entries": [],
        "metadata": {},
    }
    state.queues[qid] = queue
    return queue


def remove_from_queues(state: EmulatorState, task_id: str) -> int:
    """Take every entry of `task_id` out of every queue; how many there were."""
    removed = 0
    for queue in state.queues.values():
        before = len(queue["entries"])
        queue["entries"] = [e for e in queue["entries"] if e["task"] != task_id]
        removed += before - len(queue["entries"])
    return removed


__all__ = ["add_queue", "default_queue", "get_queue", "queue_by_name", "remove_from_queues"]

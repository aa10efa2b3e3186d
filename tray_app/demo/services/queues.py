"""queues.* (apiserver/services/queues.py, bll/queue/).

Tested in tests/unit/demo/test_emulator_tasks.py and test_emulator_conformance.py.
"""

from __future__ import annotations

import copy

from tray_app.demo.bll.queues import add_queue, default_queue, get_queue, queue_by_name
from tray_app.demo.bll.tasks import get_task
from tray_app.demo.errors import bad_request, validation_error
from tray_app.demo.query import QuerySpec, ensure_list, project, require, run_query
from tray_app.demo.services.base import Call, Doc, as_bool, endpoint

# database/model/queue.py `get_all_query_options`: only these keys filter.
QUEUE_SPEC = QuerySpec(
    list_fields=("tags", "system_tags", "id", "metadata.*"),
    regex_fields=("name",),
    field_names=(),
)
HIDDEN_QUEUE_TAGS = ("k8s-glue",)


def _queues(call: Call, body: Doc, *, ex: bool) -> Doc:
    state = call.state
    docs = list(state.queues.values())
    if not (body.get("id") or body.get("name") or as_bool(body.get("search_hidden"))):
        docs = [
            q for q in docs if not any(t in HIDDEN_QUEUE_TAGS for t in q.get("system_tags", []))
        ]
    result, scroll = run_query(docs, body, QUEUE_SPEC, state.scrolls, state.new_id)
    max_entries = body.get("max_task_entries")
    out = []
    for q in result:
        doc = copy.deepcopy(q)
        if max_entries is not None:
            doc["entries"] = doc["entries"][: int(max_entries)]
        if ex:
            workers = []
            for w in state.workers.values():
                if q["id"] in w.queue_ids:
                    t = state.tasks.get(w.task_id or "")
                    workers.append(
                        {
                            "name": w.id,
                            "ip": w.ip,
                            "key": f"worker_{state.company_id}_{w.user_id}_{w.id}",
                            "task": {"id": t["id"], "name": t["name"]} if t else None,
                        }
                    )
            doc["workers"] = workers
            for entry in doc["entries"]:
                t = state.tasks.get(entry["task"])
                if "entries.task.name" in (body.get("only_fields") or []):
                    entry["task"] = {"id": entry["task"], "name": t["name"] if t else None}
        fields = body.get("only_fields")
        if fields:
            fields = [f for f in fields if f != "entries.task.name"] + (
                ["entries"] if "entries.task.name" in fields else []
            )
        out.append(project(doc, fields))
    data: Doc = {"queues": out}
    if scroll:
        data["scroll_id"] = scroll
    return data


@endpoint("queues.get_all", min_version="2.4")
def queues_get_all(call: Call, body: Doc) -> Doc:
    return _queues(call, body, ex=False)


@endpoint("queues.get_all_ex", min_version="2.4")
def queues_get_all_ex(call: Call, body: Doc) -> Doc:
    return _queues(call, body, ex=True)


@endpoint("queues.get_by_id", min_version="2.4")
def queues_get_by_id(call: Call, body: Doc) -> Doc:
    require(body, "queue")
    queue = copy.deepcopy(get_queue(call.state, body["queue"]))
    if body.get("max_task_entries") is not None:
        queue["entries"] = queue["entries"][: int(body["max_task_entries"])]
    return {"queue": queue}


@endpoint("queues.get_default", min_version="2.4")
def queues_get_default(call: Call, body: Doc) -> Doc:
    if body:
        raise validation_error("Additional properties are not allowed")
    queue = default_queue(call.state)
    return {"id": queue["id"], "name": queue["name"]}


@endpoint("queues.create", min_version="2.4")
def queues_create(call: Call, body: Doc) -> Doc:
    require(body, "name")
    state = call.state
    if queue_by_name(state, str(body["name"])) is not None:
        raise bad_request(702, "Queue with this name already exists", None, name=body["name"])
    queue = add_queue(
        state,
        str(body["name"]),
        system_tags=ensure_list(body.get("system_tags"), "system_tags"),
        tags=ensure_list(body.get("tags"), "tags"),
        display_name=body.get("display_name"),
        queue_id=state.new_id(),
        user_id=call.user_id,
    )
    return {"id": queue["id"]}


@endpoint("queues.update", min_version="2.4")
def queues_update(call: Call, body: Doc) -> Doc:
    require(body, "queue")
    queue = get_queue(call.state, body["queue"])
    fields: Doc = {}
    for key in ("name", "display_name", "tags", "system_tags"):
        if key in body:
            queue[key] = body[key]
            fields[key] = body[key]
    return {"updated": 1, "fields": fields}


@endpoint("queues.delete", min_version="2.4")
def queues_delete(call: Call, body: Doc) -> Doc:
    require(body, "queue")
    state = call.state
    queue = get_queue(state, body["queue"])
    if queue["entries"] and not as_bool(body.get("force")):
        raise bad_request(703, "Queue is not empty", None, queue=queue["id"])
    del state.queues[queue["id"]]
    return {"deleted": 1}


@endpoint("queues.add_task", min_version="2.4")
def queues_add_task(call: Call, body: Doc) -> Doc:
    require(body, "queue", "task")
    queue = get_queue(call.state, body["queue"])
    get_task(call.state, body["task"])
    queue["entries"].append({"task": body["task"], "added": call.state.now_iso()})
    return {"added": 1}


@endpoint("queues.remove_task", min_version="2.4")
def queues_remove_task(call: Call, body: Doc) -> Doc:
    require(body, "queue", "task")
    queue = get_queue(call.state, body["queue"])
    before = len(queue["entries"])
    queue["entries"] = [e for e in queue["entries"] if e["task"] != body["task"]]
    return {"removed": before - len(queue["entries"])}


@endpoint("queues.get_next_task", min_version="2.4")
def queues_get_next_task(call: Call, body: Doc) -> Doc:
    require(body, "queue")
    queue = get_queue(call.state, body["queue"])
    if not queue["entries"]:
        return {}
    entry = queue["entries"].pop(0)
    task = call.state.tasks.get(entry["task"])
    if task is not None and task["status"] == "stopped":
        # services/queues.py: "fix racing condition that can result in the task being aborted
        # by an agent after it was already placed in a queue" -- it runs after all.
        task["status"] = "queued"
    return {"entry": entry}


@endpoint("queues.get_num_entries", min_version="2.20")
def queues_get_num_entries(call: Call, body: Doc) -> Doc:
    require(body, "queue")
    return {"num": len(get_queue(call.state, body["queue"])["entries"])}


@endpoint("queues.get_queue_metrics", min_version="2.4")
def queues_get_queue_metrics(call: Call, body: Doc) -> Doc:
    return {"queues": []}

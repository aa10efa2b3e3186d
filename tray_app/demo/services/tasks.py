"""tasks.* (apiserver/services/tasks.py, bll/task/).

Tested in tests/unit/demo/test_emulator_tasks.py, test_emulator.py (queries) and
test_emulator_conformance.py.
"""

from __future__ import annotations

import copy
from typing import Any

from tray_app.demo.bll.events import delete_task_log
from tray_app.demo.bll.projects import add_project, project_by_name
from tray_app.demo.bll.queues import (
    add_queue,
    default_queue,
    get_queue,
    queue_by_name,
    remove_from_queues,
)
from tray_app.demo.bll.tasks import (
    TASK_TYPES,
    delete_task,
    enqueue,
    get_task,
    new_task_doc,
    run_by_worker,
    set_hyperparam,
    set_status,
    touch,
)
from tray_app.demo.errors import (
    bad_request,
    invalid_project_id,
    invalid_task_status,
    missing_fields,
    validation_error,
)
from tray_app.demo.query import QuerySpec, ensure_list, lookup, project, require, run_query
from tray_app.demo.services.base import Call, Doc, Handler, as_bool, endpoint, updated
from tray_app.demo.state import EmulatorState

# database/model/task/task.py `get_all_query_options`: only these keys filter; any other key
# of a get_all request is ignored. (`created`/`started` are range fields there: [min, max].)
TASK_SPEC = QuerySpec(
    list_fields=(
        "id",
        "user",
        "tags",
        "system_tags",
        "type",
        "status",
        "project",
        "parent",
        "hyperparams.*",
        "execution.queue",
        "models.input.model",
    ),
    regex_fields=("name", "comment", "report"),
    date_fields=("status_changed", "last_update", "last_change", "created", "started"),
    text_fields=("id", "name", "comment"),
    field_names=(),
    exact_fields=("runtime.*",),
)
# The Task document's fields (get_fields()): a projection naming another is 400/14.
TASK_DOC_FIELDS = frozenset(
    [
        "id",
        "name",
        "type",
        "status",
        "status_reason",
        "status_message",
        "status_changed",
        "comment",
        "report",
        "report_assets",
        "created",
        "started",
        "completed",
        "published",
        "active_duration",
        "parent",
        "project",
        "output",
        "execution",
        "tags",
        "system_tags",
        "script",
        "last_worker",
        "last_worker_report",
        "last_update",
        "last_change",
        "last_iteration",
        "last_metrics",
        "unique_metrics",
        "metric_stats",
        "company_origin",
        "duration",
        "hyperparams",
        "configuration",
        "runtime",
        "models",
        "container",
        "enqueue_status",
        "last_changed_by",
        "company",
        "user",
    ]
)
# `exclude_by_default=True` fields: left out of an answer that names no projection.
TASK_EXCLUDED_BY_DEFAULT = ("unique_metrics", "company_origin", "enqueue_status")


# Joins the web-UI endpoints resolve: requested field -> (reference field, collection).
_JOINS: dict[str, tuple[str, str]] = {
    "user.name": ("user", "users"),
    "project.name": ("project", "projects"),
    "execution.queue.name": ("execution.queue", "queues"),
    "parent.name": ("parent", "tasks"),
    "last_changed_by.name": ("last_changed_by", "users"),
}


def _set_nested(out: Doc, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = out
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def query_tasks(call: Call, body: Doc, *, joins: bool) -> Doc:
    state = call.state
    docs: list[Doc] = list(state.tasks.values())
    if not as_bool(body.get("search_hidden")) and not body.get("id"):
        docs = [d for d in docs if "hidden" not in (d.get("system_tags") or [])]
    only_fields = body.get("only_fields") or None
    if only_fields is not None and not isinstance(only_fields, list):
        raise validation_error("only_fields must be a list")
    if only_fields:
        # database/projection.py: an unknown top-level field is 400/14 invalid_fields.
        invalid = [
            f
            for f in only_fields
            if not isinstance(f, str) or f.lstrip("-").split(".", 1)[0] not in TASK_DOC_FIELDS
        ]
        if invalid:
            raise bad_request(
                14, "Fields not defined for object", None, fields=invalid, object="Task"
            )
    join_fields = [f for f in (only_fields or []) if f in _JOINS] if joins else []
    result, scroll = run_query(docs, body, TASK_SPEC, state.scrolls, state.new_id)
    plain_fields = [f for f in only_fields if f not in join_fields] if only_fields else None
    if only_fields and not plain_fields:
        plain_fields = ["id"]
    tasks = []
    collections = {
        "users": state.users,
        "projects": state.projects,
        "queues": state.queues,
        "tasks": state.tasks,
    }
    for doc in result:
        out = project(doc, plain_fields)
        if not only_fields:
            for key in TASK_EXCLUDED_BY_DEFAULT:
                out.pop(key, None)
        for jf in join_fields:
            ref_path, coll = _JOINS[jf]
            ref = lookup(doc, ref_path)
            if not ref:
                continue
            target = collections[coll].get(ref)
            # A reference whose target is gone joins to {id} alone (projection.py proxy).
            _set_nested(
                out, ref_path, {"id": ref, "name": target["name"]} if target else {"id": ref}
            )
        tasks.append(out)
    out_doc: Doc = {"tasks": tasks}
    if scroll:
        out_doc["scroll_id"] = scroll
    return out_doc


@endpoint("tasks.get_all")
def tasks_get_all(call: Call, body: Doc) -> Doc:
    return query_tasks(call, body, joins=False)


@endpoint("tasks.get_all_ex", min_version="2.1")
def tasks_get_all_ex(call: Call, body: Doc) -> Doc:
    return query_tasks(call, body, joins=True)


@endpoint("tasks.get_by_id")
def tasks_get_by_id(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = get_task(call.state, body["task"], plural=True)
    return {"task": copy.deepcopy(task)}


@endpoint("tasks.get_by_id_ex", min_version="2.11")
def tasks_get_by_id_ex(call: Call, body: Doc) -> Doc:
    require(body, "id", declared=True)
    ids = ensure_list(body.get("id"), "id")
    for tid in ids:
        get_task(call.state, tid, plural=True)
    return query_tasks(call, body, joins=True)


_EMBEDDED_MERGE = ("execution", "script", "container", "output")
_EDITABLE = (
    "name",
    "type",
    "tags",
    "system_tags",
    "comment",
    "parent",
    "project",
    "execution",
    "script",
    "hyperparams",
    "configuration",
    "container",
    "models",
    "runtime",
    "output",
)


def _check_type(task_type: Any) -> None:
    if task_type not in TASK_TYPES:
        raise validation_error("invalid task type", type=task_type)


def _apply_fields(state: EmulatorState, task: Doc, body: Doc, fields: Doc) -> None:
    for key in _EDITABLE:
        if key not in body:
            continue
        value = copy.deepcopy(body[key])
        if key == "type":
            _check_type(value)
        if key == "project" and value and value not in state.projects:
            raise invalid_project_id(id=value)
        if key == "parent" and value and value not in state.tasks:
            raise bad_request(101, "Invalid task id", None, parent=value)
        if key in _EMBEDDED_MERGE and isinstance(value, dict):
            merged = dict(task.get(key) or {})
            merged.update(value)
            value = merged
        if key in ("tags", "system_tags"):
            value = ensure_list(value, key)
        task[key] = value
        fields[key] = copy.deepcopy(value)
    if "output_dest" in body:
        task.setdefault("output", {})["destination"] = body["output_dest"]
        fields["output.destination"] = body["output_dest"]


@endpoint("tasks.create")
def tasks_create(call: Call, body: Doc) -> Doc:
    state = call.state
    missing = [k for k in ("name", "type") if not body.get(k)]
    if missing:
        raise missing_fields(missing)
    if len(str(body["name"])) < 3:
        raise validation_error("name must be at least 3 characters", name=body["name"])
    _check_type(body["type"])
    tid = state.new_id()
    task = new_task_doc(state, tid, call.user_id or "", str(body["name"]), str(body["type"]))
    safe = {k: v for k, v in body.items() if k != "runtime"}
    _apply_fields(state, task, safe, {})
    task.setdefault("execution", {}).setdefault("queue", None)
    state.tasks[tid] = task
    return {"id": tid}


@endpoint("tasks.validate")
def tasks_validate(call: Call, body: Doc) -> Doc:
    return {}


@endpoint("tasks.edit")
def tasks_edit(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    if task["status"] != "created" and not as_bool(body.get("force")):
        raise invalid_task_status(None, expected="created", status=task["status"])
    if "runtime" in body and body["runtime"] is not None and not isinstance(body["runtime"], dict):
        raise validation_error("runtime must be an object")
    fields: Doc = {}
    _apply_fields(state, task, body, fields)
    fields.update(touch(state, task, call.user_id))
    return {"updated": 1, "fields": fields}


@endpoint("tasks.edit_runtime", min_version="2.34")
def tasks_edit_runtime(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = get_task(call.state, body["task"])
    runtime = task.setdefault("runtime", {})
    n = 0
    for key, value in (body.get("add_or_update") or {}).items():
        runtime[key] = value
        n += 1
    for key in body.get("remove") or []:
        if runtime.pop(key, None) is not None:
            n += 1
    touch(call.state, task, call.user_id)
    return {"updated": n}


@endpoint("tasks.update")
def tasks_update(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    fields: Doc = {}
    for key in ("name", "tags", "system_tags", "comment", "project"):
        if key in body:
            if key == "project" and body[key] and body[key] not in state.projects:
                raise invalid_project_id(id=body[key])
            task[key] = copy.deepcopy(body[key])
            fields[key] = copy.deepcopy(body[key])
    fields.update(touch(state, task, call.user_id))
    return {"updated": 1, "fields": fields}


def _only_properties(items: list[Doc]) -> bool:
    return bool(items) and all(i.get("section") == "properties" for i in items)


@endpoint("tasks.edit_hyper_params", min_version="2.9")
def tasks_edit_hyper_params(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    items = ensure_list(body.get("hyperparams"), "hyperparams")
    if not all(isinstance(i, dict) for i in items):
        raise validation_error("hyperparams items must be objects")
    replace = body.get("replace_hyperparams") or "none"
    if replace not in ("none", "section", "all"):
        raise validation_error("invalid replace_hyperparams", replace_hyperparams=replace)
    if (
        task["status"] != "created"
        and not as_bool(body.get("force"))
        and not (_only_properties(items) and replace != "all")
    ):
        raise invalid_task_status(None, expected="created", status=task["status"])
    for item in items:
        if not item.get("section") or "name" not in item:
            raise missing_fields(["section", "name"])
    hyper = task.setdefault("hyperparams", {})
    if replace == "all":
        hyper.clear()
    elif replace == "section":
        for section in {i["section"] for i in items}:
            hyper.pop(section, None)
    for item in items:
        set_hyperparam(
            task,
            item["section"],
            item["name"],
            item.get("value"),
            type_=item.get("type"),
            description=item.get("description"),
        )
    touch(state, task, call.user_id)
    return {"updated": 1}


@endpoint("tasks.delete_hyper_params", min_version="2.9")
def tasks_delete_hyper_params(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = get_task(call.state, body["task"])
    items = ensure_list(body.get("hyperparams"), "hyperparams")
    if (
        task["status"] != "created"
        and not as_bool(body.get("force"))
        and not _only_properties(items)
    ):
        raise invalid_task_status(None, expected="created", status=task["status"])
    hyper = task.setdefault("hyperparams", {})
    deleted = 0
    for item in items:
        section = item.get("section")
        if section not in hyper:
            continue
        if item.get("name"):
            if hyper[section].pop(item["name"], None) is not None:
                deleted += 1
            if not hyper[section]:
                del hyper[section]
        else:
            deleted += len(hyper.pop(section))
    return {"deleted": deleted}


@endpoint("tasks.get_hyper_params", min_version="2.9")
def tasks_get_hyper_params(call: Call, body: Doc) -> Doc:
    ids = ensure_list(body.get("tasks"), "tasks")
    if not ids:
        raise missing_fields(["tasks"])
    state = call.state
    unknown = [t for t in ids if t not in state.tasks]
    if unknown:
        from tray_app.demo.errors import invalid_task_id

        raise invalid_task_id(ids=unknown)
    params = []
    for tid in ids:
        hyper = state.tasks[tid].get("hyperparams") or {}
        items = [
            {"section": s, "name": n, "type": "", "description": "", **copy.deepcopy(v)}
            for s, section in sorted(hyper.items())
            for n, v in sorted(section.items())
        ]
        params.append({"task": tid, "hyperparams": items})
    return {"params": params}


@endpoint("tasks.edit_configuration", min_version="2.9")
def tasks_edit_configuration(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    if task["status"] != "created" and not as_bool(body.get("force")):
        raise invalid_task_status(None, expected="created", status=task["status"])
    items = ensure_list(body.get("configuration"), "configuration")
    conf = task.setdefault("configuration", {})
    if as_bool(body.get("replace_configuration")):
        conf.clear()
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            raise missing_fields(["name"])
        conf[item["name"]] = {
            "name": item["name"],
            "value": item.get("value", ""),
            "type": item.get("type", ""),
            "description": item.get("description", ""),
        }
    touch(state, task, call.user_id)
    return {"updated": 1}


@endpoint("tasks.delete_configuration", min_version="2.9")
def tasks_delete_configuration(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = get_task(call.state, body["task"])
    names = ensure_list(body.get("configuration"), "configuration")
    conf = task.setdefault("configuration", {})
    deleted = sum(1 for n in names if conf.pop(n, None) is not None)
    return {"deleted": deleted}


def _tasks_for(call: Call, body: Doc) -> list[Doc]:
    ids = ensure_list(body.get("tasks"), "tasks")
    if not ids:
        raise missing_fields(["tasks"])
    unknown = [t for t in ids if t not in call.state.tasks]
    if unknown:
        from tray_app.demo.errors import invalid_task_id

        raise invalid_task_id(ids=unknown)
    return [call.state.tasks[t] for t in ids]


@endpoint("tasks.get_configurations", min_version="2.9")
def tasks_get_configurations(call: Call, body: Doc) -> Doc:
    names = body.get("names")
    out = []
    for task in _tasks_for(call, body):
        conf = task.get("configuration") or {}
        items = [copy.deepcopy(v) for k, v in sorted(conf.items()) if names is None or k in names]
        out.append({"task": task["id"], "configuration": items})
    return {"configurations": out}


@endpoint("tasks.get_configuration_names", min_version="2.9")
def tasks_get_configuration_names(call: Call, body: Doc) -> Doc:
    skip_empty = as_bool(body.get("skip_empty", True))
    out = []
    for task in _tasks_for(call, body):
        conf = task.get("configuration") or {}
        names = sorted(k for k, v in conf.items() if not skip_empty or v.get("value"))
        out.append({"task": task["id"], "names": names})
    return {"configurations": out}


@endpoint("tasks.enqueue")
def tasks_enqueue(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    if body.get("queue"):
        queue = get_queue(state, body["queue"])
    elif body.get("queue_name"):
        found = queue_by_name(state, str(body["queue_name"]))
        if found is None:  # the server creates a queue named in the request (API 2.19)
            found = add_queue(
                state, str(body["queue_name"]), queue_id=state.new_id(), user_id=call.user_id
            )
        queue = found
    else:
        queue = default_queue(state)
    fields = enqueue(
        state,
        task,
        queue,
        force=as_bool(body.get("force")),
        status_reason=body.get("status_reason"),
        status_message=body.get("status_message"),
        user_id=call.user_id,
    )
    out: Doc = {"queued": 1, "updated": 1, "fields": fields}
    if body.get("verify_watched_queue"):
        out["queue_watched"] = any(queue["id"] in w.queue_ids for w in state.workers.values())
    return out


@endpoint("tasks.dequeue")
def tasks_dequeue(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    if task["status"] != "queued":
        raise invalid_task_status(None, expected="queued", status=task["status"])
    fields = set_status(
        state,
        task,
        "created",
        status_reason=body.get("status_reason"),
        status_message=body.get("status_message"),
        user_id=call.user_id,
    )
    return {"dequeued": 1, "updated": 1, "fields": fields}


@endpoint("tasks.stop")
def tasks_stop(call: Call, body: Doc) -> Doc:
    """bll/task/task_operations.py `stop_task`: a queued task is dequeued and stopped, a
    development task or one no worker updated within 600 s is stopped, any other keeps its
    status with the message "stopping" for its worker to act on. `force` only skips the
    status-transition check; it never forces "stopped"."""
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    force = as_bool(body.get("force"))
    status = task["status"]
    is_queued = status == "queued"
    development = "development" in (task.get("system_tags") or [])
    if is_queued or development or not run_by_worker(state, task):
        if is_queued:
            remove_from_queues(state, task["id"])
        fields = set_status(
            state,
            task,
            "stopped",
            force=force,
            status_reason=body.get("status_reason"),
            status_message=f"Stopped by {call.user['name']}",
            user_id=call.user_id,
        )
        return updated(fields)
    fields = set_status(
        state,
        task,
        status,
        force=force,
        status_reason=body.get("status_reason"),
        status_message="stopping",
        user_id=call.user_id,
    )
    return updated(fields)


def _status_endpoint(new_status: str, extra: str | None = None) -> Handler:
    def handler(call: Call, body: Doc) -> Doc:
        require(body, "task")
        state = call.state
        task = get_task(state, body["task"])
        fields = set_status(
            state,
            task,
            new_status,
            force=as_bool(body.get("force")),
            status_reason=body.get("status_reason"),
            status_message=body.get("status_message"),
            user_id=call.user_id,
            dequeue=False,
        )
        out = updated(fields)
        if extra:
            out[extra] = 1
        return out

    return handler


endpoint("tasks.stopped")(_status_endpoint("stopped"))
endpoint("tasks.started")(_status_endpoint("in_progress", "started"))
endpoint("tasks.failed")(_status_endpoint("failed"))
endpoint("tasks.completed", min_version="2.2")(_status_endpoint("completed"))
endpoint("tasks.close")(_status_endpoint("closed"))
endpoint("tasks.publish")(_status_endpoint("published", "committed_versions_results"))


@endpoint("tasks.reset")
def tasks_reset(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    if task["status"] == "published" and not as_bool(body.get("force")):
        raise invalid_task_status(None, expected="not published", status=task["status"])
    dequeued = remove_from_queues(state, task["id"])
    fields = set_status(state, task, "created", force=True, user_id=call.user_id)
    for key in ("started", "completed", "last_worker", "last_worker_report"):
        task.pop(key, None)
    task["last_metrics"] = {}
    task["active_duration"] = 0
    deleted_events = delete_task_log(state, task["id"])
    return {
        "updated": 1,
        "fields": fields,
        "dequeued": {"removed": dequeued} if dequeued else {},
        "events": {"deleted": deleted_events},
        "deleted_models": 0,
        "urls": None,
    }


@endpoint("tasks.delete")
def tasks_delete(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = get_task(state, body["task"])
    if task["status"] != "created" and not as_bool(body.get("force")):
        raise bad_request(
            123,
            "Task cannot be deleted",
            "due to status, use force=True",
            task=task["id"],
            expected="created",
            current=task["status"],
        )
    delete_task(state, task["id"])
    return {
        "deleted": True,
        "updated_children": 0,
        "updated_models": 0,
        "deleted_models": 0,
        "urls": None,
    }


@endpoint("tasks.ping")
def tasks_ping(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = get_task(call.state, body["task"])
    task["last_update"] = call.state.now_iso()
    return {}


@endpoint("tasks.clone", min_version="2.5")
def tasks_clone(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    source = get_task(state, body["task"])
    tid = state.new_id()
    task = new_task_doc(
        state,
        tid,
        call.user_id or "",
        body.get("new_task_name") or f"Clone Of {source['name']}",
        source["type"],
    )
    for key in (
        "tags",
        "system_tags",
        "project",
        "script",
        "container",
        "hyperparams",
        "configuration",
        "execution",
        "models",
        "comment",
        "parent",
    ):
        task[key] = copy.deepcopy(source.get(key, task.get(key)))
    task["execution"] = {**(task.get("execution") or {}), "queue": None}
    mapping = {
        "new_task_comment": "comment",
        "new_task_tags": "tags",
        "new_task_system_tags": "system_tags",
        "new_task_parent": "parent",
        "new_task_project": "project",
        "new_task_hyperparams": "hyperparams",
        "new_task_configuration": "configuration",
        "new_task_container": "container",
    }
    for src, dst in mapping.items():
        if body.get(src) is not None:
            task[dst] = copy.deepcopy(body[src])
    if isinstance(body.get("execution_overrides"), dict):
        task["execution"].update(body["execution_overrides"])
    new_project = None
    if body.get("new_project_name"):
        existing = project_by_name(state, body["new_project_name"])
        if existing is None:
            existing = add_project(
                state, body["new_project_name"], call.user_id or "", project_id=state.new_id()
            )
            new_project = {"id": existing["id"], "name": existing["name"]}
        task["project"] = existing["id"]
    state.tasks[tid] = task
    out: Doc = {"id": tid}
    if new_project:
        out["new_project"] = new_project
    return out


@endpoint("tasks.set_requirements")
def tasks_set_requirements(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = get_task(call.state, body["task"])
    task.setdefault("script", {})["requirements"] = copy.deepcopy(body.get("requirements") or {})
    return updated(touch(call.state, task, call.user_id))


@endpoint("tasks.add_or_update_artifacts", min_version="2.10")
def tasks_add_or_update_artifacts(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = get_task(call.state, body["task"])
    artifacts = task.setdefault("execution", {}).setdefault("artifacts", [])
    by_key = {(a.get("key"), a.get("mode", "output")): a for a in artifacts}
    for art in ensure_list(body.get("artifacts"), "artifacts"):
        by_key[(art.get("key"), art.get("mode", "output"))] = copy.deepcopy(art)
    task["execution"]["artifacts"] = list(by_key.values())
    return {"updated": len(ensure_list(body.get("artifacts"), "artifacts"))}


@endpoint("tasks.get_types", min_version="2.8")
def tasks_get_types(call: Call, body: Doc) -> Doc:
    return {"types": sorted({t["type"] for t in call.state.tasks.values()})}

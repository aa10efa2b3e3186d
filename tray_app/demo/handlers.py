"""Endpoint implementations: `name -> handler(call, body) -> data`.

Handlers run synchronously under `state.lock`; they raise `ApiError` for error replies.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt

from tray_app.demo.errors import (
    ApiError,
    bad_request,
    endpoint_not_found,
    invalid_project_id,
    invalid_queue_id,
    invalid_task_status,
    invalid_user_id,
    missing_fields,
    validation_error,
)
from tray_app.demo.query import (
    QuerySpec,
    ensure_list,
    lookup,
    project,
    require,
    run_query,
)
from tray_app.demo.state import (
    TASK_TYPES,
    Credential,
    EmulatorState,
    iso,
)
from tray_app.demo.worker_stats import (
    AGGREGATIONS,
    STAT_KEYS,
    StatItem,
    get_stats,
    stat_documents,
)

Doc = dict[str, Any]


@dataclass(slots=True)
class Call:
    """One request as a handler sees it."""

    state: EmulatorState
    endpoint: str
    requested_version: str
    user_id: str | None
    ip: str = "127.0.0.1"
    worker: str | None = None
    raw_body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def user(self) -> Doc:
        assert self.user_id is not None
        return self.state.users[self.user_id]


Handler = Callable[[Call, Doc], Doc]


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    handler: Handler
    min_version: str = "1.0"
    auth: bool = True


ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(
    name: str, *, min_version: str = "1.0", auth: bool = True
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ENDPOINTS[name] = Endpoint(name, fn, min_version, auth)
        return fn

    return register


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)


def find_endpoint(name: str, version: str) -> Endpoint:
    ep = ENDPOINTS.get(name)
    if ep is None or version_tuple(version) < version_tuple(ep.min_version):
        raise endpoint_not_found(name, version)
    return ep


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _updated(fields: Mapping[str, Any]) -> Doc:
    return {"updated": 1, "fields": dict(fields)}


# ================================================================================================
# auth / server / debug
# ================================================================================================


def issue_token(state: EmulatorState, user_id: str, expiration_sec: float | None = None) -> str:
    user = state.users[user_id]
    now = state.now().timestamp()
    lifetime = state.token_lifetime if expiration_sec is None else float(expiration_sec)
    claims = {
        "auth_type": "Bearer",
        "identity": {
            "user": user_id,
            "company": state.company_id,
            "role": user.get("role", "user"),
            "user_name": user["name"],
            "company_name": state.company_name,
        },
        "session_id": state.new_id(),
        "iat": int(now),
        "exp": int(now + lifetime),
        "api_version": state.api_version,
        "server_version": state.server_version,
        "server_build": state.server_build,
        "feature_set": "basic",
    }
    return jwt.encode(claims, state.jwt_secret, algorithm="HS256")


def verify_token(state: EmulatorState, token: str) -> str:
    """The user id a Bearer token names, or ApiError 401/30."""
    from tray_app.demo.errors import invalid_token

    try:
        # exp is checked against the emulator's clock below; pyjwt would check iat against the
        # real clock and reject every token issued after `advance_time`.
        claims = jwt.decode(
            token,
            state.jwt_secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise invalid_token("Signature verification failed") from exc
    except jwt.PyJWTError as exc:
        raise invalid_token(str(exc) or "Invalid token") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= state.now().timestamp():
        raise invalid_token("Signature has expired")
    user_id = (claims.get("identity") or {}).get("user")
    if user_id not in state.users:
        raise invalid_token("Unknown user")
    return str(user_id)


@endpoint("auth.login")
def auth_login(call: Call, body: Doc) -> Doc:
    exp = body.get("expiration_sec")
    if exp is not None:
        try:
            exp_i = int(exp)
        except (TypeError, ValueError) as exc:
            raise validation_error("invalid expiration_sec", expiration_sec=exp) from exc
        if exp_i <= 0 or exp_i > 31536000:
            raise validation_error(
                "expiration_sec must be between 1 and 31536000", expiration_sec=exp_i
            )
        return {"token": issue_token(call.state, call.user_id or "", exp_i)}
    return {"token": issue_token(call.state, call.user_id or "")}


@endpoint("auth.create_credentials")
def auth_create_credentials(call: Call, body: Doc) -> Doc:
    state = call.state
    access = "EMU" + state.new_id()[:27].upper()
    secret = state.new_id() + state.new_id()[:18]
    label = str(body.get("label") or "")
    state.credentials[access] = Credential(
        access, secret, call.user_id or "", label, state.now_iso()
    )
    creds: Doc = {"access_key": access, "secret_key": secret}
    if label:
        creds["label"] = label
    return {"credentials": creds}


@endpoint("auth.get_credentials")
def auth_get_credentials(call: Call, body: Doc) -> Doc:
    return {
        "credentials": [
            {"access_key": c.access_key, "label": c.label, "last_used": None, "created": c.created}
            for c in call.state.credentials.values()
            if c.user_id == call.user_id
        ]
    }


@endpoint("auth.revoke_credentials")
def auth_revoke_credentials(call: Call, body: Doc) -> Doc:
    require(body, "access_key")
    cred = call.state.credentials.get(body["access_key"])
    if cred is None or cred.user_id != call.user_id:
        raise bad_request(61, "Access key not found for user", None, access_key=body["access_key"])
    del call.state.credentials[body["access_key"]]
    return {"revoked": 1}


@endpoint("debug.ping", auth=False)
def debug_ping(call: Call, body: Doc) -> Doc:
    return {**body, "msg": "ClearML server"}


@endpoint("server.info", min_version="2.1")
def server_info(call: Call, body: Doc) -> Doc:
    return {
        "version": call.state.server_version,
        "build": call.state.server_build,
        "commit": "emulator",
        "api_version": call.state.api_version,
    }


# ================================================================================================
# users
# ================================================================================================

USER_SPEC = QuerySpec(
    list_fields=("id", "role", "company"),
    text_fields=("id", "name"),
    field_names=("given_name", "family_name", "email", "created"),
)


def _user_public(state: EmulatorState, user: Doc) -> Doc:
    doc = {k: v for k, v in user.items() if k not in ("preferences", "avatar")}
    return doc


@endpoint("users.get_current_user")
def users_get_current_user(call: Call, body: Doc) -> Doc:
    if body:
        extra = ", ".join(repr(k) for k in body)
        verb = "was" if len(body) == 1 else "were"
        raise validation_error(f"Additional properties are not allowed ({extra} {verb} unexpected)")
    state = call.state
    user = dict(call.user)
    user["company"] = {"id": state.company_id, "name": state.company_name}
    return {"user": user, "getting_started": None, "settings": {"max_download_items": 1000}}


@endpoint("users.get_all")
def users_get_all(call: Call, body: Doc) -> Doc:
    docs = [_user_public(call.state, u) for u in call.state.users.values()]
    result, scroll = run_query(docs, body, USER_SPEC, call.state.scrolls, call.state.new_id)
    out: Doc = {"users": [project(u, body.get("only_fields")) for u in result]}
    if scroll:
        out["scroll_id"] = scroll
    return out


@endpoint("users.get_all_ex", min_version="2.1")
def users_get_all_ex(call: Call, body: Doc) -> Doc:
    return users_get_all(call, body)


@endpoint("users.get_by_id")
def users_get_by_id(call: Call, body: Doc) -> Doc:
    require(body, "user")
    user = call.state.users.get(body["user"])
    if user is None:
        raise invalid_user_id(id=body["user"])
    return {"user": _user_public(call.state, user)}


# ================================================================================================
# projects
# ================================================================================================

PROJECT_SPEC = QuerySpec(
    list_fields=("id", "tags", "system_tags", "user"),
    regex_fields=("name", "basename"),
    date_fields=("last_update", "created"),
    field_names=("description", "company", "default_output_destination", "parent"),
)


@endpoint("projects.get_all")
def projects_get_all(call: Call, body: Doc) -> Doc:
    state = call.state
    docs = list(state.projects.values())
    if not _bool(body.get("search_hidden")) and not body.get("id"):
        docs = [d for d in docs if "hidden" not in d.get("system_tags", [])]
    result, scroll = run_query(docs, body, PROJECT_SPEC, state.scrolls, state.new_id)
    out: Doc = {"projects": [project(p, body.get("only_fields")) for p in result]}
    if scroll:
        out["scroll_id"] = scroll
    return out


@endpoint("projects.get_all_ex", min_version="2.1")
def projects_get_all_ex(call: Call, body: Doc) -> Doc:
    return projects_get_all(call, body)


@endpoint("models.get_all")
def models_get_all(call: Call, body: Doc) -> Doc:
    # The emulator stores no models; clearml-session asks for a session's models when it
    # deletes stale sessions (Task.delete), and a real server answers with an empty list.
    return {"models": []}


@endpoint("models.get_all_ex", min_version="2.1")
def models_get_all_ex(call: Call, body: Doc) -> Doc:
    return models_get_all(call, body)


@endpoint("projects.get_by_id")
def projects_get_by_id(call: Call, body: Doc) -> Doc:
    require(body, "project")
    proj = call.state.projects.get(body["project"])
    if proj is None:
        raise invalid_project_id(id=body["project"])
    return {"project": copy.deepcopy(proj)}


@endpoint("projects.create")
def projects_create(call: Call, body: Doc) -> Doc:
    require(body, "name")
    state = call.state
    name = str(body["name"]).strip()
    if len(name) < 3:
        raise validation_error("name is too short", name=name)
    if state.project_by_name(name) is not None:
        raise bad_request(407, "Project name already exists", None, name=name)
    proj = state.add_project(
        name,
        call.user_id or "",
        description=str(body.get("description") or ""),
        project_id=state.new_id(),
    )
    proj["tags"] = ensure_list(body.get("tags"), "tags")
    proj["system_tags"] = ensure_list(body.get("system_tags"), "system_tags")
    if body.get("default_output_destination"):
        proj["default_output_destination"] = body["default_output_destination"]
    return {"id": proj["id"]}


@endpoint("projects.update")
def projects_update(call: Call, body: Doc) -> Doc:
    require(body, "project")
    proj = call.state.projects.get(body["project"])
    if proj is None:
        raise invalid_project_id(id=body["project"])
    fields: Doc = {}
    for key in ("name", "description", "tags", "system_tags", "default_output_destination"):
        if key in body:
            proj[key] = body[key]
            fields[key] = body[key]
    proj["last_update"] = call.state.now_iso()
    fields["last_update"] = proj["last_update"]
    return {"updated": 1, "fields": fields}


@endpoint("projects.delete")
def projects_delete(call: Call, body: Doc) -> Doc:
    require(body, "project")
    state = call.state
    if body["project"] not in state.projects:
        raise invalid_project_id(id=body["project"])
    tasks = [t for t in state.tasks.values() if t.get("project") == body["project"]]
    if tasks and not _bool(body.get("force")):
        raise bad_request(
            402, "Project has associated tasks (use force=True)", None, id=body["project"]
        )
    for t in tasks:
        state.delete_task(t["id"])
    del state.projects[body["project"]]
    return {"deleted": 1, "disassociated_tasks": 0, "deleted_tasks": len(tasks)}


# ================================================================================================
# tasks
# ================================================================================================

TASK_SPEC = QuerySpec(
    list_fields=(
        "id",
        "user",
        "project",
        "type",
        "status",
        "tags",
        "system_tags",
        "parent",
        "execution.queue",
        "last_worker",
    ),
    regex_fields=("name",),
    date_fields=(
        "status_changed",
        "last_update",
        "last_change",
        "created",
        "started",
        "completed",
        "last_worker_report",
    ),
    text_fields=("id", "name", "comment"),
    field_names=(
        "status_reason",
        "status_message",
        "comment",
        "company",
        "last_changed_by",
        "execution",
        "script",
        "container",
        "hyperparams",
        "configuration",
        "runtime",
        "last_metrics",
        "last_iteration",
        "models",
        "output",
        "active_duration",
    ),
)

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


def _expand_filters(body: Doc) -> Doc:
    """`filters` (API 2.27) -> the classic list filters."""
    filters = body.get("filters")
    if not isinstance(filters, Mapping):
        return body
    body = {k: v for k, v in body.items() if k != "filters"}
    for fld, spec in filters.items():
        if not isinstance(spec, Mapping):
            continue
        values: list[Any] = []
        for mode in ("any", "all"):
            part = spec.get(mode)
            if not isinstance(part, Mapping):
                continue
            if mode == "all":
                values.append("__$all")
            values.extend(part.get("include") or [])
            values.extend("-" + str(v) for v in part.get("exclude") or [])
        if values:
            body[fld] = values
    return body


def query_tasks(call: Call, body: Doc, *, joins: bool) -> Doc:
    state = call.state
    body = _expand_filters(body)
    docs: list[Doc] = list(state.tasks.values())
    if not _bool(body.get("search_hidden")) and not body.get("id"):
        docs = [d for d in docs if "hidden" not in (d.get("system_tags") or [])]
    only_fields = body.get("only_fields") or None
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
        for jf in join_fields:
            ref_path, coll = _JOINS[jf]
            ref = lookup(doc, ref_path)
            if not ref:
                continue
            target = collections[coll].get(ref)
            _set_nested(out, ref_path, {"id": ref, "name": target["name"] if target else None})
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
    task = call.state.get_task(body["task"], plural=True)
    return {"task": copy.deepcopy(task)}


@endpoint("tasks.get_by_id_ex", min_version="2.11")
def tasks_get_by_id_ex(call: Call, body: Doc) -> Doc:
    ids = ensure_list(body.get("id"), "id")
    for tid in ids:
        call.state.get_task(tid, plural=True)
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
    task = state.new_task_doc(tid, call.user_id or "", str(body["name"]), str(body["type"]))
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
    task = state.get_task(body["task"])
    if task["status"] != "created" and not _bool(body.get("force")):
        raise invalid_task_status(None, expected="created", status=task["status"])
    if "runtime" in body and body["runtime"] is not None and not isinstance(body["runtime"], dict):
        raise validation_error("runtime must be an object")
    fields: Doc = {}
    _apply_fields(state, task, body, fields)
    fields.update(state._touch(task, call.user_id))
    return {"updated": 1, "fields": fields}


@endpoint("tasks.edit_runtime", min_version="2.34")
def tasks_edit_runtime(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = call.state.get_task(body["task"])
    runtime = task.setdefault("runtime", {})
    n = 0
    for key, value in (body.get("add_or_update") or {}).items():
        runtime[key] = value
        n += 1
    for key in body.get("remove") or []:
        if runtime.pop(key, None) is not None:
            n += 1
    call.state._touch(task, call.user_id)
    return {"updated": n}


@endpoint("tasks.update")
def tasks_update(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = state.get_task(body["task"])
    fields: Doc = {}
    for key in ("name", "tags", "system_tags", "comment", "project"):
        if key in body:
            if key == "project" and body[key] and body[key] not in state.projects:
                raise invalid_project_id(id=body[key])
            task[key] = copy.deepcopy(body[key])
            fields[key] = copy.deepcopy(body[key])
    fields.update(state._touch(task, call.user_id))
    return {"updated": 1, "fields": fields}


def _only_properties(items: list[Doc]) -> bool:
    return bool(items) and all(i.get("section") == "properties" for i in items)


@endpoint("tasks.edit_hyper_params", min_version="2.9")
def tasks_edit_hyper_params(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = state.get_task(body["task"])
    items = ensure_list(body.get("hyperparams"), "hyperparams")
    if not all(isinstance(i, dict) for i in items):
        raise validation_error("hyperparams items must be objects")
    replace = body.get("replace_hyperparams") or "none"
    if replace not in ("none", "section", "all"):
        raise validation_error("invalid replace_hyperparams", replace_hyperparams=replace)
    if (
        task["status"] != "created"
        and not _bool(body.get("force"))
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
        state.set_hyperparam(
            task,
            item["section"],
            item["name"],
            item.get("value"),
            type_=item.get("type"),
            description=item.get("description"),
        )
    state._touch(task, call.user_id)
    return {"updated": 1}


@endpoint("tasks.delete_hyper_params", min_version="2.9")
def tasks_delete_hyper_params(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = call.state.get_task(body["task"])
    items = ensure_list(body.get("hyperparams"), "hyperparams")
    if task["status"] != "created" and not _bool(body.get("force")) and not _only_properties(items):
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
    task = state.get_task(body["task"])
    if task["status"] != "created" and not _bool(body.get("force")):
        raise invalid_task_status(None, expected="created", status=task["status"])
    items = ensure_list(body.get("configuration"), "configuration")
    conf = task.setdefault("configuration", {})
    if _bool(body.get("replace_configuration")):
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
    state._touch(task, call.user_id)
    return {"updated": 1}


@endpoint("tasks.delete_configuration", min_version="2.9")
def tasks_delete_configuration(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = call.state.get_task(body["task"])
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
    skip_empty = _bool(body.get("skip_empty", True))
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
    task = state.get_task(body["task"])
    if body.get("queue"):
        queue = state.get_queue(body["queue"])
    elif body.get("queue_name"):
        found = state.queue_by_name(str(body["queue_name"]))
        if found is None:  # the server creates a queue named in the request (API 2.19)
            found = state.add_queue(
                str(body["queue_name"]), queue_id=state.new_id(), user_id=call.user_id
            )
        queue = found
    else:
        queue = state.default_queue()
    fields = state.enqueue(
        task,
        queue,
        force=_bool(body.get("force")),
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
    task = state.get_task(body["task"])
    if task["status"] != "queued":
        raise invalid_task_status(None, expected="queued", status=task["status"])
    fields = state.set_status(
        task,
        "created",
        status_reason=body.get("status_reason"),
        status_message=body.get("status_message"),
        user_id=call.user_id,
    )
    return {"dequeued": 1, "updated": 1, "fields": fields}


@endpoint("tasks.stop")
def tasks_stop(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task = state.get_task(body["task"])
    force = _bool(body.get("force"))
    status = task["status"]
    development = "development" in (task.get("system_tags") or [])
    if status == "queued" or development or state.live_worker_for(task) is None or force:
        fields = state.set_status(
            task,
            "stopped",
            force=force,
            status_reason=body.get("status_reason"),
            status_message=body.get("status_message") or f"Stopped by {call.user['name']}",
            user_id=call.user_id,
        )
        return _updated(fields)
    if status != "in_progress":
        raise invalid_task_status(
            "Invalid status change", current_status=status, new_status="stopped"
        )
    task["status_message"] = "stopping"
    task["status_reason"] = body.get("status_reason") or ""
    fields = {"status_message": "stopping", "status_reason": task["status_reason"]}
    fields.update(state._touch(task, call.user_id))
    return _updated(fields)


def _status_endpoint(new_status: str, extra: str | None = None) -> Handler:
    def handler(call: Call, body: Doc) -> Doc:
        require(body, "task")
        state = call.state
        task = state.get_task(body["task"])
        fields = state.set_status(
            task,
            new_status,
            force=_bool(body.get("force")),
            status_reason=body.get("status_reason"),
            status_message=body.get("status_message"),
            user_id=call.user_id,
        )
        out = _updated(fields)
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
    task = state.get_task(body["task"])
    if task["status"] == "published" and not _bool(body.get("force")):
        raise invalid_task_status(None, expected="not published", status=task["status"])
    dequeued = state.remove_from_queues(task["id"])
    fields = state.set_status(task, "created", force=True, user_id=call.user_id)
    for key in ("started", "completed", "last_worker", "last_worker_report"):
        task.pop(key, None)
    task["last_metrics"] = {}
    task["active_duration"] = 0
    deleted_events = len(state.logs.pop(task["id"], []))
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
    task = state.get_task(body["task"])
    if task["status"] != "created" and not _bool(body.get("force")):
        raise bad_request(
            123,
            "Task cannot be deleted",
            "due to status, use force=True",
            task=task["id"],
            expected="created",
            current=task["status"],
        )
    state.delete_task(task["id"])
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
    task = call.state.get_task(body["task"])
    task["last_update"] = call.state.now_iso()
    return {}


@endpoint("tasks.clone", min_version="2.5")
def tasks_clone(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    source = state.get_task(body["task"])
    tid = state.new_id()
    task = state.new_task_doc(
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
        existing = state.project_by_name(body["new_project_name"])
        if existing is None:
            existing = state.add_project(
                body["new_project_name"], call.user_id or "", project_id=state.new_id()
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
    task = call.state.get_task(body["task"])
    task.setdefault("script", {})["requirements"] = copy.deepcopy(body.get("requirements") or {})
    return _updated(call.state._touch(task, call.user_id))


@endpoint("tasks.add_or_update_artifacts", min_version="2.10")
def tasks_add_or_update_artifacts(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = call.state.get_task(body["task"])
    artifacts = task.setdefault("execution", {}).setdefault("artifacts", [])
    by_key = {(a.get("key"), a.get("mode", "output")): a for a in artifacts}
    for art in ensure_list(body.get("artifacts"), "artifacts"):
        by_key[(art.get("key"), art.get("mode", "output"))] = copy.deepcopy(art)
    task["execution"]["artifacts"] = list(by_key.values())
    return {"updated": len(ensure_list(body.get("artifacts"), "artifacts"))}


@endpoint("tasks.get_types", min_version="2.8")
def tasks_get_types(call: Call, body: Doc) -> Doc:
    return {"types": sorted({t["type"] for t in call.state.tasks.values()})}


# ================================================================================================
# queues
# ================================================================================================

QUEUE_SPEC = QuerySpec(
    list_fields=("id", "tags", "system_tags", "user"),
    regex_fields=("name", "display_name"),
    date_fields=("created", "last_update"),
    field_names=("company", "entries", "metadata"),
)
HIDDEN_QUEUE_TAGS = ("k8s-glue",)


def _queues(call: Call, body: Doc, *, ex: bool) -> Doc:
    state = call.state
    docs = list(state.queues.values())
    if not (body.get("id") or body.get("name") or _bool(body.get("search_hidden"))):
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
    queue = copy.deepcopy(call.state.get_queue(body["queue"]))
    if body.get("max_task_entries") is not None:
        queue["entries"] = queue["entries"][: int(body["max_task_entries"])]
    return {"queue": queue}


@endpoint("queues.get_default", min_version="2.4")
def queues_get_default(call: Call, body: Doc) -> Doc:
    if body:
        raise validation_error("Additional properties are not allowed")
    queue = call.state.default_queue()
    return {"id": queue["id"], "name": queue["name"]}


@endpoint("queues.create", min_version="2.4")
def queues_create(call: Call, body: Doc) -> Doc:
    require(body, "name")
    state = call.state
    if state.queue_by_name(str(body["name"])) is not None:
        raise bad_request(702, "Queue with this name already exists", None, name=body["name"])
    queue = state.add_queue(
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
    queue = call.state.get_queue(body["queue"])
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
    queue = state.get_queue(body["queue"])
    if queue["entries"] and not _bool(body.get("force")):
        raise bad_request(703, "Queue is not empty", None, queue=queue["id"])
    del state.queues[queue["id"]]
    return {"deleted": 1}


@endpoint("queues.add_task", min_version="2.4")
def queues_add_task(call: Call, body: Doc) -> Doc:
    require(body, "queue", "task")
    queue = call.state.get_queue(body["queue"])
    call.state.get_task(body["task"])
    queue["entries"].append({"task": body["task"], "added": call.state.now_iso()})
    return {"added": 1}


@endpoint("queues.remove_task", min_version="2.4")
def queues_remove_task(call: Call, body: Doc) -> Doc:
    require(body, "queue", "task")
    queue = call.state.get_queue(body["queue"])
    before = len(queue["entries"])
    queue["entries"] = [e for e in queue["entries"] if e["task"] != body["task"]]
    return {"removed": before - len(queue["entries"])}


@endpoint("queues.get_next_task", min_version="2.4")
def queues_get_next_task(call: Call, body: Doc) -> Doc:
    require(body, "queue")
    queue = call.state.get_queue(body["queue"])
    if not queue["entries"]:
        return {}
    entry = queue["entries"].pop(0)
    return {"entry": entry}


@endpoint("queues.get_num_entries", min_version="2.20")
def queues_get_num_entries(call: Call, body: Doc) -> Doc:
    require(body, "queue")
    return {"num": len(call.state.get_queue(body["queue"])["entries"])}


@endpoint("queues.get_queue_metrics", min_version="2.4")
def queues_get_queue_metrics(call: Call, body: Doc) -> Doc:
    return {"queues": []}


# ================================================================================================
# workers
# ================================================================================================


@endpoint("workers.register", min_version="2.4")
def workers_register(call: Call, body: Doc) -> Doc:
    require(body, "worker")
    state = call.state
    queue_ids = [_queue_id(state, q) for q in ensure_list(body.get("queues"), "queues")]
    state.register_worker(
        str(body["worker"]),
        call.user_id or "",
        call.ip,
        queue_ids=queue_ids,
        timeout=int(body.get("timeout") or 600),
        tags=body.get("tags"),
        system_tags=body.get("system_tags"),
    )
    return {}


def _queue_id(state: EmulatorState, ref: Any) -> str:
    if ref in state.queues:
        return str(ref)
    queue = state.queue_by_name(str(ref))
    if queue is None:
        raise invalid_queue_id(id=ref)
    return str(queue["id"])


@endpoint("workers.unregister", min_version="2.4")
def workers_unregister(call: Call, body: Doc) -> Doc:
    require(body, "worker")
    if call.state.workers.pop(str(body["worker"]), None) is None:
        raise bad_request(1001, "Worker is not registered", None, worker=body["worker"])
    return {}


@endpoint("workers.status_report", min_version="2.4")
def workers_status_report(call: Call, body: Doc) -> Doc:
    require(body, "worker")
    state = call.state
    worker = state.workers.get(str(body["worker"]))
    if worker is None:
        worker = state.register_worker(str(body["worker"]), call.user_id or "", call.ip)
    queue_ids = None
    if body.get("queues") is not None:
        queue_ids = [_queue_id(state, q) for q in ensure_list(body.get("queues"), "queues")]
    elif body.get("queue"):
        queue_ids = [_queue_id(state, body["queue"])]
    ts = body.get("timestamp")
    state.worker_report(
        worker,
        task_id=body.get("task") or None,
        machine_stats=body.get("machine_stats"),
        timestamp_ms=int(ts) if isinstance(ts, int | float) and ts > 10**11 else None,
        queue_ids=queue_ids,
    )
    return {}


@endpoint("workers.get_all", min_version="2.4")
def workers_get_all(call: Call, body: Doc) -> Doc:
    state = call.state
    last_seen = body.get("last_seen", 3600)
    now = state.now()
    pattern = body.get("worker_pattern")
    rx = None
    if pattern:
        rx = re.compile(
            "^" + re.escape(str(pattern)).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        )
    from tray_app.demo.query import compile_list_filter

    tag_filter = compile_list_filter(body["tags"]) if body.get("tags") else None
    sys_filter = compile_list_filter(body["system_tags"]) if body.get("system_tags") else None
    workers = []
    for w in state.workers.values():
        if last_seen and (now - w.last_activity_time).total_seconds() > float(last_seen):
            continue
        if rx is not None and not rx.match(w.id):
            continue
        if tag_filter is not None and not tag_filter(w.tags):
            continue
        if sys_filter is not None and not sys_filter(w.system_tags):
            continue
        workers.append(state.worker_doc(w))
    return {"workers": workers}


@endpoint("workers.get_stats", min_version="2.4")
def workers_get_stats(call: Call, body: Doc) -> Doc:
    state = call.state
    missing = [k for k in ("from_date", "to_date", "interval", "items") if body.get(k) is None]
    if missing:
        raise missing_fields(missing)
    try:
        from_date = float(body["from_date"])
        to_date = float(body["to_date"])
        interval = int(body["interval"])
    except (TypeError, ValueError) as exc:
        raise validation_error("invalid date range") from exc
    items = []
    for item in ensure_list(body.get("items"), "items"):
        key = item.get("key") if isinstance(item, dict) else None
        if key not in STAT_KEYS:
            raise validation_error("invalid metric key", key=key)
        how = item.get("aggregation") or item.get("category") or "avg"
        if how not in AGGREGATIONS:
            raise validation_error("invalid aggregation", aggregation=how)
        items.append(StatItem(str(key), str(how)))
    shape = str(body.get("_shape") or state.stats_shape)
    docs = [
        doc
        for worker in state.workers.values()
        for ts, stats in worker.stats
        for doc in stat_documents(worker.id, ts, stats)
    ]
    try:
        workers = get_stats(
            docs,
            worker_ids=[str(w) for w in body.get("worker_ids") or []],
            from_date=from_date,
            to_date=to_date,
            interval=interval,
            items=items,
            shape="2.0" if shape == "2.0" else "2.3",
            split_by_variant=bool(body.get("split_by_variant")),
            split_by_resource=bool(body.get("split_by_resource")),
        )
    except ValueError as exc:
        raise bad_request(16, "Invalid value for fields", str(exc)) from exc
    return {"workers": workers}


@endpoint("workers.get_metric_keys", min_version="2.4")
def workers_get_metric_keys(call: Call, body: Doc) -> Doc:
    state = call.state
    ids = body.get("worker_ids") or list(state.workers)
    keys: set[str] = set()
    for wid in ids:
        worker = state.workers.get(wid)
        if worker is not None:
            for _, stats in worker.stats:
                keys.update(k for k in stats if k in STAT_KEYS)
    if not keys:
        raise bad_request(1005, "No worker statistics found", None, worker_ids=ids)
    categories: dict[str, list[str]] = {}
    for key in sorted(keys):
        categories.setdefault(key.split("_", 1)[0], []).append(key)
    return {"categories": [{"name": k, "metric_keys": v} for k, v in categories.items()]}


@endpoint("workers.get_activity_report", min_version="2.4")
def workers_get_activity_report(call: Call, body: Doc) -> Doc:
    state = call.state
    now_ms = int(state.now().timestamp() * 1000)
    total = len(state.workers)
    active = sum(1 for w in state.workers.values() if w.task_id)
    return {
        "total": {"dates": [now_ms], "counts": [total]},
        "active": {"dates": [now_ms], "counts": [active]},
    }


# ================================================================================================
# events
# ================================================================================================


def _parse_events(call: Call, body: Doc) -> list[Doc]:
    if isinstance(body.get("requests"), list):
        return [e for e in body["requests"] if isinstance(e, dict)]
    events: list[Doc] = []
    for line in call.raw_body.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise bad_request(
                0, "Malformed JSON", None, line=line[:40].decode(errors="replace")
            ) from exc
        if isinstance(item, list):
            events.extend(e for e in item if isinstance(e, dict))
        elif isinstance(item, dict):
            events.append(item)
    return events


def _add_events(call: Call, events: list[Doc]) -> Doc:
    state = call.state
    added, errors = 0, 0
    errors_info: dict[str, int] = {}
    for event in events:
        tid = event.get("task")
        task = state.tasks.get(tid) if isinstance(tid, str) else None
        if task is None:
            errors += 1
            errors_info["invalid task id"] = errors_info.get("invalid task id", 0) + 1
            continue
        etype = event.get("type", "log")
        ts = event.get("timestamp")
        ts_ms = int(ts) if isinstance(ts, int | float) else None
        if etype == "log":
            state.add_log(
                str(tid),
                str(event.get("msg", "")),
                level=str(event.get("level", "info")),
                worker=str(event.get("worker", call.worker or "")),
                timestamp_ms=ts_ms,
                newline=False,
            )
        elif etype == "training_stats_scalar":
            state.set_metric(
                task,
                str(event.get("metric", "")),
                str(event.get("variant", "")),
                float(event.get("value", 0.0)),
                int(event.get("iter", 0) or 0),
            )
        added += 1
    return {"added": added, "errors": errors, "errors_info": errors_info}


@endpoint("events.add_batch")
def events_add_batch(call: Call, body: Doc) -> Doc:
    return _add_events(call, _parse_events(call, body))


@endpoint("events.add")
def events_add(call: Call, body: Doc) -> Doc:
    _add_events(call, [body])
    return {}


@endpoint("events.get_task_log", min_version="2.9")
def events_get_task_log(call: Call, body: Doc) -> Doc:
    require(body, "task")
    state = call.state
    task_id = body["task"]
    state.get_task(task_id, plural=True)
    events = state.logs.get(task_id, [])
    try:
        batch_size = int(body.get("batch_size") or 5000)
        raw_from = body.get("from_timestamp")
        from_ts = float(raw_from) if raw_from is not None else None
    except (TypeError, ValueError) as exc:
        raise validation_error("invalid batch_size or from_timestamp") from exc
    earlier = _bool(body.get("navigate_earlier", True))
    order = body.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise validation_error("invalid order", order=order)
    if earlier:
        pool = [e for e in events if from_ts is None or e["timestamp"] < from_ts]
        chosen = pool[-batch_size:]
    else:
        pool = [e for e in events if from_ts is None or e["timestamp"] > from_ts]
        chosen = pool[:batch_size]
    if order == "desc":
        chosen = list(reversed(chosen))
    return {
        "events": [copy.deepcopy(e) for e in chosen],
        "returned": len(chosen),
        "total": len(events),
    }


@endpoint("events.get_task_latest_scalar_values")
def events_get_task_latest_scalar_values(call: Call, body: Doc) -> Doc:
    require(body, "task")
    task = call.state.get_task(body["task"], plural=True)
    metrics = []
    for variants in (task.get("last_metrics") or {}).values():
        items = list(variants.values())
        if not items:
            continue
        metrics.append(
            {
                "name": items[0]["metric"],
                "variants": [
                    {"name": v["variant"], "last_value": v["value"], "last_100_value": [v["value"]]}
                    for v in items
                ],
            }
        )
    return {
        "metrics": metrics,
        "last_iter": task.get("last_iteration", 0),
        "name": task["name"],
        "status": task["status"],
        "last_update": _epoch_ms(task.get("last_update")),
    }


def _epoch_ms(value: str | None) -> int | None:
    if not value:
        return None
    return int(datetime.fromisoformat(value).timestamp() * 1000)


@endpoint("events.delete_for_task")
def events_delete_for_task(call: Call, body: Doc) -> Doc:
    require(body, "task")
    call.state.get_task(body["task"])
    return {"deleted": len(call.state.logs.pop(body["task"], []))}


__all__ = [
    "ENDPOINTS",
    "ApiError",
    "Call",
    "Endpoint",
    "find_endpoint",
    "iso",
    "issue_token",
    "verify_token",
]

"""projects.* (apiserver/services/projects.py).

Tested in tests/unit/demo/test_emulator_tasks.py and test_emulator_conformance.py.
"""

from __future__ import annotations

import copy

from tray_app.demo.bll.projects import add_project, project_by_name
from tray_app.demo.bll.tasks import delete_task
from tray_app.demo.errors import bad_request, invalid_project_id, validation_error
from tray_app.demo.query import QuerySpec, ensure_list, project, require, run_query
from tray_app.demo.services.base import Call, Doc, as_bool, endpoint

# database/model/project.py `get_all_query_options`: only these keys filter.
PROJECT_SPEC = QuerySpec(
    list_fields=("tags", "system_tags", "id", "parent", "path"),
    regex_fields=("name", "basename", "description"),
    date_fields=("last_update",),
    field_names=(),
)


@endpoint("projects.get_all")
def projects_get_all(call: Call, body: Doc) -> Doc:
    state = call.state
    docs = list(state.projects.values())
    if not as_bool(body.get("search_hidden")) and not body.get("id"):
        docs = [d for d in docs if "hidden" not in d.get("system_tags", [])]
    result, scroll = run_query(docs, body, PROJECT_SPEC, state.scrolls, state.new_id)
    out: Doc = {"projects": [project(p, body.get("only_fields")) for p in result]}
    if scroll:
        out["scroll_id"] = scroll
    return out


@endpoint("projects.get_all_ex", min_version="2.1")
def projects_get_all_ex(call: Call, body: Doc) -> Doc:
    return projects_get_all(call, body)


@endpoint("projects.get_by_id")
def projects_get_by_id(call: Call, body: Doc) -> Doc:
    require(body, "project")
    proj = call.state.projects.get(body["project"])
    if proj is None:
        raise invalid_project_id(id=body["project"])
    return {"project": copy.deepcopy(proj)}


@endpoint("projects.create")
def projects_create(call: Call, body: Doc) -> Doc:
    require(body, "name", declared=True)
    state = call.state
    name = str(body["name"]).strip()
    if len(name) < 3:
        raise validation_error("name is too short", name=name)
    if project_by_name(state, name) is not None:
        raise bad_request(407, "Project name already exists", None, name=name)
    proj = add_project(
        state,
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
    if tasks and not as_bool(body.get("force")):
        raise bad_request(
            402, "Project has associated tasks (use force=True)", None, id=body["project"]
        )
    for t in tasks:
        delete_task(state, t["id"])
    del state.projects[body["project"]]
    return {"deleted": 1, "disassociated_tasks": 0, "deleted_tasks": len(tasks)}

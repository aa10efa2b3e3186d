"""users.* (apiserver/services/users.py).

Tested in tests/unit/demo/test_emulator.py and test_emulator_tasks.py.
"""

from __future__ import annotations

from tray_app.demo.errors import invalid_user_id
from tray_app.demo.query import QuerySpec, project, require, run_query
from tray_app.demo.services.base import Call, Doc, endpoint
from tray_app.demo.state import EmulatorState

# database/model/user.py `get_all_query_options`: only `id` filters.
USER_SPEC = QuerySpec(
    list_fields=("id",), regex_fields=(), text_fields=("id", "name"), field_names=()
)


def _user_public(state: EmulatorState, user: Doc) -> Doc:
    doc = {k: v for k, v in user.items() if k not in ("preferences", "avatar")}
    return doc


@endpoint("users.get_current_user")
def users_get_current_user(call: Call, body: Doc) -> Doc:
    # No request schema validation on the real endpoint (services/users.py): extra keys pass.
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

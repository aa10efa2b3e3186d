"""The ClearML API emulator through httpx.ASGITransport: envelope, auth, queries, state machine."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest
from support.emulator import AsgiEmulator, make_asgi_emulator

from tray_app.demo import DEMO_USER_NAME, OTHER_USERS, SECRET_MARKER, seeded_state
from tray_app.demo.bll.events import add_log
from tray_app.demo.values import md5_hex


async def call(
    emu: AsgiEmulator,
    endpoint: str,
    body: dict[str, Any] | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    auth: bool = True,
) -> httpx.Response:
    hdrs = dict(emu.basic_header if auth else {})
    hdrs.update(headers or {})
    async with emu.client() as client:
        return await client.request(method, f"/{endpoint}", json=body, headers=hdrs)


async def data(emu: AsgiEmulator, endpoint: str, body: dict[str, Any] | None = None) -> Any:
    response = await call(emu, endpoint, body if body is not None else {})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def meta(response: httpx.Response) -> dict[str, Any]:
    return response.json()["meta"]


# --- envelope and routing -----------------------------------------------------------------------


async def test_success_reply_has_full_envelope(asgi_emulator: AsgiEmulator) -> None:
    response = await call(
        asgi_emulator, "v2.23/tasks.get_all", {"page_size": 1}, headers={"X-Clearml-Trx": "t-1"}
    )
    assert response.status_code == 200
    m = meta(response)
    assert m["result_code"] == 200 and m["result_subcode"] == 0 and m["result_msg"] == "OK"
    assert m["trx"] == "t-1" and len(m["id"]) == 32
    assert m["endpoint"] == {
        "name": "tasks.get_all",
        "requested_version": "2.23",
        "actual_version": "1.0",
    }
    assert m["error_stack"] is None and m["error_data"] == {}
    assert response.headers["content-type"].startswith("application/json")


async def test_unknown_endpoint_is_404_envelope(asgi_emulator: AsgiEmulator) -> None:
    response = await call(asgi_emulator, "tasks.no_such_action", {})
    assert response.status_code == 404
    m = meta(response)
    assert (m["result_code"], m["result_subcode"]) == (404, 0)
    assert m["result_msg"].startswith("Unable to find endpoint for name tasks.no_such_action")
    assert response.json()["data"] == {}


async def test_endpoint_below_min_version_is_404(asgi_emulator: AsgiEmulator) -> None:
    response = await call(asgi_emulator, "v2.1/workers.get_all", {})
    assert response.status_code == 404
    assert meta(response)["result_msg"] == (
        "Unable to find endpoint for name workers.get_all and version 2.1"
    )


async def test_malformed_path_is_400(asgi_emulator: AsgiEmulator) -> None:
    response = await call(asgi_emulator, "v2/tasks.get_all", {})
    assert response.status_code == 400
    assert meta(response)["result_msg"] == "Invalid request path /v2/tasks.get_all"


async def test_get_with_json_body_and_query_args_both_work(asgi_emulator: AsgiEmulator) -> None:
    async with asgi_emulator.client(headers=asgi_emulator.basic_header) as client:
        with_body = await client.request(
            "GET", "/tasks.get_all", json={"status": ["queued"], "only_fields": ["id"]}
        )
        with_query = await client.get(
            "/tasks.get_all", params={"status[]": "queued", "only_fields[]": "id"}
        )
    assert with_body.status_code == with_query.status_code == 200
    assert with_body.json()["data"] == with_query.json()["data"]
    assert len(with_body.json()["data"]["tasks"]) == 1


async def test_options_is_200(asgi_emulator: AsgiEmulator) -> None:
    response = await call(asgi_emulator, "tasks.get_all", method="OPTIONS", auth=False)
    assert response.status_code == 200


async def test_malformed_json_body_is_400(asgi_emulator: AsgiEmulator) -> None:
    async with asgi_emulator.client(headers=asgi_emulator.basic_header) as client:
        response = await client.post("/tasks.get_all", content=b"{not json")
    assert response.status_code == 400
    assert meta(response)["result_subcode"] == 0


async def test_content_encoding_is_rejected_with_415(asgi_emulator: AsgiEmulator) -> None:
    headers = {**asgi_emulator.basic_header, "Content-Encoding": "gzip"}
    async with asgi_emulator.client(headers=headers) as client:
        response = await client.post("/tasks.get_all", content=b"x")
    assert response.status_code == 415


async def test_request_and_response_body_bytes_are_recorded_and_totalled(
    asgi_emulator: AsgiEmulator,
) -> None:
    state = asgi_emulator.state
    before = state.traffic()
    async with asgi_emulator.client(headers=asgi_emulator.basic_header) as client:
        listed = await client.post("/tasks.get_all", content=b'{"only_fields": ["id"]}')
        login = await client.get("/auth.login")
        unknown = await client.post("/tasks.no_such_thing", content=b"{}")
    assert unknown.status_code == 404
    records = list(state.requests)[-3:]
    assert [r.request_bytes for r in records] == [len(b'{"only_fields": ["id"]}'), 0, 2]
    assert [r.response_bytes for r in records] == [
        len(listed.content),
        len(login.content),
        len(unknown.content),
    ]
    state.clear_requests()  # the running totals are not the kept records
    window = state.traffic() - before
    assert window.requests == 3
    assert window.request_bytes == sum(r.request_bytes for r in records)
    assert window.response_bytes == sum(r.response_bytes for r in records)
    assert window.bytes == window.request_bytes + window.response_bytes


async def test_debug_ping_needs_no_auth(asgi_emulator: AsgiEmulator) -> None:
    response = await call(asgi_emulator, "debug.ping", {}, auth=False)
    assert response.status_code == 200
    assert response.json()["data"]["msg"] == "ClearML server"


async def test_server_info_reports_versions(asgi_emulator: AsgiEmulator) -> None:
    info = await data(asgi_emulator, "server.info")
    assert info["version"] == "2.3.0" and info["api_version"] == "2.34"


# --- authentication -----------------------------------------------------------------------------


async def test_login_issues_hs256_jwt_with_server_claims(asgi_emulator: AsgiEmulator) -> None:
    token = (await data(asgi_emulator, "auth.login"))["token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["identity"]["user_name"] == DEMO_USER_NAME
    assert claims["identity"]["user"] == asgi_emulator.state.current_user_id
    assert set(claims["identity"]) == {"user", "company", "role", "user_name", "company_name"}
    assert claims["api_version"] >= "2.23" and claims["feature_set"] == "basic"
    assert claims["server_version"] == "2.3.0"
    assert claims["exp"] - claims["iat"] == 2592000


async def test_login_honours_expiration_sec(asgi_emulator: AsgiEmulator) -> None:
    token = (await data(asgi_emulator, "auth.login", {"expiration_sec": 120}))["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


async def test_bearer_token_authenticates(asgi_emulator: AsgiEmulator) -> None:
    token = (await data(asgi_emulator, "auth.login"))["token"]
    response = await call(
        asgi_emulator,
        "users.get_current_user",
        {},
        auth=False,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["user"]["name"] == DEMO_USER_NAME


@pytest.mark.parametrize(
    ("headers", "subcode", "msg"),
    [
        ({}, 20, "Unauthorized (missing credentials)"),
        (
            {"Authorization": "Basic " + base64.b64encode(b"nope:wrong").decode()},
            22,
            "Unauthorized (invalid credentials) (failed to locate provided credentials)",
        ),
        ({"Authorization": "Basic %%%"}, 21, "Unauthorized (malformed credentials)"),
        ({"Authorization": "Digest abc"}, 10, "Unauthorized (bad authentication header type)"),
        ({"Authorization": "Bearer not.a.jwt"}, 30, "Invalid token (invalid jwt token)"),
    ],
)
async def test_auth_failures_have_real_codes(
    asgi_emulator: AsgiEmulator, headers: dict[str, str], subcode: int, msg: str
) -> None:
    response = await call(asgi_emulator, "tasks.get_all", {}, auth=False, headers=headers)
    assert response.status_code == 401
    m = meta(response)
    assert (m["result_code"], m["result_subcode"]) == (401, subcode)
    assert m["result_msg"].startswith(msg)


async def test_expired_token_is_401_30_and_basic_still_works() -> None:
    emu = make_asgi_emulator(token_lifetime=60)
    token = (await data(emu, "auth.login"))["token"]
    emu.state.advance_time(61)
    response = await call(
        emu, "tasks.get_all", {}, auth=False, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert meta(response)["result_subcode"] == 30
    assert meta(response)["result_msg"] == (
        "Invalid token (invalid jwt token): reason=Signature has expired"
    )
    assert (await call(emu, "tasks.get_all", {})).status_code == 200


async def test_other_users_log_in_with_their_own_keys(asgi_emulator: AsgiEmulator) -> None:
    name, key, secret = OTHER_USERS[0]
    emu = asgi_emulator
    emu.access_key, emu.secret_key = key, secret
    user = (await data(emu, "users.get_current_user"))["user"]
    assert user["name"] == name


async def test_get_current_user_ignores_extra_fields(asgi_emulator: AsgiEmulator) -> None:
    """apiserver/services/users.py: get_current_user validates no request schema."""
    response = await call(asgi_emulator, "users.get_current_user", {"x": 1})
    assert response.status_code == 200


async def test_get_vaults_is_not_found(asgi_emulator: AsgiEmulator) -> None:
    response = await call(asgi_emulator, "users.get_vaults", {})
    assert response.status_code == 404


# --- seed -----------------------------------------------------------------------------------------


def test_seed_is_deterministic() -> None:
    a = seeded_state(sessions=20, seed=3)
    b = seeded_state(sessions=20, seed=3)
    c = seeded_state(sessions=20, seed=4)
    assert list(a.tasks) == list(b.tasks)
    assert [t["status"] for t in a.tasks.values()] == [t["status"] for t in b.tasks.values()]
    assert list(a.tasks) != list(c.tasks)


def test_seed_covers_every_session_status_and_owner() -> None:
    state = seeded_state(sessions=13)
    sessions = [t for t in state.tasks.values() if "interactive" in t["system_tags"]]
    assert len(sessions) == 13
    statuses = {t["status"] for t in sessions}
    assert statuses == {
        "created",
        "queued",
        "in_progress",
        "stopped",
        "failed",
        "completed",
        "closed",
    }
    owners = {t["user"] for t in sessions}
    mine = [t for t in sessions if t["user"] == state.current_user_id]
    assert len(owners) >= 3 and len(mine) > len(sessions) / 2
    assert any(t.get("status_message") == "stopping" for t in sessions)


def test_seeded_running_session_has_realistic_document() -> None:
    state = seeded_state(sessions=1)
    (task,) = [t for t in state.tasks.values() if "interactive" in t["system_tags"]]
    assert task["type"] == "application" and task["status"] == "in_progress"
    assert state.projects[task["project"]]["name"] == "DevOps"
    assert state.queues[task["execution"]["queue"]]["name"] in ("sessions", "gpu-a100")
    runtime = task["runtime"]
    for key in (
        "cpu_cores",
        "memory_gb",
        "gpu_count",
        "gpu_type",
        "gpu_memory",
        "hostname",
        "_ssh_user",
        "internal_ssh_port",
        "external_address",
    ):
        assert key in runtime, key
    for key in ("_user_key", "_user_secret", "_ssh_password"):
        assert SECRET_MARKER in runtime[key]
    props = task["hyperparams"]["properties"]
    assert props["external_address"]["value"].startswith("127.")
    assert props["internal_ssh_port"]["value"] == "10022"
    machine = task["last_metrics"][md5_hex(":monitor:machine")]
    assert machine[md5_hex("cpu_usage")]["variant"] == "cpu_usage"
    assert md5_hex(":monitor:machine") == "29c6dd717a649f7c1835bfa9249b3142"
    worker = state.workers[task["last_worker"]]
    assert worker.ip.startswith("127.") and worker.task_id == task["id"]


def test_every_seeded_address_is_loopback() -> None:
    state = seeded_state(sessions=1000)
    for worker in state.workers.values():
        assert worker.ip.startswith("127.") and worker.external_address.startswith("127.")
    for task in state.tasks.values():
        address = (task.get("runtime") or {}).get("external_address")
        if address:
            assert address.startswith("127.")


# --- queries ------------------------------------------------------------------------------------


async def test_only_fields_projects_dotted_paths(asgi_emulator: AsgiEmulator) -> None:
    tasks = (
        await data(
            asgi_emulator,
            "tasks.get_all",
            {
                "status": ["in_progress"],
                "only_fields": ["name", "runtime.cpu_cores", "hyperparams.properties"],
            },
        )
    )["tasks"]
    assert tasks
    for task in tasks:
        assert set(task) == {"id", "name", "runtime", "hyperparams"}
        assert set(task["runtime"]) <= {"cpu_cores"}
        assert set(task["hyperparams"]) <= {"properties"}


async def test_only_fields_exclusion_keeps_the_rest(asgi_emulator: AsgiEmulator) -> None:
    tasks = (
        await data(
            asgi_emulator,
            "tasks.get_all",
            {"status": ["in_progress"], "only_fields": ["-runtime", "-script"]},
        )
    )["tasks"]
    assert tasks and all("runtime" not in t and "script" not in t and "name" in t for t in tasks)


async def test_get_all_ex_joins_names(asgi_emulator: AsgiEmulator) -> None:
    tasks = (
        await data(
            asgi_emulator,
            "tasks.get_all_ex",
            {
                "system_tags": ["interactive"],
                "only_fields": ["name", "user.name", "project.name", "execution.queue.name"],
            },
        )
    )["tasks"]
    running = [t for t in tasks if "queue" in t.get("execution", {})]
    assert running
    for task in running:
        assert task["project"]["name"] == "DevOps"
        assert task["execution"]["queue"]["name"] in ("sessions", "gpu-a100")
        assert task["user"]["name"] in {DEMO_USER_NAME} | {u[0] for u in OTHER_USERS}


async def test_list_filters_or_exclusion_all_and_null() -> None:
    emu = make_asgi_emulator(sessions=13)
    state = emu.state

    async def ids(body: dict[str, Any]) -> set[str]:
        body = {**body, "only_fields": ["id"]}
        return {t["id"] for t in (await data(emu, "tasks.get_all", body))["tasks"]}

    every = set(state.tasks)
    sessions = {t["id"] for t in state.tasks.values() if "interactive" in t["system_tags"]}
    running_or_queued = {
        t["id"] for t in state.tasks.values() if t["status"] in ("in_progress", "queued")
    }
    gpu_demo = {t["id"] for t in state.tasks.values() if {"gpu", "demo"} <= set(t["tags"])}
    assert await ids({"system_tags": ["interactive"]}) == sessions
    assert await ids({"system_tags": ["-interactive"]}) == every - sessions
    assert await ids({"status": ["in_progress", "queued"]}) == running_or_queued
    assert await ids({"tags": ["__$all", "gpu", "demo"]}) == gpu_demo
    assert await ids({"tags": ["__$not", "gpu"]}) == {
        t["id"] for t in state.tasks.values() if "gpu" not in t["tags"]
    }
    assert await ids({"tags": [None]}) == {t["id"] for t in state.tasks.values() if not t["tags"]}
    assert await ids({"execution.queue": [None]}) == {
        t["id"] for t in state.tasks.values() if not t["execution"].get("queue")
    }


async def test_user_filter_and_name_regex() -> None:
    emu = make_asgi_emulator(sessions=13)
    me = emu.state.current_user_id
    tasks = (await data(emu, "tasks.get_all", {"user": [me], "name": "^interactive"}))["tasks"]
    assert tasks
    for task in tasks:
        doc = emu.state.tasks[task["id"]]
        assert doc["user"] == me and doc["name"] == "Interactive Session"


async def test_page_size_is_capped_at_500() -> None:
    emu = make_asgi_emulator(sessions=1000)
    tasks = (await data(emu, "tasks.get_all", {"only_fields": ["id"]}))["tasks"]
    assert len(tasks) == 500
    tasks = (await data(emu, "tasks.get_all", {"page": 0, "page_size": 900}))["tasks"]
    assert len(tasks) == 500


async def test_pages_cover_everything_once() -> None:
    emu = make_asgi_emulator(sessions=50)
    seen: list[str] = []
    for page in range(100):
        batch = (
            await data(
                emu,
                "tasks.get_all",
                {"page": page, "page_size": 7, "order_by": ["created"], "only_fields": ["id"]},
            )
        )["tasks"]
        if not batch:
            break
        seen.extend(t["id"] for t in batch)
    assert sorted(seen) == sorted(emu.state.tasks) and len(seen) == len(set(seen))


async def test_page_without_page_size_pages_by_the_cap(asgi_emulator: AsgiEmulator) -> None:
    """database/model/base.py get_paging: page_size defaults to max_page_size (500)."""
    response = await call(asgi_emulator, "tasks.get_all", {"page": 1})
    assert response.status_code == 200 and response.json()["data"]["tasks"] == []


async def test_scroll_walks_all_results() -> None:
    emu = make_asgi_emulator(sessions=1000)
    seen: list[str] = []
    body: dict[str, Any] = {"scroll_id": None, "size": 300, "only_fields": ["id"]}
    for _ in range(10):
        reply = await data(emu, "tasks.get_all", body)
        seen.extend(t["id"] for t in reply["tasks"])
        assert reply["scroll_id"]
        if len(reply["tasks"]) < 300:
            break
        body = {"scroll_id": reply["scroll_id"], "size": 300, "only_fields": ["id"]}
    assert len(seen) == len(set(seen)) == len(emu.state.tasks)


async def test_order_by_descending_last_update(asgi_emulator: AsgiEmulator) -> None:
    tasks = (
        await data(
            asgi_emulator,
            "tasks.get_all",
            {"order_by": ["-last_update"], "only_fields": ["last_update"]},
        )
    )["tasks"]
    stamps = [t["last_update"] for t in tasks]
    assert stamps == sorted(stamps, reverse=True)


async def test_errors_from_a_known_endpoint_carry_its_version(asgi_emulator: AsgiEmulator) -> None:
    response = await call(asgi_emulator, "v2.23/tasks.get_by_id", {"task": "nope"})
    assert meta(response)["endpoint"]["actual_version"] == "1.0"


async def test_server_info_needs_auth_only_from_server_2_3() -> None:
    old = make_asgi_emulator(sessions=0, server_version="2.0.0")
    new = make_asgi_emulator(sessions=0)
    assert (await call(old, "server.info", {}, auth=False)).status_code == 200
    assert (await call(new, "server.info", {}, auth=False)).status_code == 401


async def test_web_ui_pages_show_sessions_with_escaped_logs(asgi_emulator: AsgiEmulator) -> None:
    state = asgi_emulator.state
    task = next(t for t in state.tasks.values() if t["status"] == "in_progress")
    add_log(state, task["id"], "<script>alert(1)</script>")
    async with asgi_emulator.client() as client:
        index = await client.get("/")
        page = await client.get(f"/projects/{task['project']}/experiments/{task['id']}/output/log")
        missing = await client.get("/projects/x/experiments/nope")
    assert index.status_code == 200 and task["id"] in index.text
    assert page.status_code == 200 and task["name"] in page.text
    assert "# SSH Server running on" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert missing.status_code == 404


def test_headless_modules_do_not_import_qt() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tray_app.cli, tray_app.demo.server_cli, tray_app.demo;"
        "bad = [m for m in sys.modules if m.startswith('PySide6')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "body",
    [
        {"order_by": [1]},
        {"only_fields": "id"},
        {"page": 0, "page_size": "x"},
    ],
)
async def test_bad_query_values_are_validation_errors(
    asgi_emulator: AsgiEmulator, body: dict[str, Any]
) -> None:
    response = await call(asgi_emulator, "tasks.get_all", body)
    assert response.status_code == 400 and meta(response)["result_subcode"] == 12


async def test_get_all_ex_filters_field_and_text_search() -> None:
    emu = make_asgi_emulator(sessions=13)
    state = emu.state
    body = {
        "filters": {"status": {"any": {"include": ["in_progress", "queued"], "exclude": []}}},
        "only_fields": ["id"],
    }
    got = {t["id"] for t in (await data(emu, "tasks.get_all_ex", body))["tasks"]}
    assert got == {
        t["id"] for t in state.tasks.values() if t["status"] in ("in_progress", "queued")
    }
    custom = next(
        t
        for t in state.tasks.values()
        if t["name"] != "Interactive Session" and "interactive" in t["system_tags"]
    )
    found = await data(emu, "tasks.get_all", {"search_text": custom["name"], "only_fields": ["id"]})
    assert [t["id"] for t in found["tasks"]] == [custom["id"]]
    pattern = {"_any_": {"pattern": "^" + custom["name"] + "$", "fields": ["name", "comment"]}}
    found = await data(emu, "tasks.get_all", {**pattern, "only_fields": ["id"]})
    assert [t["id"] for t in found["tasks"]] == [custom["id"]]


async def test_hidden_tasks_need_search_hidden_or_id(asgi_emulator: AsgiEmulator) -> None:
    state = asgi_emulator.state
    task = next(iter(state.tasks.values()))
    task["system_tags"] = [*task["system_tags"], "hidden"]
    plain = await data(asgi_emulator, "tasks.get_all", {"only_fields": ["id"]})
    assert task["id"] not in {t["id"] for t in plain["tasks"]}
    for body in ({"search_hidden": True}, {"id": [task["id"]]}):
        got = await data(asgi_emulator, "tasks.get_all", {**body, "only_fields": ["id"]})
        assert task["id"] in {t["id"] for t in got["tasks"]}

"""Pure parts of sessions.py: task document → Session, states, ordering, fields requested."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.models import Session, SessionState
from tray_app.core.server.sessions import (
    FORBIDDEN_RUNTIME_KEYS,
    STOP_REASON,
    TASK_FIELDS,
    SessionService,
    build_session,
    order_sessions,
    parse_time,
    session_state,
    web_url,
)

ME = "u-me"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def metric_group(metric: str, values: dict[str, float]) -> dict[str, Any]:
    return {
        md5(variant): {"metric": metric, "variant": variant, "value": value}
        for variant, value in values.items()
    }


def props(**values: str) -> dict[str, Any]:
    return {
        name.replace("_dash_", "-"): {"section": "properties", "name": name, "value": value}
        for name, value in values.items()
    }


def running_task(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": "a" * 32,
        "name": "Interactive Session",
        "status": "in_progress",
        "status_message": "",
        "created": "2026-01-01T10:00:00.000000+00:00",
        "started": "2026-01-01T10:05:00.000000+00:00",
        "last_update": "2026-01-01T12:00:00.000000+00:00",
        "user": {"id": ME, "name": "Me"},
        "project": {"id": "p1", "name": "DevOps"},
        "execution": {"queue": {"id": "q1", "name": "gpu-a100"}},
        "last_worker": "node-1:gpu0",
        "tags": ["demo"],
        "runtime": {
            "cpu_cores": 32,
            "memory_gb": 251.5,
            "gpu_count": 2,
            "gpu_type": "A100, A100",
            "gpu_memory": "80GB, 80GB",
            "hostname": "node-1",
            "_ssh_user": "root",
        },
        "hyperparams": {
            "properties": props(
                external_address="127.0.103.5",
                internal_ssh_port="10022",
                jupyter_port="8888",
                vscode_port="8898",
            )
        },
        "last_metrics": {
            md5(":monitor:machine"): metric_group(
                ":monitor:machine", {"cpu_usage": 42.5, "memory_used_gb": 12.25}
            ),
            md5(":monitor:gpu"): metric_group(
                ":monitor:gpu",
                {
                    "gpu_0_utilization": 80.0,
                    "gpu_1_utilization": 20.0,
                    "gpu_0_mem_used_gb": 10.0,
                    "gpu_1_mem_used_gb": 5.0,
                },
            ),
        },
    }
    task.update(overrides)
    return task


def build(task: dict[str, Any], workers: list[dict[str, Any]] | None = None, **kw: Any) -> Session:
    by_task = {w["task"]["id"]: w for w in workers or [] if w.get("task")}
    by_id = {w["id"]: w for w in workers or []}
    return build_session(
        task,
        me=kw.get("me", ME),
        web_server="http://127.0.0.1:8080/",
        workers_by_task=by_task,
        workers_by_id=by_id,
        user_names=kw.get("user_names", {}),
        project_names=kw.get("project_names", {}),
        queue_names=kw.get("queue_names", {}),
    )


def test_running_session_has_every_field_from_the_task_and_its_worker():
    worker = {"id": "node-1:gpu0", "ip": "127.0.3.5", "task": {"id": "a" * 32}}
    s = build(running_task(), [worker])
    assert (s.id, s.name, s.status, s.state) == (
        "a" * 32,
        "Interactive Session",
        "in_progress",
        SessionState.RUNNING,
    )
    assert (s.creator_id, s.creator_name, s.is_own) == (ME, "Me", True)
    assert (s.project_id, s.project_name, s.queue_id, s.queue_name) == (
        "p1",
        "DevOps",
        "q1",
        "gpu-a100",
    )
    assert s.created == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert s.started == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert (s.worker_id, s.private_ip) == ("node-1:gpu0", "127.0.3.5")
    assert (s.public_address, s.ssh_port, s.ssh_user) == ("127.0.103.5", 10022, "root")
    assert (s.jupyter_port, s.vscode_port) == (8888, 8898)
    assert (s.cpu_cores, s.ram_total_gb, s.gpu_count) == (32, 251.5, 2)
    assert (s.gpu_type, s.gpu_memory) == ("A100, A100", "80GB, 80GB")
    assert (s.cpu_percent, s.ram_used_gb) == (42.5, 12.25)
    assert s.gpu_percent == pytest.approx(50.0)  # mean of the GPUs
    assert s.gpu_memory_used_gb == pytest.approx(15.0)
    assert s.hostname == "node-1"
    assert s.tags == ("demo",)
    assert s.web_url == (
        f"http://127.0.0.1:8080/projects/p1/experiments/{'a' * 32}/output/execution"
    )


def test_worker_is_found_by_last_worker_when_it_reports_no_task():
    worker = {"id": "node-1:gpu0", "ip": "127.0.3.9", "task": None}
    s = build(running_task(), [worker])
    assert s.private_ip == "127.0.3.9"


def test_worker_running_the_task_wins_over_last_worker():
    workers = [
        {"id": "node-1:gpu0", "ip": "127.0.3.9", "task": None},
        {"id": "node-2:gpu0", "ip": "127.0.3.10", "task": {"id": "a" * 32}},
    ]
    s = build(running_task(), workers)
    assert (s.worker_id, s.private_ip) == ("node-2:gpu0", "127.0.3.10")


def test_running_session_without_worker_keeps_last_worker_and_no_ip():
    s = build(running_task(), [])
    assert (s.worker_id, s.private_ip) == ("node-1:gpu0", "")


@pytest.mark.parametrize(
    ("status", "message", "port", "state"),
    [
        ("queued", "", None, SessionState.QUEUED),
        ("in_progress", "", None, SessionState.STARTING),
        ("in_progress", "", 10022, SessionState.RUNNING),
        ("in_progress", "stopping", 10022, SessionState.STOPPING),
        ("in_progress", "stopping", None, SessionState.STOPPING),
    ],
)
def test_state_from_status_message_and_published_port(status, message, port, state):
    assert session_state(status, message, port) is state


def test_session_without_published_ports_is_starting():
    task = running_task(hyperparams={})
    s = build(task)
    assert s.state is SessionState.STARTING
    assert (s.ssh_port, s.public_address, s.jupyter_port) == (None, "", None)


def test_external_ssh_port_and_gateway_address_win_as_clearml_session_does():
    task = running_task(
        hyperparams={
            "properties": props(
                external_address="127.0.103.5",
                internal_ssh_port="10022",
                external_ssh_port="31022",
                k8s_dash_gateway_dash_address="127.0.200.1",
            )
        }
    )
    s = build(task)
    assert (s.public_address, s.ssh_port) == ("127.0.200.1", 31022)


def test_the_routers_runtime_address_and_port_come_first_as_in_clearml_session():
    # clearml_session/__main__.py: runtime external_address / external_tcp_port (the router),
    # then properties k8s-gateway-address / k8s-pod-port, external_ssh_port, the sshd port.
    task = running_task(
        hyperparams={
            "properties": props(
                external_address="127.0.103.5",
                internal_ssh_port="10022",
                external_ssh_port="31022",
                k8s_dash_pod_dash_port="32022",
            )
        }
    )
    task["runtime"].update(external_address="127.0.250.1", external_tcp_port="40022")
    assert (build(task).public_address, build(task).ssh_port) == ("127.0.250.1", 40022)
    del task["runtime"]["external_tcp_port"]
    assert build(task).ssh_port == 32022  # k8s-pod-port before external_ssh_port
    task["hyperparams"]["properties"].pop("k8s-pod-port")
    assert build(task).ssh_port == 31022
    task["hyperparams"]["properties"].pop("external_ssh_port")
    task["runtime"]["internal_tcp_port"] = "10055"  # k8s glue's port beats the property
    assert build(task).ssh_port == 10055


def test_the_routers_port_comes_first_as_clearml_session_reads_it():
    # clearml_session/__main__.py: runtime external_address / external_tcp_port (set by the
    # remote side when the router is enabled) before any property; the session's own sshd
    # port is only the last resort.
    task = running_task(
        hyperparams={
            "properties": props(
                external_address="127.0.103.5", internal_ssh_port="10022", k8s_dash_pod_dash_port=""
            )
        }
    )
    task["runtime"].update(external_address="127.0.200.9", external_tcp_port="42022")
    s = build(task)
    assert (s.public_address, s.ssh_port) == ("127.0.200.9", 42022)
    del task["runtime"]["external_tcp_port"]
    task["runtime"]["internal_tcp_port"] = "10044"
    assert build(task).ssh_port == 10044  # runtime internal_tcp_port before the property


def test_runtime_address_and_port_are_the_fallback():
    task = running_task(hyperparams={})
    task["runtime"].update(external_address="127.0.103.8", internal_ssh_port="10022")
    s = build(task)
    assert (s.public_address, s.ssh_port, s.state) == ("127.0.103.8", 10022, SessionState.RUNNING)


def test_queued_session_has_no_live_figures_or_start_time():
    task = running_task(status="queued", started=None, last_worker=None)
    s = build(task)
    assert s.state is SessionState.QUEUED
    assert (s.cpu_percent, s.ram_used_gb, s.gpu_percent, s.started) == (None, None, None, None)
    assert s.worker_id == ""


def test_names_come_from_caches_when_the_server_did_not_join_them():
    task = running_task(user="u2", project="p2", execution={"queue": "q2"})
    s = build(
        task,
        user_names={"u2": "Bob"},
        project_names={"p2": "Research"},
        queue_names={"q2": "cpu"},
    )
    assert (s.creator_id, s.creator_name, s.is_own) == ("u2", "Bob", False)
    assert (s.project_name, s.queue_name) == ("Research", "cpu")


def test_missing_and_odd_values_do_not_crash():
    s = build({"id": "x", "status": "in_progress", "runtime": {"cpu_cores": "n/a"}})
    assert s.cpu_cores is None
    assert s.name == ""
    assert s.web_url.endswith("/projects/*/experiments/x/output/execution")


def test_order_puts_own_sessions_first_then_newest_first():
    base = datetime(2026, 1, 1, tzinfo=UTC)
    sessions = [
        Session("1", "a", "queued", SessionState.QUEUED, created=base, is_own=False),
        Session("2", "b", "queued", SessionState.QUEUED, created=base, is_own=True),
        Session("3", "c", "queued", SessionState.QUEUED, created=base + timedelta(1), is_own=True),
        Session("4", "d", "queued", SessionState.QUEUED, created=None, is_own=True),
    ]
    assert [s.id for s in order_sessions(sessions)] == ["3", "2", "4", "1"]


def test_task_fields_never_ask_for_runtime_as_a_whole_or_for_secret_keys():
    assert "runtime" not in TASK_FIELDS
    assert "hyperparams" not in TASK_FIELDS
    assert "hyperparams.properties" not in TASK_FIELDS
    for key in FORBIDDEN_RUNTIME_KEYS:
        assert f"runtime.{key}" not in TASK_FIELDS
    assert not any("secret" in f or "password" in f or "token" in f for f in TASK_FIELDS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T10:00:00.123000+00:00", datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-01-01T10:00:00Z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-01T10:00:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (1767261600, datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (1767261600000, datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("garbage", None),
        (None, None),
        ("", None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_web_url_quotes_ids_and_strips_the_slash():
    assert (
        web_url("http://h:8080/", "p 1", "t")
        == "http://h:8080/projects/p%201/experiments/t/output/execution"
    )


def test_no_web_link_without_an_http_web_server():
    assert web_url("", "p", "t") == ""


# -- stop escalation with a scripted server ----------------------------------------------------


def scripted_service(replies: dict[str, Any]) -> tuple[SessionService, list[tuple[str, dict]]]:
    """A SessionService on a MockTransport answering `replies[endpoint]` (data dicts)."""
    calls: list[tuple[str, dict]] = []
    claims = {"identity": {"user": ME, "user_name": "Me"}, "exp": 4102444800}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    token = f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln"

    def handler(request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.rsplit("/", 1)[-1]
        body = json.loads(request.content or b"{}")
        calls.append((endpoint, body))
        data = {"token": token} if endpoint == "auth.login" else replies[endpoint]
        meta = {"result_code": 200, "result_subcode": 0, "result_msg": "OK"}
        return httpx.Response(200, json={"meta": meta, "data": data})

    cfg = ServerConfig("http://127.0.0.1:1", "http://127.0.0.1:2", "", "AK", "SK")
    client = ClearMLClient(cfg, transport=httpx.MockTransport(handler))
    return SessionService(client), calls


def endpoints(calls: list[tuple[str, dict]]) -> list[str]:
    return [e for e, _ in calls if e != "auth.login"]


RUNNING = {"tasks": [{"id": "t1", "status": "in_progress", "status_message": ""}]}
STOPPED = {"updated": 1, "fields": {"status": "stopped"}}


async def test_stop_that_the_server_did_not_apply_is_forced():
    service, calls = scripted_service(
        {
            "tasks.get_all_ex": RUNNING,
            "tasks.stop": {"updated": 0, "fields": {}},
            "tasks.stopped": STOPPED,
        }
    )
    assert await service.stop("t1") == "stopped"
    assert endpoints(calls) == ["tasks.get_all_ex", "tasks.stop", "tasks.stopped"]
    assert calls[-1][1] == {"task": "t1", "force": True, "status_reason": STOP_REASON}
    await service.client.aclose()


async def test_stopping_without_a_live_worker_is_forced():
    service, calls = scripted_service(
        {
            "tasks.get_all_ex": RUNNING,
            "tasks.stop": {"updated": 1, "fields": {"status_message": "stopping"}},
            "workers.get_all": {"workers": [{"id": "w1", "ip": "127.0.3.1", "task": None}]},
            "tasks.stopped": STOPPED,
        }
    )
    assert await service.stop("t1") == "stopped"
    assert endpoints(calls) == [
        "tasks.get_all_ex",
        "tasks.stop",
        "workers.get_all",
        "tasks.stopped",
    ]
    assert calls[2][1]["force"] is False  # the polite request came first
    await service.client.aclose()


async def test_stopping_with_a_live_worker_is_left_to_the_agent():
    service, calls = scripted_service(
        {
            "tasks.get_all_ex": RUNNING,
            "tasks.stop": {"updated": 1, "fields": {"status_message": "stopping"}},
            "workers.get_all": {"workers": [{"id": "w1", "task": {"id": "t1"}}]},
        }
    )
    assert await service.stop("t1") == "in_progress"
    assert "tasks.stopped" not in endpoints(calls)
    await service.client.aclose()


async def test_stop_of_a_finished_session_changes_nothing():
    service, calls = scripted_service(
        {"tasks.get_all_ex": {"tasks": [{"id": "t1", "status": "failed"}]}}
    )
    assert await service.stop("t1") == "failed"
    assert endpoints(calls) == ["tasks.get_all_ex"]
    await service.client.aclose()


async def test_forced_stop_of_a_running_session_does_not_wait_for_its_worker():
    service, calls = scripted_service({"tasks.get_all_ex": RUNNING, "tasks.stopped": STOPPED})
    assert await service.stop("t1", force=True) == "stopped"
    assert endpoints(calls) == ["tasks.get_all_ex", "tasks.stopped"]
    await service.client.aclose()


async def test_forced_stop_of_a_queued_session_uses_tasks_stop():
    # On a real server tasks.stopped leaves a queued task in its queue (an agent then runs it):
    # only tasks.stop dequeues (clearml-server bll/task/task_operations.py stop_task).
    queued = {"tasks": [{"id": "t1", "status": "queued", "status_message": ""}]}
    service, calls = scripted_service({"tasks.get_all_ex": queued, "tasks.stop": STOPPED})
    assert await service.stop("t1", force=True) == "stopped"
    assert endpoints(calls) == ["tasks.get_all_ex", "tasks.stop"]
    await service.client.aclose()


def test_only_the_shown_metric_values_are_asked_for_and_read_back() -> None:
    """`last_metrics.<metric>.<variant>.value` per shown variant, as the web UI's columns ask:
    the server then sends `{"value": x}` without the variant's name, which comes from the hash."""
    machine, gpu = md5(":monitor:machine"), md5(":monitor:gpu")
    assert f"last_metrics.{machine}" not in TASK_FIELDS  # not the whole group
    assert f"last_metrics.{machine}.{md5('cpu_usage')}.value" in TASK_FIELDS
    assert f"last_metrics.{gpu}.{md5('gpu_7_utilization')}.value" in TASK_FIELDS
    projected = {
        "id": "t1",
        "status": "in_progress",
        "last_metrics": {
            machine: {md5("cpu_usage"): {"value": 37.5}, md5("memory_used_gb"): {"value": 12.0}},
            gpu: {
                md5("gpu_0_utilization"): {"value": 80.0},
                md5("gpu_1_utilization"): {"value": 40.0},
                md5("gpu_0_mem_used_gb"): {"value": 10.0},
                md5("gpu_1_mem_used_gb"): {"value": 6.0},
            },
        },
    }
    session = build(projected)
    assert (session.cpu_percent, session.ram_used_gb) == (37.5, 12.0)
    assert (session.gpu_percent, session.gpu_memory_used_gb) == (60.0, 16.0)

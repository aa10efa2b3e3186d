"""The emulator against clearml-server's and clearml-agent's own code: each case names the file
it mirrors.

Read from clearml-server v2.0.0 (github allegroai/clearml-server @ 2976ce6) and v2.3.0
(github clearml/clearml-server @ 0b769d4), and clearml-agent (github clearml/clearml-agent
@ ac65a93); paths are relative to each repository's root.
"""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import httpx
import pytest
from support.emulator import AsgiEmulator, make_asgi_emulator

from tray_app.demo.bll.workers import register_worker
from tray_app.demo.machines import (
    IDLE_GPU_MEMORY_MB,
    SHAPES,
    WorkerMachine,
    agent_stats,
    host_load,
    load_by_host,
    sdk_metrics,
    work,
)
from tray_app.demo.values import iso
from tray_app.demo.worker_stats import StatItem, get_stats, stat_documents


async def call(emu: AsgiEmulator, endpoint: str, body: dict[str, Any]) -> httpx.Response:
    async with emu.client(headers=emu.basic_header) as client:
        return await client.post(f"/{endpoint}", json=body)


async def ok(emu: AsgiEmulator, endpoint: str, body: dict[str, Any]) -> Any:
    response = await call(emu, endpoint, body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def error(emu: AsgiEmulator, endpoint: str, body: dict[str, Any]) -> tuple[int, int, str]:
    response = await call(emu, endpoint, body)
    meta = response.json()["meta"]
    assert response.status_code == meta["result_code"]
    return meta["result_code"], meta["result_subcode"], meta["result_msg"]


def _task_in_status(emu: AsgiEmulator, status: str, message: str = "") -> dict[str, Any]:
    return next(
        t
        for t in emu.state.tasks.values()
        if t["status"] == status
        and "interactive" in (t.get("system_tags") or [])
        and (t.get("status_message") or "") == message
    )


def _queued_ids(emu: AsgiEmulator) -> set[str]:
    return {e["task"] for q in emu.state.queues.values() for e in q["entries"]}


# --- workers.get_stats ---------------------------------------------------------------------------


def _report_worker(emu: AsgiEmulator, minutes: list[int], stats: dict[str, Any]) -> str:
    """A worker that reported `stats` at the given minutes before now (no other history)."""
    state = emu.state
    worker = register_worker(state, "probe:gpu0", state.current_user_id, "127.0.9.9")
    now_ms = int(state.now().timestamp() * 1000)
    for m in minutes:
        worker.stats.append((now_ms - m * 60_000, dict(stats)))
    return worker.id


def _stats_body(emu: AsgiEmulator, wid: str, minutes: int = 30, **extra: Any) -> dict[str, Any]:
    now = emu.state.now().timestamp()
    return {
        "worker_ids": [wid],
        "from_date": now - minutes * 60,
        "to_date": now,
        "interval": 60,
        "items": [
            {"key": "cpu_usage", "aggregation": "avg"},
            {"key": "memory_used", "aggregation": "max"},
        ],
        **extra,
    }


@pytest.mark.parametrize("shape", ["2.0", "2.3"])
async def test_get_stats_buckets_are_dense_and_zero_filled(shape: str) -> None:
    """apiserver/bll/workers/stats.py (get_worker_stats / _get_worker_stats_per_metric,
    _extract_results): a date_histogram with fixed_interval and extended_bounds
    [int(from)*1000, int(to)*1000] returns every bucket, keys aligned to the interval since the
    epoch, an empty bucket's value `or 0.0`; buckets from to_date - 0.9 interval on are cut."""
    emu = make_asgi_emulator(sessions=0)
    emu.state.stats_shape = shape  # type: ignore[assignment]
    wid = _report_worker(emu, [10, 9], {"cpu_usage": [12.0], "memory_used": 2048.0})
    body = _stats_body(emu, wid)
    (worker,) = (await ok(emu, "workers.get_stats", body))["workers"]
    metrics = {m["metric"]: m for m in worker["metrics"]}
    cpu = metrics["cpu_usage"]
    stat = cpu["stats"][0]
    dates = cpu["dates"] if shape == "2.0" else stat["dates"]
    first = int(body["from_date"]) * 1000 // 60_000 * 60_000
    cutoff = (body["to_date"] - 54) * 1000
    expected = [k for k in range(first, int(body["to_date"]) * 1000 + 1, 60_000) if k < cutoff]
    assert dates == expected  # every bucket, including the 28 or so without a report
    values = stat["values"]
    assert len(values) == len(dates)
    assert sorted(v for v in values if v) == [12.0, 12.0]
    assert values.count(0.0) == len(values) - 2
    mem = metrics["memory_used"]["stats"][0]
    assert mem["aggregation"] == "max" and max(mem["values"]) == 2048.0


async def test_get_stats_leaves_out_a_worker_without_documents() -> None:
    """apiserver/bll/workers/stats.py: the answer is grouped by a terms aggregation on the
    worker, so a worker with no document in the range is simply absent; and
    apiserver/bll/workers/__init__.py log_stats_to_es skips falsy values (`if not value`), so a
    scalar 0 is never stored while a list of zeros is."""
    emu = make_asgi_emulator(sessions=0)
    wid = _report_worker(emu, [50, 45], {"cpu_usage": [1.0], "memory_used": 1000.0})
    assert (await ok(emu, "workers.get_stats", _stats_body(emu, wid)))["workers"] == []
    emu = make_asgi_emulator(sessions=0)
    wid = _report_worker(emu, [5], {"cpu_usage": [0.0], "memory_used": 0})
    (worker,) = (await ok(emu, "workers.get_stats", _stats_body(emu, wid)))["workers"]
    assert [m["metric"] for m in worker["metrics"]] == ["cpu_usage"]


async def test_get_stats_range_and_interval() -> None:
    """apiserver/bll/workers/stats.py: from_date >= to_date is 400/16 FieldsValueError, and the
    interval is raised to services.workers.min_chart_interval_sec (40)."""
    emu = make_asgi_emulator(sessions=0)
    wid = _report_worker(emu, [3], {"cpu_usage": [1.0]})
    body = _stats_body(emu, wid)
    body["from_date"] = body["to_date"]
    code, sub, msg = await error(emu, "workers.get_stats", body)
    assert (code, sub) == (400, 16) and "from_date must be less than to_date" in msg
    body = _stats_body(emu, wid, interval=1)
    body["interval"] = 1
    (worker,) = (await ok(emu, "workers.get_stats", body))["workers"]
    dates = worker["metrics"][0]["stats"][0]["dates"]
    assert {b - a for a, b in itertools.pairwise(dates)} == {40_000}


# --- tasks.stop / tasks.stopped / queues.get_next_task -------------------------------------------


async def test_stop_of_a_queued_task_dequeues_it() -> None:
    """apiserver/bll/task/task_operations.py stop_task: a queued task is dequeued and stopped,
    status_message "Stopped by <user>"."""
    emu = make_asgi_emulator(sessions=13)
    task = _task_in_status(emu, "queued")
    reply = await ok(emu, "tasks.stop", {"task": task["id"]})
    assert reply["updated"] == 1 and reply["fields"]["status"] == "stopped"
    assert reply["fields"]["status_message"].startswith("Stopped by ")
    assert task["id"] not in _queued_ids(emu)


async def test_stop_force_only_skips_the_transition_check() -> None:
    """apiserver/bll/task/task_operations.py stop_task: with a worker that updated the task
    within apiserver.workers.task_update_timeout (600 s) the status stays in_progress with the
    message "stopping", force or not; force only skips ChangeStatusRequest's validation
    (apiserver/bll/task/utils.py), e.g. stopping a created task."""
    emu = make_asgi_emulator(sessions=13)
    task = _task_in_status(emu, "in_progress")
    reply = await ok(emu, "tasks.stop", {"task": task["id"], "force": True})
    assert reply["fields"]["status"] == "in_progress"
    assert reply["fields"]["status_message"] == "stopping"
    created = await ok(emu, "tasks.create", {"name": "abc", "type": "training"})
    assert (await error(emu, "tasks.stop", {"task": created["id"]}))[:2] == (400, 110)
    forced = await ok(emu, "tasks.stop", {"task": created["id"], "force": True})
    assert forced["fields"]["status"] == "stopped"


async def test_stop_of_a_task_no_worker_updated_lately_stops_it() -> None:
    """apiserver/bll/task/task_operations.py is_run_by_worker: last_worker and a last_update
    under 600 s old; otherwise stop sets "stopped" at once."""
    emu = make_asgi_emulator(sessions=13)
    task = _task_in_status(emu, "in_progress")
    task["last_update"] = iso(emu.state.now() - timedelta(seconds=601))
    reply = await ok(emu, "tasks.stop", {"task": task["id"]})
    assert reply["fields"]["status"] == "stopped"


async def test_stopped_on_a_queued_task_leaves_it_queued_and_an_agent_runs_it() -> None:
    """apiserver/services/tasks.py stopped -> ChangeStatusRequest (apiserver/bll/task/utils.py)
    never touches a queue; apiserver/services/queues.py get_next_task turns a popped stopped
    task back into queued ("fix racing condition...")."""
    emu = make_asgi_emulator(sessions=13)
    task = _task_in_status(emu, "queued")
    reply = await ok(emu, "tasks.stopped", {"task": task["id"], "force": True})
    assert reply["fields"]["status"] == "stopped"
    assert task["id"] in _queued_ids(emu)
    queue_id = next(
        q["id"]
        for q in emu.state.queues.values()
        if any(e["task"] == task["id"] for e in q["entries"])
    )
    while True:
        entry = (await ok(emu, "queues.get_next_task", {"queue": queue_id}))["entry"]
        if entry["task"] == task["id"]:
            break
    assert emu.state.tasks[task["id"]]["status"] == "queued"


# --- projection ----------------------------------------------------------------------------------


async def test_unknown_projection_field_is_400_14() -> None:
    """apiserver/database/projection.py _parse_projection: a top-level field the document does
    not define raises InvalidFields, 400/14 in apiserver/apierrors/errors.conf."""
    emu = make_asgi_emulator(sessions=1)
    body = {"only_fields": ["id", "bogus_field", "runtime.anything"]}
    assert await error(emu, "tasks.get_all_ex", body) == (
        400,
        14,
        "Fields not defined for object: fields=(bogus_field), object=Task",
    )


async def test_subfield_is_collapsed_into_its_requested_parent() -> None:
    """apiserver/database/projection.py: "in case one or more field is a subfield of another
    field, we only use the top-level field"."""
    emu = make_asgi_emulator(sessions=5)
    task = _task_in_status(emu, "in_progress")
    body = {"id": [task["id"]], "only_fields": ["execution.queue", "execution"]}
    (got,) = (await ok(emu, "tasks.get_all", body))["tasks"]
    assert got["execution"] == task["execution"] and len(got["execution"]) > 1


async def test_join_with_a_missing_target_gives_the_id_alone() -> None:
    """apiserver/database/projection.py: a reference proxy whose target is not found keeps
    only {id}."""
    emu = make_asgi_emulator(sessions=5)
    task = _task_in_status(emu, "in_progress")
    task["project"] = "0" * 32
    body = {"id": [task["id"]], "only_fields": ["project.name", "user.name"]}
    (got,) = (await ok(emu, "tasks.get_all_ex", body))["tasks"]
    assert got["project"] == {"id": "0" * 32}
    assert set(got["user"]) == {"id", "name"}


async def test_exclude_by_default_fields_need_a_projection() -> None:
    """apiserver/database/model/task/task.py (unique_metrics, company_origin, enqueue_status
    are exclude_by_default) and apiserver/database/model/base.py split_projection."""
    emu = make_asgi_emulator(sessions=5)
    task = _task_in_status(emu, "in_progress")
    task["enqueue_status"] = "created"
    (plain,) = (await ok(emu, "tasks.get_all", {"id": [task["id"]]}))["tasks"]
    assert "enqueue_status" not in plain
    body = {"id": [task["id"]], "only_fields": ["enqueue_status"]}
    (asked,) = (await ok(emu, "tasks.get_all", body))["tasks"]
    assert asked["enqueue_status"] == "created"


# --- list filters --------------------------------------------------------------------------------


async def _ids(emu: AsgiEmulator, **filters: Any) -> set[str]:
    body = {"only_fields": ["id"], "page_size": 500, **filters}
    return {t["id"] for t in (await ok(emu, "tasks.get_all", body))["tasks"]}


async def test_list_filter_legacy_exclusion_and_operators() -> None:
    """apiserver/database/model/base.py NewListFieldBucketHelper (legacy mode from
    get_list_field_query): "-x" excludes only before any operator; operators open a context
    for the values after them and the first one joins the groups; "__$nop" resets;
    "__$not" negates the next value; null matches an empty field."""
    emu = make_asgi_emulator(sessions=13)
    tasks = list(emu.state.tasks.values())
    interactive = {t["id"] for t in tasks if "interactive" in (t.get("system_tags") or [])}
    queued = {t["id"] for t in tasks if t["status"] == "queued"}
    every = {t["id"] for t in tasks}
    assert await _ids(emu, system_tags=["-interactive"]) == every - interactive
    assert await _ids(emu, system_tags=["__$not", "interactive"]) == every - interactive
    # After an operator "-interactive" is a literal tag that nothing carries.
    assert await _ids(emu, system_tags=["__$any", "-interactive"]) == set()
    assert await _ids(emu, system_tags=["__$any", "__$nop", "-interactive"]) == (
        every - interactive
    )
    assert await _ids(emu, status=["queued", "in_progress"]) == {
        t["id"] for t in tasks if t["status"] in ("queued", "in_progress")
    }
    assert await _ids(emu, system_tags=["__$all", "interactive", "bogus"]) == set()
    assert await _ids(emu, status=["__$and", "queued", "__$not", "in_progress"]) == queued


async def test_filters_parameter() -> None:
    """apiserver/database/model/base.py ListQueryFilter / get_list_filter_query: "any" is
    include `in` OR exclude `not all`, "all" is include `all` AND exclude `nin`, `op` joins
    them; the plain parameter of a field named in `filters` is ignored; a field's filter
    must be a dictionary (400/12) and `filters` itself one (400/16)."""
    emu = make_asgi_emulator(sessions=13)
    tasks = list(emu.state.tasks.values())
    live = {t["id"] for t in tasks if t["status"] in ("queued", "in_progress")}
    every = {t["id"] for t in tasks}
    interactive = {t["id"] for t in tasks if "interactive" in (t.get("system_tags") or [])}
    status_any = {"any": {"include": ["queued", "in_progress"]}}
    assert await _ids(emu, filters={"status": status_any}, status=["created"]) == live
    no_interactive = {"all": {"exclude": ["interactive"]}}
    assert await _ids(emu, filters={"system_tags": no_interactive}) == every - interactive
    either = {"any": {"include": ["queued"]}, "all": {"include": ["in_progress"]}, "op": "or"}
    assert await _ids(emu, filters={"status": either}) == live
    assert (await error(emu, "tasks.get_all", {"filters": {"status": ["queued"]}}))[:2] == (
        400,
        12,
    )
    assert (await error(emu, "tasks.get_all", {"filters": ["status"]}))[:2] == (400, 16)


async def test_list_filter_values_must_be_strings() -> None:
    """apiserver/database/model/base.py _get_next_term: FieldsValueError "invalid value type,
    string expected" (400/16); an unknown operator or a dangling __$not too."""
    emu = make_asgi_emulator(sessions=1)
    code, sub, msg = await error(emu, "tasks.get_all", {"system_tags": [5]})
    assert (code, sub) == (400, 16)
    assert msg.startswith("Invalid value for fields (invalid value type, string expected)")
    assert (await error(emu, "tasks.get_all", {"tags": ["__$bogus"]}))[:2] == (400, 16)
    assert (await error(emu, "tasks.get_all", {"tags": ["a", "__$not"]}))[:2] == (400, 16)


async def test_undeclared_fields_do_not_filter() -> None:
    """apiserver/database/model/task/task.py get_all_query_options and base.py
    _prepare_query_no_company: only the declared fields filter; others are ignored."""
    emu = make_asgi_emulator(sessions=13)
    every = await _ids(emu)
    assert await _ids(emu, last_worker=["nobody"]) == every
    assert await _ids(emu, status_message=["nothing"]) == every
    assert await _ids(emu, **{"runtime.hostname": "no-such-host"}) == set()  # runtime.* is


# --- paging and scroll ---------------------------------------------------------------------------


async def test_paging_defaults() -> None:
    """apiserver/database/model/base.py get_paging: page_size defaults to and is capped at
    max_page_size (500), page to 0; page_size < 1 and page < 0 are 400/12."""
    emu = make_asgi_emulator(sessions=600)
    assert len((await ok(emu, "tasks.get_all", {"only_fields": ["id"]}))["tasks"]) == 500
    second = await ok(emu, "tasks.get_all", {"page": 1, "only_fields": ["id"]})
    assert len(second["tasks"]) == len(emu.state.tasks) - 500
    capped = await ok(emu, "tasks.get_all", {"page_size": 900, "only_fields": ["id"]})
    assert len(capped["tasks"]) == 500
    code, sub, msg = await error(emu, "tasks.get_all", {"page_size": 0})
    assert (code, sub) == (400, 12) and "page_size must be >0" in msg
    assert (await error(emu, "tasks.get_all", {"page": -1, "page_size": 5}))[:2] == (400, 12)


async def test_scroll_state() -> None:
    """apiserver/database/model/base.py get_data_with_scroll_support / validate_scroll_size and
    apiserver/bll/redis_cache_manager.py get_or_create_state_core: `size` is required, an
    unknown scroll id silently starts a new scroll, refresh_scroll re-reads from the start."""
    emu = make_asgi_emulator(sessions=30)
    assert (await error(emu, "tasks.get_all", {"scroll_id": None}))[:2] == (400, 12)
    first = await ok(emu, "tasks.get_all", {"scroll_id": "nope", "size": 10, "only_fields": ["id"]})
    assert first["scroll_id"] != "nope" and len(first["tasks"]) == 10
    body = {"scroll_id": first["scroll_id"], "size": 10, "only_fields": ["id"]}
    second = await ok(emu, "tasks.get_all", body)
    assert not {t["id"] for t in first["tasks"]} & {t["id"] for t in second["tasks"]}
    again = await ok(emu, "tasks.get_all", {**body, "refresh_scroll": True})
    assert [t["id"] for t in again["tasks"]] == [t["id"] for t in first["tasks"] + second["tasks"]]


# --- error subcodes ------------------------------------------------------------------------------


async def test_error_subcodes_from_errors_conf() -> None:
    """apiserver/apierrors/errors.conf: invalid_user_id is 400/301; a data model's missing
    required field is 400/12 (apiserver/service_repo/validators.py validate_data), an
    endpoint's declared required_fields 400/11 (validate_required_fields, projects.create);
    an unknown task 400/101."""
    emu = make_asgi_emulator(sessions=1)
    assert (await error(emu, "users.get_by_id", {"user": "nobody"}))[:2] == (400, 301)
    assert (await error(emu, "tasks.stop", {}))[:2] == (400, 12)
    assert (await error(emu, "projects.create", {}))[:2] == (400, 11)
    assert (await error(emu, "tasks.stop", {"task": "0" * 32}))[:2] == (400, 101)


async def test_get_current_user_takes_any_body() -> None:
    """apiserver/services/users.py get_current_user: no request schema validation."""
    emu = make_asgi_emulator(sessions=1)
    reply = await ok(emu, "users.get_current_user", {"unexpected": True})
    assert reply["user"]["id"] == emu.state.current_user_id


async def test_worker_ip_is_what_the_server_saw() -> None:
    """apiserver/service_repo/apicall.py real_ip (used by apiserver/bll/workers/__init__.py):
    the whole X-Forwarded-For header, else X-Real-IP, else the peer address."""
    emu = make_asgi_emulator(sessions=0)
    headers = {**emu.basic_header, "X-Forwarded-For": "127.0.50.1, 127.0.60.1"}
    async with emu.client(headers=headers) as client:
        reply = await client.post("/workers.register", json={"worker": "behind-proxy:0"})
        assert reply.status_code == 200
    listed = (await ok(emu, "workers.get_all", {}))["workers"]
    assert next(w for w in listed if w["id"] == "behind-proxy:0")["ip"] == (
        "127.0.50.1, 127.0.60.1"
    )


async def test_queue_project_and_user_filters_are_the_declared_ones() -> None:
    """apiserver/database/model/queue.py, project.py and user.py get_all_query_options: queues
    filter by name/tags/system_tags/id/metadata.*, projects by name/basename/description/tags/
    system_tags/id/parent/path/last_update, users by id; other keys are ignored."""
    emu = make_asgi_emulator(sessions=5)
    queues = (await ok(emu, "queues.get_all", {"only_fields": ["id"]}))["queues"]
    ignored = await ok(emu, "queues.get_all", {"only_fields": ["id"], "user": ["nobody"]})
    assert len(ignored["queues"]) == len(queues)
    named = await ok(emu, "queues.get_all", {"name": "^sessions$", "only_fields": ["name"]})
    assert [q["name"] for q in named["queues"]] == ["sessions"]
    projects = (await ok(emu, "projects.get_all", {"only_fields": ["id"]}))["projects"]
    body = {"only_fields": ["id"], "user": ["nobody"], "created": [">2999-01-01"]}
    assert len((await ok(emu, "projects.get_all", body))["projects"]) == len(projects)
    users = (await ok(emu, "users.get_all", {"only_fields": ["id"]}))["users"]
    body = {"only_fields": ["id"], "role": ["admin-only"]}
    assert len((await ok(emu, "users.get_all", body))["users"]) == len(users)


def test_memory_used_is_the_sessions_process_tree_not_the_machine() -> None:
    """clearml/utilities/resource_monitor.py: with report_mem_used_per_process (the default)
    `memory_used_gb` is the task's process tree, while `memory_free_gb` is the machine's; so
    used + free stays below the machine's memory, even on an idle session."""
    rng = random.Random(7)
    for name in ("cpu8", "8xa100", "k8s"):
        machine = WorkerMachine(SHAPES[name], "box", tuple(range(SHAPES[name].gpus)))
        for idle in (True, False) * 25:
            session = work(rng, machine, idle)
            load = host_load(rng, machine.shape, [session])
            scalars, _gpu = sdk_metrics(rng, machine, load, session)
            total = machine.shape.memory_gb
            assert scalars["memory_used_gb"] + scalars["memory_free_gb"] < total
            assert scalars["memory_used_gb"] <= total * 0.3


# --- machines as clearml-agent reports them (tray_app/demo/machines.py) -------------------------
# Read from clearml-agent (github clearml/clearml-agent @ ac65a93): clearml_agent/helper/
# resource_monitor.py, clearml_agent/helper/gpu/gpustat.py, clearml_agent/commands/worker.py,
# clearml_agent/glue/k8s.py.


def _report(
    name: str, *, idle: bool = False, gpus: tuple[int, ...] | None = None, **kw: Any
) -> dict[str, Any]:
    """One status report of a worker on a machine of shape `name` running one session."""
    shape = SHAPES[name]
    machine = WorkerMachine(shape, "box", tuple(range(shape.gpus)) if gpus is None else gpus, **kw)
    rng = random.Random(3)
    load = host_load(rng, shape, [work(rng, machine, idle)])
    return agent_stats(rng, machine, load, 1_800_000_000_000)


def _answer(reports: list[dict[str, Any]], keys: tuple[str, ...], *, split: bool) -> dict[str, Any]:
    """workers.get_stats over one report a minute for the reports' span."""
    now = 1_800_000_000.0
    docs = [
        doc
        for n, stats in enumerate(reports)
        for doc in stat_documents("w", int((now - 60 * (len(reports) - n)) * 1000), stats)
    ]
    (worker,) = get_stats(
        docs,
        worker_ids=["w"],
        from_date=now - 60 * (len(reports) + 1),
        to_date=now,
        interval=60,
        items=[StatItem(k) for k in keys],
        shape="2.3",
        split_by_resource=split,
    )
    return {m["metric"]: m["stats"][0] for m in worker["metrics"]}


def test_a_64_core_host_sends_one_cpu_figure_the_mean_over_every_core() -> None:
    """resource_monitor.py `_machine_stats`: `cpu_usage` = psutil.cpu_percent(percpu=True)
    averaged over the cores; `_get_average_readouts` sends it as a list (`cpu_usage_*`), one
    element. One busy core of 64 is about 1.56 %."""
    stats = _report("cpu64")
    (cpu,) = stats["cpu_usage"]
    assert 100 / 64 < cpu < 100 / 64 + 0.5  # the session's core, and the OS's bit
    assert stats["memory_used"] > 0 and "gpu_usage" not in stats
    assert round(cpu, 3) == cpu  # rounded to 3 decimals like the agent's report


def test_eight_gpus_one_busy_reads_per_gpu_only_with_split_by_resource() -> None:
    """resource_monitor.py: one list element per watched GPU in index order (`gpu_utilization_*`
    → `gpu_usage`); apiserver/bll/workers/stats.py `_get_worker_stats_per_metric`: the GPU keys
    average all variants together unless `split_by_resource`, which adds `resource_series`."""
    stats = _report("8xa100")
    usage = stats["gpu_usage"]
    assert len(usage) == 8 and [i for i, u in enumerate(usage) if u] == [3]
    assert 20 <= usage[3] <= 40 and len(stats["gpu_temperature"]) == 8
    split = _answer([stats] * 3, ("gpu_usage",), split=True)["gpu_usage"]
    names = [r["name"] for r in split["resource_series"]]
    assert sorted(names) == [str(i) for i in range(8)]
    busy = next(r for r in split["resource_series"] if r["name"] == "3")
    assert busy["values"][-3:] == [usage[3]] * 3  # after the range's first bucket, empty: 0.0
    mean = _answer([stats] * 3, ("gpu_usage",), split=False)["gpu_usage"]
    assert mean["resource_series"] == [] and mean["values"][-1] == pytest.approx(usage[3] / 8)


def test_a_single_gpu_has_no_resource_series() -> None:
    """stats.py `_extract_results`: `if len(resource_series) == 1: resource_series = {}`."""
    answer = _answer([_report("a100")] * 2, ("gpu_usage",), split=True)
    assert answer["gpu_usage"]["resource_series"] == []


def test_a_mig_slice_sends_the_default_utilization_and_its_parents_temperature() -> None:
    """resource_monitor.py `_machine_stats`: a GPU whose `utilization.gpu` is None gets
    `agent.resource_monitoring.default_gpu_utilization` (100); gpustat.py: a MIG device reports
    its parent GPU's temperature; its memory is the slice's. Idle, that memory does not move."""
    reports = [_report("mig", idle=True) for _ in range(3)]
    assert all(r["gpu_usage"] == [100.0] for r in reports)
    assert all(r["gpu_temperature"][0] > 45 for r in reports)  # the other slices at work
    assert {r["gpu_memory_used"][0] for r in reports} == {IDLE_GPU_MEMORY_MB}
    assert reports[0]["gpu_memory_used"][0] + reports[0]["gpu_memory_free"][0] == 10 * 1024
    machine = WorkerMachine(SHAPES["mig"], "mig-node-1", (0,))
    assert machine.worker_id(4101) == "mig-node-1:gpu0.4"  # --gpus 0.4: a static MIG slice


def test_a_k8s_pod_is_its_tasks_worker_and_sees_its_nodes_cpu() -> None:
    """glue/k8s.py `get_task_worker_id`: `<glue worker id>:<task id>`; psutil in a pod reads the
    node's /proc/stat, so the other pods' 18 cores are in its CPU figure."""
    machine = WorkerMachine(SHAPES["k8s"], "clearml-id-" + "a" * 32, (0,))
    assert machine.worker_id(1, "a" * 32) == "k8s-glue-gpu-a100:" + "a" * 32
    (cpu,) = _report("k8s", idle=True)["cpu_usage"]
    assert cpu * 96 / 100 > 12  # an idle pod on a busy node


def test_two_workers_on_one_host_report_the_same_cpu_and_their_own_gpus() -> None:
    """commands/worker.py `_generate_worker_id_name`: `<worker_name>:gpu<devices>`, so two daemons
    with --gpus 0 and --gpus 1 on one host are `host:gpu0` and `host:gpu1`; each watches its own
    GPU (NVIDIA_VISIBLE_DEVICES) and reports the host's CPU."""
    shape = SHAPES["shared"]
    first = WorkerMachine(shape, "gpu-a100-3", (0,))
    second = WorkerMachine(shape, "gpu-a100-3", (1,))
    assert (first.worker_id(1), second.worker_id(2)) == ("gpu-a100-3:gpu0", "gpu-a100-3:gpu1")
    rng = random.Random(5)
    busy, idle = work(rng, first, False), work(rng, second, True)
    loads = load_by_host(rng, [(first, busy), (second, idle)])
    a = agent_stats(rng, first, loads["gpu-a100-3"], 1)
    b = agent_stats(rng, second, loads["gpu-a100-3"], 1)
    assert a["cpu_usage"] == b["cpu_usage"] and a["memory_used"] == b["memory_used"]
    assert b["cpu_usage"][0] * 32 / 100 > 2.5  # the first session's work, in the second's figure
    assert a["gpu_usage"][0] > 50 and b["gpu_usage"] == [0.0]


def test_gpu_values_stop_when_the_agent_gives_up_and_the_server_fills_zeros() -> None:
    """resource_monitor.py `_failure`: after three failed reads `_gpustat = None` and no GPU key
    is sent again, while CPU and memory are; stats.py: those buckets then read 0.0."""
    before = _report("gpu-stops", gpu_reads_until_ms=1_800_000_000_001)
    after = _report("gpu-stops", gpu_reads_until_ms=1_800_000_000_000)
    assert before["gpu_usage"] and before["gpu_temperature"]
    assert not any(k.startswith("gpu_") for k in after) and after["memory_used"] > 0
    answer = _answer([before, after, after], ("gpu_temperature", "memory_used"), split=True)
    assert answer["gpu_temperature"]["values"][-3] > 0
    assert answer["gpu_temperature"]["values"][-2:] == [0.0, 0.0]
    assert all(v > 0 for v in answer["memory_used"]["values"][-3:])

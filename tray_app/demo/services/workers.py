"""workers.* (apiserver/services/workers.py, bll/workers/).

Tested in tests/unit/demo/test_emulator_agent.py and test_emulator_conformance.py
(get_stats).
"""

from __future__ import annotations

import re
from typing import Any

from tray_app.demo.bll.queues import queue_by_name
from tray_app.demo.bll.workers import register_worker, worker_doc, worker_report
from tray_app.demo.errors import bad_request, invalid_queue_id, missing_fields, validation_error
from tray_app.demo.query import ensure_list, require
from tray_app.demo.services.base import Call, Doc, endpoint
from tray_app.demo.state import EmulatorState, Worker
from tray_app.demo.worker_stats import (
    AGGREGATIONS,
    STAT_KEYS,
    StatDoc,
    StatItem,
    get_stats,
    stat_documents,
)


@endpoint("workers.register", min_version="2.4")
def workers_register(call: Call, body: Doc) -> Doc:
    require(body, "worker")
    state = call.state
    queue_ids = [_queue_id(state, q) for q in ensure_list(body.get("queues"), "queues")]
    register_worker(
        state,
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
    queue = queue_by_name(state, str(ref))
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
        worker = register_worker(state, str(body["worker"]), call.user_id or "", call.ip)
    queue_ids = None
    if body.get("queues") is not None:
        queue_ids = [_queue_id(state, q) for q in ensure_list(body.get("queues"), "queues")]
    elif body.get("queue"):
        queue_ids = [_queue_id(state, body["queue"])]
    ts = body.get("timestamp")
    worker_report(
        state,
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
        workers.append(worker_doc(state, w))
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
    # Only the asked-for workers' documents are of any use (the query's `terms` on the worker).
    wanted = {str(w) for w in body.get("worker_ids") or []}
    low, high = (from_date - 60) * 1000, (to_date + 60) * 1000
    docs = [
        doc
        for worker in state.workers.values()
        if not wanted or worker.id in wanted
        for doc in _documents(worker, low, high)
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


def _documents(worker: Worker, low: float, high: float) -> list[StatDoc]:
    """The documents of the worker's reports from `low` to `high` (epoch ms). The server writes
    them once per report (`log_stats_to_es`): so are they made here, on first use."""
    cache: dict[tuple[int, int], tuple[dict[str, Any], list[StatDoc]]] = {}
    out: list[StatDoc] = []
    for ts, stats in worker.stats:
        key = (ts, id(stats))
        hit = worker.stat_docs.get(key)
        docs = (
            hit[1] if hit is not None and hit[0] is stats else stat_documents(worker.id, ts, stats)
        )
        cache[key] = (stats, docs)
        if low <= ts <= high:
            out.extend(docs)
    worker.stat_docs = cache  # reports the deque dropped are dropped here too
    return out


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

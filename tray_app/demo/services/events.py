"""events.*: console log and scalars (apiserver/services/events.py).

Tested in tests/unit/demo/test_emulator_agent.py (task log paging, add_batch).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime

from tray_app.demo.bll.events import add_log, delete_task_log
from tray_app.demo.bll.tasks import get_task, set_metric
from tray_app.demo.errors import bad_request, validation_error
from tray_app.demo.query import require
from tray_app.demo.services.base import Call, Doc, as_bool, endpoint


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
            add_log(
                state,
                str(tid),
                str(event.get("msg", "")),
                level=str(event.get("level", "info")),
                worker=str(event.get("worker", call.worker or "")),
                timestamp_ms=ts_ms,
                newline=False,
            )
        elif etype == "training_stats_scalar":
            set_metric(
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
    get_task(state, task_id, plural=True)
    events = state.logs.get(task_id, [])
    try:
        batch_size = int(body.get("batch_size") or 5000)
        raw_from = body.get("from_timestamp")
        from_ts = float(raw_from) if raw_from is not None else None
    except (TypeError, ValueError) as exc:
        raise validation_error("invalid batch_size or from_timestamp") from exc
    earlier = as_bool(body.get("navigate_earlier", True))
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
    task = get_task(call.state, body["task"], plural=True)
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
    get_task(call.state, body["task"])
    return {"deleted": delete_task_log(call.state, body["task"])}

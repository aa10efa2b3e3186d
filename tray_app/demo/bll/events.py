"""Task events (apiserver/bll/event/): the console log a task's process writes.

Tested in tests/unit/demo/test_emulator_agent.py (console logs) and
test_emulator_tasks.py (tasks.reset drops it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tray_app.demo.state import Doc, EmulatorState
from tray_app.demo.values import iso


def add_log(
    state: EmulatorState,
    task_id: str,
    msg: str,
    *,
    level: str = "info",
    worker: str = "",
    timestamp_ms: int | None = None,
    newline: bool = True,
) -> Doc:
    """Append a console log event; like captured stdout, `msg` ends with a newline."""
    if newline and not msg.endswith("\n"):
        msg += "\n"
    ts = timestamp_ms if timestamp_ms is not None else int(state.now().timestamp() * 1000)
    events = state.logs.setdefault(task_id, [])
    event = {
        "timestamp": ts,
        "type": "log",
        "task": task_id,
        "level": level,
        "worker": worker,
        "msg": msg,
        "iter": 0,
        "metric": "",
        "variant": "",
        "@timestamp": iso(datetime.fromtimestamp(ts / 1000, UTC)),
    }
    # Keep events ordered by timestamp (seeded history may be appended out of order).
    if events and events[-1]["timestamp"] > ts:
        idx = len(events)
        while idx > 0 and events[idx - 1]["timestamp"] > ts:
            idx -= 1
        events.insert(idx, event)
    else:
        events.append(event)
    return event


def delete_task_log(state: EmulatorState, task_id: str) -> int:
    """Drop a task's console log; how many events it had."""
    return len(state.logs.pop(task_id, []))


__all__ = ["add_log", "delete_task_log"]

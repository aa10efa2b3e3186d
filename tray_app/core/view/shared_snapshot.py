"""The running tray answers `clearml-tray list` from its latest snapshot (the instance socket).

The tray answers only with data as fresh as what its menu shows as current: no snapshot yet, a
failed last refresh, or a refresh older than the stale limit → a refusal, and `list` asks the
server itself. A tray that polls all users can answer for your sessions alone (the same
sessions, in the same order, that a request for your own would return); one that polls only
yours cannot answer `--all-users`. The answer is rendered here by the functions `list` uses
on its own (tray_app/core/view/list_output.py), so both print the same; the idle verdicts are
the ones the tray warns and stops by.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tray_app.core.server.models import Snapshot
from tray_app.core.server.refresh import PollStatus

if TYPE_CHECKING:
    from tray_app.core.idle.policy import IdleVerdict


def own_only(snapshot: Snapshot) -> Snapshot:
    return dataclasses.replace(snapshot, sessions=snapshot.own, all_users=False)


def snapshot_reply(
    snapshot: Snapshot | None,
    status: PollStatus,
    request: dict[str, object],
    now: datetime | None = None,
    idle: Mapping[str, IdleVerdict] | None = None,
) -> tuple[bool, str, str | None]:
    """(ok, reason, output) for {"cmd": "snapshot", "all_users": bool, "format": str}; `idle`
    holds the verdicts the tray's idle policy acts on, shown as `list` shows them."""
    from tray_app.core.view.list_output import FORMATS, render

    now = now or datetime.now(UTC)
    all_users = request.get("all_users") is True
    fmt = request.get("format", "json")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        return False, f"Unknown list format {str(fmt)[:40]!r}.", None
    if snapshot is None:
        return False, "The tray has no session list yet.", None
    if status.is_stale(now) or status.failures:
        return False, "The tray's last refresh failed or is too old.", None
    if all_users and not snapshot.all_users:
        return False, "The tray lists only your own sessions.", None
    shared = snapshot if all_users else own_only(snapshot)
    return True, "", render(shared, fmt, now, idle)

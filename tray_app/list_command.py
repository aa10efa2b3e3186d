"""`clearml-tray list [--all-users] [--json]`: the live sessions, headless (never imports Qt).

Exit codes: 0 ok, 1 other server error, 2 configuration, 3 authentication, 4 server unavailable.
Errors are one line on stderr: `clearml-tray: <reason>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime

from tray_app import APP_NAME
from tray_app.core.api import ClearMLAuthError, ClearMLClient, ClearMLError, ClearMLUnavailable
from tray_app.core.config import ConfigError, ServerConfig, load_server_config
from tray_app.core.models import (
    STATE_GLYPHS,
    Session,
    Snapshot,
    format_percent,
    snapshot_to_json,
)
from tray_app.core.redact import redact
from tray_app.core.sessions import SessionService
from tray_app.core.untrusted import display_text

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_UNAVAILABLE = 4
MAX_CELL = 60  # characters of one table cell

log = logging.getLogger(__name__)


async def fetch_snapshot(
    config: ServerConfig, all_users: bool, *, request_timeout: float = 10.0
) -> Snapshot:
    # Scripts and status bars want an answer soon: fewer retries than the tray's poller.
    async with ClearMLClient(config, timeout=request_timeout, max_retries=2) as client:
        return await SessionService(client).snapshot(all_users=all_users)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(code: int, reason: str) -> int:
    # A password inside a server URL (http://user:pw@host) never reaches the terminal.
    print(f"{APP_NAME}: {display_text(redact(_one_line(reason)), 2000)}", file=sys.stderr)
    return code


def _setup_logging(debug: bool) -> None:
    if not debug:
        return
    from tray_app.core.redact import install_redaction

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")
    install_redaction()


def run_list(args: argparse.Namespace) -> int:
    _setup_logging(bool(getattr(args, "debug", False)))
    try:
        config = load_server_config(getattr(args, "config_file", None))
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, f"configuration error: {exc}")
    try:
        snapshot = asyncio.run(fetch_snapshot(config, bool(args.all_users)))
    except ClearMLAuthError as exc:
        return _fail(EXIT_AUTH, str(exc))
    except ClearMLUnavailable as exc:
        return _fail(EXIT_UNAVAILABLE, str(exc))
    except ClearMLError as exc:
        return _fail(EXIT_ERROR, str(exc))
    text = json.dumps(snapshot_to_json(snapshot), indent=2) if args.json else format_table(snapshot)
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # `clearml-tray list | head`: the reader has what it wanted. Point stdout at nothing so
        # that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


# -- table -------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _cpu(s: Session) -> str:
    cores = f"/{s.cpu_cores}c" if s.cpu_cores else ""
    return "-" if s.cpu_percent is None and not cores else f"{format_percent(s.cpu_percent)}{cores}"


def _ram(s: Session) -> str:
    if s.ram_used_gb is None and s.ram_total_gb is None:
        return "-"
    return f"{_num(s.ram_used_gb)}/{_num(s.ram_total_gb)} GB"


def _gpu(s: Session) -> str:
    if not s.gpu_count:
        return "-"
    return f"{format_percent(s.gpu_percent)} ×{s.gpu_count}"


def _address(s: Session) -> str:
    if not s.public_address:
        return "-"
    return f"{s.public_address}:{s.ssh_port}" if s.ssh_port else s.public_address


def session_row(s: Session, now: datetime, *, with_user: bool) -> list[str]:
    row = [
        STATE_GLYPHS.get(s.state, "?"),
        s.name,
        s.short_id,
        str(s.state),
        s.uptime(now) or "-",
        s.queue_name or "-",
        _cpu(s),
        _ram(s),
        _gpu(s),
        _address(s),
    ]
    if with_user:
        row.insert(2, s.creator_name or s.creator_id or "?")
    return row


def format_table(snapshot: Snapshot, now: datetime | None = None) -> str:
    """A plain-text table, one session per line (own sessions first)."""
    now = now or datetime.now(UTC)
    who = "all users" if snapshot.all_users else (snapshot.user_name or snapshot.user_id)
    who = display_text(who, MAX_CELL)
    server = display_text(snapshot.server, 200)
    if not snapshot.sessions:
        return f"No live sessions for {who} on {server}."
    header = ["", "NAME", "ID", "STATE", "UPTIME", "QUEUE", "CPU", "RAM", "GPU", "SSH ADDRESS"]
    if snapshot.all_users:
        header.insert(2, "USER")
    # Every cell may hold server text: one line, no escapes (a name must not clear the screen,
    # retitle the terminal or fake rows), bounded so one long name cannot stretch every row.
    rows = [header] + [
        [display_text(cell, MAX_CELL) for cell in session_row(s, now, with_user=snapshot.all_users)]
        for s in snapshot.sessions
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.append(f"{len(snapshot.sessions)} live session(s) for {who} on {server}")
    return "\n".join(lines)

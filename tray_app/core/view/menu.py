"""What the tray menu shows, as plain data (Qt-free).

`build_menu(view)` turns the latest snapshot, the poll status and the live tunnels into a tree
of `MenuItem`s; qt/tray.py only turns that tree into QActions. Keeping the decisions here makes
them testable without a display and guarantees that opening the menu never waits on anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tray_app.core.server.models import (
    STATE_GLYPHS,
    Session,
    SessionState,
    Snapshot,
    format_gb,
    format_percent,
)
from tray_app.core.server.refresh import ICON_FOR_STATE, PollStatus, TrayState
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.untrusted import display_text, menu_label, safe_ssh_command
from tray_app.core.view.actions import MenuAction

# Sessions listed in the menu (own, and in "All users"): a server with 20,000 live sessions must
# not make the menu take seconds to open. The rest are one "N more…" row away (the quick pick).
MAX_OWN_IN_MENU = 30
MAX_OTHERS_IN_MENU = 50
MAX_NAME = 80  # characters of a session name in its row (a name can be megabytes)
MAX_LABEL = 400  # any row (error messages name files, so they may run longer)
MAX_TOOLTIP = 500
MAX_ROW = 80  # characters of an information or error row; the whole text is in its tooltip
MAX_COPY = 4000  # characters a row copies (a whole error message)
COPY_HINT = "Click to copy"


@dataclass(frozen=True, slots=True)
class MenuItem:
    text: str = ""
    action: MenuAction | None = None  # None: an information row (shown disabled)
    session_id: str | None = None
    children: tuple[MenuItem, ...] = ()
    separator: bool = False
    confirm: str = ""  # a question to ask before running the action
    tooltip: str = ""
    confirm_button: str = ""  # the confirming button's label ("Stop session")
    copy: str = ""  # an information row whose value a click copies (ID, address)

    @property
    def enabled(self) -> bool:
        return self.action is not None or bool(self.children) or bool(self.copy)


SEPARATOR = MenuItem(separator=True)


@dataclass(frozen=True, slots=True)
class TrayView:
    status: PollStatus
    snapshot: Snapshot | None = None
    tunnels: Mapping[str, TunnelInfo] = field(default_factory=dict)
    show_all_users: bool = False
    idle_notes: Mapping[str, str] = field(default_factory=dict)  # session id → "idle for 1h 2m"
    idle_marks: Mapping[str, str] = field(default_factory=dict)  # session id → "idle 1h 2m"
    now: datetime | None = None
    presets: tuple[str, ...] = ()  # saved preset names: each launches from the Presets submenu


def visible_tunnels(tunnels: Mapping[str, TunnelInfo]) -> dict[str, TunnelInfo]:
    """The tunnels the user asked for (prewarmed ones stay out of sight until used)."""
    return {k: t for k, t in tunnels.items() if not t.prewarmed}


def coming_up(tunnels: Mapping[str, TunnelInfo]) -> bool:
    """A tunnel the user asked for is starting: the menu is refreshed more often meanwhile."""
    return any(t.state in PROGRESS_STATES for t in visible_tunnels(tunnels).values())


def elide(text: str, limit: int = MAX_ROW, middle: bool = False) -> str:
    """One line of at most `limit` characters, "…" where it was cut: at the end, or (`middle`)
    in the middle, which keeps both the start and the end (a file name) of a message."""
    line = display_text(text)
    if len(line) <= limit:
        return line
    if not middle:
        return line[: limit - 1].rstrip() + "…"
    head = (limit - 1) // 2
    return line[:head].rstrip() + "…" + line[-(limit - 1 - head) :].lstrip()


def info_row(text: str, copy: str = "", middle: bool = False) -> MenuItem:
    """A row that only informs: elided with the whole text in its tooltip; with `copy`, a
    click copies that value (rows are readable, not greyed out, when they can be clicked)."""
    short = elide(text, middle=middle)
    hint = f"{COPY_HINT}: {copy}" if copy else ""
    full = text if short != display_text(text) else ""
    return MenuItem(short, tooltip="\n".join(t for t in (full, hint) if t), copy=copy)


def session_label(
    session: Session,
    now: datetime | None = None,
    tunnel: bool = False,
    twin: bool = False,
    idle: str = "",
) -> str:
    """`● name (uptime)`; a `twin` (another listed session has the same name) also shows its
    queue or GPU type and short id, so "Interactive Session" ×3 are told apart; an idle one
    ends with its mark, `☾ idle 1h 10m`."""
    uptime = session.uptime(now)
    state = session.state.value if session.state != SessionState.RUNNING else ""
    name = display_text(session.name, MAX_NAME)
    if twin:
        where = session.queue_name or _gpu_kind(session)
        name = " · ".join(p for p in (name, display_text(where, 30), session.id[:8]) if p)
    parts = [f"{STATE_GLYPHS[session.state]} {name}"]
    detail = " · ".join(p for p in (state, uptime) if p)
    if detail:
        parts.append(f"({detail})")
    if tunnel:
        parts.append("⇄")
    if idle:
        parts.append(f"☾ {idle}")
    return " ".join(parts)


def _gpu_kind(session: Session) -> str:
    return session.gpu_type.split(",")[0].strip() if session.gpu_type else ""


def _gpu_row(session: Session) -> str:
    if not session.gpu_count:
        return "GPU: none"
    kind = _gpu_kind(session) or "GPU"
    row = f"GPU: {session.gpu_count} × {kind}"
    if session.gpu_percent is not None:
        row += f" · {format_percent(session.gpu_percent)}"
    return row


def metric_rows(session: Session, now: datetime | None = None) -> list[str]:
    cores = f"{session.cpu_cores} cores" if session.cpu_cores else "? cores"
    cpu = f"CPU: {cores}"
    if session.cpu_percent is not None:
        cpu += f" · {format_percent(session.cpu_percent)}"
    ram = f"RAM: {format_gb(session.ram_total_gb)}"
    if session.ram_used_gb is not None:
        # The SDK reports the memory of the session's own processes, not the machine's.
        ram += f" · {format_gb(session.ram_used_gb)} used by the session"
    public = session.public_address or "?"
    if session.public_address and session.ssh_port:
        public = f"{session.public_address}:{session.ssh_port}"
    rows = [
        f"Status: {session.state.value}"
        + (f" ({session.status_message})" if session.status_message else ""),
        cpu,
        ram,
        _gpu_row(session),
        f"Public address: {public}",
        # workers.get_all's `ip`: the address the API server saw the agent come from
        # (X-Forwarded-For, a NAT or a Docker bridge), not necessarily the machine's own.
        f"Worker IP (as the server sees it): {session.private_ip or '?'}",
        f"Queue: {session.queue_name or '?'}",
        f"Creator: {session.creator_name or '?'}",
        f"Uptime: {session.uptime(now) or '?'}",
        f"ID: {session.id}",
    ]
    return rows


def metric_items(session: Session, now: datetime | None = None) -> list[MenuItem]:
    """The metric rows as menu items, readable (enabled) and copying their value on a click:
    the raw ID, `address:port`, the queue name, or the text after the label."""
    copyable = {
        "ID": session.id,
        "Public address": (
            f"{session.public_address}:{session.ssh_port}"
            if session.public_address and session.ssh_port
            else session.public_address
        ),
        "Worker IP (as the server sees it)": session.private_ip,
        "Queue": session.queue_name,
    }
    items = []
    for text in metric_rows(session, now):
        head, _, value = text.partition(": ")
        items.append(info_row(text, copyable.get(head) or value.strip()))
    return items


def ssh_command(session: Session) -> str | None:
    """`ssh -p PORT user@host` to the session's public address, when it is published and every
    part of it validates (the user and address are written by the server: `root\nrm -rf ~`
    must never reach a clipboard); None otherwise."""
    if not (session.public_address and session.ssh_port):
        return None
    return safe_ssh_command(session.ssh_user or "root", session.public_address, session.ssh_port)


def _tunnel_rows(tunnel: TunnelInfo) -> list[MenuItem]:
    if tunnel.state == TunnelState.READY and tunnel.local_ssh_port:
        text = f"Tunnel: ready on localhost:{tunnel.local_ssh_port}"
    else:
        text = f"Tunnel: {tunnel.state.value}"
    rows = [MenuItem(text, tooltip=tunnel.last_message)]
    if tunnel.last_message and tunnel.state != TunnelState.READY:
        rows.append(info_row(tunnel.last_message))
    key = tunnel.key
    if tunnel.state == TunnelState.READY:
        rows.append(MenuItem("Copy session password", MenuAction.COPY_PASSWORD, key))
    if tunnel.state in (TunnelState.READY, TunnelState.RETRYING, TunnelState.CONNECTING):
        rows.append(MenuItem("Reconnect tunnel", MenuAction.RECONNECT, key))
    if tunnel.state not in (TunnelState.CLOSED, TunnelState.FAILED):
        # Ending the session itself is "Stop…" (one clear way): this only closes the tunnel.
        rows.append(MenuItem("Disconnect (keep the session running)", MenuAction.DISCONNECT, key))
    if tunnel.log_path is not None:
        rows.append(MenuItem("Follow launcher log", MenuAction.FOLLOW_LOG, key))
    return rows


def session_menu(
    session: Session,
    now: datetime | None,
    tunnel: TunnelInfo | None,
    idle_note: str = "",
    twin: bool = False,
    idle_mark: str = "",
) -> MenuItem:
    rows: list[MenuItem] = metric_items(session, now)
    if idle_note:
        rows.append(MenuItem(idle_note))
    rows.append(SEPARATOR)
    running = session.status == "in_progress" and session.state != SessionState.STOPPING
    if running:
        rows.append(MenuItem("Connect in VS Code", MenuAction.CONNECT, session.id))
        if session.jupyter_url or (tunnel and tunnel.jupyter_url):
            rows.append(MenuItem("Open JupyterLab", MenuAction.OPEN_JUPYTER, session.id))
        if tunnel is not None and tunnel.state == TunnelState.READY:
            rows.append(MenuItem("Open terminal (ssh)", MenuAction.OPEN_TERMINAL, session.id))
            rows.append(
                MenuItem(
                    "Copy SSH command",
                    MenuAction.COPY_SSH,
                    session.id,
                    tooltip=f"ssh {tunnel.ssh_host_alias}: over the tunnel, no password asked",
                )
            )
        direct = ssh_command(session)
        if direct:
            rows.append(
                MenuItem(
                    "Copy direct SSH command (asks for the password)",
                    MenuAction.COPY_DIRECT_SSH,
                    session.id,
                    tooltip="Straight to the machine, without the tray's tunnel",
                )
            )
    if tunnel is not None:
        rows.append(SEPARATOR)
        rows.extend(_tunnel_rows(tunnel))
    rows.append(SEPARATOR)
    rows.append(MenuItem("Show log", MenuAction.SHOW_LOG, session.id))
    if session.web_url:
        rows.append(MenuItem("Open in ClearML web UI", MenuAction.OPEN_WEB, session.id))
    if session.is_own and idle_note:
        rows.append(MenuItem("Keep alive for 2 hours", MenuAction.KEEP_ALIVE, session.id))
    rows.append(SEPARATOR)
    # Confirmations name the session (name and short id: names repeat) and, when it is not
    # the user's own, whose it is.
    named = f"“{display_text(session.name, MAX_NAME)}” ({session.id[:8]})"
    owner = "" if session.is_own else f", owned by {session.creator_name or 'another user'},"
    live = session.status in ("queued", "in_progress")
    if live:
        rows.append(
            MenuItem(
                "Stop…",
                MenuAction.STOP,
                session.id,
                confirm=f"Stop the session {named}{owner}? Unsaved work on it is lost.",
                confirm_button="Stop session",
            )
        )
    rows.append(
        MenuItem(
            "Delete…",
            MenuAction.DELETE,
            session.id,
            confirm=f"Delete the session {named}{owner}"
            + (" (it is stopped first)" if live else "")
            + "? This cannot be undone.",
            confirm_button="Delete session",
        )
    )
    return MenuItem(
        session_label(
            session, now, tunnel is not None and tunnel.state == TunnelState.READY, twin, idle_mark
        ),
        session_id=session.id,
        children=tuple(rows),
    )


def _status_rows(status: PollStatus) -> list[MenuItem]:
    if status.state == TrayState.UNCONFIGURED:
        return [
            info_row("⚠ " + (status.message or "ClearML is not configured"), middle=True),
            MenuItem("Set up ClearML…", MenuAction.ONBOARDING),
            MenuItem("Try the demo server", MenuAction.START_DEMO),
            MenuItem("Open settings…", MenuAction.SETTINGS),
        ]
    if status.state == TrayState.OFFLINE:
        return [
            MenuItem(f"⚠ Server unreachable: {elide(status.server)}", tooltip=status.message),
            info_row(status.message, status.message, middle=True) if status.message else SEPARATOR,
            MenuItem("Open settings…", MenuAction.SETTINGS),
        ]
    if status.state == TrayState.AUTH:
        return [
            MenuItem("⚠ Wrong ClearML credentials", tooltip=status.message),
            info_row(status.message, status.message, middle=True) if status.message else SEPARATOR,
            MenuItem("Open settings…", MenuAction.SETTINGS),
        ]
    if status.state == TrayState.ERROR:
        # The whole message is copied: it goes into a bug report or a message to the admin.
        return [
            info_row(f"⚠ {status.message}", status.message, middle=True),
            MenuItem("Open settings…", MenuAction.SETTINGS),
        ]
    return []


def build_menu(view: TrayView) -> tuple[MenuItem, ...]:
    now = view.now or datetime.now(UTC)
    items: list[MenuItem] = []
    status_rows = _status_rows(view.status)
    if status_rows:
        items.extend(status_rows)
        items.append(SEPARATOR)

    snapshot = view.snapshot
    tunnels_by_session = {t.session_id: t for t in view.tunnels.values() if t.session_id}
    if snapshot is None:
        if view.status.state == TrayState.CONNECTING:
            items.append(MenuItem("Loading sessions…"))
    else:
        own = snapshot.own
        if not own:
            items.append(MenuItem("No live sessions"))
        twins = _repeated_names(own[:MAX_OWN_IN_MENU])
        for session in own[:MAX_OWN_IN_MENU]:
            items.append(
                session_menu(
                    session,
                    now,
                    tunnels_by_session.get(session.id),
                    view.idle_notes.get(session.id, ""),
                    twin=session.name in twins,
                    idle_mark=view.idle_marks.get(session.id, ""),
                )
            )
        if len(own) > MAX_OWN_IN_MENU:
            items.append(_more_row(len(own) - MAX_OWN_IN_MENU))
        others = snapshot.others
        if view.show_all_users and others:
            other_twins = _repeated_names(others[:MAX_OTHERS_IN_MENU])
            shown = [
                session_menu(s, now, tunnels_by_session.get(s.id), twin=s.name in other_twins)
                for s in others[:MAX_OTHERS_IN_MENU]
            ]
            if len(others) > MAX_OTHERS_IN_MENU:
                shown.append(_more_row(len(others) - MAX_OTHERS_IN_MENU))
            items.append(MenuItem(f"All users ({len(others)})", children=tuple(shown)))
    launching = [t for t in view.tunnels.values() if not t.session_id]
    for tunnel in launching:
        items.append(
            MenuItem(
                f"◌ {tunnel.label or 'New session'} ({tunnel.state.value})",
                children=tuple(_tunnel_rows(tunnel)),
            )
        )

    items.append(SEPARATOR)
    items.append(MenuItem("New session…", MenuAction.NEW_SESSION))
    items.append(MenuItem("Presets", children=_preset_rows(view.presets)))
    items.append(MenuItem("Refresh", MenuAction.REFRESH))
    if view.status.last_success is not None:
        stamp = view.status.last_success.astimezone().strftime("%H:%M:%S")
        if view.status.is_stale(now):
            items.append(MenuItem(f"⚠ Stale: last refreshed {stamp}"))
        else:
            items.append(MenuItem(f"Last refreshed {stamp}"))
    items.append(SEPARATOR)
    items.append(MenuItem("Settings…", MenuAction.SETTINGS))
    items.append(MenuItem("Open log folder", MenuAction.OPEN_LOG_FOLDER))
    items.append(MenuItem("About ClearML Session Tray", MenuAction.ABOUT))
    items.append(MenuItem("Quit", MenuAction.QUIT))
    return tuple(_safe(item) for item in items)


MAX_PRESETS_IN_MENU = 30


def _preset_rows(names: Sequence[str]) -> tuple[MenuItem, ...]:
    """Saved presets launch in one click (the preset name rides in `session_id`)."""
    rows = [
        MenuItem(
            f"Launch “{display_text(name, MAX_NAME)}”",
            MenuAction.LAUNCH_PRESET,
            name,
            tooltip="Start a new session with this preset",
        )
        for name in names[:MAX_PRESETS_IN_MENU]
    ]
    if len(names) > MAX_PRESETS_IN_MENU:
        rows.append(MenuItem("More presets in New session…", MenuAction.NEW_SESSION))
    if rows:
        rows.append(SEPARATOR)
    rows += [
        MenuItem("Import presets…", MenuAction.IMPORT_PRESETS),
        MenuItem("Export presets…", MenuAction.EXPORT_PRESETS),
    ]
    return tuple(rows)


def _repeated_names(sessions: Sequence[Session]) -> set[str]:
    seen: set[str] = set()
    twins: set[str] = set()
    for session in sessions:
        (twins if session.name in seen else seen).add(session.name)
    return twins


def _more_row(hidden: int) -> MenuItem:
    """The row standing for sessions left out of the menu: opens the searchable quick pick."""
    return MenuItem(
        f"{hidden} more… (search)",
        MenuAction.QUICK_PICK,
        tooltip="Too many sessions for a menu: search them all by name, id or user",
    )


def _safe(item: MenuItem) -> MenuItem:
    """Server text is in many rows (names, messages, addresses): every label becomes one line
    without controls or bidi overrides, `&` shown as itself (not a Qt mnemonic)."""
    if item.separator:
        return item
    return replace(
        item,
        text=menu_label(item.text, MAX_LABEL),
        confirm=display_text(item.confirm, MAX_TOOLTIP),
        tooltip=display_text(item.tooltip, MAX_TOOLTIP, multiline=True),
        copy=display_text(item.copy, MAX_COPY),
        children=tuple(_safe(child) for child in item.children),
    )


PROGRESS_STATES = (TunnelState.LAUNCHING, TunnelState.CONNECTING, TunnelState.RETRYING)


def icon_state(view: TrayView) -> str:
    """The tray icon: the poll's state, and "busy" the moment a launch or attach starts (the
    next poll would say so only seconds later)."""
    name = ICON_FOR_STATE[view.status.state]
    if name == "ok" and any(t.state in PROGRESS_STATES for t in view.tunnels.values()):
        return "busy"
    return name


def tooltip(view: TrayView) -> str:
    status = view.status
    if status.state in (TrayState.OK, TrayState.BUSY) and view.snapshot is not None:
        own = view.snapshot.own
        running = sum(1 for s in own if s.state == SessionState.RUNNING)
        starting = sum(1 for s in own if s.state in (SessionState.QUEUED, SessionState.STARTING))
        text = f"ClearML: {running} running"
        if starting:
            text += f", {starting} starting"
        if status.is_stale(view.now or datetime.now(UTC)):
            text += " (stale)"
        return text
    if status.state == TrayState.CONNECTING:
        return "ClearML: connecting…"
    return display_text("ClearML: " + (status.message or status.state.value), MAX_TOOLTIP)


def flatten_text(items: tuple[MenuItem, ...], depth: int = 0) -> list[str]:
    """The menu as indented text lines (debug dumps and desktop tests)."""
    out: list[str] = []
    for item in items:
        if item.separator:
            out.append("  " * depth + "---")
            continue
        out.append("  " * depth + item.text)
        out.extend(flatten_text(item.children, depth + 1))
    return out

"""What the tray menu shows, as plain data (Qt-free).

`build_menu(view)` turns the latest snapshot, the poll status and the live tunnels into a tree
of `MenuItem`s; qt/tray.py only turns that tree into QActions. Keeping the decisions here makes
them testable without a display and guarantees that opening the menu never waits on anything.

A session's row says the most in the least room: `● train-bert · A100 · 6074a10f` on the left,
and in a column on the right (the menu's shortcut column) what changes: `GPU 87 %  2d 4h ⇄`,
the idle mark and the tunnel's health. Rows keep their place: sessions are listed by start time,
oldest first, so a new session is added at the bottom and nothing moves under the mouse.
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
    format_duration,
    format_gb,
    format_percent,
)
from tray_app.core.server.refresh import ICON_FOR_STATE, PollStatus, TrayState
from tray_app.core.tunnels.model import ENDED, TunnelInfo, TunnelState
from tray_app.core.untrusted import display_text, menu_label, safe_ssh_command
from tray_app.core.view.actions import MenuAction
from tray_app.core.wording import session_title, short_id

# Sessions listed in the menu (own, and in "All users"): a server with 20,000 live sessions must
# not make the menu take seconds to open. The rest are one "N more…" row away (the quick pick).
MAX_OWN_IN_MENU = 30
MAX_OTHERS_IN_MENU = 50
MAX_NAME = 80  # characters of a session name in its row (a name can be megabytes)
MAX_LABEL = 400  # any row (error messages name files, so they may run longer)
MAX_TOOLTIP = 500
MAX_ROW = 80  # characters of an information or error row; the whole text is in its tooltip
MAX_COPY = 4000  # characters a row copies (a whole error message)
MAX_SUBMENU_ROWS = 15  # a session's submenu, separators aside: it fits on any screen
COPY_HINT = "Click to copy"
TUNNEL_UP = "⇄"
IDLE_GLYPH = "☾"
GAP = "\u2002"  # an en space between a row's figures: wider than a space, never collapsed


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
    detail: str = ""  # the right-hand column (a session's figures and marks)

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
    full = text if short != display_text(text) else ""
    # What a click copies is named only when the row does not already say it.
    hint = "" if not copy else COPY_HINT if copy == text else f"{COPY_HINT}: {elide(copy, 200)}"
    return MenuItem(short, tooltip="\n".join(t for t in (full, hint) if t), copy=copy)


# --- a session's row ----------------------------------------------------------------------------


def session_label(session: Session) -> str:
    """`● name · where · id8`: where it runs (the GPU type, else the queue) and the short id,
    so that three "Interactive Session" rows are told apart and match every notice."""
    name = display_text(session.name, MAX_NAME) or "(unnamed)"
    where = display_text(_gpu_kind(session) or session.queue_name, 30)
    parts = [p for p in (name, where, session.short_id) if p]
    return f"{STATE_GLYPHS[session.state]} {' · '.join(parts)}"


def compact_duration(seconds: float) -> str:
    """The two largest units: "2d 4h", "3h 12m", "45s" (a row has no room for more)."""
    return " ".join(format_duration(seconds).split()[:2])


def tunnel_health(tunnel: TunnelInfo | None) -> str:
    """The mark a session's row carries for its tunnel ("" without one): up, coming up, or
    lost (it was up, and now the CLI or the tray's check is reconnecting it)."""
    if tunnel is None or tunnel.state is TunnelState.CLOSED:
        return ""
    if tunnel.state is TunnelState.READY:
        return TUNNEL_UP
    if tunnel.state is TunnelState.FAILED:
        return "⚠ no tunnel"
    if tunnel.state is TunnelState.RETRYING or tunnel.generation > 0:
        return "⚠ tunnel lost"
    return f"{TUNNEL_UP} …"


def session_detail(
    session: Session,
    now: datetime | None = None,
    tunnel: TunnelInfo | None = None,
    idle: str = "",
) -> str:
    """The right-hand column: `GPU 87 %  2d 4h  ☾ idle 1h 10m  ⇄` for a running session (GPU
    when it has GPUs, else CPU), `queued 12s` / `starting 1m` / `stopping` otherwise; `idle` is
    the idle mark ("idle 1h 10m", core/idle/policy.idle_mark), "" for a session not idle."""
    seconds = session.uptime_seconds(now)
    uptime = compact_duration(seconds) if seconds is not None else ""
    if session.state is SessionState.RUNNING:
        if session.gpu_count and session.gpu_percent is not None:
            figure = f"GPU {format_percent(session.gpu_percent)}"
        elif session.cpu_percent is not None:
            figure = f"CPU {format_percent(session.cpu_percent)}"
        else:
            figure = ""
        parts = [figure, uptime]
    else:
        parts = [f"{session.state.value} {uptime}".strip()]
    if idle:
        parts.append(f"{IDLE_GLYPH} {idle}")
    parts.append(tunnel_health(tunnel))
    return GAP.join(p for p in parts if p)


_GPU_VENDOR_WORDS = {"nvidia", "geforce", "tesla", "quadro", "amd", "radeon", "instinct", "intel"}
_GPU_FAMILIES = {"rtx", "gtx", "titan", "arc"}


def _gpu_kind(session: Session) -> str:
    """The GPU's model in a word or two: "NVIDIA A100-SXM4-80GB" → "A100", "NVIDIA GeForce RTX
    4090" → "RTX 4090" (the submenu has the full name)."""
    if not session.gpu_count or not session.gpu_type:
        return ""
    words = [
        w for w in session.gpu_type.split(",")[0].split() if w.lower() not in _GPU_VENDOR_WORDS
    ]
    if not words:
        return ""
    if words[0].lower() in _GPU_FAMILIES and len(words) > 1:
        return f"{words[0]} {words[1]}"
    return words[0].split("-")[0] or words[0]


def _gpu_row(session: Session) -> str:
    if not session.gpu_count:
        return "GPU: none"
    kind = session.gpu_type.split(",")[0].strip() if session.gpu_type else "GPU"
    row = f"GPU: {session.gpu_count} × {kind or 'GPU'}"
    if session.gpu_percent is not None:
        row += f" · {format_percent(session.gpu_percent)}"
    return row


def metric_rows(session: Session, now: datetime | None = None) -> list[str]:
    """What a session runs on, in six rows (a submenu has room for fifteen)."""
    status = f"Status: {session.state.value}"
    if session.status_message:
        status += f" ({session.status_message})"
    uptime = session.uptime(now)
    if uptime:
        status += f" · up {uptime}"
    cores = f"{session.cpu_cores} cores" if session.cpu_cores else "? cores"
    machine = f"CPU: {cores}"
    if session.cpu_percent is not None:
        machine += f" · {format_percent(session.cpu_percent)}"
    machine += f" · RAM {format_gb(session.ram_total_gb)}"
    if session.ram_used_gb is not None:
        # The SDK reports the memory of the session's own processes, not the machine's.
        machine += f", {format_gb(session.ram_used_gb)} used by the session"
    public = session.public_address or "?"
    if session.public_address and session.ssh_port:
        public = f"{session.public_address}:{session.ssh_port}"
    # workers.get_all's `ip`: the address the API server saw the agent come from (X-Forwarded-
    # For, a NAT or a Docker bridge), not necessarily the machine's own.
    address = f"Address: {public} · worker IP {session.private_ip or '?'} (as the server sees it)"
    return [
        status,
        machine,
        _gpu_row(session),
        address,
        f"Queue: {session.queue_name or '?'} · by {session.creator_name or '?'}",
        f"ID: {session.id}",
    ]


def metric_items(session: Session, now: datetime | None = None) -> list[MenuItem]:
    """The metric rows as menu items, readable (enabled) and copying their value on a click:
    the raw ID, `address:port`, the queue name, or the text after the label."""
    address = (
        f"{session.public_address}:{session.ssh_port}"
        if session.public_address and session.ssh_port
        else session.public_address
    )
    copyable = {"ID": session.id, "Address": address, "Queue": session.queue_name}
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


def _tunnel_title(tunnel: TunnelInfo) -> str:
    if tunnel.state is TunnelState.READY:
        where = f" on localhost:{tunnel.local_ssh_port}" if tunnel.local_ssh_port else ""
        return f"Tunnel: ready{where}"
    if tunnel.state in (TunnelState.RETRYING, TunnelState.CONNECTING) and tunnel.generation:
        return "Tunnel: lost, reconnecting"
    return f"Tunnel: {tunnel.state.value}"


def _tunnel_group(
    tunnel: TunnelInfo, session: Session | None, direct: str | None
) -> list[MenuItem]:
    """The tunnel and what acts on it, in one submenu: the session's own rows stay few."""
    rows: list[MenuItem] = []
    if tunnel.last_message and tunnel.state is not TunnelState.READY:
        rows.append(info_row(tunnel.last_message, tunnel.last_message))
    key = tunnel.key
    ready = tunnel.state is TunnelState.READY
    if ready and session is not None:
        rows.append(MenuItem("Open terminal (ssh)", MenuAction.OPEN_TERMINAL, session.id))
    if direct and session is not None:
        rows.append(
            MenuItem(
                "Copy direct SSH command (asks for the password)",
                MenuAction.COPY_DIRECT_SSH,
                session.id,
                tooltip=f"{direct}: straight to the machine, without the tray's tunnel",
            )
        )
    if ready:
        rows.append(MenuItem("Copy session password", MenuAction.COPY_PASSWORD, key))
    if tunnel.state in (TunnelState.READY, TunnelState.RETRYING, TunnelState.CONNECTING):
        rows.append(MenuItem("Reconnect tunnel", MenuAction.RECONNECT, key))
    if tunnel.state not in ENDED:
        # Ending the session itself is "Stop…" (one clear way): this only closes the tunnel.
        rows.append(MenuItem("Disconnect (keep the session running)", MenuAction.DISCONNECT, key))
    if not rows:
        rows.append(MenuItem("Connect again from the session's menu"))
    return [MenuItem(_tunnel_title(tunnel), children=tuple(rows), tooltip=tunnel.last_message)]


def session_menu(
    session: Session,
    now: datetime | None,
    tunnel: TunnelInfo | None,
    idle_note: str = "",
    idle_mark: str = "",
) -> MenuItem:
    """A session's row and its submenu: what it runs on, then what can be done, at most
    `MAX_SUBMENU_ROWS` rows (the tunnel's own actions are one submenu of their own)."""
    rows: list[MenuItem] = metric_items(session, now)
    if idle_note:
        if session.is_own:
            rows.append(
                MenuItem(
                    f"{idle_note} · keep alive 2 h",
                    MenuAction.KEEP_ALIVE,
                    session.id,
                    tooltip="Not stopped, nor warned about, for the next two hours",
                )
            )
        else:
            rows.append(info_row(idle_note))
    rows.append(SEPARATOR)
    running = session.status == "in_progress" and session.state != SessionState.STOPPING
    direct = ssh_command(session)
    ready = tunnel is not None and tunnel.state is TunnelState.READY
    if running:
        rows.append(MenuItem("Connect in VS Code", MenuAction.CONNECT, session.id))
        if session.jupyter_url or (tunnel and tunnel.jupyter_url):
            rows.append(MenuItem("Open JupyterLab", MenuAction.OPEN_JUPYTER, session.id))
        if ready and tunnel is not None:
            rows.append(
                MenuItem(
                    "Copy SSH command",
                    MenuAction.COPY_SSH,
                    session.id,
                    tooltip=f"ssh {tunnel.ssh_host_alias}: over the tunnel, no password asked",
                )
            )
        elif direct:
            rows.append(
                MenuItem(
                    "Copy SSH command (asks for the password)",
                    MenuAction.COPY_DIRECT_SSH,
                    session.id,
                    tooltip=f"{direct}: straight to the machine; Connect first for one that "
                    "needs no password",
                )
            )
    if tunnel is not None and tunnel.state is not TunnelState.CLOSED:
        rows.extend(_tunnel_group(tunnel, session if running else None, direct if ready else None))
    rows.append(SEPARATOR)
    rows.append(
        MenuItem(
            "Show log",
            MenuAction.SHOW_LOG,
            session.id,
            tooltip="The session's console log on its machine"
            + (", and clearml-session's on this computer" if tunnel is not None else ""),
        )
    )
    if session.web_url:
        rows.append(MenuItem("Open in ClearML web UI", MenuAction.OPEN_WEB, session.id))
    rows.append(SEPARATOR)
    # Confirmations name the session (name and short id: names repeat) and, when it is not
    # the user's own, whose it is.
    named = f"“{display_text(session.name, MAX_NAME)}” ({session.short_id})"
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
        session_label(session),
        session_id=session.id,
        children=tuple(rows),
        detail=session_detail(session, now, tunnel, idle_mark),
        tooltip=session_title(session.name, session.id),
    )


def by_start(sessions: Sequence[Session]) -> list[Session]:
    """Oldest first, by when each started (else was created); the id breaks ties. A new
    session joins at the bottom: no row moves under the mouse when one is launched."""
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(sessions, key=lambda s: (s.started or s.created or far, s.id))


# --- status rows --------------------------------------------------------------------------------


def _status_rows(status: PollStatus) -> list[MenuItem]:
    """What is wrong, first in the menu; each heading is readable and copies the whole
    message, and the next row offers what fixes it."""
    message = status.message
    if status.state == TrayState.UNCONFIGURED:
        rows = [info_row("⚠ " + (message or "ClearML is not configured"), message, middle=True)]
        if status.keys_needed:
            rows.append(MenuItem("Enter ClearML keys…", MenuAction.CREDENTIALS))
        else:
            rows.append(MenuItem("Set up ClearML…", MenuAction.ONBOARDING))
        rows.append(MenuItem("Try the demo server", MenuAction.START_DEMO))
        return rows
    if status.state == TrayState.OFFLINE:
        return [
            MenuItem(
                f"⚠ Server unreachable: {elide(status.server, 60)}",
                tooltip=f"{message}\n{COPY_HINT}" if message else "",
                copy=message or status.server,
            ),
            info_row(_why(message, status.server), message, middle=True) if message else SEPARATOR,
            MenuItem("Retry now", MenuAction.REFRESH),
        ]
    if status.state == TrayState.AUTH:
        return [
            MenuItem(
                "⚠ ClearML refused the keys",
                tooltip=f"{message}\n{COPY_HINT}" if message else "",
                copy=message or "ClearML refused the keys",
            ),
            info_row(message, message, middle=True) if message else SEPARATOR,
            MenuItem("Enter ClearML keys…", MenuAction.CREDENTIALS),
        ]
    if status.state == TrayState.ERROR:
        # The whole message is copied: it goes into a bug report or a message to the admin.
        return [
            info_row(f"⚠ {message}", message, middle=True),
            MenuItem("Retry now", MenuAction.REFRESH),
        ]
    return []


def _why(message: str, server: str) -> str:
    """The reason alone, under a heading that already names the server."""
    for lead in (f"Cannot reach the ClearML server {server}: ", f"The ClearML server {server} "):
        if server and message.startswith(lead):
            rest = message[len(lead) :]
            return rest[:1].upper() + rest[1:]
    return message


# --- the whole menu -----------------------------------------------------------------------------


def _pending_rows(view: TrayView, listed: set[str]) -> list[MenuItem]:
    """Launches and attaches whose session is not (yet) in the snapshot: the CLI is creating
    it, or it was created since the last refresh. Ended ones leave no row behind."""
    rows = []
    for tunnel in view.tunnels.values():
        if tunnel.state in ENDED or (tunnel.session_id and tunnel.session_id in listed):
            continue
        label = tunnel.label or "New session"
        if tunnel.session_id and short_id(tunnel.session_id) not in label:
            label = session_title(label, tunnel.session_id)
        children = [info_row(tunnel.last_message)] if tunnel.last_message else []
        children += [
            MenuItem("Show log", MenuAction.FOLLOW_LOG, tunnel.key),
            MenuItem("Cancel…", MenuAction.CANCEL_LAUNCH, tunnel.key),
        ]
        glyph = STATE_GLYPHS[
            SessionState.QUEUED if not tunnel.session_id else SessionState.STARTING
        ]
        rows.append(
            MenuItem(
                f"{glyph} {display_text(label, MAX_NAME)}",
                children=tuple(children),
                detail=tunnel.state.value,
            )
        )
    return rows


def build_menu(view: TrayView) -> tuple[MenuItem, ...]:
    now = view.now or datetime.now(UTC)
    items: list[MenuItem] = []
    status_rows = _status_rows(view.status)
    if status_rows:
        items.extend(status_rows)
        items.append(SEPARATOR)

    snapshot = view.snapshot
    tunnels_by_session = {
        t.session_id: t
        for t in sorted(view.tunnels.values(), key=lambda t: t.state not in ENDED)
        if t.session_id
    }  # a live tunnel wins over one of the same session that ended
    listed: set[str] = set()
    if snapshot is None:
        if view.status.state == TrayState.CONNECTING:
            items.append(MenuItem("Loading sessions…"))
    else:
        listed = {s.id for s in snapshot.sessions}
        own = by_start(snapshot.own)
        pending = _pending_rows(view, listed)
        if not own and not pending:
            items.append(MenuItem("No live sessions"))
        for session in own[:MAX_OWN_IN_MENU]:
            items.append(
                session_menu(
                    session,
                    now,
                    tunnels_by_session.get(session.id),
                    view.idle_notes.get(session.id, ""),
                    idle_mark=view.idle_marks.get(session.id, ""),
                )
            )
        if len(own) > MAX_OWN_IN_MENU:
            items.append(_more_row(len(own) - MAX_OWN_IN_MENU))
        items.extend(pending)
        others = by_start(snapshot.others)
        if view.show_all_users and others:
            shown = [
                session_menu(s, now, tunnels_by_session.get(s.id))
                for s in others[:MAX_OTHERS_IN_MENU]
            ]
            if len(others) > MAX_OTHERS_IN_MENU:
                shown.append(_more_row(len(others) - MAX_OTHERS_IN_MENU))
            items.append(MenuItem(f"All users ({len(others)})", children=tuple(shown)))
    if snapshot is None:
        items.extend(_pending_rows(view, listed))

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
            tooltip="Start a new session with this preset (the session is named after it)",
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
        detail=menu_label(item.detail, MAX_ROW),
        confirm=display_text(item.confirm, MAX_TOOLTIP),
        tooltip=display_text(item.tooltip, MAX_TOOLTIP, multiline=True),
        copy=display_text(item.copy, MAX_COPY),
        children=tuple(_safe(child) for child in item.children),
    )


PROGRESS_STATES = (TunnelState.LAUNCHING, TunnelState.CONNECTING, TunnelState.RETRYING)


def running_count(view: TrayView) -> int:
    """Your running sessions: the number the tray icon shows."""
    if view.snapshot is None:
        return 0
    return sum(1 for s in view.snapshot.own if s.state == SessionState.RUNNING)


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


def row_text(item: MenuItem) -> str:
    """A row as the user reads it: the label, and the right-hand column after a tab."""
    return f"{item.text}\t{item.detail}" if item.detail else item.text


def flatten_text(items: tuple[MenuItem, ...], depth: int = 0) -> list[str]:
    """The menu as indented text lines (debug dumps and desktop tests)."""
    out: list[str] = []
    for item in items:
        if item.separator:
            out.append("  " * depth + "---")
            continue
        out.append("  " * depth + (f"{item.text}   {item.detail}" if item.detail else item.text))
        out.extend(flatten_text(item.children, depth + 1))
    return out

"""The tray menu as data: what rows and actions each situation shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.view.menu import (
    GAP,
    MAX_SUBMENU_ROWS,
    MenuItem,
    TrayView,
    build_menu,
    flatten_text,
    info_row,
    metric_rows,
    session_detail,
    session_label,
    ssh_command,
    tooltip,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _session(i: int, **kw: object) -> Session:
    base = Session(
        id=f"{i:032x}",
        name=f"session-{i}",
        status="in_progress",
        state=SessionState.RUNNING,
        queue_name="sessions",
        creator_name="Demo User",
        started=NOW - timedelta(days=1, hours=2, minutes=5),
        private_ip="127.0.3.17",
        public_address="127.0.103.17",
        ssh_port=10022,
        ssh_user="root",
        cpu_cores=8,
        cpu_percent=35.0,
        ram_total_gb=64.0,
        ram_used_gb=12.5,
        gpu_count=2,
        gpu_type="NVIDIA A100, NVIDIA A100",
        gpu_percent=40.0,
        web_url="http://127.0.0.1:8080/projects/p/experiments/x",
        jupyter_url="http://127.0.103.17:8888/?token=t",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _view(sessions: list[Session], state: TrayState = TrayState.OK, **kw: object) -> TrayView:
    snapshot = Snapshot(sessions=tuple(sessions), fetched_at=NOW)
    status = PollStatus(state, server="http://127.0.0.1:8008", last_success=NOW)
    return TrayView(status=status, snapshot=snapshot, now=NOW, **kw)  # type: ignore[arg-type]


def _find(items: tuple[MenuItem, ...], text_start: str) -> MenuItem:
    for item in items:
        if item.text.startswith(text_start):
            return item
        if item.children:
            try:
                return _find(item.children, text_start)
            except LookupError:
                pass
    raise LookupError(text_start)


def _rows(item: MenuItem) -> list[MenuItem]:
    return [c for c in item.children if not c.separator]


def test_session_row_names_where_and_short_id_with_figures_on_the_right() -> None:
    session = _session(1)
    assert session_label(session) == f"● session-1 · A100 · {session.id[:8]}"
    assert session_detail(session, NOW) == f"GPU 40 %{GAP}1d 2h"
    for full, short in (
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("Tesla V100-SXM2-16GB, Tesla V100-SXM2-16GB", "V100"),
        ("NVIDIA H100 80GB HBM3", "H100"),
    ):
        assert session_label(_session(1, gpu_type=full)).split(" · ")[1] == short
    cpu_only = _session(2, gpu_count=0, gpu_type="")
    assert session_label(cpu_only) == f"● session-2 · sessions · {cpu_only.id[:8]}"
    assert session_detail(cpu_only, NOW) == f"CPU 35 %{GAP}1d 2h"
    queued = _session(3, status="queued", state=SessionState.QUEUED, started=None, created=NOW)
    assert session_detail(queued, NOW) == "queued 0s"


def test_the_row_shows_the_idle_mark_and_the_tunnel_health(tmp_path: Path) -> None:
    session = _session(1)
    ready = TunnelInfo(session.id, session.id, TunnelState.READY, local_ssh_port=8022)
    assert (
        session_detail(session, NOW, ready, idle="idle 2h")
        == f"GPU 40 %{GAP}1d 2h{GAP}☾ idle 2h{GAP}⇄"
    )
    coming = replace(ready, state=TunnelState.CONNECTING)
    assert session_detail(session, NOW, coming).endswith("⇄ …")
    # It was up (generation 1), and now it is being reconnected: lost, said on the row itself.
    lost = replace(ready, state=TunnelState.CONNECTING, generation=1)
    assert session_detail(session, NOW, lost).endswith("⚠ tunnel lost")
    retrying = replace(ready, state=TunnelState.RETRYING)
    assert session_detail(session, NOW, retrying).endswith("⚠ tunnel lost")
    failed = replace(ready, state=TunnelState.FAILED)
    assert session_detail(session, NOW, failed).endswith("⚠ no tunnel")
    closed = replace(ready, state=TunnelState.CLOSED)
    assert session_detail(session, NOW, closed) == f"GPU 40 %{GAP}1d 2h"
    view = _view([session], tunnels={session.id: lost}, idle_marks={session.id: "idle 1h 10m"})
    row = _find(build_menu(view), "● session-1")
    assert row.detail == f"GPU 40 %{GAP}1d 2h{GAP}☾ idle 1h 10m{GAP}⚠ tunnel lost"


def test_metric_rows_show_every_figure() -> None:
    rows = metric_rows(_session(1), NOW)
    assert rows == [
        "Status: running · up 1d 2h 5m",
        "CPU: 8 cores · 35 % · RAM 64 GB, 12 GB used by the session",
        "GPU: 2 × NVIDIA A100 · 40 %",
        "Address: 127.0.103.17:10022 · worker IP 127.0.3.17 (as the server sees it)",
        "Queue: sessions · by Demo User",
        f"ID: {1:032x}",
    ]


def test_cpu_only_session_and_unknown_values() -> None:
    rows = metric_rows(
        _session(3, gpu_count=0, cpu_percent=None, ram_used_gb=None, public_address=""), NOW
    )
    assert "GPU: none" in rows and "CPU: 8 cores · RAM 64 GB" in rows
    assert rows[3].startswith("Address: ? ·")


def test_running_session_actions_and_confirmations() -> None:
    items = build_menu(_view([_session(1)]))
    entry = _find(items, "● session-1")
    actions = [c.action for c in entry.children if c.action]
    assert actions == [
        "connect",
        "open_jupyter",
        "copy_direct_ssh",  # no tunnel: only the direct command, labelled as asking a password
        "show_log",
        "open_web",
        "stop",
        "delete",
    ]
    assert _find(entry.children, "Copy SSH command (asks for the password)")
    stop = _find(entry.children, "Stop")
    delete = _find(entry.children, "Delete")
    sid8 = _session(1).id[:8]
    assert f"“session-1” ({sid8})" in stop.confirm and "owned by" not in stop.confirm
    assert "stopped first" in delete.confirm
    assert (stop.confirm_button, delete.confirm_button) == ("Stop session", "Delete session")
    # Metric rows run no action; each is readable and copies its value when clicked.
    metrics = entry.children[:6]
    assert all(c.action is None and c.enabled for c in metrics)
    copies = {c.text.split(":", 1)[0]: c.copy for c in metrics}
    assert copies["Address"] == "127.0.103.17:10022"
    assert copies["Queue"] == "sessions" and copies["ID"] == _session(1).id
    assert copies["CPU"].startswith("8 cores · 35 %")
    assert "Click to copy" in _find(entry.children, "ID:").tooltip


def test_the_busiest_submenu_has_at_most_fifteen_rows_with_the_tunnel_grouped() -> None:
    session = _session(1)
    tunnel = TunnelInfo(
        session.id,
        session.id,
        TunnelState.READY,
        local_ssh_port=8022,
        ssh_host_alias=f"clearml-{session.id[:8]}",
        jupyter_url="http://localhost:8888/?token=t",
        log_path=Path("/tmp/x.log"),
    )
    view = _view(
        [session], tunnels={session.id: tunnel}, idle_notes={session.id: "Idle for 1h 12m"}
    )
    entry = _find(build_menu(view), "● session-1")
    rows = _rows(entry)
    assert len(rows) <= MAX_SUBMENU_ROWS == 15
    group = _find(entry.children, "Tunnel: ready on localhost:8022")
    actions = [c.action for c in group.children]
    assert actions == [
        "open_terminal",
        "copy_direct_ssh",
        "copy_password",
        "reconnect",
        "disconnect",
    ]
    # One "Show log" (both logs in one window), no second log row, no second SSH copy row.
    assert [r.text for r in rows].count("Show log") == 1
    assert "follow_log" not in {r.action for r in rows}
    assert [r.action for r in rows].count("copy_ssh") == 1
    assert "copy_direct_ssh" not in {r.action for r in rows}


def test_confirmations_name_the_owner_of_someone_elses_session() -> None:
    theirs = _session(2, is_own=False, creator_name="Alice Martin")
    group = _find(build_menu(_view([theirs], show_all_users=True)), "All users")
    stop = _find(group.children, "Stop")
    assert "owned by Alice Martin" in stop.confirm and "“session-2”" in stop.confirm


def test_every_row_names_the_session_with_its_short_id() -> None:
    a = _session(1, name="Interactive Session")
    b = _session(2, name="Interactive Session", queue_name="gpu-a100", gpu_count=0)
    items = build_menu(_view([a, b]))
    labels = [i.text for i in items if i.session_id]
    assert labels == [
        f"● Interactive Session · A100 · {a.id[:8]}",
        f"● Interactive Session · gpu-a100 · {b.id[:8]}",
    ]


def test_rows_keep_their_place_oldest_first() -> None:
    old = _session(1, started=NOW - timedelta(days=3))
    new = _session(2, started=NOW - timedelta(minutes=1))
    queued = _session(3, status="queued", state=SessionState.QUEUED, started=None, created=NOW)
    for order in ([new, queued, old], [queued, old, new], [old, new, queued]):
        rows = [i.session_id for i in build_menu(_view(order)) if i.session_id]
        assert rows == [old.id, new.id, queued.id]


def test_long_error_rows_are_elided_with_the_whole_text_in_the_tooltip() -> None:
    message = "Cannot read /home/user/" + "very/" * 150 + "clearml.conf: permission denied"
    view = replace(_view([]), status=PollStatus(TrayState.ERROR, message, "x"))
    row = build_menu(view)[0]
    # Cut in the middle: the start says what failed, the end names the file.
    assert len(row.text) <= 80 and "…" in row.text
    assert row.text.startswith("⚠ Cannot read /home/user/very/")
    assert row.text.endswith("clearml.conf: permission denied")
    assert row.tooltip.startswith("⚠ Cannot read /home/user/very/")
    assert row.copy == message  # a click copies the whole message
    assert row.enabled  # an error heading is readable, not greyed out


def test_a_row_that_copies_its_own_text_says_it_once_in_the_tooltip() -> None:
    message = "/home/user/.clearml/" + "nested/" * 20 + "clearml.conf, line 10: not a setting"
    row = info_row(message, message, middle=True)
    assert row.tooltip == f"{message}\nClick to copy"
    other = info_row("ID: 6074a10f", "6074a10f" * 4)
    assert other.tooltip == f"Click to copy: {'6074a10f' * 4}"


def test_a_ready_tunnel_offers_the_ssh_command_that_needs_no_password() -> None:
    session = _session(1)
    tunnel = TunnelInfo(
        session.id,
        session.id,
        TunnelState.READY,
        local_ssh_port=8022,
        ssh_host_alias=f"clearml-{session.id[:8]}",
    )
    view = replace(_view([session]), tunnels={session.id: tunnel})
    entry = _find(build_menu(view), "● session-1")
    copy = _find(entry.children, "Copy SSH command")
    assert copy.action == "copy_ssh" and f"ssh clearml-{session.id[:8]}" in copy.tooltip
    direct = _find(entry.children, "Copy direct SSH command (asks for the password)")
    assert direct.action == "copy_direct_ssh"


def test_queued_session_cannot_connect_but_can_stop() -> None:
    queued = _session(2, status="queued", state=SessionState.QUEUED, ssh_port=None)
    entry = _find(build_menu(_view([queued])), "◌ session-2")
    actions = {c.action for c in entry.children if c.action}
    assert "connect" not in actions and "copy_ssh" not in actions
    assert "copy_direct_ssh" not in actions
    assert {"stop", "delete", "show_log"} <= actions


def test_own_sessions_first_and_others_under_all_users() -> None:
    mine = _session(1)
    theirs = _session(2, is_own=False, creator_name="Alice Martin")
    hidden = build_menu(_view([mine, theirs], show_all_users=False))
    assert not any(i.text.startswith("All users") for i in hidden)
    assert not any(i.text.startswith("● session-2") for i in hidden)
    shown = build_menu(_view([mine, theirs], show_all_users=True))
    texts = [i.text for i in shown]
    assert texts.index(session_label(mine)) < texts.index("All users (1)")
    group = _find(shown, "All users")
    assert group.children[0].text.startswith("● session-2")


def test_empty_and_footer() -> None:
    items = build_menu(_view([]))
    texts = [i.text for i in items if not i.separator]
    assert texts[0] == "No live sessions"
    stamp = NOW.astimezone().strftime("%H:%M:%S")
    assert texts[-8:] == [
        "New session…",
        "Presets",
        "Refresh",
        f"Last refreshed {stamp}",
        "Settings…",
        "Open log folder",
        "About ClearML Session Tray",
        "Quit",
    ]


def test_offline_row_comes_first_keeps_the_last_sessions_and_offers_a_retry() -> None:
    view = _view([_session(1)])
    message = "Cannot reach the ClearML server at http://127.0.0.1:8008 (connection refused)"
    offline = replace(
        view, status=PollStatus(TrayState.OFFLINE, message, "http://127.0.0.1:8008", NOW, 3)
    )
    items = build_menu(offline)
    assert items[0].text == "⚠ Server unreachable: http://127.0.0.1:8008"
    assert items[0].enabled and items[0].copy == message
    assert "connection refused" in items[1].text
    assert items[2].text == "Retry now" and items[2].action == "refresh"
    assert any(i.text.startswith("● session-1") for i in items)
    # One way to the settings, at the bottom: no "Open settings…" beside "Settings…".
    assert not any(i.text == "Open settings…" for i in items)


def test_refused_keys_offer_the_credentials_dialog() -> None:
    view = replace(
        _view([]), status=PollStatus(TrayState.AUTH, "Wrong access key or secret key", "x")
    )
    items = build_menu(view)
    assert items[0].text == "⚠ ClearML refused the keys" and items[0].enabled
    assert items[1].text == "Wrong access key or secret key"
    assert (items[2].text, items[2].action) == ("Enter ClearML keys…", "credentials")


def test_unconfigured_offers_onboarding_and_demo() -> None:
    view = TrayView(status=PollStatus(TrayState.UNCONFIGURED, "ClearML is not configured."))
    items = build_menu(view)
    assert [i.action for i in items[:3]] == [None, "onboarding", "start_demo"]
    assert items[0].enabled  # it copies the message
    assert "Last refreshed" not in "\n".join(flatten_text(items))
    keys = TrayView(status=PollStatus(TrayState.UNCONFIGURED, "no keys", keys_needed=True))
    assert build_menu(keys)[1].action == "credentials"


def test_live_tunnel_rows_and_marker(tmp_path: Path) -> None:
    session = _session(1)
    tunnel = TunnelInfo(
        key=session.id,
        session_id=session.id,
        state=TunnelState.READY,
        local_ssh_port=8022,
        log_path=tmp_path / "x.log",
    )
    items = build_menu(_view([session], tunnels={session.id: tunnel}))
    entry = _find(items, "● session-1")
    assert entry.detail.endswith("⇄")
    group = _find(entry.children, "Tunnel: ready on localhost:8022")
    actions = {c.action for c in group.children}
    assert {"reconnect", "disconnect", "copy_password", "open_terminal"} <= actions
    # One clear way to end a session: Stop…, not also "Shut down via clearml-session".
    assert "shutdown_tunnel" not in actions
    connecting = replace(tunnel, state=TunnelState.CONNECTING, last_message="Starting SSH tunnel")
    entry = _find(build_menu(_view([session], tunnels={session.id: connecting})), "● session-1")
    group = _find(entry.children, "Tunnel: connecting")
    assert "open_terminal" not in {c.action for c in group.children}
    assert group.children[0].text == "Starting SSH tunnel"


def test_launch_in_progress_is_listed_and_an_ended_one_leaves_no_row() -> None:
    tunnel = TunnelInfo(key="launch-1", session_id=None, state=TunnelState.LAUNCHING, label="gpu")
    items = build_menu(_view([], tunnels={"launch-1": tunnel}))
    row = _find(items, "◌ gpu")
    assert row.detail == "launching"
    assert [c.action for c in row.children] == ["follow_log", "cancel_launch"]
    assert "No live sessions" not in flatten_text(items)
    # Created, not yet in the snapshot: named with its short id.
    created = replace(tunnel, session_id="ab" * 16)
    assert _find(build_menu(_view([], tunnels={"launch-1": created})), "◐ gpu (abababab)")
    # Listed by the snapshot: the session's own row only.
    session = _session(7, id="ab" * 16)
    items = build_menu(_view([session], tunnels={"launch-1": created}))
    assert [i.text[:2] for i in items if i.children and i.text != "Presets"] == ["● "]
    for ended in (TunnelState.CLOSED, TunnelState.FAILED):
        gone = build_menu(_view([], tunnels={"launch-1": replace(tunnel, state=ended)}))
        assert not any(i.text.startswith("◌") for i in gone)


def test_idle_note_keeps_alive_on_a_click() -> None:
    session = _session(1)
    items = build_menu(_view([session], idle_notes={session.id: "Idle for 1h 12m (CPU 1 %)"}))
    entry = _find(items, "● session-1")
    row = _find(entry.children, "Idle for 1h 12m (CPU 1 %)")
    assert row.action == "keep_alive" and "keep alive 2 h" in row.text


def test_an_idle_sessions_row_carries_its_mark() -> None:
    idle, busy = _session(1), _session(2)
    items = build_menu(_view([idle, busy], idle_marks={idle.id: "idle 1h 10m"}))
    rows = {i.session_id: i.detail for i in items if i.session_id}
    assert rows[idle.id].endswith(f"{GAP}☾ idle 1h 10m")
    assert "idle" not in rows[busy.id]


def test_ssh_command() -> None:
    assert ssh_command(_session(1)) == "ssh -p 10022 root@127.0.103.17"
    assert ssh_command(_session(1, ssh_port=None)) is None
    # Server-written parts that would run a command when pasted: no command at all.
    assert ssh_command(_session(1, ssh_user="root\nrm -rf ~")) is None
    assert ssh_command(_session(1, public_address="h;reboot")) is None
    evil = _session(1, ssh_user="root\nrm -rf ~")
    label = next(i for i in build_menu(_view([evil])) if i.session_id == evil.id)
    assert all(c.action != "copy_ssh" for c in label.children)


def test_tooltip_counts() -> None:
    starting = _session(2, state=SessionState.STARTING)
    assert tooltip(_view([_session(1), starting])) == "ClearML: 1 running, 1 starting"
    down = TrayView(status=PollStatus(TrayState.OFFLINE, "server down"))
    assert tooltip(down) == "ClearML: server down"


def test_server_text_in_labels_is_one_plain_line_with_literal_ampersands() -> None:
    evil = _session(
        1,
        name="R&D\nfake entry\u202eexe.txt\x1b[2J",
        status_message="line1\nline2",
        queue_name="q&a",
    )
    items = build_menu(_view([evil]))
    texts = flatten_text(items)
    assert not any(c in t for t in texts for c in "\n\r\x1b\u202e")
    label = next(i for i in items if i.session_id == evil.id)
    assert "R&&D fake entryexe.txt" in label.text
    assert "Queue: q&&a · by Demo User" in flatten_text(label.children)
    stop = next(c for c in label.children if c.action == "stop")
    assert "\n" not in stop.confirm and "R&D fake entry" in stop.confirm


def test_long_names_are_cut() -> None:
    items = build_menu(_view([_session(1, name="n" * 100_000)]))
    label = next(i for i in items if i.session_id)
    assert len(label.text) <= 120


def test_stale_data_is_marked_stale() -> None:
    view = _view([_session(1)])
    stamp = NOW.astimezone().strftime("%H:%M:%S")
    offline = replace(
        view, status=PollStatus(TrayState.OFFLINE, "down", "http://x", NOW, failures=2)
    )
    assert f"⚠ Stale: last refreshed {stamp}" in flatten_text(build_menu(offline))
    hanging = replace(view, now=NOW + timedelta(minutes=10))
    assert f"⚠ Stale: last refreshed {stamp}" in flatten_text(build_menu(hanging))
    assert tooltip(hanging).endswith("(stale)")
    assert f"Last refreshed {stamp}" in flatten_text(build_menu(view))


def test_twenty_thousand_sessions_give_a_menu_of_bounded_size() -> None:
    from tray_app.core.view.menu import MAX_OTHERS_IN_MENU, MAX_OWN_IN_MENU

    sessions = [_session(i, is_own=i % 4 == 0) for i in range(20_000)]
    items = build_menu(_view(sessions, show_all_users=True))
    own_rows = [i for i in items if i.session_id]
    assert len(own_rows) == MAX_OWN_IN_MENU
    more = next(i for i in items if i.action == "quick_pick")
    assert more.text == f"{5000 - MAX_OWN_IN_MENU} more… (search)"
    group = _find(items, "All users")
    assert group.text == "All users (15000)"
    assert len(group.children) == MAX_OTHERS_IN_MENU + 1
    assert group.children[-1].action == "quick_pick"
    # Every row of the whole tree, submenus included: a few thousand at most, not 20,000 × 20.
    assert len(flatten_text(items)) < 3000


def test_the_icon_shows_progress_as_soon_as_a_launch_starts() -> None:
    from tray_app.core.view.menu import icon_state

    view = _view([_session(1)])
    assert icon_state(view) == "ok"
    launching = TunnelInfo(key="launch-1", session_id=None, state=TunnelState.LAUNCHING)
    assert icon_state(replace(view, tunnels={"launch-1": launching})) == "busy"
    ready = replace(launching, state=TunnelState.READY)
    assert icon_state(replace(view, tunnels={"launch-1": ready})) == "ok"
    offline = replace(view, status=PollStatus(TrayState.OFFLINE, "down", "x"))
    assert icon_state(replace(offline, tunnels={"launch-1": launching})) == "offline"


def test_saved_presets_launch_from_the_presets_submenu() -> None:
    items = build_menu(replace(_view([]), presets=("gpu box", "cpu")))
    submenu = _find(items, "Presets")
    rows = [(c.text, c.action, c.session_id) for c in submenu.children if not c.separator]
    assert rows == [
        ("Launch “gpu box”", "launch_preset", "gpu box"),
        ("Launch “cpu”", "launch_preset", "cpu"),
        ("Import presets…", "import_presets", None),
        ("Export presets…", "export_presets", None),
    ]


def test_the_outage_rows_name_the_server_once_and_then_the_reason() -> None:
    server = "http://127.0.0.1:8008"
    message = f"Cannot reach the ClearML server {server}: All connection attempts failed; retrying"
    view = replace(_view([]), status=PollStatus(TrayState.OFFLINE, message, server))
    items = build_menu(view)
    assert items[0].text == f"⚠ Server unreachable: {server}"
    assert items[1].text == "All connection attempts failed; retrying"
    assert items[1].copy == message  # a click still copies the whole sentence

"""The Qt menu is built from cached state: opening it never waits on the network."""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtWidgets import QMenu
from support.emulator import EmulatorHandle
from support.qt_wait import until

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.refresh import RefreshSchedule
from tray_app.core.server.sessions import SessionService
from tray_app.core.view.menu import MAX_OTHERS_IN_MENU, MAX_OWN_IN_MENU, TrayView, by_start
from tray_app.qt.poller import Poller
from tray_app.qt.tray import Tray


def _texts(menu: QMenu) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator()]


async def test_menu_with_200_sessions_makes_no_request(qapp: Any, emulator_factory: Any) -> None:
    emu: EmulatorHandle = emulator_factory(sessions=200)
    config = ServerConfig(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    client = ClearMLClient(config)
    service = SessionService(client, web_server=emu.url)
    poller = Poller(RefreshSchedule(), all_users=lambda: True)
    poller.set_source(service.snapshot, emu.url)
    await poller.poll_once()
    assert poller.snapshot is not None and poller.snapshot.count > 100

    triggered: list[tuple[str, str | None]] = []
    tray = Tray(
        lambda: TrayView(poller.status, poller.snapshot, show_all_users=True),
        lambda action, sid: triggered.append((action, sid)),
        on_open=lambda: poller.refresh_if_stale(5.0),
    )
    before = emu.state.count_requests()
    tray.menu.aboutToShow.emit()  # what Qt does when the menu opens
    assert emu.state.count_requests() == before  # built from the cached snapshot only

    texts = _texts(tray.menu)
    own = by_start(poller.snapshot.own)  # oldest first: rows keep their place
    assert texts[0].split(" ", 1)[-1].startswith(f"{own[0].name} · ")
    assert own[0].short_id in texts[0].split("\t")[0]
    submenus = [a for a in tray.menu.actions() if a.menu() is not None]
    # Sessions (at most MAX_OWN_IN_MENU, then a "N more…" row), "All users", "Presets".
    assert len(submenus) == min(len(own), MAX_OWN_IN_MENU) + 2
    if len(own) > MAX_OWN_IN_MENU:
        assert f"{len(own) - MAX_OWN_IN_MENU} more… (search)" in texts
    all_users = next(a for a in tray.menu.actions() if a.text().startswith("All users"))
    assert all_users.menu() is not None
    assert all_users.menu().isEmpty()  # filled only when it opens
    all_users.menu().aboutToShow.emit()
    others = len(poller.snapshot.others)
    shown = others if others <= MAX_OTHERS_IN_MENU else MAX_OTHERS_IN_MENU + 1  # + "N more…"
    assert len(all_users.menu().actions()) == shown

    # A session's submenu: metric rows readable (they copy), actions wired to the controller.
    first = next(a for a in tray.menu.actions() if a.menu() is not None)
    first.menu().aboutToShow.emit()
    # Opening it says the user points at the session (its tunnel may start ahead of Connect).
    assert triggered == [("intent", own[0].id)]
    triggered.clear()
    rows = first.menu().actions()
    assert rows[0].text().startswith("Status: ") and rows[0].isEnabled()
    rows[0].trigger()
    assert triggered == []  # copying runs no action
    show_log = next(a for a in rows if a.text() == "Show log")
    assert show_log.isEnabled()
    show_log.trigger()
    assert triggered == [("show_log", own[0].id)]
    await client.aclose()


def _own_view(sessions: list[Any]) -> TrayView:
    from datetime import UTC, datetime

    from tray_app.core.server.models import Snapshot
    from tray_app.core.server.refresh import PollStatus, TrayState

    now = datetime.now(UTC)
    snapshot = Snapshot(sessions=tuple(sessions), fetched_at=now)
    return TrayView(PollStatus(TrayState.OK, server="x", last_success=now), snapshot, now=now)


async def test_info_rows_copy_and_stop_asks_with_a_button_that_says_what_it_does(
    qapp: Any,
) -> None:
    from PySide6.QtGui import QGuiApplication
    from support.qt_dialogs import click_answer

    from tray_app.core.server.models import Session, SessionState
    from tray_app.qt.questions import QtAsk

    session = Session(
        id="ab12cd34" + "0" * 24,
        name="Interactive Session",
        status="in_progress",
        state=SessionState.RUNNING,
        queue_name="sessions",
        public_address="127.0.103.17",
        ssh_port=10022,
    )
    triggered: list[tuple[str, str | None]] = []
    ask = QtAsk()
    tray = Tray(lambda: _own_view([session]), lambda a, sid: triggered.append((a, sid)), ask=ask)
    tray.menu.aboutToShow.emit()
    entry = next(a for a in tray.menu.actions() if a.menu() is not None)
    entry.menu().aboutToShow.emit()
    assert triggered == [("intent", session.id)]
    triggered.clear()
    rows = {a.text().split(":", 1)[0]: a for a in entry.menu().actions() if a.text()}
    # Readable (enabled) and copyable: a click puts the value on the clipboard, runs nothing.
    assert rows["ID"].isEnabled() and rows["Address"].isEnabled()
    rows["ID"].trigger()
    assert QGuiApplication.clipboard().text() == session.id
    rows["Address"].trigger()
    assert QGuiApplication.clipboard().text() == "127.0.103.17:10022"
    assert triggered == []

    rows["Stop…"].trigger()
    await until(lambda: ask.open_dialogs, "the Stop question")
    # Enter takes the safe button: a stray keypress never ends a session.
    assert ask.open_dialogs[0].defaultButton().text().replace("&", "") == "Cancel"
    shown = await click_answer(ask, "Stop session")
    assert "“Interactive Session” (ab12cd34)" in shown
    assert triggered == [("stop", session.id)]

    rows["Delete…"].trigger()
    await until(lambda: ask.open_dialogs, "the Delete question")
    assert ask.open_dialogs[0].defaultButton().text().replace("&", "") == "Cancel"
    await click_answer(ask, "Cancel")
    assert triggered == [("stop", session.id)]  # nothing deleted


async def test_an_open_menu_follows_the_state_without_being_reopened(qapp: Any) -> None:
    from dataclasses import replace

    from tray_app.core.server.models import Session, SessionState
    from tray_app.core.server.refresh import PollStatus, TrayState

    session = Session(id="cd" * 16, name="train", status="in_progress", state=SessionState.RUNNING)
    view = [_own_view([session])]
    tray = Tray(lambda: view[0], lambda a, sid: None)
    tray.menu.popup(tray.menu.pos())
    await until(tray.menu.isVisible, "the menu to open")
    assert tray.last_items[0].text.startswith("● train")
    # The server goes down while the menu is open: its first row says so at once.
    view[0] = replace(view[0], status=PollStatus(TrayState.OFFLINE, "refused", "http://s"))
    tray.update_state()
    assert tray.menu.actions()[0].text() == "⚠ Server unreachable: http://s"
    assert tray._icon_key == ("offline", 0)
    await asyncio.sleep(0.2)
    assert tray.menu.isVisible()  # rebuilt in place: still open under the pointer
    assert [a.text() for a in tray.menu.actions()].count("Quit") == 1  # the old rows went
    tray.menu.hide()


async def test_an_open_menu_on_the_right_keeps_its_right_edge_when_its_rows_change(
    qapp: Any,
) -> None:
    from dataclasses import replace

    from PySide6.QtCore import QPoint

    from tray_app.core.server.models import Session, SessionState
    from tray_app.core.server.refresh import PollStatus, TrayState

    wide = Session(id="ab" * 16, name="x" * 70, status="in_progress", state=SessionState.RUNNING)
    view = [_own_view([wide])]
    tray = Tray(lambda: view[0], lambda a, sid: None)
    tray.update_state()
    screen = tray.menu.screen().availableGeometry()
    width = tray.menu.sizeHint().width()
    tray.menu.popup(QPoint(screen.right() - width - 20, screen.top() + 30))
    await until(tray.menu.isVisible, "the menu to open")
    before = tray.menu.geometry()
    # The rows get narrower while the menu is open (the server went down: no session rows).
    view[0] = replace(view[0], snapshot=None, status=PollStatus(TrayState.OFFLINE, "r", "http://s"))
    tray.update_state()
    await asyncio.sleep(0.1)
    after = tray.menu.geometry()
    assert after.width() < before.width()
    assert after.right() == before.right()  # still beside the icon, not drifting left
    tray.menu.hide()

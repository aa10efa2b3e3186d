"""The quick-pick: filter, Enter, a single session at once, the empty state."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.qt.quick_pick import QuickPick

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _snapshot(*names: str, **kw: object) -> Snapshot:
    sessions = tuple(
        Session(
            id=f"{i:032x}",
            name=name,
            status="in_progress",
            state=SessionState.RUNNING,
            project_name="DevOps",
            **kw,  # type: ignore[arg-type]
        )
        for i, name in enumerate(names, start=1)
    )
    return Snapshot(sessions=sessions, fetched_at=NOW)


def test_filter_and_enter(qtbot: QtBot) -> None:
    pick = QuickPick()
    qtbot.addWidget(pick)
    pick.open_or_choose(_snapshot("gpu-training", "cpu-notebook", "gpu-eval"))
    assert pick.list.count() == 3
    qtbot.keyClicks(pick.filter, "GPU")
    assert pick.list.count() == 2
    qtbot.keyClick(pick.filter, Qt.Key.Key_Down)
    with qtbot.waitSignal(pick.chosen) as blocker:
        qtbot.keyClick(pick.filter, Qt.Key.Key_Return)
    assert blocker.args == [f"{3:032x}"]
    assert not pick.isVisible()


def test_single_session_connects_at_once(qtbot: QtBot) -> None:
    pick = QuickPick()
    qtbot.addWidget(pick)
    with qtbot.waitSignal(pick.chosen) as blocker:
        pick.open_or_choose(_snapshot("only-one"))
    assert blocker.args == [f"{1:032x}"] and not pick.isVisible()


def test_nothing_to_connect_says_so(qtbot: QtBot) -> None:
    pick = QuickPick()
    qtbot.addWidget(pick)
    pick.open_or_choose(_snapshot("theirs", is_own=False))
    assert pick.list.count() == 0 and not pick.empty.isHidden()
    qtbot.keyClick(pick.filter, Qt.Key.Key_Escape)
    assert not pick.isVisible()


def test_the_selected_session_is_pointed_at_so_its_tunnel_can_start_ahead(qtbot: QtBot) -> None:
    pick = QuickPick()
    qtbot.addWidget(pick)
    pointed: list[str] = []
    pick.pointed.connect(pointed.append)
    pick.open_or_choose(_snapshot("gpu-training", "cpu-notebook", "gpu-eval"))
    assert pointed == [f"{1:032x}"]  # the preselected row, as the pick opens
    qtbot.keyClick(pick.filter, Qt.Key.Key_Down)
    assert pointed == [f"{1:032x}", f"{2:032x}"]
    qtbot.keyClick(pick.filter, Qt.Key.Key_Escape)
    pick.open_or_choose(_snapshot("only-one"))  # connected at once: nothing to point at
    assert len(pointed) == 2

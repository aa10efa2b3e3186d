"""The Qt-free parts of `--benchmark-startup`: process start, sessions in the menu, the report."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import pytest

from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.view.menu import TrayView, build_menu
from tray_app.startup_probe import (
    MILESTONES,
    ORIGIN_PROC,
    StartupProbe,
    StartupReport,
    sessions_in_menu,
    stat_starttime,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _session(i: int, own: bool) -> Session:
    return Session(
        id=f"{i:032x}",
        name=f"session-{i}",
        status="in_progress",
        state=SessionState.RUNNING,
        is_own=own,
    )


def _view(own: int, others: int, show_all_users: bool) -> TrayView:
    sessions = [_session(i, True) for i in range(own)]
    sessions += [_session(100 + i, False) for i in range(others)]
    return TrayView(
        status=PollStatus(TrayState.OK, last_success=NOW),
        snapshot=Snapshot(sessions=tuple(sessions), fetched_at=NOW),
        show_all_users=show_all_users,
        now=NOW,
    )


def test_starttime_is_field_22_even_when_the_command_name_has_spaces_and_parentheses():
    fields_3_to_22 = " ".join(str(n) for n in range(3, 22)) + " 987654"
    line = f"4242 (clearml (tray) x) {fields_3_to_22} 23 24 25\n"
    assert stat_starttime(line) == 987654


def test_sessions_in_menu_counts_own_sessions_and_those_under_all_users():
    assert sessions_in_menu(build_menu(_view(own=3, others=4, show_all_users=False))) == 3
    assert sessions_in_menu(build_menu(_view(own=3, others=4, show_all_users=True))) == 7


def test_an_empty_snapshot_puts_no_session_in_the_menu():
    assert sessions_in_menu(build_menu(_view(own=0, others=0, show_all_users=True))) == 0


def test_report_is_complete_once_the_snapshot_is_in_the_menu_and_the_icon_is_embedded():
    report = StartupReport("test")
    report.milestones["first_snapshot_in_menu"] = 1.0
    report.tray = "xembed"
    assert not report.complete  # the tray host has not embedded the icon yet
    report.milestones["tray_embedded"] = 0.5
    assert report.complete


def test_a_tray_whose_embedding_cannot_be_seen_does_not_hold_the_report_back():
    report = StartupReport("test")
    report.tray = "statusnotifier or other"
    assert not report.complete
    report.milestones["first_snapshot_in_menu"] = 1.0
    assert report.complete


def test_report_json_names_every_milestone_with_null_for_those_not_reached():
    report = StartupReport("test", sessions_in_snapshot=5, sessions_in_menu=5)
    report.milestones["qt_imported"] = 0.123456
    doc = json.loads(report.as_json())
    assert list(doc["milestones"]) == list(MILESTONES)
    assert doc["milestones"]["qt_imported"] == 0.1235
    assert doc["milestones"]["event_loop"] is None
    assert doc["complete"] is False
    assert doc["sessions_in_menu"] == 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_on_linux_milestones_count_from_the_process_start_in_proc():
    probe = StartupProbe()
    probe.mark("qt_imported")
    first = probe.report.milestones["qt_imported"]
    probe.mark("qt_imported")
    assert probe.report.origin == ORIGIN_PROC
    assert first is not None and first > 0
    assert probe.report.milestones["qt_imported"] == first  # a milestone is taken once

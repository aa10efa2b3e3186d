"""`clearml-tray list --status`: the status-bar line (text, waybar JSON) and `--watch`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.snapshots import full_snapshot

from tray_app import list_command
from tray_app.cli import build_parser
from tray_app.core.idle.policy import IdleState, IdleVerdict
from tray_app.core.server.models import Snapshot
from tray_app.core.view.status_line import render_line, status_of, status_of_failure
from tray_app.demo import clearml_conf_text
from tray_app.list_command import Failure

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


def test_text_counts_your_sessions_per_state() -> None:
    line = status_of(full_snapshot(NOW, all_users=False), NOW)
    assert line.text == "● 1 ◐ 1"
    assert line.css_class == "starting"
    assert line.tooltip.splitlines()[0] == "2 live sessions for you on http://127.0.0.1:9"
    assert "(01234567) running 1d 2h 5m" in line.tooltip


def test_idle_sessions_are_counted_and_marked() -> None:
    snapshot = full_snapshot(NOW, all_users=False)
    since = NOW.timestamp() - 70 * 60
    idle = {snapshot.sessions[0].id: IdleVerdict(IdleState.IDLE, "why", idle_since=since)}
    line = status_of(snapshot, NOW, idle)
    assert line.text == "● 1 ◐ 1 · 1 idle"
    assert "(01234567) running 1d 2h 5m · idle 1h 10m" in line.tooltip
    busy = {snapshot.sessions[0].id: IdleVerdict(IdleState.BUSY, "GPU 0 at 80 %")}
    assert status_of(snapshot, NOW, busy).text == "● 1 ◐ 1"
    assert line.css_class == "starting"  # the class keeps its meaning for existing styles


def test_no_sessions_and_errors_have_their_own_line() -> None:
    empty = Snapshot(sessions=(), fetched_at=NOW, server="http://s")
    assert (status_of(empty, NOW).text, status_of(empty, NOW).css_class) == ("○ 0", "idle")
    failed = list_command.failure_line(Failure(4, "Cannot reach http://user:secret@host"), "waybar")
    assert json.loads(failed)["text"] == "⚠"
    assert json.loads(failed)["class"] == "error"
    assert "secret" not in failed
    assert status_of_failure("down").css_class == "error"


def test_waybar_json_is_one_line_with_markup_escaped() -> None:
    line = status_of(full_snapshot(NOW, all_users=True), NOW)
    out = render_line(line, as_json=True)
    assert "\n" not in out
    doc = json.loads(out)
    assert set(doc) == {"text", "tooltip", "class"}
    assert doc["class"] == "starting"
    # A session named "<b>x</b>" must not become bold (or worse) in waybar's Pango tooltip.
    assert "&lt;b&gt;x&lt;/b&gt;" in doc["tooltip"]
    assert "<b>" not in doc["tooltip"]
    assert render_line(line, as_json=False) == line.text == "● 1 ◐ 1 ◌ 1"


def test_watch_prints_only_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three ticks: a snapshot, the same again, then one with the sessions gone."""
    answers = [
        full_snapshot(NOW, all_users=False),
        full_snapshot(NOW, all_users=False),
        Snapshot(sessions=(), fetched_at=NOW, server="http://127.0.0.1:9"),
    ]
    asked: list[bool] = []

    def server(config_file: str | None, all_users: bool) -> tuple[Snapshot, dict[str, Any]]:
        asked.append(all_users)
        return answers.pop(0), {}

    monkeypatch.setattr(list_command, "_ServerSource", lambda c, a: FakeSource(server, c, a))
    shown: list[str] = []
    args = argparse.Namespace(all_users=False, config_file=None, no_tray=True)
    asyncio.run(list_command.watch(args, "status", 0.0, shown.append, ticks=3))
    assert shown == ["● 1 ◐ 1", "○ 0"]
    assert asked == [False, False, False]


class FakeSource:
    def __init__(self, fetch: Any, config_file: str | None, all_users: bool) -> None:
        self.fetch, self.config_file, self.all_users = fetch, config_file, all_users
        self.closed = False

    async def snapshot(self) -> tuple[Snapshot, dict[str, Any]]:
        return self.fetch(self.config_file, self.all_users)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        self.closed = True


def test_watch_interval_is_bounded() -> None:
    parser = build_parser()
    assert parser.parse_args(["list", "--status", "--watch"]).watch == 5.0
    assert parser.parse_args(["list", "--status", "--watch", "2"]).watch == 2.0
    for bad in ("0", "99999", "soon"):
        with pytest.raises(SystemExit):
            parser.parse_args(["list", "--watch", bad])


def test_status_exits_0_and_shows_an_error_in_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        list_command, "snapshot_from_server", lambda c, a: Failure(4, "Cannot reach X")
    )
    args = build_parser().parse_args(["list", "--status", "--json"])
    assert list_command.run_list(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"text": "⚠", "tooltip": "Cannot reach X", "class": "error"}
    assert captured.err == "clearml-tray: Cannot reach X\n"


# -- the real command against the emulator ---------------------------------------------------


def _start_watch(emulator: Any, home: Path, sigint: str = "default") -> subprocess.Popen[str]:
    conf = home / "clearml.conf"
    conf.write_text(
        clearml_conf_text(emulator.url, emulator.access_key, emulator.secret_key), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env["PYTHONPATH"] = str(REPO)
    argv = ["--config-file", str(conf), "list", "--status", "--json", "--watch", "1"]
    # "ignored": as a command started in the background (`cmd &`, a bar's child) inherits it.
    disposition = signal.SIG_IGN if sigint == "ignored" else signal.SIG_DFL
    return subprocess.Popen(
        [sys.executable, "-m", "tray_app", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
    )


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_watch_ends_cleanly_on_sigint(emulator: Any, tmp_path: Path, sigint: str) -> None:
    proc = _start_watch(emulator, tmp_path, sigint)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # waits for the first line: the loop is running
    assert first["class"] in {"idle", "running", "starting", "stopping"}
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err


def test_a_closed_pipe_ends_the_watch_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(list_command, "output_from_tray", lambda all_users, fmt: "● 1")
    quieted: list[bool] = []
    monkeypatch.setattr(list_command, "quiet_broken_pipe", lambda: quieted.append(True))

    def bar_gone(text: str) -> None:
        raise BrokenPipeError

    args = build_parser().parse_args(["list", "--status", "--watch", "1"])
    assert list_command.run_watch(args, "status", 1.0, emit=bar_gone) == 0
    assert quieted == [True]


async def test_watch_without_status_follows_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["table 1", "table 1", "table 2"])
    monkeypatch.setattr(list_command, "output_from_tray", lambda all_users, fmt: next(answers))
    args = build_parser().parse_args(["list", "--watch", "1"])
    assert list_command.output_format(args) == "table"  # not only the status line
    shown: list[str] = []
    await list_command.watch(args, "table", 0.01, shown.append, ticks=3)
    assert shown == ["table 1", "table 2"]  # printed again when it changes


def test_a_watched_table_is_redrawn_in_place_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    list_command.screen_emit(5.0)("ID  NAME")
    out = capsys.readouterr().out
    assert out.startswith("\x1b[H\x1b[2J") and "every 5 s (Ctrl-C ends)" in out
    assert out.endswith("ID  NAME\n")

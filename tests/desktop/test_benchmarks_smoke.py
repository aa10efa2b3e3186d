"""The startup, idle, ui, logparse, askpass, connect and api_budget benchmark sections run end
to end (quick sizes, a short idle window, a quarter of a scaled hour).

Smoke only: every figure is there and sane (positive, milestones in order, targets judged, a
menu opened mid-refresh showed the cached snapshot, the SSH login came up against the demo);
how fast anything is stays with `python -m benchmarks`, never with a test.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support.desktop import REPO, require_desktop, trayer

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(300)]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A quick benchmark Context, with trayer on the display as the runner provides it.

    Its folder is short, as the runner's is (/tmp/clearml-tray-bench-*): the probes' trays
    listen on a Unix socket under it, and a socket path may not exceed ~100 characters."""
    require_desktop()
    monkeypatch.syspath_prepend(str(REPO))  # `benchmarks` is a top-level folder, not installed
    from benchmarks.common import Context

    workdir = Path(tempfile.mkdtemp(prefix="ctb-"))
    try:
        with trayer():
            yield Context(quick=True, say=lambda _text: None, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _section(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")


def _by_name(figures: list[Any], start: str) -> Any:
    matches = [f for f in figures if f.name.startswith(start)]
    assert len(matches) == 1, [f.name for f in figures]
    return matches[0]


def test_startup_section_reports_ordered_milestones_and_the_list_comparison(bench: Any) -> None:
    figures = _section("startup").run(bench)
    assert figures and all(f.section == "startup" and f.value > 0 for f in figures)
    chain = [
        _by_name(figures, f"cold start to {m} ").value
        for m in ("qt_imported", "event_loop", "tray_shown", "first_snapshot_in_menu")
    ]
    assert chain == sorted(chain)
    _by_name(figures, "cold start to icon docked in trayer")
    _by_name(figures, "cold start to exit after the first snapshot")
    speed_up = _by_name(figures, "speed-up list --json vs clearml-session list (50 sessions)")
    assert speed_up.target and isinstance(speed_up.met, bool)
    assert _by_name(figures, "clearml-tray list --json CPU, no tray (50").value > 0
    assert _by_name(figures, "clearml-tray list --json, clearml.conf changed").value > 0
    # With the real tray running: list answered from its snapshot (no server request of its own).
    with_tray = _by_name(figures, "clearml-tray list --json, tray running, 50 ")
    assert with_tray.value > 0 and isinstance(with_tray.met, bool)
    assert _by_name(figures, "clearml-tray list --json CPU, tray running, 50 ").value > 0
    assert _by_name(figures, "clearml-tray list --status --json, tray running, 50 ").value > 0


def test_idle_section_reports_cpu_rss_and_refreshes_over_a_short_window(bench: Any) -> None:
    figures = _section("idle").run(bench, window_s=3)
    cpu = _by_name(figures, "idle CPU of the tray")
    peak = _by_name(figures, "idle peak RSS of the tray")
    final = _by_name(figures, "idle final RSS of the tray")
    refreshes = _by_name(figures, "refreshes seen by the server")
    assert cpu.value >= 0 and isinstance(cpu.met, bool)
    assert 10 < final.value <= peak.value  # MB: a running Qt app, sampled in the window
    assert refreshes.value >= 0


def test_ui_section_measures_menus_stalls_and_a_menu_that_does_not_wait(bench: Any) -> None:
    figures = _section("ui").run(bench)
    builds = [f for f in figures if f.name.startswith("menu build, ")]
    assert [f.name.split(",")[1].split()[0] for f in builds] == ["10", "200"]
    assert all(f.value > 0 for f in builds)
    stall = _by_name(figures, "longest event-loop stall during a refresh of 200 sessions")
    assert stall.value > 0 and isinstance(stall.met, bool)
    menu = _by_name(figures, "menu open while a refresh is on the wire")
    assert menu.met is True  # the opens showed the cached snapshot: none waited for the network


def test_logparse_section_parses_transcripts_and_opens_the_editor_on_ready(bench: Any) -> None:
    figures = _section("logparse").run(bench)
    assert _by_name(figures, "log parser throughput").value > 1000
    ready = _by_name(figures, "ready line → editor process started")
    assert ready.value > 0 and isinstance(ready.met, bool)
    assert "master up: True" in ready.note  # the shared SSH login came up against the demo
    assert _by_name(figures, "launch → ready (real").value > 0
    # Both ends of the tray's share were stamped (the CLI's start and its ready line).
    added = _by_name(figures, "launch → ready: what the tray adds")
    assert added.value > 0 and isinstance(added.met, bool)


def test_connect_section_times_connect_to_ssh_with_each_keyring(bench: Any) -> None:
    figures = _section("connect").run(bench)
    start = "Connect → `ssh -o BatchMode=yes` answers: "
    cold = _by_name(figures, f"{start}nothing before the click, unlocked GNOME Keyring")
    warm = _by_name(figures, f"{start}warm tunnels on, unlocked GNOME Keyring")
    pointed = _by_name(figures, f"{start}submenu opened")
    locked = _by_name(figures, f"{start}nothing before the click, login keyring locked")
    absent = _by_name(figures, f"{start}nothing before the click, no Secret Service")
    for figure in (cold, warm, pointed, locked, absent):
        assert figure.value > 0 and isinstance(figure.met, bool)
        assert figure.note.startswith("editor started at ")
    assert warm.value < cold.value  # the tunnel was up before the click
    assert _by_name(figures, "memory of one warm tunnel").value > 10  # a real process tree
    floor = _by_name(figures, "clearml-session --attach alone")
    assert floor.value > cold.value  # the password ahead spares the CLI its wait


def test_askpass_section_times_the_helper_asking_the_tray(bench: Any) -> None:
    figures = _section("askpass").run(bench)  # the helper's answer is checked on every run
    venv = _by_name(figures, "askpass answer, from the venv (median")
    assert venv.value > 0 and isinstance(venv.met, bool)
    assert _by_name(figures, "askpass answer, from the venv (worst").value >= venv.value


def test_api_budget_section_counts_the_trays_calls_and_a_tunnels(bench: Any) -> None:
    figures = _section("api_budget").run(bench)
    assert figures and all(f.section == "api_budget" for f in figures)
    idle = _by_name(figures, "tray itself, idle desktop")
    before = _by_name(figures, "the same, before this schedule")
    cli = _by_name(figures, "the same with one tunnel open: the clearml-session CLI's share")
    locked = _by_name(figures, "the same with the screen locked")
    assert 0 < idle.value < before.value and isinstance(idle.met, bool)
    assert cli.value > 0  # the real CLI asks for its task while the tunnel is up
    assert locked.value == 0 and locked.met is True

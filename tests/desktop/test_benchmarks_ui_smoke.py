"""The ui and logparse benchmark sections run end to end (quick sizes).

Smoke only, no timing: the real tray in a child process reports event-loop lateness for every
refresh, the menu opened during a refresh never saw the refresh's answer, the parser reads
the real transcripts, and a session launched through the real clearml-session gets its editor.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.desktop import REPO, require_desktop, trayer

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(300)]


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    require_desktop()
    monkeypatch.syspath_prepend(str(REPO))  # `benchmarks` is a top-level folder, not installed
    from benchmarks.common import Context

    with trayer():
        yield Context(quick=True, say=lambda _text: None, workdir=tmp_path)


def _one(figures: list[Any], start: str) -> Any:
    matches = [f for f in figures if f.name.startswith(start)]
    assert len(matches) == 1, [f.name for f in figures]
    return matches[0]


def test_ui_section_measures_menus_stalls_and_a_menu_that_does_not_wait(quick: Any) -> None:
    figures = importlib.import_module("benchmarks.ui").run(quick)
    builds = [f for f in figures if f.name.startswith("menu build, ")]
    assert [f.name.split(",")[1].split()[0] for f in builds] == ["10", "200"]
    assert all(f.value > 0 for f in builds)
    stall = _one(figures, "longest event-loop stall during a refresh of 200 sessions")
    assert stall.value > 0 and isinstance(stall.met, bool)
    menu = _one(figures, "menu open while a refresh is on the wire")
    assert menu.met is True  # the opens showed the cached snapshot: none waited for the network


def test_logparse_section_parses_transcripts_and_opens_the_editor_on_ready(quick: Any) -> None:
    figures = importlib.import_module("benchmarks.logparse").run(quick)
    assert _one(figures, "log parser throughput").value > 1000
    ready = _one(figures, "ready line → editor process started")
    assert ready.value > 0 and isinstance(ready.met, bool)
    assert "master up: True" in ready.note  # the shared SSH login came up against the demo
    assert _one(figures, "launch → ready").value > 0

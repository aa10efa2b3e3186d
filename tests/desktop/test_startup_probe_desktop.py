"""`clearml-tray --benchmark-startup` for real: Xvfb, trayer, the emulator, the app as a subprocess.

Only the order of the milestones and what reached the menu are checked; how long they took is
for `python -m benchmarks --only startup` to print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.desktop import Window
from support.emulator import EmulatorHandle

pytestmark = pytest.mark.desktop


def _own_live(emu: EmulatorHandle) -> int:
    with emu.state.lock:
        return sum(
            1
            for t in emu.state.tasks.values()
            if t.get("status") in ("queued", "in_progress")
            and "interactive" in (t.get("system_tags") or [])
            and t.get("user") == emu.state.current_user_id
        )


def test_benchmark_startup_prints_ordered_milestones_with_the_first_snapshot_in_the_menu(
    panel: Window, emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emu = emulator_factory(sessions=12)
    config = emu.write_config(tmp_path / "clearml.conf")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    result = subprocess.run(
        [sys.executable, "-m", "tray_app", "--config-file", str(config), "--benchmark-startup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # one JSON line, nothing else
    doc = json.loads(lines[0])
    m = doc["milestones"]
    chain = [m["qt_imported"], m["event_loop"], m["tray_shown"], m["first_snapshot_in_menu"]]
    assert all(value is not None and value > 0 for value in chain), m
    assert chain == sorted(chain) and len(set(chain)) == len(chain), m
    assert doc["tray"] == "xembed"  # trayer embeds the icon's window (XEmbed)
    assert m["tray_shown"] <= m["tray_embedded"], m
    assert doc["sessions_in_snapshot"] == doc["sessions_in_menu"] == _own_live(emu)
    assert doc["complete"] is True
    assert doc["origin"].startswith("process start")

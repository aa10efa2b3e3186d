"""`clearml-tray` without a desktop says so, instead of Qt's xcb-cursor0 message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tray_app.display_check import NO_DISPLAY, display_problem


def test_display_problem() -> None:
    assert display_problem({}, "linux") == NO_DISPLAY
    assert display_problem({"DISPLAY": ":1"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None


def test_clearml_tray_without_a_display_says_exactly_that(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "tray_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no graphical desktop found" in done.stderr
    assert "xcb" not in done.stderr and "Traceback" not in done.stderr

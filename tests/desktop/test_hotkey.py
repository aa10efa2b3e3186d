"""The global hotkey in a real X server: xdotool presses it, the quick-pick opens, Enter picks."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.desktop import key, stop_process

pytestmark = pytest.mark.desktop
APP = Path(__file__).resolve().parents[1] / "support" / "hotkey_app.py"
GRABBER = """
import sys, time
from Xlib import X, XK, display
d = display.Display(); root = d.screen().root
code = d.keysym_to_keycode(XK.string_to_keysym("k"))
root.grab_key(code, X.ControlMask | X.Mod1Mask, True, X.GrabModeAsync, X.GrabModeAsync)
d.sync(); print("GRABBED", flush=True); time.sleep(60)
"""


def _quick_pick_visible() -> bool:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "Connect to a ClearML session"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return bool(found.stdout.split())


def _require_x() -> None:
    if not os.environ.get("DISPLAY"):
        pytest.skip("the hotkey test needs an X display: run under `xvfb-run -a`")


class Lines:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []

    def wait_for(self, prefix: str, limit_s: float = 15.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for line in self.seen:
                if line.startswith(prefix):
                    self.seen.remove(line)
                    return line
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line:
                    self.seen.append(line.strip())
        raise AssertionError(f"no {prefix!r} line; saw {self.seen}")


@pytest.fixture
def hotkey_app() -> Iterator[object]:
    _require_x()
    procs: list[subprocess.Popen[str]] = []

    def start(combo: str) -> Lines:
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        proc = subprocess.Popen(
            [sys.executable, str(APP), combo], env=env, stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)  # type: ignore[arg-type]
        return Lines(proc)

    yield start
    for proc in procs:
        stop_process(proc)  # type: ignore[arg-type]


def test_hotkey_opens_the_quick_pick_and_enter_connects(hotkey_app: object) -> None:
    app = hotkey_app("Ctrl+Alt+J")  # type: ignore[operator]
    assert app.wait_for("REGISTER") == "REGISTER ok"
    key("ctrl+alt+j")
    app.wait_for("SHOWN")
    time.sleep(0.3)  # let the window map before typing into it
    subprocess.run(["xdotool", "type", "--delay", "50", "notebook"], check=True, timeout=20)
    key("Return")
    assert app.wait_for("CHOSEN") == f"CHOSEN {'b' * 32}"


def test_a_combo_held_by_another_client_is_reported_taken(hotkey_app: object) -> None:
    _require_x()
    grabber = subprocess.Popen([sys.executable, "-c", GRABBER], stdout=subprocess.PIPE, text=True)
    try:
        assert grabber.stdout is not None and grabber.stdout.readline().strip() == "GRABBED"
        app = hotkey_app("Ctrl+Alt+K")  # type: ignore[operator]
        line = app.wait_for("REGISTER")
        assert line == "REGISTER taken Ctrl+Alt+K is already used by another program"
    finally:
        stop_process(grabber)  # type: ignore[arg-type]

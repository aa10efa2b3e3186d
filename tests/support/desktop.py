"""Helpers for desktop tests on a real X server: a tray host (trayer), clicks, screenshots.

The X server comes from `xvfb-run` (CI runs the whole suite under it). Everything here talks to
real programs: trayer embeds our icon through the XEmbed system-tray protocol, xdotool moves the
pointer and clicks, and screenshots are taken with Qt from a separate process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_TREE_LINE = re.compile(
    r"^\s*(0x[0-9a-f]+) (?:\"(?P<name>[^\"]*)\"|\(has no name\)): \((?P<cls>[^)]*)\)\s+"
    r"(?P<w>\d+)x(?P<h>\d+)[+-]-?\d+[+-]-?\d+\s+\+(?P<x>-?\d+)\+(?P<y>-?\d+)"
)


def require_desktop() -> None:
    """Skip (with the reason) when there is no X display or a needed program is missing."""
    if not os.environ.get("DISPLAY"):
        pytest.skip("desktop tests need an X display: run under `xvfb-run -a` (as .ci/run does)")
    for tool in ("trayer", "xdotool", "xwininfo", "xprop"):
        if shutil.which(tool) is None:
            pytest.skip(f"desktop tests need `{tool}` (apt-get install trayer xdotool x11-utils)")


@dataclass(frozen=True)
class Window:
    id: str
    name: str
    wm_class: str
    x: int
    y: int
    width: int
    height: int

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height // 2

    def inside(self, other: Window) -> bool:
        return (
            other.x <= self.x < other.x + other.width and other.y <= self.y < other.y + other.height
        )


def windows() -> list[Window]:
    out = subprocess.run(
        ["xwininfo", "-root", "-tree"], capture_output=True, text=True, timeout=10
    ).stdout
    found = []
    for line in out.splitlines():
        match = _TREE_LINE.match(line)
        if match:
            found.append(
                Window(
                    match.group(1),
                    match.group("name") or "",
                    match.group("cls"),
                    int(match.group("x")),
                    int(match.group("y")),
                    int(match.group("w")),
                    int(match.group("h")),
                )
            )
    return found


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@contextmanager
def trayer() -> Iterator[Window]:
    """A real system-tray host docked at the top right; yields its panel window."""
    argv = [
        "trayer",
        "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "240",
        "--heighttype", "pixel", "--height", "32", "--transparent", "false",
    ]  # fmt: skip

    def panel() -> Window | None:
        # The panel is the window of class "panel" "trayer"; trayer's other top-level window,
        # of class "trayer" "Trayer", is a 10x10 one off-screen or at +10+10.
        return next((w for w in windows() if w.wm_class == '"panel" "trayer"'), None)

    # On a busy machine trayer, started right after the X server, now and then shows nothing:
    # such a start is ended and made again (its exit status and errors are kept for the
    # message in case none works).
    problems: list[str] = []
    for _attempt in range(3):
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors)
            try:
                found = None
                deadline = time.monotonic() + 15
                while found is None and proc.poll() is None and time.monotonic() < deadline:
                    found = panel()
                    if found is None:
                        time.sleep(0.1)
                if found is not None:
                    yield found
                    return
            finally:
                stop_process(proc)
            errors.seek(0)
            problems.append(f"exit {proc.returncode}: {errors.read()[-300:]!r}")
    raise AssertionError(f"trayer showed no panel in 3 starts: {problems}")


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Terminate a helper program; kill it if it does not exit within the grace period."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def docked_icon(panel: Window, wm_class: str = "clearml-tray") -> Window | None:
    """Our icon's window, once the tray host has embedded it in its panel."""
    for window in windows():
        if f'"{wm_class}"' in window.wm_class and window.inside(panel) and window.width < 64:
            return window
    return None


def popup_open(wm_class: str = "clearml-tray") -> bool:
    """Whether one of our popup menus is mapped on screen (dialogs and the icon do not count)."""
    ids = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--class", wm_class],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    for window_id in ids:
        kind = subprocess.run(
            ["xprop", "-id", window_id, "_NET_WM_WINDOW_TYPE"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        if "MENU" in kind:
            return True
    return False


def click(x: int, y: int, button: int = 1) -> None:
    # No `--sync`: it waits for a pointer motion that never comes when the pointer is there.
    subprocess.run(
        ["xdotool", "mousemove", str(x), str(y), "sleep", "0.1", "click", str(button)],
        check=True,
        timeout=10,
    )


def key(name: str) -> None:
    subprocess.run(["xdotool", "key", name], check=True, timeout=10)


def screenshot(path: Path) -> Path:
    """Grab the whole X screen into a PNG (with Qt, in a separate process)."""
    code = (
        "import sys\n"
        "from PySide6.QtGui import QGuiApplication\n"
        "app = QGuiApplication(sys.argv[:1])\n"
        "ok = app.primaryScreen().grabWindow(0).save(sys.argv[1])\n"
        "sys.exit(0 if ok else 1)\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=30, env=env)
    artifacts = os.environ.get("TEST_ARTIFACTS_DIR") or str(REPO / "test-artifacts")
    try:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(artifacts) / path.name)
    except OSError:
        pass  # artifacts are a convenience; the test result does not depend on them
    return path

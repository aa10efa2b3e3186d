"""Children of the startup and idle sections: the emulator they talk to, their peak RSS, trayer.

The tray and the CLIs run as real child processes (console scripts of this environment) against
the ClearML API emulator, which runs in the benchmark's own process (a uvicorn thread) so that
its cost is never counted as theirs. Whether the icon is up is read from the X server, the way a
user sees it: our window inside trayer's panel (`xwininfo -root -tree`).

A child's wall time and peak RSS: `common.run_measured` (through a small launcher).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Context, tool_env
from tray_app.demo import DemoServer, EmulatorState, seeded_state

APP_CLASS = "clearml-tray"  # the WM_CLASS of every window of ours
POLL_S = 0.01  # between two xwininfo runs; one run takes ~4 ms on Xvfb

# `     0x400007 "ClearML Session Tray": ("clearml-tray" "clearml-tray")  22x30+0+0  +1257+1`
_TREE_LINE = re.compile(
    r'^\s*0x[0-9a-f]+ (?:"(?P<name>.*)"|\(has no name\)): \((?P<cls>[^)]*)\)\s+'
    r"(?P<w>\d+)x(?P<h>\d+)\S*\s+\+(?P<x>-?\d+)\+(?P<y>-?\d+)\s*$"
)


@dataclass(frozen=True)
class Emulated:
    """A running emulator, its clearml.conf, and the environment for a child pointed at it."""

    server: DemoServer
    config: Path
    env: dict[str, str]


@contextmanager
def emulator(
    ctx: Context,
    name: str,
    sessions: int,
    prepare: Callable[[DemoServer], None] | None = None,
) -> Iterator[Emulated]:
    """Seed `sessions` sessions, serve them on loopback; a private HOME under ctx.workdir/name."""
    server = DemoServer(seeded_state(sessions=sessions), port=0, ssh_endpoints=False)
    if prepare is not None:
        prepare(server)
    server.start()
    try:
        base = ctx.workdir / name
        config = server.write_config(base / "clearml.conf")
        env = tool_env(config, base / "home")
        env.pop("QT_QPA_PLATFORM", None)  # the real display, never offscreen
        yield Emulated(server, config, env)
    finally:
        server.stop()


def requests_by_endpoint(state: EmulatorState) -> Counter[str]:
    """What the emulator has answered so far, by endpoint (subtract two of them for a window)."""
    with state.lock:
        return Counter(r.endpoint for r in state.requests)


def describe(requests: Counter[str]) -> str:
    """The counts in one line: `20 requests (18 tasks.get_all_ex, 2 auth.login)`."""
    parts = ", ".join(f"{n} {endpoint}" for endpoint, n in requests.most_common())
    return f"{sum(requests.values())} requests ({parts})"


@dataclass(frozen=True)
class XWindow:
    name: str
    wm_class: str
    x: int
    y: int
    width: int
    height: int

    def inside(self, other: XWindow) -> bool:
        return (
            other.x <= self.x < other.x + other.width and other.y <= self.y < other.y + other.height
        )


def x_windows() -> list[XWindow]:
    """Every window on the display with its absolute position (mapped or not)."""
    out = subprocess.run(
        ["xwininfo", "-root", "-tree"], capture_output=True, text=True, timeout=10
    ).stdout
    found = []
    for line in out.splitlines():
        m = _TREE_LINE.match(line)
        if m:
            found.append(
                XWindow(
                    m.group("name") or "",
                    m.group("cls"),
                    int(m.group("x")),
                    int(m.group("y")),
                    int(m.group("w")),
                    int(m.group("h")),
                )
            )
    return found


def tray_panel() -> XWindow:
    """trayer's panel (the widest of its windows); RuntimeError when no trayer runs."""
    panels = [w for w in x_windows() if '"trayer"' in w.wm_class.lower()]
    if not panels:
        raise RuntimeError("no tray host on the display: start trayer (the runner does)")
    return max(panels, key=lambda w: w.width)


def docked_icon(panel: XWindow) -> XWindow | None:
    """Our icon's window once trayer has reparented it into its panel."""
    for window in x_windows():
        if f'"{APP_CLASS}"' in window.wm_class and window.inside(panel) and window.width < 64:
            return window
    return None


def wait_docked(
    panel: XWindow, proc: subprocess.Popen[bytes], start: float, timeout: float = 60
) -> float:
    """Seconds from `start` (perf_counter) until our icon sits in the panel."""
    deadline = time.perf_counter() + timeout
    while proc.poll() is None and time.perf_counter() < deadline:
        if docked_icon(panel) is not None:
            return time.perf_counter() - start
        time.sleep(POLL_S)
    state = f"exited with {proc.returncode}" if proc.returncode is not None else "still running"
    raise RuntimeError(f"the tray icon never docked in trayer within {timeout:g} s ({state})")


def stop_tree(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> int:
    """SIGTERM to the child's process group (started with start_new_session), SIGKILL to what
    is left after `grace_s`; the child's exit status."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the child if it hung, and children it left
    return proc.wait(grace_s)

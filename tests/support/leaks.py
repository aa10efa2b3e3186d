"""pytest plugin: nothing a test starts may outlive the run.

At the start the run gets a random marker, exported as `CTRAY_TEST_RUN` so that every process a
test starts inherits it (the name has no CLEARML_ prefix, which `isolated_home` removes). After
each test the plugin notes which `clearml-session`, `ssh`, `clearml-tray` or demo-server
processes of this run are alive, and with which test they first showed up; at the end of the run
those still alive are reported with that test, killed, and the run fails.

A process belongs to the run when it descends from the pytest process or carries the marker: an
`ssh -f` master or anything else that detached from its parent still has the marker. Other
runs on the same machine (another worktree's pytest, the user's own tray) have other markers.
An interrupted run (Ctrl-C, or SIGTERM, which this plugin turns into the same) is checked too.
Linux only: without /proc there is nothing to scan and the check does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

MARKER_ENV = "CTRAY_TEST_RUN"
PROC = Path("/proc")
# How long processes that are already on their way out get before they count as left behind.
GRACE_S = float(os.environ.get("CTRAY_LEAK_GRACE_S", "10"))

_marker = ""
_first_seen: dict[int, tuple[str, str]] = {}  # pid -> (kind, nodeid of the test before)
_leaks: list[Leak] = []


@dataclass(frozen=True)
class Leak:
    pid: int
    kind: str
    cmdline: str
    test: str


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile, or is not ours to read
        return b""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, None when it is gone."""
    raw = _read(PROC / str(pid) / "stat").decode(errors="replace")
    # The command name (field 2) is in parentheses and may itself contain ") ".
    tail = raw[raw.rfind(")") + 2 :].split()
    if len(tail) < 2:
        return None
    return tail[0], int(tail[1])


def _argv(pid: int) -> list[str]:
    return [
        a.decode(errors="replace") for a in _read(PROC / str(pid) / "cmdline").split(b"\0") if a
    ]


def kind_of(argv: list[str]) -> str | None:
    """Which of the watched programs a command line runs, if any."""
    names = [os.path.basename(a) for a in argv[:3]]
    if names[:1] == ["ssh"]:
        return "ssh"
    if "clearml-session" in names:
        return "clearml-session"
    if "demo-server" in argv or (
        "--demo" in argv and ("clearml-tray" in names or "tray_app" in argv)
    ):
        return "demo"
    if "clearml-tray" in names or argv[1:3] == ["-m", "tray_app"]:
        return "clearml-tray"
    return None


def _carries_marker(pid: int, marker: str) -> bool:
    prefix = f"{MARKER_ENV}=".encode()
    for entry in _read(PROC / str(pid) / "environ").split(b"\0"):
        if entry.startswith(prefix):
            return marker in entry[len(prefix) :].decode(errors="replace").split("/")
    return False


def _pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def watched_processes(root: int, marker: str) -> dict[int, tuple[str, str]]:
    """pid -> (kind, command line) of the live watched processes that belong to this run."""
    parents: dict[int, int] = {}
    candidates: dict[int, tuple[str, str]] = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is None or stat[0] in "ZX":  # exited; a zombie only waits to be reaped
            continue
        parents[pid] = stat[1]
        if pid == root:
            continue
        argv = _argv(pid)
        kind = kind_of(argv)
        if kind is not None:
            candidates[pid] = (kind, " ".join(argv))

    def descends(pid: int) -> bool:
        seen: set[int] = set()
        while pid in parents and pid not in seen:
            seen.add(pid)
            pid = parents[pid]
            if pid == root:
                return True
        return False

    return {
        pid: found
        for pid, found in candidates.items()
        if descends(pid) or (marker and _carries_marker(pid, marker))
    }


def _kill(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(OSError):  # it ended meanwhile
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pids = [p for p in pids if (_stat(p) or ("Z", 0))[0] not in "ZX"]
            if not pids:
                return
            time.sleep(0.05)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    global _marker
    if not PROC.is_dir():
        return
    # A run started from inside another (a test of this plugin) adds its own marker to the
    # outer run's: its processes belong to both.
    _marker = uuid.uuid4().hex
    outer = os.environ.get(MARKER_ENV)
    os.environ[MARKER_ENV] = f"{outer}/{_marker}" if outer else _marker
    # A run stopped with SIGTERM (a CI timeout, `kill`) tears down and checks like Ctrl-C does,
    # instead of dying with its tests' processes still running.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield
    if not _marker:
        return
    for pid, (kind, _cmd) in watched_processes(os.getpid(), _marker).items():
        _first_seen.setdefault(pid, (kind, item.nodeid))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _marker:
        return
    deadline = time.monotonic() + GRACE_S
    alive = watched_processes(os.getpid(), _marker)
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = watched_processes(os.getpid(), _marker)
    if not alive:
        return
    for pid, (kind, cmd) in sorted(alive.items()):
        test = _first_seen.get(pid, (kind, "(no test: started outside a test)"))[1]
        _leaks.append(Leak(pid, kind, cmd, test))
    _kill(list(alive))
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _leaks:
        return
    terminalreporter.section("processes left behind", sep="=", red=True, bold=True)
    terminalreporter.line(
        f"{len(_leaks)} process(es) started by tests were still running at the end "
        "(now killed); the run fails:",
        red=True,
    )
    for leak in _leaks:
        terminalreporter.line(f"  pid {leak.pid} {leak.kind}: {leak.cmdline[:200]}")
        terminalreporter.line(f"      first seen after {leak.test}")

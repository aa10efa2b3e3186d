"""The tunnel wing's two ports: the child process it runs, and the views it tells.

`ChildProcess` is one running program (the Qt side implements it with a QProcess and its
timers, `qt/session_process.py`; tests script one). It reports to a `ChildListener` through
plain method calls, never Qt signals: PySide6 has lost references across `Signal.emit` of
Python objects. `TunnelEvents` is what the registry tells the views (the Qt adapter turns it
into signals): the tunnels changed, a child printed something, the user wants a child's log.

Implemented by tests/support/scripted_child.py (tests/unit/tunnels/) and qt/session_process.py
(tests/qt/test_session_process.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

TERMINATE_GRACE_MS = 3000


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """What to run: prepared in full before any process exists (never a shell string)."""

    key: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)
    cwd: Path | None = None


class ChildListener(Protocol):
    def received(self, data: bytes) -> None:
        """Output (stdout and stderr merged), as it arrives."""
        ...

    def tick(self) -> None:
        """Called about every half second while the child runs (quiet prompts are noticed so)."""
        ...

    def finished(self, code: int, error: str = "") -> None:
        """The child ended: its exit code, -1 when it crashed, was killed or never started
        (`error` then says why in words)."""
        ...


class ChildProcess(Protocol):
    @property
    def pid(self) -> int:
        """The pid it started with (kept after it ended; 0 when it never started)."""
        ...

    def start(self) -> None: ...

    def running(self) -> bool: ...

    def write(self, text: str) -> None:
        """To its stdin (ignored once it ended)."""
        ...

    def terminate_later(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        """SIGTERM to it and everything below it now, SIGKILL after `grace_ms`; never blocks."""
        ...

    def stop(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        """Terminate, kill after `grace_ms`: blocks until it is gone (Quit)."""
        ...

    def wait_finished(self, timeout_ms: int) -> bool:
        """Block until it ends by itself; False when it still runs after `timeout_ms`."""
        ...

    def release(self) -> None:
        """It ended and is forgotten: free what the implementation holds for it."""
        ...


StartChild = Callable[[ChildSpec, ChildListener], ChildProcess]


class TunnelEvents(Protocol):
    """What the registry tells the views (menu, icon, log windows)."""

    def changed(self) -> None:
        """A tunnel was added, changed state or went away."""
        ...

    def output(self, key: str, text: str) -> None:
        """A child printed `text` (redacted): live log windows follow it."""
        ...

    def follow_log(self, key: str) -> None:
        """The user asked to follow a child's log (a notice's Follow log button)."""
        ...


class NoEvents:
    """A registry nobody watches (tests, benchmarks)."""

    def changed(self) -> None:
        pass

    def output(self, key: str, text: str) -> None:
        pass

    def follow_log(self, key: str) -> None:
        pass

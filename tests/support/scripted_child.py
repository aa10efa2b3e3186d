"""A `ChildProcess` the test drives: what a child prints, when it ends, what it was sent.

The registry runs children through `core.tunnels.ports`; this stands in for the QProcess so
that the registry is tested without a display, from the real transcripts. Nothing runs: the
test feeds output (`print`), ends the child (`exit`), and reads what the registry wrote to its
stdin and asked of it (`written`, `terminated`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tray_app.core.tunnels.ports import TERMINATE_GRACE_MS, ChildListener, ChildSpec


@dataclass
class ScriptedChild:
    spec: ChildSpec
    listener: ChildListener
    written: list[str] = field(default_factory=list)
    terminated: int = 0
    started: bool = False
    released: bool = False
    exit_code: int | None = None
    # A child that ends by itself when told "Shutdown" (as the CLI does once its tunnel is up).
    obeys_shutdown: bool = True

    @property
    def pid(self) -> int:
        return 0  # nothing runs: the pid file is left alone

    def start(self) -> None:
        self.started = True

    def running(self) -> bool:
        return self.started and self.exit_code is None

    def write(self, text: str) -> None:
        if not self.running():
            return
        self.written.append(text)
        if text == "Shutdown\n" and self.obeys_shutdown:
            self.print("Remote session shutdown\n")
            self.exit(0)

    def terminate_later(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        if self.running():
            self.terminated += 1
            self.exit(-1)  # a signal: QProcess reports a crash exit

    def stop(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        self.terminate_later(grace_ms)

    def wait_finished(self, timeout_ms: int) -> bool:
        return not self.running()

    def release(self) -> None:
        self.released = True

    # --- the test's side ------------------------------------------------------------------------
    def print(self, text: str) -> None:
        self.listener.received(text.encode())

    def quiet(self) -> None:
        """Time passes with no output (a question the parser does not know waits so)."""
        self.listener.tick()

    def exit(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code
            self.listener.finished(code)


class ScriptedChildren:
    """The `StartChild` of a test: every child it started, newest last."""

    def __init__(self) -> None:
        self.children: list[ScriptedChild] = []
        self.on_start: Callable[[ScriptedChild], None] = lambda child: None

    def __call__(self, spec: ChildSpec, listener: ChildListener) -> ScriptedChild:
        child = ScriptedChild(spec, listener)
        self.children.append(child)
        self.on_start(child)
        return child

    @property
    def last(self) -> ScriptedChild:
        return self.children[-1]

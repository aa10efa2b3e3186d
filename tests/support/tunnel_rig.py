"""The registry's rig: a scripted child per launch, every port recorded (no Qt, no display).

The `make_rig` fixture (tests/unit/tunnels/conftest.py) builds these."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.scripted_child import ScriptedChild, ScriptedChildren
from tray_app.core.ports import Question
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.environment import ChildEnvironment
from tray_app.core.tunnels.model import TunnelInfo
from tray_app.core.tunnels.registry import TunnelRegistry


@dataclass
class Recorder:
    """The ports: notices, questions, the desktop, the Host blocks, the editor, the views."""

    notices: list[tuple[str, str, str, list[tuple[str, Callable[[], None]]], str]] = field(
        default_factory=list
    )
    answers: list[str | None] = field(default_factory=list)  # to the CLI's unknown questions
    asked: list[str] = field(default_factory=list)
    opened_urls: list[str] = field(default_factory=list)
    ups: list[tuple[TunnelInfo, str]] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    secrets_copied: list[tuple[str, float]] = field(default_factory=list)
    editors: list[TunnelInfo] = field(default_factory=list)
    editor_checks: int = 0
    live: list[set[str]] = field(default_factory=list)
    changes: int = 0
    outputs: list[tuple[str, str]] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)

    # Notify
    def notify(
        self, kind: str, title: str, body: str, buttons: Any = (), *, critical: bool = False,
        tag: str = "",
    ) -> bool:  # fmt: skip
        self.notices.append((kind, title, body, list(buttons), tag))
        return True

    def kinds(self) -> list[str]:
        return [n[0] for n in self.notices]

    # Ask
    async def ask(self, question: Question) -> int | None:
        return None

    async def ask_text(self, title: str, prompt: str) -> str | None:
        self.asked.append(prompt)
        return self.answers.pop(0)

    def cancel_all(self) -> None:
        pass

    # Desktop
    def copy(self, text: str) -> None:
        self.copied.append(text)

    def copy_secret(self, text: str, clear_after_s: float = 30.0) -> None:
        self.copied.append(text)
        self.secrets_copied.append((text, clear_after_s))

    def open_url(self, url: str) -> bool:
        self.opened_urls.append(url)
        return True

    def start_detached(self, argv: Any) -> bool:
        return True

    # Hosts
    def tunnel_up(self, info: TunnelInfo, password: str) -> None:
        self.ups.append((info, password))

    def copy_ssh(self, info: TunnelInfo) -> None:
        self.copied.append(f"ssh {info.ssh_host_alias}")

    def keep_only(self, live: set[str]) -> None:
        self.live.append(set(live))

    async def remove_hosts(self, session_ids: set[str] | None) -> None:
        pass

    # Editor
    def open(self, info: TunnelInfo, explicit: bool = False) -> None:
        self.editors.append(info)

    def check_soon(self) -> None:
        self.editor_checks += 1

    # TunnelEvents
    def changed(self) -> None:
        self.changes += 1

    def output(self, key: str, text: str) -> None:
        self.outputs.append((key, text))

    def follow_log(self, key: str) -> None:
        self.followed.append(key)


@dataclass
class Rig:
    registry: TunnelRegistry
    rec: Recorder
    children: ScriptedChildren
    settings: Settings
    data: Path
    clock: list[float]
    tasks: list[asyncio.Task[Any]]

    @property
    def child(self) -> ScriptedChild:
        return self.children.last

    def only(self) -> TunnelInfo:
        (info,) = self.registry.tunnels().values()
        return info

    async def settle(self) -> None:
        while any(not t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks)


def build_rig(
    data: Path,
    *,
    ahead: Any = None,
    session: Any = None,
    executable: str | None = "/opt/bin/clearml-session",
    start_child: Any = None,
    real_time: bool = False,
    env: Any = None,
    notify: Any = None,
    cancel: Any = None,
    stdin_commands: bool = True,
    stop_session: Any = None,
    **settings: Any,
) -> Rig:
    """A registry on `data`; `start_child`: the real QtChildren instead of scripted children
    (then `real_time`, so that a quiet child's question is noticed as time passes)."""
    rec = Recorder()
    children = ScriptedChildren()
    tasks: list[asyncio.Task[Any]] = []
    clock = [1000.0]

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
        tasks.append(asyncio.ensure_future(coro))

    chosen = Settings(**{"open_editor_when_ready": True, **settings})
    registry = TunnelRegistry(
        start_child=start_child or children,
        environment=ChildEnvironment(
            data, executable=executable, shim=False, base_env=env or (lambda: os.environ)
        ),
        events=rec,
        notify=notify or rec,
        ask=rec,
        desktop=rec,
        spawn=spawn,
        settings=lambda: chosen,
        hosts=rec,
        editor=rec,
        ahead=ahead,
        session=session or (lambda sid: None),
        cancel=cancel,
        clock=time.monotonic if real_time else lambda: clock[0],
        stdin_commands=stdin_commands,
        stop_session=stop_session or (lambda session_id: None),
    )
    return Rig(registry, rec, children, chosen, data, clock, tasks)

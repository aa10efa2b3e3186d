"""Connect in VS Code: what a click does in each state of the session's tunnel."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.core.tunnels.connect import ConnectFlow
from tray_app.core.tunnels.model import TunnelInfo, TunnelState

SID = "0123456789abcdef0123456789abcdef"


class Tunnels:
    def __init__(self, *infos: TunnelInfo) -> None:
        self.infos = {i.key: i for i in infos}
        self.attached: list[tuple[str, str]] = []
        self.promoted: list[str] = []
        self.progress: list[str] = []
        self.spawned: list[Coroutine[Any, Any, Any]] = []  # what the flow started

    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return self.infos

    def tunnel_for(self, session_id: str) -> TunnelInfo | None:
        found = [t for t in self.infos.values() if t.session_id == session_id]
        return ([t for t in found if t.live] or found or [None])[0]

    def attach(self, session_id: str, label: str = "", *, prewarm: bool = False) -> None:
        self.attached.append((session_id, label))

    def promote(self, key: str) -> TunnelInfo | None:
        self.promoted.append(key)
        self.infos[key] = replace(self.infos[key], prewarmed=False)
        return self.infos[key]

    def show_progress(self, key: str) -> None:
        self.progress.append(key)


@dataclass
class Editor:
    opened: list[TunnelInfo] = field(default_factory=list)
    checks: int = 0
    terminals: list[TunnelInfo] = field(default_factory=list)

    def open(self, info: TunnelInfo) -> None:
        self.opened.append(info)

    def check_soon(self) -> None:
        self.checks += 1

    async def open_terminal(self, info: TunnelInfo) -> None:
        self.terminals.append(info)


@dataclass
class Hosts:
    copied: list[TunnelInfo] = field(default_factory=list)
    closed: bool = False
    agree: bool = True  # the Include line is there (or the user adds it when asked)
    asked: list[str] = field(default_factory=list)
    again: list[Callable[[], None]] = field(default_factory=list)

    def copy_ssh(self, info: TunnelInfo) -> None:
        self.copied.append(info)

    async def include_up_front(self, purpose: str, again: Callable[[], None] | None = None) -> bool:
        self.asked.append(purpose)
        if again is not None:
            self.again.append(again)
        return self.agree

    async def close(self) -> None:
        self.closed = True


@dataclass
class Notices:
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def notify(self, kind: str, title: str, body: str, buttons: Any = (), **kw: Any) -> bool:
        self.sent.append((kind, title, body))
        return True


def ready(**changes: Any) -> TunnelInfo:
    info = TunnelInfo(SID, SID, TunnelState.READY, local_ssh_port=8022, user="root")
    return replace(info, **changes)


def flow(*infos: TunnelInfo) -> tuple[ConnectFlow, Tunnels, Editor, Hosts, Notices]:
    tunnels, editor, hosts, notices = Tunnels(*infos), Editor(), Hosts(), Notices()
    connect = ConnectFlow(
        tunnels,  # type: ignore[arg-type]
        hosts=hosts,  # type: ignore[arg-type]
        editor=editor,  # type: ignore[arg-type]
        notify=notices,
        spawn=tunnels.spawned.append,
    )
    return connect, tunnels, editor, hosts, notices


async def test_without_a_tunnel_connect_attaches_and_the_editor_opens_once_it_is_ready() -> None:
    connect, tunnels, editor, hosts, _ = flow()
    await connect.connect_now(SID, "gpu box")
    assert tunnels.attached == [(SID, "gpu box")] and editor.opened == []
    # The Include line was seen to first, naming the session.
    assert hosts.asked == ["Connect in VS Code to “gpu box (01234567)”"]
    tunnels.infos[SID] = ready()
    await connect.connect_now(SID)
    assert tunnels.attached == [(SID, "gpu box")] and editor.opened == [ready()]


async def test_connect_takes_over_a_prewarmed_ready_tunnel_and_opens_the_editor_at_once() -> None:
    connect, tunnels, editor, _, _ = flow(ready(prewarmed=True))
    await connect.connect_now(SID, "Interactive Session")
    assert tunnels.promoted == [SID] and tunnels.attached == []  # no second clearml-session
    assert editor.opened == [ready()]


async def test_connect_on_a_prewarmed_tunnel_still_coming_up_waits_for_it() -> None:
    coming = TunnelInfo(SID, SID, TunnelState.CONNECTING, prewarmed=True)
    connect, tunnels, editor, _, _ = flow(coming)
    await connect.connect_now(SID)
    # Taken over: the registry posts its progress notice and opens the editor when ready.
    assert tunnels.promoted == [SID] and tunnels.attached == [] and editor.opened == []
    assert editor.checks == 1


async def test_connect_again_while_connecting_shows_the_progress_notice() -> None:
    connect, tunnels, _, _, _ = flow(TunnelInfo(SID, SID, TunnelState.CONNECTING))
    await connect.connect_now(SID)
    assert tunnels.progress == [SID] and tunnels.promoted == [] and tunnels.attached == []


async def test_a_tunnel_that_ended_is_attached_again() -> None:
    connect, tunnels, _, _, _ = flow(TunnelInfo("attach-1", SID, TunnelState.FAILED))
    await connect.connect_now(SID, "gpu box")
    assert tunnels.attached == [(SID, "gpu box")]


async def test_connect_by_short_id_answers_in_words() -> None:
    session = Session(id=SID, name="gpu box", status="in_progress", state=SessionState.RUNNING)
    snapshot = Snapshot((session,), datetime.now(UTC))
    connect, tunnels, _, _, _ = flow()
    assert connect.connect_ref(snapshot, "01234567") == (True, "Connecting to gpu box (01234567).")
    (started,) = tunnels.spawned
    await started
    assert tunnels.attached == [(SID, "gpu box")]
    ok, why = connect.connect_ref(snapshot, "zz")
    assert not ok and "zz" in why


async def test_copy_ssh_and_the_terminal_need_a_ready_tunnel() -> None:
    connect, _, editor, hosts, notices = flow()
    assert connect.copy_ssh(SID) is False
    await connect.open_terminal(SID)
    assert notices.sent == [("info", "Terminal", "Connect the session first.")]
    connect, _, editor, hosts, _ = flow(ready())
    assert connect.copy_ssh(SID) is True and hosts.copied == [ready()]
    await connect.open_terminal(SID)
    assert editor.terminals == [ready()]


async def test_after_cancel_to_the_include_question_nothing_starts_and_connect_asks_again() -> None:
    connect, tunnels, editor, hosts, _ = flow()
    hosts.agree = False
    await connect.connect_now(SID, "gpu box")
    assert tunnels.attached == [] and editor.opened == []
    hosts.again[-1]()  # the notice's Connect button
    (again,) = tunnels.spawned
    hosts.agree = True
    await again
    assert len(hosts.asked) == 2 and tunnels.attached == [(SID, "gpu box")]

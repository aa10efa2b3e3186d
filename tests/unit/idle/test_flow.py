"""Idle sessions, from a snapshot to the notice: warn with Keep alive / Stop now, naming the session
and why; "the GPUs went quiet" with Connect / Show log / Stop; verdicts and marks per server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from support.emulator import EmulatorHandle

from tray_app.core.idle.flow import IdleFlow
from tray_app.core.idle.monitor import IdleAction
from tray_app.core.idle.policy import IdleState, IdleVerdict
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy
from tray_app.core.view.actions import MenuAction


class Notices:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, list[tuple[str, Any]]]] = []

    def notify(self, kind: str, title: str, body: str, buttons: Any = (), **kw: Any) -> bool:
        self.sent.append((kind, title, body, list(buttons)))
        return True


def _service(emu: EmulatorHandle) -> SessionService:
    config = ServerConfig(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    return SessionService(ClearMLClient(config), web_server=emu.url)


async def test_an_idle_session_is_warned_about_with_keep_alive_and_stop_now(
    emulator_factory: Any,
) -> None:
    emu: EmulatorHandle = emulator_factory(sessions=5)  # session #3 is seeded idle
    service = _service(emu)
    current: list[SessionService | None] = [service]
    tasks: list[asyncio.Task[Any]] = []
    acted: list[tuple[MenuAction, str]] = []
    notices = Notices()

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
        tasks.append(asyncio.ensure_future(coro))

    flow = IdleFlow(
        notify=notices,
        spawn=spawn,
        policy=lambda: IdlePolicy(mode=IdleMode.NOTIFY, window_minutes=5),
        act=lambda action, sid: acted.append((action, sid)),
        refresh=lambda: None,
        server=lambda: current[0],
    )
    flow.snapshot_changed(await service.snapshot())
    await asyncio.gather(*tasks)
    ((_kind, title, body, buttons),) = [n for n in notices.sent if n[0] == "idle_warning"]
    monitor = flow.monitor
    assert monitor is not None
    idle_id = next(sid for sid, v in monitor.verdicts.items() if v.state == "idle")
    # Names repeat ("Interactive Session"): the notice names the short id, and says why.
    assert title == f"Idle session: Interactive Session ({idle_id[:8]})"
    assert (
        body
        == monitor.verdicts[idle_id].reason[0].upper() + monitor.verdicts[idle_id].reason[1:] + "."
    )
    assert "cores busy for" in body and body.endswith(" on cpu-host-002.")
    assert [label for label, _ in buttons] == ["Keep alive 2h", "Stop now"]
    assert flow.notes()[idle_id].startswith("Idle for ")
    assert flow.marks() == {idle_id: flow.marks()[idle_id]}
    assert flow.marks()[idle_id].startswith("idle ")  # its menu row carries the idle mark
    assert {sid: v.state for sid, v in flow.verdicts().items()}[idle_id] == IdleState.IDLE
    dict(buttons)["Keep alive 2h"]()
    assert flow.notes()[idle_id].startswith("Kept alive until ")
    assert idle_id not in flow.marks()  # kept alive: no mark
    dict(buttons)["Stop now"]()
    assert acted == [(MenuAction.STOP, idle_id)]  # the user's own Stop (it asks first)
    # Another server: its own monitor, nothing carried over from the last one.
    other = _service(emulator_factory(sessions=2, seed=3))
    current[0] = other
    assert flow.monitor is not monitor and flow.notes() == {} and flow.verdicts() == {}
    current[0] = None
    assert flow.monitor is None and flow.notes() == {} and flow.marks() == {}
    flow.snapshot_changed(None)  # nothing to check, nothing spawned
    assert len(tasks) == 1
    await service.client.aclose()
    await other.client.aclose()


async def test_the_idle_check_asks_the_server_only_when_there_is_something_new_to_judge(
    emulator_factory: Any,
) -> None:
    """An hour's window of minute buckets changes little between two refreshes: one
    workers.get_stats per 5 minutes, or at once when the sessions or the policy change."""
    emu: EmulatorHandle = emulator_factory(sessions=5)
    service = _service(emu)
    now = [1000.0]
    policy = [IdlePolicy(mode=IdleMode.NOTIFY, window_minutes=5)]
    tasks: list[asyncio.Task[Any]] = []
    flow = IdleFlow(
        notify=Notices(),
        spawn=lambda coro: tasks.append(asyncio.ensure_future(coro)),
        policy=lambda: policy[0],
        act=lambda action, sid: None,
        refresh=lambda: None,
        server=lambda: service,
        monotonic=lambda: now[0],
    )

    async def refresh(advance: float) -> int:
        now[0] += advance
        flow.snapshot_changed(await service.snapshot())
        await asyncio.gather(*tasks)
        return emu.state.count_requests("workers.get_stats")

    emu.state.clear_requests()
    assert await refresh(0) >= 1
    first = emu.state.count_requests("workers.get_stats")
    for _ in range(19):  # the next 19 refreshes, 15 s apart
        assert await refresh(15) == first
    assert await refresh(15) > first  # 5 minutes on
    second = emu.state.count_requests("workers.get_stats")
    policy[0] = IdlePolicy(mode=IdleMode.NOTIFY, window_minutes=10)
    assert await refresh(15) > second  # the policy changed: judged again at once
    await service.client.aclose()


def test_the_gpus_went_quiet_notice_names_the_machine_and_offers_connect_log_stop() -> None:
    notices = Notices()
    acted: list[tuple[MenuAction, str]] = []
    flow = IdleFlow(
        notify=notices,
        spawn=lambda coro: coro.close(),
        policy=lambda: IdlePolicy(job_finished_notice=True),
        act=lambda action, sid: acted.append((action, sid)),
        refresh=lambda: None,
        server=lambda: None,
        clock=lambda: 10_000.0,
    )
    sid = "425adf38" + "0" * 24
    verdict = IdleVerdict(IdleState.BUSY, "quiet for 5m only")
    action = IdleAction(
        "finished", sid, "Interactive Session", verdict, "", quiet_since=9_700.0, host="gpu-a100-3"
    )
    flow._finished(action)
    ((kind, title, body, buttons),) = notices.sent
    assert kind == "job_finished"
    assert title == "gpu-a100-3: the GPUs went quiet 5m ago — training finished?"
    assert body == "Interactive Session (425adf38) was busy on its GPUs for at least 10m before."
    assert [label for label, _ in buttons] == ["Connect", "Show log", "Stop"]
    for _label, press in buttons:
        press()
    assert acted == [(MenuAction.CONNECT, sid), (MenuAction.SHOW_LOG, sid), (MenuAction.STOP, sid)]

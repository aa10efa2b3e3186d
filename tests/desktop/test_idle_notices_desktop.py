"""The idle notices on a real notification daemon (dunst), from a real emulator's machines: the
idle warning names the session by its short id and says why; the opt-in "the GPUs went quiet"
notice names the machine; their buttons, pressed in dunst, run the session's actions."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from support.dunst import running_dunst
from support.emulator import EmulatorHandle

from tray_app.core.idle.flow import IdleFlow
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy, NotificationPrefs
from tray_app.core.view.actions import MenuAction
from tray_app.demo.agent import AgentMode
from tray_app.qt.notifier import Notifier

pytestmark = pytest.mark.desktop


async def _until(predicate: Any, limit_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_idle_and_gpus_quiet_notices_reach_dunst_and_their_buttons_act(
    tmp_path: Path, emulator_factory: Any
) -> None:
    emu: EmulatorHandle = emulator_factory(sessions=5)
    state = emu.state
    with state.lock:
        own = [
            t["id"]
            for t in state.tasks.values()
            if t["status"] == "in_progress" and t["user"] == state.current_user_id
        ]
    trainer, idle = own[0], own[1]  # one GPU of eight at work; a quiet 64-core host

    def advance(minutes: int) -> None:
        for _ in range(minutes * 2):
            state.advance_time(30)
            emu.agent.step()

    advance(12)  # the trainer trains...
    emu.agent.set_mode(AgentMode.IDLE, trainer)
    advance(6)  # ... and is done

    config = ServerConfig(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    with running_dunst(tmp_path / "dunst") as dunst:
        notifier = Notifier(NotificationPrefs, lambda *a: None)
        acted: list[tuple[MenuAction, str]] = []
        tasks: list[asyncio.Future[Any]] = []

        def spawn(coro: Coroutine[Any, Any, Any]) -> None:
            tasks.append(asyncio.ensure_future(coro))

        async with ClearMLClient(config) as client:
            service = SessionService(client, web_server=emu.url)
            flow = IdleFlow(
                notify=notifier,
                spawn=spawn,
                policy=lambda: IdlePolicy(
                    IdleMode.NOTIFY, window_minutes=10, job_finished_notice=True
                ),
                act=lambda action, sid: acted.append((action, sid)),
                refresh=lambda: None,
                server=lambda: service,
                clock=lambda: state.now().timestamp(),
            )
            flow.snapshot_changed(await service.snapshot())
            await asyncio.gather(*tasks)
        await notifier.wait_sent()
        assert [k for k, _t, _b in notifier.sent] == ["job_finished", "idle_warning"], notifier.sent
        await _until(lambda: dunst.displayed() == 2)

        menu = await asyncio.to_thread(dunst.press, "Show log")
        assert any("Connect" in line for line in menu)
        assert any("Keep alive 2h" in line for line in menu)
        await _until(lambda: (MenuAction.SHOW_LOG, trainer) in acted)
        await asyncio.to_thread(dunst.press, "Keep alive 2h")
        await _until(lambda: "Kept alive until" in flow.notes().get(idle, ""))

        dunst.close_all()
        await _until(lambda: len(dunst.history()) == 2)
        summaries = {e["summary"]: e["body"] for e in dunst.history()}
        warned = f"Idle session: Interactive Session ({idle[:8]})"
        assert warned in summaries
        assert "cores busy for" in summaries[warned] and "on cpu-host-" in summaries[warned]
        (quiet,) = [s for s in summaries if s.startswith("dgx-")]
        assert "the GPUs went quiet" in quiet and quiet.endswith("— training finished?")
        assert f"({trainer[:8]})" in summaries[quiet]

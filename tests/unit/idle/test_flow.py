"""Idle sessions, from a snapshot to the notice: warn with Keep alive / Stop now, per server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from support.emulator import EmulatorHandle

from tray_app.core.idle.flow import IdleFlow
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy


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
    stopped: list[str] = []
    notices = Notices()

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
        tasks.append(asyncio.ensure_future(coro))

    flow = IdleFlow(
        notify=notices,
        spawn=spawn,
        policy=lambda: IdlePolicy(mode=IdleMode.NOTIFY, window_minutes=5),
        stop_session=stopped.append,
        refresh=lambda: None,
        server=lambda: current[0],
    )
    flow.snapshot_changed(await service.snapshot())
    await asyncio.gather(*tasks)
    ((_kind, title, body, buttons),) = [n for n in notices.sent if n[0] == "idle_warning"]
    assert title.startswith("Idle session: ") and body.startswith("Idle for ")
    assert [label for label, _ in buttons] == ["Keep alive 2h", "Stop now"]
    monitor = flow.monitor
    assert monitor is not None
    idle_id = next(sid for sid, v in monitor.verdicts.items() if v.state == "idle")
    # Named as everywhere else: names repeat, the short id does not.
    assert title.endswith(f" ({idle_id[:8]})")
    assert idle_id in flow.idle_sessions()  # its menu row carries the idle mark
    assert flow.notes()[idle_id].startswith("Idle for ")
    dict(buttons)["Keep alive 2h"]()
    assert flow.notes()[idle_id].startswith("Kept alive until ")
    assert idle_id not in flow.idle_sessions()  # kept alive: no mark
    dict(buttons)["Stop now"]()
    assert stopped == [idle_id]  # the user's own Stop
    # Another server: its own monitor, nothing carried over from the last one.
    other = _service(emulator_factory(sessions=2, seed=3))
    current[0] = other
    assert flow.monitor is not monitor and flow.notes() == {}
    current[0] = None
    assert flow.monitor is None and flow.notes() == {}
    flow.snapshot_changed(None)  # nothing to check, nothing spawned
    assert len(tasks) == 1
    await service.client.aclose()
    await other.client.aclose()

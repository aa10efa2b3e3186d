"""The idle policy acting on a real emulator: warn, grace, stop; busy and others' untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from support.emulator import EmulatorHandle

from tray_app.core.idle.monitor import IdleMonitor
from tray_app.core.idle.policy import OFF_REASON, IdleState
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy
from tray_app.demo.agent import AgentMode


@dataclass
class World:
    emu: EmulatorHandle
    service: SessionService
    monitor: IdleMonitor
    policy: IdlePolicy
    idle_id: str  # own session, idle
    busy_id: str  # own session, busy
    other_id: str  # another user's session, idle

    def now(self) -> float:
        return self.emu.state.now().timestamp()

    def advance(self, minutes: float) -> None:
        """Move the emulator's clock, the agent reporting every 30 s as a real one does."""
        for _ in range(int(minutes * 2)):
            self.emu.state.advance_time(30)
            self.emu.agent.step()

    def status(self, task_id: str) -> str:
        with self.emu.state.lock:
            return str(self.emu.state.tasks[task_id]["status"])


@pytest.fixture
async def world(emulator_factory: object) -> AsyncIterator[World]:
    emu: EmulatorHandle = emulator_factory(sessions=5)  # type: ignore[operator]
    config = ServerConfig(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    client = ClearMLClient(config)
    service = SessionService(client, web_server=emu.url)
    policy = IdlePolicy(
        mode=IdleMode.NOTIFY_THEN_STOP, window_minutes=5, grace_minutes=10, cpu_threshold_cores=0.5
    )
    with emu.state.lock:
        tasks = list(emu.state.tasks.values())
        me = emu.state.current_user_id
    running = [
        t
        for t in tasks
        if t["status"] == "in_progress"
        and "interactive" in (t.get("system_tags") or [])
        and t.get("status_message") != "stopping"
    ]
    own = [t["id"] for t in running if t["user"] == me]
    other = next(t["id"] for t in running if t["user"] != me)
    idle_id, busy_id = own[1], own[0]
    emu.agent.set_mode(AgentMode.IDLE, task_id=idle_id)
    emu.agent.set_mode(AgentMode.IDLE, task_id=other)
    emu.agent.set_mode(AgentMode.NORMAL, task_id=busy_id)

    async def fake_sleep(seconds: float) -> None:
        world.advance(seconds / 60)  # the worker acts on "stopping" while we wait

    monitor = IdleMonitor(
        service, lambda: policy, lambda: world.now(), stop_wait_s=60, sleep=fake_sleep
    )
    world = World(emu, service, monitor, policy, idle_id, busy_id, other)
    world.advance(6)  # more than the 5-minute window of reports in the new modes
    yield world
    await client.aclose()


async def test_warn_then_stop_after_the_grace_period(world: World) -> None:
    snapshot = await world.service.snapshot(all_users=True)
    actions = await world.monitor.check(snapshot)
    assert [(a.kind, a.session_id) for a in actions] == [("warn", world.idle_id)]
    assert world.monitor.verdicts[world.idle_id].state == IdleState.IDLE
    assert world.monitor.verdicts[world.busy_id].state == IdleState.BUSY
    assert world.other_id not in world.monitor.verdicts  # never looked at

    world.advance(5)
    assert await world.monitor.check(await world.service.snapshot(all_users=True)) == []

    world.advance(6)  # now past the 10-minute grace
    actions = await world.monitor.check(await world.service.snapshot(all_users=True))
    assert [(a.kind, a.session_id) for a in actions] == [("stop", world.idle_id)]
    assert "grace period" in actions[0].reason

    status = await world.monitor.stop(world.idle_id, actions[0].reason)
    assert status == "stopped"
    assert world.status(world.idle_id) == "stopped"
    assert world.status(world.busy_id) == "in_progress"
    assert world.status(world.other_id) == "in_progress"


async def test_keep_alive_postpones(world: World) -> None:
    actions = await world.monitor.check(await world.service.snapshot())
    assert [a.kind for a in actions] == ["warn"]
    world.monitor.keep_alive(world.idle_id, world.now() + 30 * 60)
    assert world.monitor.kept_alive_until(world.idle_id) is not None
    world.advance(20)
    assert await world.monitor.check(await world.service.snapshot()) == []
    world.advance(12)  # keep-alive over: a fresh warning, then the grace again
    actions = await world.monitor.check(await world.service.snapshot())
    assert [a.kind for a in actions] == ["warn"]
    assert world.status(world.idle_id) == "in_progress"


async def test_notify_only_never_stops(world: World) -> None:
    world.policy.mode = IdleMode.NOTIFY
    assert [a.kind for a in await world.monitor.check(await world.service.snapshot())] == ["warn"]
    world.advance(30)
    assert await world.monitor.check(await world.service.snapshot()) == []
    assert world.status(world.idle_id) == "in_progress"


async def test_off_does_nothing_and_asks_nothing(world: World) -> None:
    world.policy.mode = IdleMode.OFF
    snapshot = await world.service.snapshot()
    before = world.emu.state.count_requests("workers.get_stats")
    assert await world.monitor.check(snapshot) == []
    assert world.emu.state.count_requests("workers.get_stats") == before
    verdict = world.monitor.verdicts[world.idle_id]  # what `list` shows: off, and where
    assert (verdict.state, verdict.reason) == (IdleState.UNKNOWN, OFF_REASON)


async def test_gpus_quiet_after_work_are_told_once(world: World) -> None:
    """Opt-in: a session busy on its GPUs for 10 minutes, quiet on them for 5, is "finished";
    told once per quiet stretch, and never while the option is off."""
    world.policy.mode = IdleMode.NOTIFY
    world.advance(12)  # the busy session (one GPU of eight at ~30 %) works on
    world.emu.agent.set_mode(AgentMode.IDLE, task_id=world.busy_id)
    world.advance(6)
    snapshot = await world.service.snapshot()
    assert "finished" not in [a.kind for a in await world.monitor.check(snapshot)]
    world.policy.job_finished_notice = True
    actions = await world.monitor.check(snapshot)
    (finished,) = [a for a in actions if a.kind == "finished"]
    assert finished.session_id == world.busy_id and finished.host.startswith("dgx-")
    assert finished.quiet_since is not None
    assert 5 * 60 <= world.now() - finished.quiet_since <= 7 * 60
    world.advance(1)
    actions = await world.monitor.check(await world.service.snapshot())
    assert "finished" not in [a.kind for a in actions]
    # Off, the GPU series are still read for the notice; verdicts say the checks are off.
    world.policy.mode = IdleMode.OFF
    await world.monitor.check(await world.service.snapshot())
    assert world.monitor.verdicts[world.busy_id].reason == OFF_REASON


async def test_one_stats_request_per_check(world: World) -> None:
    snapshot = await world.service.snapshot(all_users=True)
    before = world.emu.state.count_requests("workers.get_stats")
    await world.monitor.check(snapshot)
    assert world.emu.state.count_requests("workers.get_stats") == before + 1


async def test_activity_resets_the_warning(world: World) -> None:
    # The session that was busy goes idle, is warned about, works again, then idles again.
    world.policy.mode = IdleMode.NOTIFY
    world.emu.agent.set_mode(AgentMode.IDLE, task_id=world.busy_id)
    world.advance(6)
    actions = await world.monitor.check(await world.service.snapshot())
    assert sorted(a.session_id for a in actions) == sorted([world.idle_id, world.busy_id])
    world.emu.agent.set_mode(AgentMode.NORMAL, task_id=world.busy_id)
    world.advance(3)
    assert await world.monitor.check(await world.service.snapshot()) == []
    assert world.monitor.verdicts[world.busy_id].state == IdleState.BUSY
    world.emu.agent.set_mode(AgentMode.IDLE, task_id=world.busy_id)
    world.advance(7)
    actions = await world.monitor.check(await world.service.snapshot())
    assert [(a.kind, a.session_id) for a in actions] == [("warn", world.busy_id)]


def _worker_of(world: World, task_id: str) -> str:
    with world.emu.state.lock:
        return str(world.emu.state.tasks[task_id]["last_worker"])


async def test_worker_that_went_silent_is_never_stopped(world: World) -> None:
    # The emulator answers workers.get_stats densely, like the real server: after the agent
    # dies its buckets read 0.0. That is missing data, not idleness.
    actions = await world.monitor.check(await world.service.snapshot())
    assert [(a.kind, a.session_id) for a in actions] == [("warn", world.idle_id)]
    worker = world.emu.state.workers[_worker_of(world, world.idle_id)]
    worker.simulated = False  # its agent is gone: no more reports
    world.advance(20)  # well past the grace period
    assert await world.monitor.check(await world.service.snapshot()) == []
    verdict = world.monitor.verdicts[world.idle_id]
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "no machine metrics for 20m"  # zero-filled buckets since
    assert world.status(world.idle_id) == "in_progress"


async def test_restarted_agent_needs_a_whole_window_again(world: World) -> None:
    worker = world.emu.state.workers[_worker_of(world, world.idle_id)]
    worker.simulated = False
    world.advance(4)  # the agent restarts
    worker.simulated = True
    world.advance(3)
    assert await world.monitor.check(await world.service.snapshot()) == []
    verdict = world.monitor.verdicts[world.idle_id]
    assert verdict.state == IdleState.UNKNOWN and "m of metrics, the window is 5m" in verdict.reason
    world.advance(3)
    actions = await world.monitor.check(await world.service.snapshot())
    assert [(a.kind, a.session_id) for a in actions] == [("warn", world.idle_id)]


async def test_new_session_is_not_idle_before_a_whole_window(world: World) -> None:
    client = world.service.client
    created = await client.call(
        "tasks.create",
        {"name": "fresh", "type": "application", "system_tags": ["interactive"]},
    )
    tid = str(created["id"])
    world.emu.agent.set_mode(AgentMode.IDLE, task_id=tid)
    await client.call("tasks.enqueue", {"task": tid, "queue_name": "sessions"})
    world.advance(3)  # pulled and reporting ~0 % on a machine that may have been quiet before
    snapshot = await world.service.snapshot()
    assert snapshot.by_id(tid) is not None
    actions = await world.monitor.check(snapshot)
    assert tid not in {a.session_id for a in actions}
    verdict = world.monitor.verdicts[tid]
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason.startswith("running for 2m only")  # the first tick pulled it
    world.advance(4)
    actions = await world.monitor.check(await world.service.snapshot())
    assert ("warn", tid) in [(a.kind, a.session_id) for a in actions]


async def test_the_stop_reason_says_why(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="tray_app.core.idle.monitor")
    await world.monitor.check(await world.service.snapshot())
    world.advance(11)
    (action,) = await world.monitor.check(await world.service.snapshot())
    assert action.kind == "stop"
    assert "reporting intervals, at most 0." in action.reason and "cores busy" in action.reason
    await world.monitor.stop(world.idle_id, action.reason)
    assert any(
        "stopping session" in r.getMessage() and "reporting intervals" in r.getMessage()
        for r in caplog.records
    )


async def test_stats_requests_go_a_few_at_a_time() -> None:
    """35 running sessions need 4 requests (10 workers each); a burst of them would queue the
    next refresh behind every aggregation, so at most STATS_REQUESTS_IN_FLIGHT are in flight."""
    import asyncio
    from datetime import UTC, datetime
    from typing import Any

    from tray_app.core.idle.monitor import STATS_REQUESTS_IN_FLIGHT, IdleMonitor
    from tray_app.core.server.models import Session, SessionState, Snapshot
    from tray_app.core.settings.settings import IdleMode, IdlePolicy

    in_flight, most, asked = 0, 0, []

    class Client:
        async def call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            asked.append(len(body["worker_ids"]))
            await asyncio.sleep(0.01)
            in_flight -= 1
            return {"workers": []}

    class Service:
        client = Client()

    sessions = tuple(
        Session(
            id=f"{i:032x}",
            name="s",
            status="in_progress",
            state=SessionState.RUNNING,
            worker_id=f"w{i}",
        )
        for i in range(35)
    )
    snapshot = Snapshot(sessions=sessions, fetched_at=datetime.now(UTC))
    monitor = IdleMonitor(Service(), lambda: IdlePolicy(mode=IdleMode.NOTIFY))  # type: ignore[arg-type]
    await monitor.check(snapshot)
    assert sorted(asked) == [5, 10, 10, 10]
    assert most == STATS_REQUESTS_IN_FLIGHT == 2

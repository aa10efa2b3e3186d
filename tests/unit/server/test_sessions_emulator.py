"""SessionService against the in-process emulator: counts, fields, secrets, actions.

Expected values are read from the emulator's own state, never hard-coded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import ClearMLError, ClearMLOutcomeUnknown, ClearMLRequestError
from tray_app.core.server.models import SessionState, Snapshot, snapshot_to_json
from tray_app.core.server.sessions import WORKERS_MAX_AGE_S, SessionService
from tray_app.demo import SECRET_MARKER, EmulatorState
from tray_app.demo.bll.workers import register_worker
from tray_app.demo.state import FaultKind
from tray_app.demo.values import md5_hex

WEB = "http://127.0.0.1:18080"


@dataclass
class Exchange:
    endpoint: str
    request: dict[str, Any]
    status: int
    body: bytes


class Recorder(httpx.AsyncBaseTransport):
    """Wraps a transport; records every exchange (endpoint, request JSON, raw response)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        rewrite: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.inner = inner
        self.rewrite = rewrite
        self.exchanges: list[Exchange] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.rsplit("/", 1)[-1]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
        finally:
            self.in_flight -= 1
        if self.rewrite is not None and response.status_code == 200:
            doc = self.rewrite(endpoint, json.loads(body))
            body = json.dumps(doc).encode()
        self.exchanges.append(
            Exchange(endpoint, json.loads(request.content or b"{}"), response.status_code, body)
        )
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    def count(self, endpoint: str | None = None) -> int:
        return sum(1 for e in self.exchanges if endpoint is None or e.endpoint == endpoint)

    def clear(self) -> None:
        self.exchanges.clear()


@dataclass
class Rig:
    state: EmulatorState
    recorder: Recorder
    client: ClearMLClient
    service: SessionService
    agent: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
async def rig_factory(asgi_emulator_factory) -> AsyncIterator[Callable[..., Rig]]:
    clients: list[ClearMLClient] = []

    def make(sessions: int = 13, rewrite=None, **kw: Any) -> Rig:
        emu = asgi_emulator_factory(sessions=sessions, **kw)
        recorder = Recorder(emu.transport, rewrite)
        cfg = ServerConfig(emu.url, WEB, "", emu.access_key, emu.secret_key)
        client = ClearMLClient(cfg, transport=recorder)
        clients.append(client)
        return Rig(emu.state, recorder, client, SessionService(client), emu.agent)

    yield make
    for client in clients:
        await client.aclose()


# -- expectations from the emulator's state ----------------------------------------------------


def live_ids(state: EmulatorState, user_id: str | None) -> set[str]:
    return {
        t["id"]
        for t in state.tasks.values()
        if "interactive" in (t.get("system_tags") or [])
        and t["status"] in ("queued", "in_progress")
        and (user_id is None or t["user"] == user_id)
    }


def prop(task: dict[str, Any], name: str) -> str | None:
    item = ((task.get("hyperparams") or {}).get("properties") or {}).get(name)
    return item["value"] if item else None


def metric(task: dict[str, Any], group: str, variant: str) -> float | None:
    entry = ((task.get("last_metrics") or {}).get(md5_hex(group)) or {}).get(md5_hex(variant))
    return entry["value"] if entry else None


def assert_matches_state(snapshot: Snapshot, state: EmulatorState) -> None:
    workers_by_task = {w.task_id: w for w in state.workers.values() if w.task_id}
    for s in snapshot.sessions:
        task = state.tasks[s.id]
        runtime = task.get("runtime") or {}
        running = task["status"] == "in_progress"
        assert s.name == task["name"]
        assert s.status == task["status"]
        assert s.status_message == (task.get("status_message") or "")
        assert s.creator_id == task["user"]
        assert s.creator_name == state.users[task["user"]]["name"]
        assert s.is_own == (task["user"] == state.current_user_id)
        project = task.get("project")
        assert s.project_name == (state.projects[project]["name"] if project else "")
        queue_id = (task.get("execution") or {}).get("queue")
        assert s.queue_id == (queue_id or "")
        assert s.queue_name == (state.queues[queue_id]["name"] if queue_id else "")
        assert s.created is not None and s.created.isoformat() == task["created"]
        port = prop(task, "internal_ssh_port")
        assert s.ssh_port == (int(port) if port else None)
        assert s.public_address == (prop(task, "external_address") or "")
        jupyter = prop(task, "jupyter_port")
        assert s.jupyter_port == (int(jupyter) if jupyter else None)
        if task["status"] == "queued":
            assert s.state is SessionState.QUEUED
        elif task.get("status_message") == "stopping":
            assert s.state is SessionState.STOPPING
        else:
            assert s.state is (SessionState.RUNNING if port else SessionState.STARTING)
        assert s.cpu_cores == runtime.get("cpu_cores")
        assert s.ram_total_gb == runtime.get("memory_gb")
        assert s.gpu_count == runtime.get("gpu_count")
        assert s.gpu_type == runtime.get("gpu_type", "")
        if running:
            assert s.started is not None and s.started.isoformat() == task["started"]
            worker = workers_by_task.get(s.id)
            assert s.private_ip == (worker.ip if worker else "")
            assert s.worker_id == (worker.id if worker else task.get("last_worker", ""))
            assert s.cpu_percent == metric(task, ":monitor:machine", "cpu_usage")
            assert s.ram_used_gb == metric(task, ":monitor:machine", "memory_used_gb")
            gpus = [
                metric(task, ":monitor:gpu", f"gpu_{n}_utilization")
                for n in range(runtime.get("gpu_count") or 0)
            ]
            gpus = [g for g in gpus if g is not None]
            if gpus:
                assert s.gpu_percent == pytest.approx(sum(gpus) / len(gpus))
            else:
                assert s.gpu_percent is None
        assert s.web_url == f"{WEB}/projects/{project or '*'}/experiments/{s.id}/output/execution"


# -- snapshot ----------------------------------------------------------------------------------

SIZES = (0, 1, 50, 1000)


async def test_snapshot_request_count_is_the_same_for_0_1_50_and_1000_sessions(rig_factory):
    first: dict[int, int] = {}
    later: dict[int, int] = {}
    found: dict[int, int] = {}
    for size in SIZES:
        rig = rig_factory(sessions=size)
        snap = await rig.service.snapshot()
        first[size] = rig.recorder.count()
        rig.recorder.clear()
        await rig.service.snapshot()
        later[size] = rig.recorder.count()
        found[size] = len(snap.sessions)
        assert found[size] == len(live_ids(rig.state, rig.state.current_user_id))
    assert found[0] == 0 and found[1000] > 300  # the sizes really differ
    assert len(set(first.values())) == 1, first
    assert len(set(later.values())) == 1, later
    # The first snapshot logs in and asks tasks.get_all_ex (two pages, to learn the server's
    # page cap) + workers.get_all; later ones reuse the workers (see the next test) and ask for
    # the tasks alone.
    assert later[0] == 1
    assert first[0] == later[0] + 3


async def test_workers_are_reused_until_a_session_names_an_unknown_one_or_they_age(rig_factory):
    now = [1000.0]
    rig = rig_factory(sessions=13)
    service = SessionService(rig.client, clock=lambda: now[0])
    await service.snapshot()
    assert rig.recorder.count("workers.get_all") == 1
    await service.snapshot()
    assert rig.recorder.count("workers.get_all") == 1  # reused
    # A session moves to a machine the cached list does not have: asked again, same refresh.
    task = next(
        t
        for t in rig.state.tasks.values()
        if t["id"] in live_ids(rig.state, None)
        and t["status"] == "in_progress"
        and t["user"] == rig.state.current_user_id
    )
    with rig.state.lock:
        old = rig.state.workers[task["last_worker"]]
        old.task_id = None
        worker = register_worker(rig.state, "new-box:gpu0", task["user"], "127.0.9.9")
        worker.task_id = task["id"]
        task["last_worker"] = worker.id
    snap = await service.snapshot()
    assert rig.recorder.count("workers.get_all") == 2
    moved = next(s for s in snap.sessions if s.id == task["id"])
    assert (moved.worker_id, moved.private_ip) == ("new-box:gpu0", "127.0.9.9")
    await service.snapshot()
    assert rig.recorder.count("workers.get_all") == 2
    now[0] += WORKERS_MAX_AGE_S  # too old: asked again, alongside the tasks
    await service.snapshot()
    assert rig.recorder.count("workers.get_all") == 3


@pytest.mark.parametrize("size", SIZES)
async def test_snapshot_fields_match_the_emulator_state(rig_factory, size):
    rig = rig_factory(sessions=size)
    snap = await rig.service.snapshot()
    assert {s.id for s in snap.sessions} == live_ids(rig.state, rig.state.current_user_id)
    assert all(s.is_own for s in snap.sessions)
    assert snap.user_id == rig.state.current_user_id
    assert snap.user_name == rig.state.users[rig.state.current_user_id]["name"]
    assert_matches_state(snap, rig.state)


async def test_all_users_snapshot_has_everyones_sessions_own_first(rig_factory):
    rig = rig_factory(sessions=40)
    snap = await rig.service.snapshot(all_users=True)
    assert {s.id for s in snap.sessions} == live_ids(rig.state, None)
    assert snap.others, "the seed has other users' live sessions"
    flags = [s.is_own for s in snap.sessions]
    assert flags == sorted(flags, reverse=True)
    assert_matches_state(snap, rig.state)


async def test_more_sessions_than_a_page_are_paged_not_truncated(rig_factory):
    rig = rig_factory(sessions=1000)
    expected = live_ids(rig.state, None)
    assert len(expected) > 500
    snap = await rig.service.snapshot(all_users=True)
    assert {s.id for s in snap.sessions} == expected
    assert len(snap.sessions) == len(expected)
    assert rig.recorder.count("tasks.get_all_ex") == 2


def hold_until(inner: httpx.AsyncBaseTransport, endpoint: str, count: int) -> Any:
    """A transport that holds `endpoint` requests until `count` of them are in flight together
    (a sequential client never gets there and times out)."""
    arrived = asyncio.Event()

    class Hold(httpx.AsyncBaseTransport):
        waiting = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith(endpoint):
                Hold.waiting += 1
                if Hold.waiting >= count:
                    arrived.set()
                await asyncio.wait_for(arrived.wait(), timeout=5)
            return await inner.handle_async_request(request)

    return Hold()


def add_live_copies(state: EmulatorState, count: int, user_id: str) -> None:
    """`count` more live sessions of `user_id` (copies of a seeded one, new ids)."""
    template = next(
        t
        for t in state.tasks.values()
        if t["status"] == "in_progress" and "interactive" in (t.get("system_tags") or [])
    )
    with state.lock:
        for _ in range(count):
            task = json.loads(json.dumps(template))
            task["id"] = state.new_id()
            task["user"] = user_id
            state.tasks[task["id"]] = task


async def test_known_pages_are_fetched_concurrently_and_match_the_sequential_result(
    rig_factory,
):
    rig = rig_factory(sessions=1000)
    first = await rig.service.snapshot(all_users=True)  # pages one after the other
    assert rig.recorder.count("tasks.get_all_ex") == 2
    rig.recorder.clear()
    rig.recorder.inner = hold_until(rig.recorder.inner, "tasks.get_all_ex", 2)
    second = await rig.service.snapshot(all_users=True)
    assert rig.recorder.count("tasks.get_all_ex") == 2
    assert rig.recorder.count() == 2  # both pages, nothing else (the workers are reused)
    assert second.sessions == first.sessions
    assert {s.id for s in second.sessions} == live_ids(rig.state, None)


async def test_a_result_that_grew_past_a_page_is_still_fetched_in_full(rig_factory):
    rig = rig_factory(sessions=13)
    await rig.service.snapshot()
    me = rig.state.current_user_id
    add_live_copies(rig.state, 600, me)
    rig.recorder.clear()
    grown = await rig.service.snapshot()
    assert {s.id for s in grown.sessions} == live_ids(rig.state, me)
    assert len(grown.sessions) > 600
    pages = [e.request["page"] for e in rig.recorder.exchanges if e.endpoint == "tasks.get_all_ex"]
    assert pages == [0, 1]


async def test_a_result_that_shrank_goes_back_to_one_page(rig_factory):
    rig = rig_factory(sessions=13)
    me = rig.state.current_user_id
    add_live_copies(rig.state, 600, me)
    await rig.service.snapshot()
    with rig.state.lock:
        for task in list(rig.state.tasks.values()):
            if task["user"] == me and task["status"] == "in_progress":
                task["status"] = "stopped"
    rig.recorder.clear()
    shrunk = await rig.service.snapshot()  # still asks for the two pages it needed last time
    assert {s.id for s in shrunk.sessions} == live_ids(rig.state, me)
    assert rig.recorder.count("tasks.get_all_ex") == 2
    rig.recorder.clear()
    await rig.service.snapshot()
    assert rig.recorder.count("tasks.get_all_ex") == 1


async def test_snapshot_requests_are_issued_concurrently(rig_factory):
    rig = rig_factory(sessions=5)
    await rig.client.login()
    gate = asyncio.Event()
    inner = rig.recorder.inner

    class Gate(httpx.AsyncBaseTransport):
        """Holds every request until two are in flight at once."""

        waiting = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            Gate.waiting += 1
            if Gate.waiting >= 2:
                gate.set()
            await asyncio.wait_for(gate.wait(), timeout=5)
            return await inner.handle_async_request(request)

    rig.recorder.inner = Gate()
    snap = await rig.service.snapshot()
    assert snap.sessions
    assert rig.recorder.max_in_flight >= 2


async def test_snapshot_never_fetches_secrets(rig_factory):
    rig = rig_factory(sessions=50)
    # The seed really holds secrets, so this test can fail.
    assert any(SECRET_MARKER in json.dumps(t.get("runtime")) for t in rig.state.tasks.values())
    snap = await rig.service.snapshot(all_users=True)
    await rig.service.snapshot()
    for exchange in rig.recorder.exchanges:
        assert SECRET_MARKER.encode() not in exchange.body, exchange.endpoint
        fields = exchange.request.get("only_fields") or []
        assert "runtime" not in fields
        assert "hyperparams" not in fields
        assert not [f for f in fields if "_user_" in f or "password" in f or "token" in f]
    assert SECRET_MARKER not in repr(snap)
    assert SECRET_MARKER not in json.dumps(snapshot_to_json(snap))


async def test_names_fall_back_to_cached_lookups_when_the_server_does_not_join(rig_factory):
    def strip_joins(endpoint: str, doc: dict[str, Any]) -> dict[str, Any]:
        if endpoint == "tasks.get_all_ex":
            for task in doc["data"].get("tasks", []):
                for key in ("user", "project"):
                    if isinstance(task.get(key), dict):
                        task[key] = task[key]["id"]
                queue = (task.get("execution") or {}).get("queue")
                if isinstance(queue, dict):
                    task["execution"]["queue"] = queue["id"]
        return doc

    rig = rig_factory(sessions=40, rewrite=strip_joins)
    snap = await rig.service.snapshot(all_users=True)
    assert_matches_state(snap, rig.state)
    lookups = ("users.get_all_ex", "projects.get_all", "queues.get_all")
    assert [rig.recorder.count(e) for e in lookups] == [1, 1, 1]
    rig.recorder.clear()
    snap = await rig.service.snapshot(all_users=True)
    assert_matches_state(snap, rig.state)
    assert [rig.recorder.count(e) for e in lookups] == [0, 0, 0]  # cached


async def test_current_user_comes_from_the_token(rig_factory):
    rig = rig_factory(sessions=1)
    user = await rig.service.current_user()
    assert user.id == rig.state.current_user_id
    assert user.name == rig.state.users[user.id]["name"]
    assert rig.recorder.count("users.get_current_user") == 0


# -- actions -----------------------------------------------------------------------------------


def first_session(snap: Snapshot, state: SessionState):
    return next(s for s in snap.sessions if s.state is state)


async def test_stop_of_a_queued_session_stops_it_at_once(rig_factory):
    rig = rig_factory(sessions=13)
    snap = await rig.service.snapshot()
    queued = first_session(snap, SessionState.QUEUED)
    assert await rig.service.stop(queued.id) == "stopped"
    assert rig.state.tasks[queued.id]["status"] == "stopped"
    assert rig.recorder.count("tasks.stopped") == 0
    assert not any(e["task"] == queued.id for q in rig.state.queues.values() for e in q["entries"])


async def test_forced_stop_of_a_queued_session_never_runs_it(rig_factory):
    rig = rig_factory(sessions=13)
    queued = first_session(await rig.service.snapshot(), SessionState.QUEUED)
    assert await rig.service.stop(queued.id, force=True) == "stopped"
    assert not any(e["task"] == queued.id for q in rig.state.queues.values() for e in q["entries"])
    rig.agent.step()  # an agent polling the queues does not pick it up
    assert rig.state.tasks[queued.id]["status"] == "stopped"


async def test_stop_of_a_running_session_asks_its_live_worker(rig_factory):
    rig = rig_factory(sessions=13)
    snap = await rig.service.snapshot()
    running = first_session(snap, SessionState.RUNNING)
    assert await rig.service.stop(running.id) == "in_progress"
    assert rig.recorder.count("tasks.stopped") == 0
    after = (await rig.service.snapshot()).by_id(running.id)
    assert after is not None and after.state is SessionState.STOPPING
    rig.agent.step()  # the agent sees "stopping" and stops the process
    assert rig.state.tasks[running.id]["status"] == "stopped"
    assert (await rig.service.snapshot()).by_id(running.id) is None


async def test_second_stop_of_a_stopping_session_forces_it(rig_factory):
    rig = rig_factory(sessions=13)
    snap = await rig.service.snapshot()
    stopping = first_session(snap, SessionState.STOPPING)  # its agent never acted
    assert await rig.service.stop(stopping.id) == "stopped"
    assert rig.state.tasks[stopping.id]["status"] == "stopped"
    assert rig.recorder.count("tasks.stopped") == 1


async def test_stop_of_a_session_whose_worker_is_gone_stops_it(rig_factory):
    rig = rig_factory(sessions=13)
    snap = await rig.service.snapshot()
    running = first_session(snap, SessionState.RUNNING)
    rig.state.workers.pop(running.worker_id)  # the machine died
    assert await rig.service.stop(running.id) == "stopped"
    assert rig.state.tasks[running.id]["status"] == "stopped"


async def test_stop_of_an_unknown_session_is_a_request_error(rig_factory):
    rig = rig_factory(sessions=1)
    with pytest.raises(ClearMLRequestError):
        await rig.service.stop("0" * 32)


async def test_delete_stops_a_running_session_then_deletes_it(rig_factory):
    rig = rig_factory(sessions=13)
    snap = await rig.service.snapshot()
    running = first_session(snap, SessionState.RUNNING)
    assert await rig.service.delete(running.id) is True
    assert running.id not in rig.state.tasks
    assert rig.recorder.count("tasks.stop") == 1
    stop_at = next(i for i, e in enumerate(rig.recorder.exchanges) if e.endpoint == "tasks.stop")
    delete_at = next(
        i for i, e in enumerate(rig.recorder.exchanges) if e.endpoint == "tasks.delete"
    )
    assert stop_at < delete_at
    assert (await rig.service.snapshot()).by_id(running.id) is None


async def no_pause(seconds: float) -> None:
    return None


def faults_on(rig: Rig, endpoint: str, *kinds: FaultKind) -> None:
    rig.state.faults.only_endpoints = frozenset({endpoint})
    for kind in kinds:
        rig.state.faults.fail_next(kind)


async def test_a_delete_that_went_through_behind_a_504_is_a_success(rig_factory):
    """The gateway timed out but the server deleted the task: no blind retry, no "invalid
    task id" for a session that is gone."""
    rig = rig_factory(sessions=13)
    stopped = next(
        t["id"] for t in rig.state.tasks.values() if t["status"] not in ("queued", "in_progress")
    )
    faults_on(rig, "tasks.delete", FaultKind.GATEWAY_TIMEOUT_AFTER)
    assert await rig.service.delete(stopped) is True
    assert stopped not in rig.state.tasks
    assert rig.recorder.count("tasks.delete") == 1


async def test_a_delete_the_gateway_never_passed_on_is_sent_again_after_a_look(rig_factory):
    rig = rig_factory(sessions=13)
    service = SessionService(rig.client, pause=no_pause)
    stopped = next(
        t["id"] for t in rig.state.tasks.values() if t["status"] not in ("queued", "in_progress")
    )
    faults_on(rig, "tasks.delete", FaultKind.BAD_GATEWAY)
    assert await service.delete(stopped) is True
    assert stopped not in rig.state.tasks
    assert rig.recorder.count("tasks.delete") == 2


async def test_a_stop_that_went_through_behind_a_504_is_not_forced(rig_factory):
    rig = rig_factory(sessions=13)
    queued = first_session(await rig.service.snapshot(), SessionState.QUEUED)
    faults_on(rig, "tasks.stop", FaultKind.GATEWAY_TIMEOUT_AFTER)
    assert await rig.service.stop(queued.id) == "stopped"
    assert rig.recorder.count("tasks.stop") == 1
    assert rig.recorder.count("tasks.stopped") == 0


async def test_a_change_whose_outcome_stays_unknown_says_so(rig_factory):
    rig = rig_factory(sessions=13)
    service = SessionService(rig.client, pause=no_pause)
    stopped = next(
        t["id"] for t in rig.state.tasks.values() if t["status"] not in ("queued", "in_progress")
    )
    faults_on(rig, "tasks.delete", *[FaultKind.BAD_GATEWAY] * 3)
    with pytest.raises(ClearMLOutcomeUnknown, match="may or may not have been done"):
        await service.delete(stopped)
    assert rig.recorder.count("tasks.delete") == 3


async def test_ssh_password_takes_only_the_row_of_the_session_asked_for(rig_factory):
    """A server that ignores the id filter must not hand another session's password over."""

    def ignore_id_filter(endpoint: str, doc: dict[str, Any]) -> dict[str, Any]:
        if endpoint == "tasks.get_all_ex":
            tasks = doc["data"].get("tasks") or []
            doc["data"]["tasks"] = [{**t, "id": "f" * 32} for t in tasks]
        return doc

    rig = rig_factory(sessions=13, rewrite=ignore_id_filter)
    running = next(
        t for t in rig.state.tasks.values() if (t.get("runtime") or {}).get("_ssh_password")
    )
    assert await rig.service.ssh_password(running["id"]) == ""


async def test_ssh_password_of_a_session_is_its_own(rig_factory):
    rig = rig_factory(sessions=13)
    running = next(
        t for t in rig.state.tasks.values() if (t.get("runtime") or {}).get("_ssh_password")
    )
    expected = running["runtime"]["_ssh_password"]
    assert await rig.service.ssh_password(running["id"]) == expected


async def test_a_server_without_vaults_does_not_pin_host_keys(rig_factory):
    rig = rig_factory(sessions=1)
    assert await rig.service.host_keys_pinned() is False  # the open-source server: 404


@pytest.mark.parametrize("kind", [FaultKind.ERROR_500, FaultKind.BAD_GATEWAY])
async def test_a_failed_vault_lookup_is_not_read_as_not_pinned(rig_factory, kind):
    """Unknown means "don't hand the password over", not "not pinned"."""
    rig = rig_factory(sessions=1)
    faults_on(rig, "users.get_vaults", *[kind] * 5)
    with pytest.raises(ClearMLError):
        await rig.service.host_keys_pinned()


async def test_console_log_is_newest_first_limited_and_masks_passwords(rig_factory):
    rig = rig_factory(sessions=13)
    snap = await rig.service.snapshot()
    running = first_session(snap, SessionState.RUNNING)
    events = rig.state.logs[running.id]
    assert any(SECRET_MARKER in e["msg"] for e in events)
    lines = await rig.service.console_log(running.id, limit=3)
    newest = sorted(events, key=lambda e: e["timestamp"], reverse=True)[:3]
    assert [int(line.timestamp.timestamp() * 1000) for line in lines] == [
        e["timestamp"] for e in newest
    ]
    everything = await rig.service.console_log(running.id)
    assert len(everything) == len(events)
    assert not any(SECRET_MARKER in line.msg for line in everything)
    assert any("LOGIN u:root p:***" in line.msg for line in everything)
    raw = await rig.service.console_log(running.id, redact_secrets=False)
    assert any(SECRET_MARKER in line.msg for line in raw)


async def test_queues_report_free_and_total_workers_and_pending_entries(rig_factory):
    rig = rig_factory(sessions=13)
    queues = await rig.service.queues()
    state = rig.state
    expected = {q["id"]: q for q in state.queues.values() if "internal" not in q["system_tags"]}
    assert {q.id for q in queues} == set(expected)
    for info in queues:
        doc = expected[info.id]
        serving = [w for w in state.workers.values() if info.id in w.queue_ids]
        assert info.name == doc["name"]
        assert info.total_workers == len(serving)
        assert info.free_workers == len([w for w in serving if not w.task_id])
        assert info.pending == len(doc["entries"])
        assert info.interactive == ("interactive" in doc["system_tags"])
    flags = [q.interactive for q in queues]
    assert flags == sorted(flags, reverse=True)


async def test_a_new_session_moves_from_queued_to_starting_to_running(rig_factory):
    rig = rig_factory(sessions=0)
    created = await rig.client.call(
        "tasks.create",
        {"name": "Interactive Session", "type": "application", "system_tags": ["interactive"]},
    )
    task_id = created["id"]
    await rig.client.call("tasks.enqueue", {"task": task_id, "queue_name": "sessions"})
    states = []
    for _ in range(3):
        session = (await rig.service.snapshot()).by_id(task_id)
        assert session is not None
        states.append(session.state)
        rig.agent.step()
    assert states == [SessionState.QUEUED, SessionState.STARTING, SessionState.RUNNING]
    final = (await rig.service.snapshot()).by_id(task_id)
    assert final is not None and final.queue_name == "sessions"
    snap = await rig.service.snapshot()
    assert_matches_state(snap, rig.state)

"""A simulated clearml-agent cluster: pulls queued sessions, runs them, reports machine stats.

It acts through the same state-machine code the HTTP handlers use (`bll/`). Drive it with `step()`
(deterministic, for tests) or let `run(tick)` call `step()` periodically in the server's loop.

Tested in tests/unit/demo/test_emulator_agent.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from tray_app.demo.bll.events import add_log
from tray_app.demo.bll.queues import queue_by_name
from tray_app.demo.bll.tasks import set_status
from tray_app.demo.bll.workers import register_worker, worker_report
from tray_app.demo.machines import (
    QUEUE_GPU,
    REPORT_INTERVAL_S,
    SHAPES,
    Shape,
    Work,
    WorkerMachine,
    agent_stats,
    load_by_host,
    runtime_of,
    sdk_metrics,
    work,
)
from tray_app.demo.seed import (
    SessionPorts,
    apply_metrics,
    external_address,
    monitor_has_reported,
    move_ports,
    publish_ports,
    worker_ip,
)
from tray_app.demo.state import EmulatorState, Worker

log = logging.getLogger(__name__)

# New machines the agent brings up are numbered from here (seeded ones are below).
_FIRST_NEW_MACHINE = 2000


class AgentMode(StrEnum):
    NORMAL = "normal"  # running sessions work (seeded idle ones stay idle unless set NORMAL)
    FAIL = "fail"  # sessions fail during setup
    HANG = "hang"  # queued sessions are never pulled
    NO_PORTS = "no_ports"  # sessions start but never publish their ports
    IDLE = "idle"  # running sessions do nothing (a few hundredths of a core, GPUs at 0 %)


@dataclass(slots=True)
class StepReport:
    pulled: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reported: int = 0


class SimulatedAgent:
    """The agent(s) serving the emulator's queues.

    `mode` applies to every task; `task_modes[task_id]` overrides it for one task. By default
    it serves the queues its workers claim (not those tagged `internal`), and starts another
    machine for such a queue when all of its workers are busy.
    """

    def __init__(
        self,
        state: EmulatorState,
        *,
        queues: Iterable[str] | None = None,
        mode: AgentMode | str = AgentMode.NORMAL,
        seed: int = 0,
    ) -> None:
        self.state = state
        self.queue_names = list(queues) if queues is not None else None
        self.mode = AgentMode(mode)
        self.task_modes: dict[str, AgentMode] = {}
        self.seed = seed
        self.steps = 0
        self._machines = 0
        self._task: asyncio.Task[None] | None = None
        # Set (use_port_picker) when sessions get real SSH endpoints: free ports on the
        # session's address, so that two emulators on one machine never fight over a port.
        self.port_picker: Callable[[str], SessionPorts] | None = None

    def use_port_picker(self, picker: Callable[[str], SessionPorts]) -> None:
        """Publish ports from `picker` from now on, and move the running sessions that already
        published the usual fixed ones (the seeded ones) to ports `picker` gives."""
        with self.state.lock:
            self.port_picker = picker
            for task in self.state.tasks.values():
                if task.get("status") != "in_progress":
                    continue
                props = (task.get("hyperparams") or {}).get("properties") or {}
                address = str((props.get("external_address") or {}).get("value") or "")
                if not address or not (props.get("internal_ssh_port") or {}).get("value"):
                    continue
                try:
                    ports = picker(address)
                except OSError:  # the address is not on this machine: the endpoint will say so
                    continue
                move_ports(self.state, task, address, ports)

    def set_mode(self, mode: AgentMode | str, task_id: str | None = None) -> None:
        with self.state.lock:
            if task_id is None:
                self.mode = AgentMode(mode)
            else:
                self.task_modes[task_id] = AgentMode(mode)

    def run_on(
        self,
        task_id: str,
        shape: Shape | str,
        *,
        host: str = "",
        gpu_indexes: tuple[int, ...] | None = None,
        gpu_reads_for_s: float | None = None,
    ) -> Worker:
        """Move a running session onto a new machine of `shape` (a worker of its own there):
        `host` names a machine other workers may share, `gpu_indexes` are its GPUs this worker
        watches, and after `gpu_reads_for_s` the worker's agent stops reading its GPUs."""
        state = self.state
        with state.lock:
            shape = SHAPES[shape] if isinstance(shape, str) else shape
            task = state.tasks[task_id]
            k = _FIRST_NEW_MACHINE + self._machines
            self._machines += 1
            until = None
            if gpu_reads_for_s is not None:
                until = int(state.now().timestamp() * 1000 + gpu_reads_for_s * 1000)
            machine = WorkerMachine(
                shape,
                f"clearml-id-{task_id}" if shape.pod else host or f"{shape.prefix}-{k}",
                tuple(range(shape.gpus)) if gpu_indexes is None else gpu_indexes,
                until,
            )
            for worker in self._simulated_workers():
                if worker.task_id == task_id:
                    worker.task_id = None
            queue = queue_by_name(state, shape.queue)
            worker = register_worker(
                state,
                machine.worker_id(k, task_id),
                state.current_user_id,
                worker_ip(k),
                queue_ids=[str(queue["id"])] if queue is not None and not shape.pod else [],
                simulated=True,
                hostname=machine.host,
            )
            worker.machine = machine
            worker.external_address = external_address(k)
            worker.task_id = task_id
            worker.last_report_time = None  # reports at the next step
            task["last_worker"] = worker.id
            task.setdefault("runtime", {}).update(runtime_of(machine))
            return worker

    def mode_for(self, task_id: str) -> AgentMode:
        return self.task_modes.get(task_id, self.mode)

    def _watched_queue_ids(self) -> list[str]:
        """The queues it pulls from: those named, else those its workers claim (as a real
        agent serves only its `--queue`s): a queue no worker serves keeps its sessions waiting,
        as on a real server, instead of starting them."""
        out = []
        claimed = {qid for w in self._simulated_workers() for qid in w.queue_ids}
        for q in self.state.queues.values():
            if self.queue_names is not None:
                if q["name"] in self.queue_names:
                    out.append(q["id"])
            elif q["id"] in claimed and "internal" not in q.get("system_tags", []):
                out.append(q["id"])
        return out

    # --- one tick --------------------------------------------------------------------------------
    def step(self) -> StepReport:
        """Advance the simulation by one tick (thread-safe; deterministic for a given state)."""
        state = self.state
        report = StepReport()
        with state.lock:
            self.steps += 1
            rng = random.Random(f"{self.seed}:{self.steps}")
            self._finish_or_fail(report)
            self._publish(report)
            self._pull(report)
            self._report_stats(rng, report)
        return report

    def _simulated_workers(self) -> list[Worker]:
        return [w for w in self.state.workers.values() if w.simulated]

    def _finish_or_fail(self, report: StepReport) -> None:
        state = self.state
        for worker in self._simulated_workers():
            if not worker.task_id:
                continue
            task = state.tasks.get(worker.task_id)
            if task is None or task["status"] != "in_progress":
                worker.task_id = None  # deleted or stopped by force: the process is gone
                continue
            if task.get("status_message") == "stopping":
                add_log(state, task["id"], "User aborted: stopping task", worker=worker.id)
                set_status(
                    state,
                    task,
                    "stopped",
                    status_reason=task.get("status_reason") or "abort request",
                    status_message="Stopped by agent",
                )
                worker.task_id = None
                report.stopped.append(task["id"])
                continue
            if self.mode_for(task["id"]) is AgentMode.FAIL:
                add_log(
                    state,
                    task["id"],
                    "Error: failed starting the interactive session (exit code 1)",
                    level="error",
                    worker=worker.id,
                )
                set_status(state, task, "failed", status_reason="Script error")
                worker.task_id = None
                report.failed.append(task["id"])

    def _publish(self, report: StepReport) -> None:
        state = self.state
        for worker in self._simulated_workers():
            task = state.tasks.get(worker.task_id or "")
            if task is None or task["status"] != "in_progress":
                continue
            if self.mode_for(task["id"]) in (AgentMode.NO_PORTS, AgentMode.HANG):
                continue
            props = (task.get("hyperparams") or {}).get("properties") or {}
            if (props.get("internal_ssh_port") or {}).get("value"):
                continue
            address = worker.external_address or worker.ip
            try:
                ports = self.port_picker(address) if self.port_picker else SessionPorts()
            except OSError:  # the address is not on this machine: the endpoint will say so
                ports = SessionPorts()
            publish_ports(state, task, address, worker.hostname, ports)
            report.published.append(task["id"])

    def _pull(self, report: StepReport) -> None:
        state = self.state
        for queue_id in self._watched_queue_ids():
            queue = state.queues[queue_id]
            for entry in list(queue["entries"]):
                task = state.tasks.get(entry["task"])
                if task is None:
                    continue
                if self.mode_for(task["id"]) is AgentMode.HANG:
                    continue
                worker = self._idle_worker(queue)
                assert worker.machine is not None
                set_status(state, task, "in_progress", status_reason="worker started")
                task["last_worker"] = worker.id
                task["last_worker_report"] = state.now_iso()
                worker.task_id = task["id"]
                worker.idle_work = False
                runtime = task.setdefault("runtime", {})
                runtime.update(runtime_of(worker.machine))
                for line in (
                    f"task {task['id']} pulled from queue {queue['name']} by worker {worker.id}",
                    f"Running task id [{task['id']}]:",
                    "Starting Task Execution:",
                    "Installing requirements: clearml>=1.1.5 jupyterlab code-server",
                ):
                    add_log(state, task["id"], line, worker=worker.id)
                report.pulled.append(task["id"])

    def _shape(self, queue: dict[str, object]) -> Shape:
        return SHAPES["a100" if queue.get("name") == QUEUE_GPU else "rtx4090"]

    def _idle_worker(self, queue: dict[str, object]) -> Worker:
        state = self.state
        for worker in self._simulated_workers():
            if not worker.task_id and queue["id"] in worker.queue_ids and worker.machine:
                return worker
        shape = self._shape(queue)
        k = _FIRST_NEW_MACHINE + self._machines
        self._machines += 1
        machine = WorkerMachine(shape, f"{shape.prefix}-{k}", tuple(range(shape.gpus)))
        worker = register_worker(
            state,
            machine.worker_id(k),
            state.current_user_id,
            worker_ip(k),
            queue_ids=[str(queue["id"])],
            simulated=True,
            hostname=machine.host,
        )
        worker.external_address = external_address(k)
        worker.machine = machine
        return worker

    def _idle(self, worker: Worker, task_id: str) -> bool:
        explicit = self.task_modes.get(task_id)
        if explicit is not None:
            return explicit is AgentMode.IDLE
        return self.mode is AgentMode.IDLE or worker.idle_work

    def _report_stats(self, rng: random.Random, report: StepReport) -> None:
        """Each worker's agent reports every 30 s (the emulator's clock) what its machine does:
        every session on a machine counts in the figures of every worker on it."""
        state = self.state
        now = state.now()
        workers = [w for w in self._simulated_workers() if w.machine is not None]
        members: list[tuple[WorkerMachine, Work | None]] = []
        for worker in workers:
            assert worker.machine is not None
            task = state.tasks.get(worker.task_id or "")
            running = task is not None and task["status"] == "in_progress"
            idle = running and task is not None and self._idle(worker, task["id"])
            members.append((worker.machine, work(rng, worker.machine, idle) if running else None))
        loads = load_by_host(rng, members)
        stamp = int(now.timestamp() * 1000)
        for worker, (machine, session) in zip(workers, members, strict=True):
            last = worker.last_report_time
            if last is not None and (now - last).total_seconds() < REPORT_INTERVAL_S:
                continue
            load = loads[machine.host]
            task = state.tasks.get(worker.task_id or "") if session is not None else None
            if task is not None and session is not None:
                if monitor_has_reported(task, now):
                    apply_metrics(state, task, *sdk_metrics(rng, machine, load, session))
                stats = agent_stats(rng, machine, load, stamp)
                worker_report(state, worker, task_id=task["id"], machine_stats=stats)
            else:
                stats = agent_stats(rng, machine, load, stamp)
                worker_report(state, worker, task_id=None, machine_stats=stats)
            report.reported += 1

    # --- background driver -----------------------------------------------------------------------
    async def run(self, tick: float) -> None:
        """Call `step()` every `tick` seconds until cancelled."""
        while True:
            try:
                self.step()
            except Exception:  # keep the simulation alive; the error is logged
                log.exception("simulated agent step failed")
            await asyncio.sleep(tick)

    def start_in_loop(self, tick: float) -> None:
        """Start `run(tick)` as a task of the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self.run(tick))

    async def stop_in_loop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


__all__ = ["AgentMode", "SimulatedAgent", "StepReport"]

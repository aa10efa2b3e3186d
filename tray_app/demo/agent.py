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
from tray_app.demo.bll.tasks import set_status
from tray_app.demo.bll.workers import register_worker, worker_report
from tray_app.demo.seed import (
    HARDWARE,
    QUEUE_GPU,
    Hardware,
    SessionPorts,
    apply_metrics,
    external_address,
    hardware_for,
    machine_metrics,
    machine_runtime,
    monitor_has_reported,
    move_ports,
    publish_ports,
    worker_ip,
)
from tray_app.demo.state import EmulatorState, Worker
from tray_app.demo.values import md5_hex

log = logging.getLogger(__name__)

# New machines the agent brings up are numbered from here (seeded ones are below).
_FIRST_NEW_MACHINE = 2000


class AgentMode(StrEnum):
    NORMAL = "normal"
    FAIL = "fail"  # sessions fail during setup
    HANG = "hang"  # queued sessions are never pulled
    NO_PORTS = "no_ports"  # sessions start but never publish their ports
    IDLE = "idle"  # running sessions report ~0 % CPU / GPU


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
                set_status(state, task, "in_progress", status_reason="worker started")
                task["last_worker"] = worker.id
                task["last_worker_report"] = state.now_iso()
                worker.task_id = task["id"]
                runtime = task.setdefault("runtime", {})
                runtime.update(machine_runtime(self._hardware(queue), worker.hostname))
                for line in (
                    f"task {task['id']} pulled from queue {queue['name']} by worker {worker.id}",
                    f"Running task id [{task['id']}]:",
                    "Starting Task Execution:",
                    "Installing requirements: clearml>=1.1.5 jupyterlab code-server",
                ):
                    add_log(state, task["id"], line, worker=worker.id)
                report.pulled.append(task["id"])

    def _hardware(self, queue: dict[str, object]) -> Hardware:
        return HARDWARE[0] if queue.get("name") == QUEUE_GPU else HARDWARE[1]

    def _idle_worker(self, queue: dict[str, object]) -> Worker:
        state = self.state
        for worker in self._simulated_workers():
            if not worker.task_id and queue["id"] in worker.queue_ids:
                return worker
        hw = self._hardware(queue)
        k = _FIRST_NEW_MACHINE + self._machines
        self._machines += 1
        prefix = "gpu-node" if hw.gpu_count else "cpu-node"
        hostname = f"{prefix}-{k}"
        worker = register_worker(
            state,
            f"{hostname}:{'gpu0' if hw.gpu_count else 'cpu0'}",
            state.current_user_id,
            worker_ip(k),
            queue_ids=[str(queue["id"])],
            simulated=True,
            hostname=hostname,
        )
        worker.external_address = external_address(k)
        return worker

    def _report_stats(self, rng: random.Random, report: StepReport) -> None:
        state = self.state
        for worker in self._simulated_workers():
            task = state.tasks.get(worker.task_id or "")
            if task is not None and task["status"] == "in_progress":
                hw = hardware_for(task)
                idle = self.mode_for(task["id"]) is AgentMode.IDLE or _seeded_idle(task)
                machine, gpu, stats = machine_metrics(rng, hw, idle=idle)
                if monitor_has_reported(task, state.now()):
                    apply_metrics(state, task, machine, gpu)
                worker_report(state, worker, task_id=task["id"], machine_stats=stats)
            else:
                hw = HARDWARE[0] if worker.id.endswith("gpu0") else HARDWARE[3]
                _, _, stats = machine_metrics(rng, hw, idle=True)
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


def _seeded_idle(task: dict[str, object]) -> bool:
    """Seeded idle sessions stay idle (their cpu metric was seeded near zero)."""
    metrics = task.get("last_metrics")
    if not isinstance(metrics, dict):
        return False
    machine = metrics.get(md5_hex(":monitor:machine")) or {}
    cpu = machine.get(md5_hex("cpu_usage")) if isinstance(machine, dict) else None
    return isinstance(cpu, dict) and float(cpu.get("first_value", 100.0)) < 2.0


__all__ = ["AgentMode", "SimulatedAgent", "StepReport"]

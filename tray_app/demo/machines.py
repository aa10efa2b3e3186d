"""The emulator's machines, reported the way clearml-agent reports them (pure functions).

A worker watches one machine, maybe shared with other workers; the simulated agent (agent.py)
and the seed (seed.py) add up what the sessions on a machine do (`host_load`) and turn it into
what the agent's resource monitor would send (`agent_stats`) and what the SDK inside the session
would log (`sdk_metrics`).

What clearml-agent sends (`clearml_agent/helper/resource_monitor.py`), every 30 s
(`report_frequency_sec`), the mean of its samples taken every 0.5 s, rounded to 3 decimals:

- `cpu_usage`: `psutil.cpu_percent(percpu=True)` averaged over **every core of the host**, one
  value sent as a one-element list (its key matches `cpu_usage_*`). In a k8s pod or a container
  psutil sees the whole node, so other pods' work is in it too. `cpu_temperature` likewise.
- `memory_used` / `memory_free`: the host's memory (`psutil.virtual_memory`), MB.
- per watched GPU (NVIDIA_VISIBLE_DEVICES), in index order: `gpu_temperature`, `gpu_usage`
  (utilization; where it reads None, as on a MIG slice, `default_gpu_utilization`: 100),
  `gpu_memory_used`, `gpu_memory_free` (MB). A MIG slice's temperature is its parent GPU's.
- after three failed GPU reads the agent switches GPU monitoring off: no gpu_* key any more.

Tested in tests/unit/demo/test_emulator_conformance.py (one case per shape) and
tests/unit/idle/test_machine_shapes.py (the tray's verdict on each).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

QUEUE_SESSIONS = "sessions"
QUEUE_GPU = "gpu-a100"
REPORT_INTERVAL_S = 30.0  # agent report_frequency_sec
DEFAULT_GPU_UTILIZATION = 100  # agent.resource_monitoring.default_gpu_utilization
IDLE_GPU_MEMORY_MB = 437.0  # a CUDA context and nothing else: it does not move
A100 = "NVIDIA A100-SXM4-80GB"


@dataclass(frozen=True, slots=True)
class Shape:
    """A kind of machine, and what a session on it keeps busy."""

    name: str
    cores: int  # every core psutil sees (a pod's: its node's)
    memory_gb: float
    gpus: int = 0  # GPUs one worker watches (and its session sees)
    gpu_type: str = ""
    gpu_mem_gb: int = 0  # each GPU the session sees (a MIG slice: the slice's)
    queue: str = QUEUE_SESSIONS
    prefix: str = "cpu-node"  # host names: <prefix>-<n>
    workers_per_host: int = 1  # daemons on one host, each with GPUs of its own
    mig: bool = False  # the GPUs are MIG slices: the agent cannot read their utilization
    pod: bool = False  # a k8s glue pod (worker "<glue>:<task id>") on a node of `cores`
    others_cores: float = 0.15  # work that is no session's: the OS, the agent, other pods
    others_gpu: float = 0.0  # a MIG parent GPU: the other slices' work (%)
    busy_cores: float = 3.0  # what a busy session keeps busy
    busy_gpu: float = 80.0  # utilization of a busy session's GPUs
    busy_gpu_only: int | None = None  # a busy session uses only this one of its GPUs


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        # The classic ones, which the seed cycles through for its many sessions.
        Shape("a100", 32, 251.5, 1, A100, 80, QUEUE_GPU, "gpu-node", busy_cores=6.0),
        Shape("rtx4090", 16, 62.8, 1, "NVIDIA GeForce RTX 4090", 24, prefix="gpu-node"),
        Shape("2xa100", 64, 503.7, 2, A100, 80, QUEUE_GPU, "gpu-node", busy_cores=10.0),
        Shape("cpu8", 8, 31.3),
        # A 64-core CPU host: one busy core reads 1.56 %.
        Shape("cpu64", 64, 251.6, prefix="cpu-host", busy_cores=1.0),
        # Eight GPUs, a session training on one of them at 30 %: the mean reads 3.75 %.
        Shape(
            "8xa100",
            128,
            2015.6,
            8,
            A100,
            80,
            QUEUE_GPU,
            "dgx",
            busy_cores=1.5,
            busy_gpu=30.0,
            busy_gpu_only=3,
        ),
        # A 10 GB MIG slice of an A100 whose other slices are at work.
        Shape("mig", 32, 251.5, 1, A100, 10, QUEUE_GPU, "mig-node", mig=True, others_gpu=55.0),
        # A k8s pod with one GPU on a busy 96-core node (other pods keep 18 cores busy).
        Shape("k8s", 96, 755.0, 1, A100, 80, QUEUE_GPU, "k8s-node", pod=True, others_cores=18.0),
        # Two daemons on one host, one GPU each: both report the host's CPU.
        Shape("shared", 32, 251.5, 1, A100, 80, QUEUE_GPU, "gpu-a100", workers_per_host=2),
        # An agent whose GPU reads fail (it stops sending GPU values; see WorkerMachine).
        Shape("gpu-stops", 16, 62.8, 1, "NVIDIA GeForce RTX 4090", 24, prefix="gpu-box"),
    )
}


@dataclass(frozen=True, slots=True)
class WorkerMachine:
    """What one worker's agent watches: its machine and the machine's GPUs it was given."""

    shape: Shape
    host: str  # the machine's name (a pod's: the pod's)
    gpu_indexes: tuple[int, ...] = ()  # the machine's GPUs this worker watches
    gpu_reads_until_ms: int | None = None  # the agent turned GPU monitoring off then

    def worker_id(self, pid: int, task_id: str = "") -> str:
        """The id clearml-agent gives its worker (`commands/worker.py`
        `_generate_worker_id_name`; a k8s pod's: `glue/k8s.py` `get_task_worker_id`)."""
        if self.shape.pod:
            return f"k8s-glue-{self.shape.queue}:{task_id}"
        if not self.gpu_indexes:
            return f"{self.host}:cpu:{pid}"
        if self.shape.mig:  # a static MIG slice given as --gpus <gpu>.<slice>
            return f"{self.host}:gpu{self.gpu_indexes[0]}.{1 + pid % 6}"
        return f"{self.host}:gpu{','.join(str(i) for i in self.gpu_indexes)}"


@dataclass(frozen=True, slots=True)
class Work:
    """What one session keeps busy on its machine."""

    cores: float
    gpus: dict[int, float]  # the machine's GPU index → utilization (%)
    gpu_memory_mb: dict[int, float]
    memory_mb: float  # the session's process tree


@dataclass(frozen=True, slots=True)
class HostLoad:
    """A whole machine at one moment: what every session on it, and the rest, keep busy."""

    cores: float
    memory_mb: float
    gpus: dict[int, float]
    gpu_memory_mb: dict[int, float]


def work(rng: random.Random, machine: WorkerMachine, idle: bool) -> Work:
    shape = machine.shape
    if idle:  # a notebook, a VS Code server, sshd: a few percent of one core, GPUs untouched
        return Work(
            cores=rng.uniform(0.02, 0.12),
            gpus={i: 0.0 for i in machine.gpu_indexes},
            gpu_memory_mb={i: IDLE_GPU_MEMORY_MB for i in machine.gpu_indexes},
            memory_mb=rng.uniform(300.0, 900.0),
        )
    used = [
        index
        for n, index in enumerate(machine.gpu_indexes)
        if shape.busy_gpu_only is None or n == shape.busy_gpu_only
    ]
    return Work(
        cores=shape.busy_cores * rng.uniform(0.92, 1.08),
        gpus={
            i: min(99.0, max(1.0, shape.busy_gpu + rng.uniform(-6.0, 6.0))) if i in used else 0.0
            for i in machine.gpu_indexes
        },
        gpu_memory_mb={
            i: shape.gpu_mem_gb * 1024 * rng.uniform(0.5, 0.9) if i in used else IDLE_GPU_MEMORY_MB
            for i in machine.gpu_indexes
        },
        memory_mb=rng.uniform(1024.0, shape.memory_gb * 1024 * 0.3),
    )


def host_load(rng: random.Random, shape: Shape, works: Iterable[Work]) -> HostLoad:
    works = list(works)
    gpus: dict[int, float] = {}
    gpu_memory: dict[int, float] = {}
    for w in works:
        gpus.update(w.gpus)
        gpu_memory.update(w.gpu_memory_mb)
    return HostLoad(
        cores=shape.others_cores * rng.uniform(0.7, 1.3) + sum(w.cores for w in works),
        memory_mb=1200.0 + shape.memory_gb * 1024 * 0.04 + sum(w.memory_mb for w in works),
        gpus=gpus,
        gpu_memory_mb=gpu_memory,
    )


def _temperature(rng: random.Random, utilization: float) -> float:
    return 31.0 + 0.45 * utilization + rng.uniform(-1.5, 1.5)


def agent_stats(
    rng: random.Random, machine: WorkerMachine, load: HostLoad, timestamp_ms: int
) -> dict[str, Any]:
    """The `machine_stats` of one `workers.status_report`."""
    shape = machine.shape
    cpu = min(100.0, 100.0 * load.cores / shape.cores)
    total_mb = shape.memory_gb * 1024
    stats: dict[str, Any] = {
        "cpu_usage": [round(cpu, 3)],
        "cpu_temperature": [round(38.0 + 0.3 * cpu + rng.uniform(-1.0, 1.0), 3)],
        "memory_used": round(load.memory_mb, 3),
        "memory_free": round(max(total_mb - load.memory_mb, 512.0), 3),
        "disk_free_home": round(rng.uniform(35.0, 65.0), 3),
        "network_tx": round(rng.uniform(0.001, 0.05) + 0.3 * load.cores, 3),
        "network_rx": round(rng.uniform(0.001, 0.05) + 0.5 * load.cores, 3),
        "disk_read": round(rng.uniform(0.0, 2.0), 3),
        "disk_write": round(rng.uniform(0.0, 2.0), 3),
    }
    stopped = machine.gpu_reads_until_ms is not None and timestamp_ms >= machine.gpu_reads_until_ms
    if not machine.gpu_indexes or stopped:
        return stats
    usage, temperature, used, free = [], [], [], []
    for index in machine.gpu_indexes:
        utilization = load.gpus.get(index, 0.0)
        memory = load.gpu_memory_mb.get(index, IDLE_GPU_MEMORY_MB)
        if shape.mig:  # no utilization counter; the parent GPU's temperature
            usage.append(float(DEFAULT_GPU_UTILIZATION))
            temperature.append(round(_temperature(rng, shape.others_gpu + utilization), 3))
        else:
            usage.append(round(utilization, 3))
            temperature.append(round(_temperature(rng, utilization), 3))
        used.append(round(memory, 3))
        free.append(round(shape.gpu_mem_gb * 1024 - memory, 3))
    stats.update(
        gpu_temperature=temperature, gpu_usage=usage, gpu_memory_used=used, gpu_memory_free=free
    )
    return stats


def sdk_metrics(
    rng: random.Random, machine: WorkerMachine, load: HostLoad, session: Work
) -> tuple[dict[str, float], dict[str, float]]:
    """(:monitor:machine, :monitor:gpu) scalars the SDK's resource monitor in the session logs
    (clearml `utilities/resource_monitor.py`): the machine's CPU figure, `memory_used_gb` of the
    session's process tree (report_mem_used_per_process) but `memory_free_gb` of the machine,
    and per GPU the session sees (numbered from 0) its utilization, memory and temperature."""
    shape = machine.shape
    cpu = min(100.0, 100.0 * load.cores / shape.cores)
    machine_scalars = {
        "cpu_usage": round(cpu, 2),
        "memory_used_gb": round(session.memory_mb / 1024, 2),
        "memory_free_gb": round(max(shape.memory_gb - load.memory_mb / 1024, 0.5), 2),
        "disk_free_percent": round(rng.uniform(20.0, 80.0), 1),
        "cpu_temperature": round(38.0 + 0.3 * cpu + rng.uniform(-1.0, 1.0), 1),
        "network_tx_mbs": round(rng.uniform(0.0, 0.05) + 0.3 * session.cores, 3),
        "network_rx_mbs": round(rng.uniform(0.0, 0.05) + 0.5 * session.cores, 3),
        "io_read_mbs": round(rng.uniform(0.0, 5.0), 3),
        "io_write_mbs": round(rng.uniform(0.0, 5.0), 3),
    }
    gpu: dict[str, float] = {}
    for n, index in enumerate(machine.gpu_indexes):
        utilization = load.gpus.get(index, 0.0)
        used = load.gpu_memory_mb.get(index, IDLE_GPU_MEMORY_MB) / 1024
        total = float(shape.gpu_mem_gb)
        if not shape.mig:  # a MIG slice has no utilization for the SDK either
            gpu[f"gpu_{n}_utilization"] = round(utilization, 1)
        gpu[f"gpu_{n}_mem_usage"] = round(100.0 * used / total, 1)
        gpu[f"gpu_{n}_mem_used_gb"] = round(used, 2)
        gpu[f"gpu_{n}_mem_free_gb"] = round(total - used, 2)
        gpu[f"gpu_{n}_temperature"] = round(_temperature(rng, utilization + shape.others_gpu), 1)
        gpu[f"gpu_{n}_power_draw"] = round(60.0 + 3.0 * utilization + rng.uniform(-5.0, 5.0), 1)
    return machine_scalars, gpu


def runtime_of(machine: WorkerMachine) -> dict[str, Any]:
    """What the SDK's resource monitor writes into the session's `runtime` on that machine."""
    shape = machine.shape
    runtime: dict[str, Any] = {
        "platform": "Linux-5.15.0-105-generic-x86_64-with-glibc2.31",
        "python_version": "3.10.12",
        "python_exec": "/usr/bin/python3",
        "OS": "Linux",
        "processor": "x86_64",
        "cpu_cores": shape.cores,
        "memory_gb": shape.memory_gb,
        "hostname": machine.host,
        "gpu_count": len(machine.gpu_indexes),
        "_exec_agent_hostname": machine.host,
    }
    if machine.gpu_indexes:
        count = len(machine.gpu_indexes)
        runtime["gpu_type"] = ", ".join([shape.gpu_type] * count)
        runtime["gpu_memory"] = ", ".join([f"{shape.gpu_mem_gb}GB"] * count)
        runtime["gpu_driver_version"] = "550.54.15"
        runtime["gpu_driver_cuda_version"] = "12.4"
    return runtime


def load_by_host(
    rng: random.Random, members: Iterable[tuple[WorkerMachine, Work | None]]
) -> dict[str, HostLoad]:
    """Each machine's load from the sessions on it (a worker without a session adds none)."""
    hosts: dict[str, tuple[Shape, list[Work]]] = {}
    for machine, session in members:
        _, works = hosts.setdefault(machine.host, (machine.shape, []))
        if session is not None:
            works.append(session)
    return {host: host_load(rng, shape, works) for host, (shape, works) in hosts.items()}

"""What the idle policy knows about the machine a session runs on (pure, Qt-free).

clearml-agent reports per worker, but some of what it reports is the whole machine's: `cpu_usage`
is psutil's mean over every core of the host, and in a k8s pod or a services-mode container
psutil sees the whole node (clearml-agent `clearml_agent/helper/resource_monitor.py`,
`_machine_stats`). So the policy needs the machine's cores (to turn that mean into busy cores)
and whether other work shares the figure. Both come from names the agent gives its workers:

- `<host>:gpu0`, `<host>:gpu0,1`, `<host>:cpu:<pid>`, `<host>:<pid>`: a daemon on `<host>`
  (`agent.worker_name`, the machine's name by default; `commands/worker.py`
  `_generate_worker_id_name`). Several such workers on one host share its CPU figure.
- `<daemon>:service:<task id>`: a services-mode task on the daemon's host (`commands/worker.py`,
  `run_one_task`).
- `<glue>:<task id>`: a k8s glue pod running that task (`glue/k8s.py`, `get_task_worker_id`);
  its CPU figure is the node's, which other pods share.
- `<host>:gpu0.1`, `<host>:gpu0:1`, `<host>:gpuMIG-…`: the daemon was given MIG slices (static
  slices are `int.int` in `--gpus`), whose utilization the agent cannot read: it sends
  `agent.resource_monitoring.default_gpu_utilization` (100) instead.

Tested in tests/unit/idle/test_machine.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from tray_app.core.server.models import Session

_TASK_ID = re.compile(r"[0-9a-f]{32}")
_MIG = re.compile(r"gpu(?:\d+[.:]\d+(?![0-9]*[a-z])|MIG-)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Machine:
    host: str = ""  # its name in reasons: "gpu-a100-3"
    cores: int | None = None  # every core the agent's CPU figure averages over
    gpus: int = 0  # the session's GPUs (its runtime's gpu_count)
    sharers: int = 0  # other workers on the same host: their work is in its CPU figure
    pod: bool = False  # a k8s pod: the CPU figure is its node's, shared with other pods
    mig: bool = False  # the worker watches MIG slices

    @property
    def shared(self) -> bool:
        return self.pod or self.sharers > 0


def is_pod(worker_id: str, task_id: str) -> bool:
    """A k8s glue pod's worker: `<glue>:<task id>` (a services-mode task has `:service:`)."""
    head, _, last = worker_id.rpartition(":")
    return bool(head) and last == task_id and not head.endswith(":service")


def host_of(worker_id: str) -> str | None:
    """The host a daemon's worker runs on; None for a k8s pod (its node is not named)."""
    head, _, last = worker_id.rpartition(":")
    if head and _TASK_ID.fullmatch(last) and not head.endswith(":service"):
        return None
    return worker_id.split(":", 1)[0] or None


def is_mig(worker_id: str) -> bool:
    """The daemon was started with MIG slices (`--gpus 0.1`, `0:1` or `MIG-<uuid>`)."""
    return bool(_MIG.search(worker_id.partition(":")[2]))


def worker_hosts(workers: Iterable[str]) -> dict[str, int]:
    """How many of the live `workers` report each host (k8s pods count for none)."""
    counts: dict[str, int] = {}
    for worker in set(workers):
        host = host_of(worker)
        if host is not None:
            counts[host] = counts.get(host, 0) + 1
    return counts


def machine_of(
    session: Session, workers: Collection[str], hosts: Mapping[str, int] | None = None
) -> Machine:
    """The machine of `session`, with the other live `workers` that report the same host
    (`hosts`: their `worker_hosts`, counted once for many sessions)."""
    worker = session.worker_id
    pod = is_pod(worker, session.id)
    host = None if pod else host_of(worker)
    sharers = 0
    if host is not None:
        hosts = worker_hosts(workers) if hosts is None else hosts
        sharers = max(0, hosts.get(host, 0) - (1 if worker in workers else 0))
    name = session.hostname or host or worker
    if pod and name.endswith(session.id):  # clearml-id-<task id>: the short id says enough
        name = name[: -len(session.id)] + session.short_id
    return Machine(
        host=name,
        cores=session.cpu_cores if session.cpu_cores and session.cpu_cores > 0 else None,
        gpus=max(session.gpu_count or 0, 0),
        sharers=sharers,
        pod=pod,
        mig=is_mig(worker),
    )

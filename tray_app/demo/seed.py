"""Deterministic seed data: users, projects, queues, workers and interactive sessions.

`seeded_state(sessions, seed)` builds a whole emulated server with it. The same
`(sessions, seed)` always yields the same ids, names, statuses and numbers (times are relative to
the state's clock). Every address is in 127.0.0.0/8 so that nothing can ever point outside the
machine.

Tested in tests/unit/demo/test_emulator.py (test_seed_*, determinism and coverage).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tray_app.demo.bll.events import add_log
from tray_app.demo.bll.projects import add_project
from tray_app.demo.bll.queues import add_queue
from tray_app.demo.bll.tasks import new_task_doc, set_hyperparam, set_metric
from tray_app.demo.bll.users import add_user
from tray_app.demo.bll.workers import register_worker
from tray_app.demo.machines import (
    QUEUE_GPU,
    QUEUE_SESSIONS,
    REPORT_INTERVAL_S,
    SHAPES,
    Shape,
    WorkerMachine,
    agent_stats,
    host_load,
    load_by_host,
    runtime_of,
    sdk_metrics,
    work,
)
from tray_app.demo.state import EmulatorState, Worker
from tray_app.demo.values import iso

# Credentials of the seeded users (demo only; never real secrets).
DEMO_USER_NAME = "Demo User"
DEMO_ACCESS_KEY = "EMUDEMOUSERACCESSKEY0000000001"
DEMO_SECRET_KEY = "emu-demo-user-secret-key-do-not-use-in-production-0001"
OTHER_USERS: tuple[tuple[str, str, str], ...] = (
    (
        "Alice Martin",
        "EMUALICEACCESSKEY0000000000002",
        "emu-alice-secret-key-do-not-use-in-production-0002",
    ),
    (
        "Bob Chen",
        "EMUBOBACCESSKEY000000000000003",
        "emu-bob-secret-key-do-not-use-in-production-00003",
    ),
    (
        "Carol Diaz",
        "EMUCAROLACCESSKEY0000000000004",
        "emu-carol-secret-key-do-not-use-in-production-0004",
    ),
)
# Every secret value the seed writes into a task contains this marker, so tests can prove
# that a client never fetched, logged or displayed one.
SECRET_MARKER = "EMUSECRET"

SESSIONS_PROJECT = "DevOps"
QUEUE_DEFAULT = "default"
QUEUE_SERVICES = "services"

DEFAULT_IMAGE = "nvidia/cuda:11.6.2-runtime-ubuntu20.04"
SSH_PORT = 10022
STABLE_SSH_PORT = 10023
JUPYTER_PORT = 8888
VSCODE_PORT = 8898


@dataclass(frozen=True, slots=True)
class SessionPorts:
    """The ports a session's remote side listens on (what it publishes in `properties/`)."""

    ssh: int = SSH_PORT
    stable_ssh: int = STABLE_SSH_PORT
    jupyter: int = JUPYTER_PORT
    vscode: int = VSCODE_PORT


# (status, owner slot (0 = the demo user, n = n-th other user), variant). Variants:
# "ready" ports published; "starting" running but no ports yet; "stopping" stop requested;
# "idle" running with ~0 % CPU/GPU.
PATTERN: tuple[tuple[str, int, str], ...] = (
    ("in_progress", 0, "ready"),
    ("queued", 0, ""),
    ("in_progress", 1, "ready"),
    ("in_progress", 0, "idle"),
    ("stopped", 0, ""),
    ("in_progress", 0, "starting"),
    ("in_progress", 0, "stopping"),
    ("failed", 0, ""),
    ("in_progress", 2, "ready"),
    ("completed", 0, ""),
    ("created", 0, ""),
    ("queued", 3, ""),
    ("closed", 0, ""),
)
CUSTOM_NAMES = ("jupyter-playground", "vscode-debug", "llm-finetune-dev", "data-exploration")

# The first sessions show one kind of machine each (machines.py): index → (shape, the session
# does nothing). The rest cycle through CLASSIC, as the seed always did.
SHOWCASE: dict[int, tuple[str, bool]] = {
    0: ("8xa100", False),  # yours: busy on one GPU of eight (the mean reads 3.75 %)
    2: ("k8s", False),  # Alice's pod on a busy 96-core node
    3: ("cpu64", True),  # yours: idle on a 64-core host
    5: ("mig", True),  # yours: on a MIG slice, which reads 100 % whatever it does
    8: ("shared", False),  # Bob's: busy, on a host that two workers share
    13: ("shared", True),  # yours: idle, on that host; its CPU figure holds Bob's work
    16: ("gpu-stops", True),  # yours: its agent stopped sending GPU values
}
CLASSIC = ("a100", "rtx4090", "2xa100", "cpu8")
# Reports per worker: enough for the idle policy's hour for the first sessions; ten minutes for
# the rest, so that a thousand-session emulator stays small.
LONG_HISTORY_SESSIONS = 2 * len(PATTERN)
HISTORY_S = 70 * 60
SHORT_HISTORY_S = 10 * 60
GPU_READS_STOPPED_S = 25 * 60  # the "gpu-stops" agent turned GPU monitoring off this long ago


def shape_for(index: int) -> tuple[Shape, bool]:
    """The machine of the index-th seeded session, and whether the session there is idle."""
    classic = CLASSIC[(index // len(PATTERN) + index) % len(CLASSIC)]
    name, idle = SHOWCASE.get(index, (classic, False))
    return SHAPES[name], idle or PATTERN[index % len(PATTERN)][2] == "idle"


def worker_ip(index: int) -> str:
    """The private address the server sees for the index-th worker (127.0.3.17, ...)."""
    return f"127.0.{3 + (index // 200) % 97}.{17 + index % 200}"


def external_address(index: int) -> str:
    """The address the index-th worker's session advertises (127.0.103.17, ...)."""
    return f"127.0.{103 + (index // 200) % 150}.{17 + index % 200}"


def interactive_hyperparams(task: dict[str, Any], state: EmulatorState) -> None:
    values = {
        "user_base_directory": "~/",
        "ssh_server": "True",
        "default_docker": DEFAULT_IMAGE,
        "jupyterlab": "True",
        "vscode_server": "True",
        "public_ip": "False",
        "ssh_ports": "",
        "vscode_version": "",
        "vscode_extensions": "",
        "force_dropbear": "False",
        "store_workspace": "",
        "use_ssh_proxy": "False",
        "router_enabled": "False",
    }
    for name, value in values.items():
        set_hyperparam(task, "interactive_session", name, value)


def client_runtime(rng: random.Random, user: dict[str, Any]) -> dict[str, Any]:
    """What clearml-session stores in `runtime` when it creates a session (secrets included)."""
    token = f"{rng.getrandbits(64):016x}"
    return {
        "_user_key": f"{SECRET_MARKER}-KEY-{user['id'][:8]}",
        "_user_secret": f"{SECRET_MARKER}-secret-{token}",
        "_ssh_password": f"{SECRET_MARKER}-pw-{token[:10]}",
        "internal_tcp_port_request": str(SSH_PORT),
    }


def publish_ports(
    state: EmulatorState,
    task: dict[str, Any],
    address: str,
    hostname: str,
    ports: SessionPorts = SessionPorts(),
) -> None:
    """What the remote clearml-session side writes once its servers are up.

    As there, JupyterLab and the VS Code server only publish a port when the session asked for
    them (`interactive_session/jupyterlab`, `vscode_server`, both on unless set false).
    """
    wanted = (task.get("hyperparams") or {}).get("interactive_session") or {}

    def enabled(name: str) -> bool:
        return str((wanted.get(name) or {}).get("value", "true")).strip().lower() != "false"

    jupyter, vscode = enabled("jupyterlab"), enabled("vscode_server")
    runtime = task.setdefault("runtime", {})
    password = runtime.get("_ssh_password") or f"{SECRET_MARKER}-pw-generated"
    runtime.update(
        {
            "internal_ssh_port": str(ports.ssh),
            "_ssh_user": "root",
            "external_address": address,
        }
    )
    props = {
        "external_address": address,
        "internal_ssh_port": str(ports.ssh),
        "internal_stable_ssh_port": str(ports.stable_ssh),
    }
    if jupyter:
        runtime["_jupyter_token"] = f"{SECRET_MARKER}-jt-{task['id'][:8]}"
        runtime["_jupyter_url"] = f"http://{address}:{ports.jupyter}/"
        props["jupyter_port"] = str(ports.jupyter)
        props["jupyter_url"] = f"http://{address}:{ports.jupyter}/"
    if vscode:
        props["vscode_port"] = str(ports.vscode)
    for name, value in props.items():
        set_hyperparam(task, "properties", name, value)
    add_log(
        state,
        task["id"],
        f"\n#\n# SSH Server running on {hostname} [{address}] port {ports.ssh}\n"
        f"# LOGIN u:root p:{password}\n#\n",
        worker=task.get("last_worker") or "",
    )
    servers = []
    if jupyter:
        servers.append(f"Jupyter Lab server running on http://{address}:{ports.jupyter}/")
    if vscode:
        servers.append(f"VSCode server on port {ports.vscode}")
    if servers:
        add_log(state, task["id"], " ".join(servers), worker=task.get("last_worker") or "")


def move_ports(
    state: EmulatorState, task: dict[str, Any], address: str, ports: SessionPorts
) -> None:
    """Publish other ports for a session that already published some (as a restarted remote
    side would): only the servers the session runs get a port."""
    runtime = task.setdefault("runtime", {})
    runtime["internal_ssh_port"] = str(ports.ssh)
    props = (task.get("hyperparams") or {}).get("properties") or {}
    values: dict[str, str] = {
        "internal_ssh_port": str(ports.ssh),
        "internal_stable_ssh_port": str(ports.stable_ssh),
    }
    if (props.get("jupyter_port") or {}).get("value"):
        runtime["_jupyter_url"] = f"http://{address}:{ports.jupyter}/"
        values["jupyter_port"] = str(ports.jupyter)
        values["jupyter_url"] = f"http://{address}:{ports.jupyter}/"
    if (props.get("vscode_port") or {}).get("value"):
        values["vscode_port"] = str(ports.vscode)
    for name, value in values.items():
        set_hyperparam(task, "properties", name, value)


# The SDK's resource monitor in the session (clearml/utilities/resource_monitor.py) sends its
# first :monitor:machine / :monitor:gpu scalars only once it has given up waiting for iteration
# reports (wait_for_first_iteration_to_start_sec, 180 s): a new session has no CPU/RAM figures
# for its first three minutes.
SDK_MONITOR_FIRST_REPORT_S = 180.0


def monitor_has_reported(task: dict[str, Any], now: datetime) -> bool:
    started = task.get("started")
    if not started:
        return False
    return (
        now - datetime.fromisoformat(str(started))
    ).total_seconds() >= SDK_MONITOR_FIRST_REPORT_S


def apply_metrics(
    state: EmulatorState, task: dict[str, Any], machine: dict[str, float], gpu: dict[str, float]
) -> None:
    for variant, value in machine.items():
        set_metric(task, ":monitor:machine", variant, value)
    for variant, value in gpu.items():
        set_metric(task, ":monitor:gpu", variant, value)


def seeded_state(
    sessions: int = 5,
    seed: int = 0,
    *,
    server_version: str = "2.3.0",
    token_lifetime: float = 2592000.0,
    now: datetime | None = None,
    other_users: int = 3,
) -> EmulatorState:
    """A state with users, projects, queues, workers and `sessions` interactive sessions."""
    state = EmulatorState(
        server_version=server_version,
        token_lifetime=token_lifetime,
        rng_seed=seed,
        now=now,
        jwt_secret=f"clearml-emulator-jwt-secret-for-seed-{seed:012d}",
    )
    seed_state(state, sessions=sessions, seed=seed, other_users=other_users)
    return state


def seed_state(state: EmulatorState, *, sessions: int, seed: int, other_users: int = 3) -> None:
    """Fill an empty `state` with the seed data (`seeded_state` makes the state too)."""
    rng = random.Random(seed)
    metrics_rng = random.Random(f"machines:{seed}")
    state.rng = random.Random(f"ids:{seed}")
    now = state.now()

    me = add_user(state, DEMO_USER_NAME, DEMO_ACCESS_KEY, DEMO_SECRET_KEY, role="admin")
    state.current_user_id = me["id"]
    others = [
        add_user(state, name, key, secret)
        for name, key, secret in OTHER_USERS[: max(0, min(other_users, len(OTHER_USERS)))]
    ]
    owners = [me, *others]

    devops = add_project(state, SESSIONS_PROJECT, me["id"], description="Interactive sessions")
    examples = add_project(state, "Examples", me["id"], description="Example experiments")
    add_project(state, "Vision Research", others[0]["id"] if others else me["id"])

    queues = {
        QUEUE_DEFAULT: add_queue(state, QUEUE_DEFAULT, system_tags=["default"]),
        QUEUE_SESSIONS: add_queue(
            state, QUEUE_SESSIONS, system_tags=["interactive"], display_name="Interactive sessions"
        ),
        QUEUE_GPU: add_queue(
            state, QUEUE_GPU, system_tags=["interactive"], tags=["gpu"], display_name="A100 GPUs"
        ),
        QUEUE_SERVICES: add_queue(state, QUEUE_SERVICES, system_tags=["internal"]),
    }

    worker_index = 0
    history: dict[str, float] = {}  # worker id → seconds of reports to seed
    shared_hosts: dict[str, tuple[str, int]] = {}  # shape → a host with room for a worker

    def place(shape: Shape, k: int, task_id: str | None) -> WorkerMachine:
        if shape.pod:  # the SDK in a pod sees the pod's name
            return WorkerMachine(shape, f"clearml-id-{task_id}", (0,))
        if shape.workers_per_host > 1:
            host, taken = shared_hosts.pop(shape.name, (f"{shape.prefix}-{k:03d}", 0))
            if taken + 1 < shape.workers_per_host:
                shared_hosts[shape.name] = (host, taken + 1)
            first = taken * shape.gpus
            return WorkerMachine(shape, host, tuple(range(first, first + shape.gpus)))
        stop = _ms(now) - GPU_READS_STOPPED_S * 1000 if shape.name == "gpu-stops" else None
        return WorkerMachine(shape, f"{shape.prefix}-{k:03d}", tuple(range(shape.gpus)), stop)

    def new_worker(
        shape: Shape,
        *,
        task_id: str | None,
        idle_pool: bool = False,
        idle: bool = False,
        seconds: float = SHORT_HISTORY_S,
    ) -> Worker:
        nonlocal worker_index
        k = worker_index
        worker_index += 1
        machine = place(shape, k, task_id)
        worker = register_worker(
            state,
            machine.worker_id(4100 + k, task_id or ""),
            me["id"],
            worker_ip(k),
            # A pod's worker serves no queue: the k8s glue pulls, the pod runs one task.
            queue_ids=[] if shape.pod else [queues[shape.queue]["id"]],
            simulated=True,
            hostname=machine.host,
        )
        register = now - timedelta(hours=30 + k % 7)
        worker.register_time = register
        worker.last_activity_time = now - timedelta(seconds=5 + k % 20)
        worker.last_report_time = worker.last_activity_time
        worker.task_id = task_id
        worker.external_address = external_address(k)
        worker.machine = machine
        worker.idle_work = idle
        history[worker.id] = seconds
        if idle_pool:
            worker.tags = ["idle-pool"]
        return worker

    for i in range(sessions):
        status, owner_slot, variant = PATTERN[i % len(PATTERN)]
        owner = owners[owner_slot % len(owners)] if owner_slot and others else me
        shape, idle = shape_for(i)
        task_id = state.seeded_id()
        name = f"{CUSTOM_NAMES[i % len(CUSTOM_NAMES)]}-{i}" if i % 3 == 2 else "Interactive Session"
        task = new_task_doc(state, task_id, owner["id"], name, "application")
        age = timedelta(minutes=rng.randint(20, 3 * 24 * 60))
        if i in SHOWCASE and status == "in_progress":  # long enough for an idle verdict
            age = max(age, timedelta(hours=3))
        created = now - age
        queued_for = timedelta(seconds=rng.randint(20, 600))
        started = created + queued_for
        task.update(
            {
                "project": devops["id"],
                "system_tags": ["interactive"],
                "tags": ["demo", "gpu"] if shape.gpus and i % 2 == 0 else [],
                "comment": f"Auto-generated at {iso(created)[:19]} by clearml-session",
                "created": iso(created),
                "status": status,
                "status_changed": iso(created if status in ("created", "queued") else started),
                "last_change": iso(created),
                "last_changed_by": owner["id"],
                "script": {
                    "repository": "",
                    "branch": "",
                    "entry_point": ".interactive_session.py",
                    "working_dir": ".",
                    "requirements": {"pip": "clearml>=1.1.5\njupyterlab\ncode-server\n"},
                    "diff": "",
                },
                "container": {
                    "image": DEFAULT_IMAGE,
                    "arguments": "--network host",
                    "setup_shell_script": "",
                },
                "configuration": {
                    "interactive_init_script": {
                        "name": "interactive_init_script",
                        "value": "",
                        "type": "bash",
                        "description": "Bash script executed before the session starts",
                    }
                },
            }
        )
        queue = queues[shape.queue]
        task["execution"]["queue"] = queue["id"]
        interactive_hyperparams(task, state)
        task["runtime"] = client_runtime(rng, owner)
        state.tasks[task_id] = task

        if status in ("created", "queued"):
            task["last_update"] = iso(created + timedelta(seconds=2))
            if status == "created":
                task["execution"]["queue"] = None
            else:
                queue["entries"].append({"task": task_id, "added": iso(created)})
            add_log(state, task_id, "Task created by clearml-session", timestamp_ms=_ms(created))
            continue

        task["started"] = iso(started)
        running = status == "in_progress"
        if running:
            long = i < LONG_HISTORY_SESSIONS
            worker: Worker | None = new_worker(
                shape,
                task_id=task_id,
                idle=idle,
                seconds=HISTORY_S if long else SHORT_HISTORY_S,
            )
            assert worker is not None and worker.machine is not None
            machine = worker.machine
            address = external_address(worker_index - 1)
        else:
            # Finished sessions ran on machines that have since gone away (no worker entry).
            worker = None
            k = 5000 + i
            machine = WorkerMachine(shape, f"{shape.prefix}-{k}", tuple(range(shape.gpus)))
            address = external_address(k)
        worker_id = worker.id if worker is not None else machine.worker_id(k, task_id)
        hostname = machine.host
        task["runtime"].update(runtime_of(machine))
        task["last_worker"] = worker_id
        _seed_setup_logs(state, task_id, worker_id, queue["name"], started)
        if variant != "starting":
            publish_ports(state, task, address, hostname)
            for event in state.logs[task_id][-2:]:
                event["timestamp"] = _ms(started + timedelta(seconds=40))
        session = work(metrics_rng, machine, idle)
        load = host_load(metrics_rng, shape, [session])
        apply_metrics(state, task, *sdk_metrics(metrics_rng, machine, load, session))
        if running:
            last = now - timedelta(seconds=rng.randint(2, 25))
            task["last_update"] = iso(last)
            task["last_worker_report"] = iso(last)
            task["active_duration"] = int((now - started).total_seconds())
            if variant == "stopping":
                task["status_message"] = "stopping"
                task["status_reason"] = "abort request"
        else:
            ended = started + timedelta(minutes=rng.randint(5, 600))
            if ended > now:
                ended = now - timedelta(minutes=1)
            task["completed"] = iso(ended)
            task["status_changed"] = iso(ended)
            task["last_update"] = iso(ended)
            task["last_worker_report"] = iso(ended)
            task["active_duration"] = int((ended - started).total_seconds())
            if status == "failed":
                task["status_reason"] = "Script error"
                task["status_message"] = ""
                add_log(
                    state,
                    task_id,
                    "Error: failed starting SSH server (exit code 1)",
                    level="error",
                    timestamp_ms=_ms(ended),
                )
            elif status in ("stopped", "closed"):
                task["status_reason"] = "abort request"
                task["status_message"] = f"Stopped by {owner['name']}"

    # One idle worker per session queue (an agent waiting for work).
    for name in ("a100", "cpu8"):
        new_worker(SHAPES[name], task_id=None, idle_pool=True)
    # What each worker's agent reported so far, every 30 s, so that workers.get_stats has a
    # history: an hour and ten minutes for the first sessions, enough for an idle verdict.
    seeded = [w for w in state.workers.values() if w.machine is not None and w.id in history]
    for seconds in sorted(set(history.values())):
        backfill(state, metrics_rng, [w for w in seeded if history[w.id] == seconds], seconds)

    # A few ordinary (non-interactive) tasks, so filters have something to exclude.
    for n, (status, name) in enumerate(
        (("completed", "train resnet50"), ("failed", "eval bert-base"), ("created", "sweep lr"))
    ):
        tid = state.seeded_id()
        task = new_task_doc(state, tid, me["id"], name, "training")
        created = now - timedelta(days=2, hours=n)
        task.update(
            {
                "project": examples["id"],
                "status": status,
                "created": iso(created),
                "status_changed": iso(created + timedelta(hours=1)),
                "last_update": iso(created + timedelta(hours=1)),
                "last_change": iso(created + timedelta(hours=1)),
                "script": {
                    "repository": "https://example.invalid/repo.git",
                    "entry_point": "train.py",
                },
            }
        )
        set_hyperparam(task, "General", "lr", "0.001")
        state.tasks[tid] = task


def backfill(
    state: EmulatorState, rng: random.Random, workers: list[Worker], seconds: float
) -> None:
    """Reports of `workers` every 30 s over the last `seconds` (up to each one's last report),
    oldest first, each machine's load added up over the sessions on it as they ran then."""
    starts: dict[str, float] = {}
    for worker in workers:
        task = state.tasks.get(worker.task_id or "")
        if task is not None and task.get("started"):
            starts[worker.id] = datetime.fromisoformat(str(task["started"])).timestamp()
    steps = int(seconds // REPORT_INTERVAL_S)
    for n in range(steps, -1, -1):
        times = {}
        members = []
        for worker in workers:
            assert worker.machine is not None and worker.last_report_time is not None
            t = worker.last_report_time - timedelta(seconds=REPORT_INTERVAL_S * n)
            times[worker.id] = t
            running = worker.id in starts and t.timestamp() >= starts[worker.id]
            session = work(rng, worker.machine, worker.idle_work) if running else None
            members.append((worker.machine, session))
        loads = load_by_host(rng, members)
        for worker, (machine, _) in zip(workers, members, strict=True):
            stamp = _ms(times[worker.id])
            worker.stats.append((stamp, agent_stats(rng, machine, loads[machine.host], stamp)))


def _ms(dt: Any) -> int:
    return int(dt.timestamp() * 1000)


def _seed_setup_logs(
    state: EmulatorState, task_id: str, worker_id: str, queue_name: str, started: Any
) -> None:
    lines = (
        f"task {task_id} pulled from queue {queue_name} by worker {worker_id}",
        f"Running task id [{task_id}]:",
        "Starting Task Execution:",
        "Installing requirements: clearml>=1.1.5 jupyterlab code-server",
        "Starting SSH server",
        "Starting Jupyter Lab server",
        "Starting VSCode server",
    )
    for n, line in enumerate(lines):
        add_log(
            state,
            task_id,
            line,
            worker=worker_id,
            timestamp_ms=_ms(started + timedelta(seconds=2 * n)),
        )


__all__ = [
    "DEMO_ACCESS_KEY",
    "DEMO_SECRET_KEY",
    "DEMO_USER_NAME",
    "OTHER_USERS",
    "PATTERN",
    "SECRET_MARKER",
    "SessionPorts",
    "apply_metrics",
    "backfill",
    "external_address",
    "move_ports",
    "publish_ports",
    "seed_state",
    "seeded_state",
    "shape_for",
    "worker_ip",
]

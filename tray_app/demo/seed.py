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
QUEUE_SESSIONS = "sessions"
QUEUE_GPU = "gpu-a100"
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


@dataclass(frozen=True, slots=True)
class Hardware:
    cpu_cores: int
    memory_gb: float
    gpu_type: str  # one model name; repeated gpu_count times in runtime
    gpu_mem_gb: int
    gpu_count: int
    queue: str


HARDWARE: tuple[Hardware, ...] = (
    Hardware(32, 251.5, "NVIDIA A100-SXM4-80GB", 80, 1, QUEUE_GPU),
    Hardware(16, 62.8, "NVIDIA GeForce RTX 4090", 24, 1, QUEUE_SESSIONS),
    Hardware(64, 503.7, "NVIDIA A100-SXM4-80GB", 80, 2, QUEUE_GPU),
    Hardware(8, 31.3, "", 0, 0, QUEUE_SESSIONS),
)

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


def machine_runtime(hw: Hardware, hostname: str) -> dict[str, Any]:
    """What the SDK resource monitor writes on the remote machine."""
    runtime: dict[str, Any] = {
        "platform": "Linux-5.15.0-105-generic-x86_64-with-glibc2.31",
        "python_version": "3.10.12",
        "python_exec": "/usr/bin/python3",
        "OS": "Linux",
        "processor": "x86_64",
        "cpu_cores": hw.cpu_cores,
        "memory_gb": hw.memory_gb,
        "hostname": hostname,
        "gpu_count": hw.gpu_count,
        "_exec_agent_hostname": hostname,
    }
    if hw.gpu_count:
        runtime["gpu_type"] = ", ".join([hw.gpu_type] * hw.gpu_count)
        runtime["gpu_memory"] = ", ".join([f"{hw.gpu_mem_gb}GB"] * hw.gpu_count)
        runtime["gpu_driver_version"] = "550.54.15"
        runtime["gpu_driver_cuda_version"] = "12.4"
    return runtime


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


def machine_metrics(
    rng: random.Random, hw: Hardware, idle: bool
) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """(:monitor:machine scalars, :monitor:gpu scalars, workers.status_report machine_stats)."""
    cpu = round(rng.uniform(0.1, 1.5), 2) if idle else round(rng.uniform(8.0, 95.0), 2)
    # The SDK's resource monitor reports `memory_used_gb` for the task's process tree by default
    # (report_mem_used_per_process), while `memory_free_gb` is the whole machine's.
    mem_used = round(rng.uniform(0.2, 1.0) if idle else rng.uniform(1.0, hw.memory_gb * 0.5), 2)
    machine_used = mem_used + rng.uniform(0.5, hw.memory_gb * 0.3)
    mem_free = round(max(hw.memory_gb - machine_used, 0.5), 2)
    machine = {
        "cpu_usage": cpu,
        "memory_used_gb": mem_used,
        "memory_free_gb": mem_free,
        "disk_free_percent": round(rng.uniform(20.0, 80.0), 1),
        "cpu_temperature": round(rng.uniform(35.0, 70.0), 1),
        "network_tx_mbs": round(rng.uniform(0.0, 0.05) if idle else rng.uniform(0.1, 40.0), 3),
        "network_rx_mbs": round(rng.uniform(0.0, 0.05) if idle else rng.uniform(0.1, 40.0), 3),
        "io_read_mbs": round(rng.uniform(0.0, 5.0), 3),
        "io_write_mbs": round(rng.uniform(0.0, 5.0), 3),
    }
    gpu: dict[str, float] = {}
    stats: dict[str, Any] = {
        "cpu_usage": [cpu],
        "cpu_temperature": [machine["cpu_temperature"]],
        "memory_used": round(mem_used * 1024, 1),
        "memory_free": round(mem_free * 1024, 1),
        "network_tx": machine["network_tx_mbs"],
        "network_rx": machine["network_rx_mbs"],
        "disk_read": machine["io_read_mbs"],
        "disk_write": machine["io_write_mbs"],
        "disk_free_home": machine["disk_free_percent"],
    }
    if hw.gpu_count:
        usages, mem_used_mb, mem_free_mb, temps = [], [], [], []
        for n in range(hw.gpu_count):
            util = 0.0 if idle else round(rng.uniform(20.0, 100.0), 1)
            used = round(
                rng.uniform(0.3, 1.0) if idle else rng.uniform(2.0, hw.gpu_mem_gb * 0.9), 2
            )
            free = round(hw.gpu_mem_gb - used, 2)
            temp = round(rng.uniform(30.0, 40.0) if idle else rng.uniform(45.0, 80.0), 1)
            gpu[f"gpu_{n}_utilization"] = util
            gpu[f"gpu_{n}_mem_usage"] = round(100.0 * used / hw.gpu_mem_gb, 1)
            gpu[f"gpu_{n}_mem_used_gb"] = used
            gpu[f"gpu_{n}_mem_free_gb"] = free
            gpu[f"gpu_{n}_temperature"] = temp
            gpu[f"gpu_{n}_power_draw"] = round(
                rng.uniform(50.0, 90.0) if idle else rng.uniform(150.0, 400.0), 1
            )
            usages.append(util)
            mem_used_mb.append(round(used * 1024, 1))
            mem_free_mb.append(round(free * 1024, 1))
            temps.append(temp)
        stats.update(
            gpu_usage=usages,
            gpu_memory_used=mem_used_mb,
            gpu_memory_free=mem_free_mb,
            gpu_temperature=temps,
        )
    return machine, gpu, stats


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


def hardware_for(task: dict[str, Any]) -> Hardware:
    """The hardware profile a task's runtime describes (for the agent's metrics)."""
    runtime = task.get("runtime") or {}
    cores = runtime.get("cpu_cores")
    for hw in HARDWARE:
        if hw.cpu_cores == cores:
            return hw
    return HARDWARE[0]


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

    def new_worker(hw: Hardware, *, task_id: str | None, idle_pool: bool = False) -> Worker:
        nonlocal worker_index
        k = worker_index
        worker_index += 1
        prefix = "cpu-node" if not hw.gpu_count else "gpu-node"
        hostname = f"{prefix}-{k:03d}"
        suffix = "cpu0" if not hw.gpu_count else "gpu0"
        worker = register_worker(
            state,
            f"{hostname}:{suffix}",
            me["id"],
            worker_ip(k),
            queue_ids=[queues[hw.queue]["id"]],
            simulated=True,
            hostname=hostname,
        )
        register = now - timedelta(hours=30 + k % 7)
        worker.register_time = register
        worker.last_activity_time = now - timedelta(seconds=5 + k % 20)
        worker.last_report_time = worker.last_activity_time
        worker.task_id = task_id
        worker.external_address = external_address(k)
        if idle_pool:
            worker.tags = ["idle-pool"]
        return worker

    for i in range(sessions):
        status, owner_slot, variant = PATTERN[i % len(PATTERN)]
        owner = owners[owner_slot % len(owners)] if owner_slot and others else me
        hw = HARDWARE[(i // len(PATTERN) + i) % len(HARDWARE)]
        task_id = state.seeded_id()
        name = f"{CUSTOM_NAMES[i % len(CUSTOM_NAMES)]}-{i}" if i % 3 == 2 else "Interactive Session"
        task = new_task_doc(state, task_id, owner["id"], name, "application")
        age = timedelta(minutes=rng.randint(20, 3 * 24 * 60))
        created = now - age
        queued_for = timedelta(seconds=rng.randint(20, 600))
        started = created + queued_for
        task.update(
            {
                "project": devops["id"],
                "system_tags": ["interactive"],
                "tags": ["demo", "gpu"] if hw.gpu_count and i % 2 == 0 else [],
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
        queue = queues[hw.queue]
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
            worker: Worker | None = new_worker(hw, task_id=task_id)
            assert worker is not None
            hostname, worker_id = worker.hostname, worker.id
            address = external_address(worker_index - 1)
        else:
            # Finished sessions ran on machines that have since gone away (no worker entry).
            worker = None
            k = 5000 + i
            hostname = f"{'gpu' if hw.gpu_count else 'cpu'}-node-{k}"
            worker_id = f"{hostname}:{'gpu0' if hw.gpu_count else 'cpu0'}"
            address = external_address(k)
        task["runtime"].update(machine_runtime(hw, hostname))
        task["last_worker"] = worker_id
        _seed_setup_logs(state, task_id, worker_id, queue["name"], started)
        if variant != "starting":
            publish_ports(state, task, address, hostname)
            for event in state.logs[task_id][-2:]:
                event["timestamp"] = _ms(started + timedelta(seconds=40))
        machine, gpu, stats = machine_metrics(rng, hw, idle=variant == "idle")
        apply_metrics(state, task, machine, gpu)
        if running:
            last = now - timedelta(seconds=rng.randint(2, 25))
            task["last_update"] = iso(last)
            task["last_worker_report"] = iso(last)
            task["active_duration"] = int((now - started).total_seconds())
            if variant == "stopping":
                task["status_message"] = "stopping"
                task["status_reason"] = "abort request"
            # Ten minutes of 30 s reports so workers.get_stats has a history.
            assert worker is not None
            for n in range(20, 0, -1):
                ts = now - timedelta(seconds=30 * n)
                _, _, hist = machine_metrics(rng, hw, idle=variant == "idle")
                worker.stats.append((_ms(ts), hist))
            worker.stats.append((_ms(now - timedelta(seconds=3)), stats))
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
    for hw in (HARDWARE[0], HARDWARE[3]):
        new_worker(hw, task_id=None, idle_pool=True)

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
    "HARDWARE",
    "OTHER_USERS",
    "PATTERN",
    "SECRET_MARKER",
    "SessionPorts",
    "apply_metrics",
    "external_address",
    "hardware_for",
    "machine_metrics",
    "move_ports",
    "publish_ports",
    "seed_state",
    "seeded_state",
    "worker_ip",
]

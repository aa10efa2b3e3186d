"""Each kind of machine the emulator has, end to end: its agent reports as clearml-agent does, the
emulator aggregates as clearml-server does, and the real `clearml-tray list --json` (a process of
its own, no tray) gives each of your running sessions the right `idle.state` and reason; then the
stop policy, on the same numbers, warns about and stops only the sessions whose state is idle.

Busy stays busy, idle becomes idle, unknown says why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.emulator import EmulatorHandle

from tray_app.core.idle.monitor import IdleMonitor
from tray_app.core.idle.policy import OFF_REASON, IdleState
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings.settings import IdleMode, IdlePolicy
from tray_app.demo import clearml_conf_text, seeded_state
from tray_app.demo.agent import AgentMode
from tray_app.demo.machines import SHAPES, Shape

REPO = Path(__file__).resolve().parents[3]
WINDOW_MIN = 10  # the user's policy (settings.json): a short window keeps the test short
RAN_MIN = 15  # how long the sessions have been on their machines when `list` runs
QUIET_NODE = dataclasses.replace(SHAPES["k8s"], others_cores=0.1)


@dataclasses.dataclass(frozen=True)
class Place:
    """Put one of your running sessions on a machine, doing something or nothing."""

    shape: Shape
    idle: bool
    state: IdleState  # what `list --json` must say
    reason: str  # ... and a piece of its reason
    host: str = ""
    gpus: tuple[int, ...] | None = None
    gpu_reads_for_s: float | None = None


CASES: dict[str, list[Place]] = {
    "64-core host, one busy core": [
        Place(SHAPES["cpu64"], False, IdleState.BUSY, "cores busy on cpu-host-")
    ],
    "64-core host, idle": [Place(SHAPES["cpu64"], True, IdleState.IDLE, "cores busy for 1")],
    "8 GPUs, one at 30 %": [Place(SHAPES["8xa100"], False, IdleState.BUSY, "GPU 3 at ")],
    "8 GPUs, idle": [Place(SHAPES["8xa100"], True, IdleState.IDLE, "GPU 0 % and 0.")],
    "MIG slice, busy CPU": [Place(SHAPES["mig"], False, IdleState.BUSY, "cores busy on mig-")],
    "MIG slice, idle": [Place(SHAPES["mig"], True, IdleState.UNKNOWN, "is a MIG slice")],
    "k8s pod, busy": [Place(SHAPES["k8s"], False, IdleState.BUSY, "GPU 0 at ")],
    "k8s pod, idle on a busy node": [
        Place(SHAPES["k8s"], True, IdleState.UNKNOWN, "which other pods share")
    ],
    "k8s pod, idle on a quiet node": [Place(QUIET_NODE, True, IdleState.IDLE, "on clearml-id-")],
    "GPU values stopped, busy": [
        Place(SHAPES["gpu-stops"], False, IdleState.BUSY, "cores busy", gpu_reads_for_s=60)
    ],
    "GPU values stopped, idle": [
        Place(
            SHAPES["gpu-stops"],
            True,
            IdleState.UNKNOWN,
            "clearml-agent stopped sending GPU readings",
            gpu_reads_for_s=60,
        )
    ],
    "two workers on one host, one busy": [
        Place(SHAPES["shared"], False, IdleState.BUSY, "GPU 0 at ", "gpu-a100-9", (0,)),
        Place(
            SHAPES["shared"], True, IdleState.UNKNOWN, "which 2 workers share", "gpu-a100-9", (1,)
        ),
    ],
    "two workers on one host, both idle": [
        Place(SHAPES["shared"], True, IdleState.IDLE, "which 2 workers share)", "gpu-a100-9", (0,)),
        Place(SHAPES["shared"], True, IdleState.IDLE, "which 2 workers share)", "gpu-a100-9", (1,)),
    ],
}


def run_list(conf: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env.update(PYTHONPATH=str(REPO), CLEARML_CONFIG_FILE=str(conf))
    done = subprocess.run(
        [sys.executable, "-m", "tray_app", "list", "--json", "--no-tray"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return {s["id"]: s for s in json.loads(done.stdout)["sessions"]}


@pytest.mark.parametrize("case", list(CASES))
async def test_list_gives_each_shape_its_state_and_the_policy_stops_only_idle_ones(
    case: str, emulator_factory: Any, tmp_path: Path
) -> None:
    places = CASES[case]
    # The emulator's clock starts RAN_MIN ago and is moved to now as the agent reports.
    state = seeded_state(sessions=5, now=datetime.now(UTC) - timedelta(minutes=RAN_MIN))
    emu: EmulatorHandle = emulator_factory(state=state)
    with state.lock:
        own = [
            t["id"]
            for t in state.tasks.values()
            if t["status"] == "in_progress"
            and t["user"] == state.current_user_id
            and not t.get("status_message")
        ]
    placed = dict(zip(own, places, strict=False))
    for task_id, place in placed.items():
        emu.agent.run_on(
            task_id,
            place.shape,
            host=place.host,
            gpu_indexes=place.gpus,
            gpu_reads_for_s=place.gpu_reads_for_s,
        )
        emu.agent.set_mode(AgentMode.IDLE if place.idle else AgentMode.NORMAL, task_id)
    for _ in range(RAN_MIN * 2):
        state.advance_time(30)
        emu.agent.step()

    settings = Path(os.environ["XDG_CONFIG_HOME"]) / "clearml-tray" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    policy = {"mode": "notify_then_stop", "window_minutes": WINDOW_MIN, "grace_minutes": 1}
    settings.write_text(json.dumps({"schema_version": 1, "settings": {"idle": policy}}))
    conf = tmp_path / "clearml.conf"
    conf.write_text(clearml_conf_text(emu.url, emu.access_key, emu.secret_key))

    listed = run_list(conf)
    for task_id, place in placed.items():
        idle = listed[task_id]["idle"]
        assert (idle["state"], place.reason in idle["reason"]) == (place.state, True), idle
        assert (idle["idle_for_s"] is not None) == (place.state == IdleState.IDLE)

    # The stop policy on the same numbers: a warning, then a stop after the grace period, for
    # an idle session only; busy and unknown ones are left alone.
    config = ServerConfig(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    async with ClearMLClient(config) as client:
        service = SessionService(client, web_server=emu.url)
        monitor = IdleMonitor(
            service,
            lambda: IdlePolicy(
                IdleMode.NOTIFY_THEN_STOP, window_minutes=WINDOW_MIN, grace_minutes=1
            ),
            lambda: state.now().timestamp(),
        )
        warned = await monitor.check(await service.snapshot())
        for _ in range(3):
            state.advance_time(30)
            emu.agent.step()
        stopped = await monitor.check(await service.snapshot())
    # Every running session of yours counts, the ones left on their seeded machines too.
    idle_ids = {t for t, s in listed.items() if s["idle"] and s["idle"]["state"] == "idle"}
    assert idle_ids >= {t for t, p in placed.items() if p.state == IdleState.IDLE}
    assert {a.session_id for a in warned if a.kind == "warn"} == idle_ids
    assert {a.session_id for a in stopped if a.kind == "stop"} == idle_ids
    assert all(a.verdict.state == IdleState.IDLE for a in warned + stopped)


def test_with_the_checks_off_list_says_so_and_asks_no_statistics(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emu: EmulatorHandle = emulator_factory(sessions=5)
    settings = Path(os.environ["XDG_CONFIG_HOME"]) / "clearml-tray" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"settings": {"idle": {"mode": "off"}}}))
    conf = tmp_path / "clearml.conf"
    conf.write_text(clearml_conf_text(emu.url, emu.access_key, emu.secret_key))
    listed = run_list(conf)
    judged = [s["idle"] for s in listed.values() if s["idle"] is not None]
    assert judged and all(
        i == {"state": "unknown", "idle_for_s": None, "reason": OFF_REASON} for i in judged
    )
    assert emu.state.count_requests("workers.get_stats") == 0

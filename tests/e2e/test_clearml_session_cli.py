"""The real `clearml-session` CLI (0.17) against the emulator: list, shutdown, and a launch."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.emulator import ClientEnv, EmulatorHandle

pytestmark = pytest.mark.e2e

CLI = Path(sys.executable).with_name("clearml-session")
LIST_LINE = re.compile(r"^(\d+)\] id=(\w+) name='(.*)' tags=(.*) project='(.*)'$")

EmuFactory = Callable[..., EmulatorHandle]
EnvFactory = Callable[[EmulatorHandle], ClientEnv]


def run_cli(
    client_env: ClientEnv, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(CLI), *args],
        env=client_env.env,
        cwd=client_env.home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert client_env.network_attempts() == [], "clearml-session tried to leave the machine"
    return proc


def own_running(emu: EmulatorHandle, *, all_users: bool = False) -> list[dict[str, Any]]:
    tasks = [
        t
        for t in emu.state.tasks.values()
        if "interactive" in t["system_tags"]
        and t["status"] == "in_progress"
        and (all_users or t["user"] == emu.state.current_user_id)
    ]
    return sorted(tasks, key=lambda t: t["last_update"], reverse=True)


def listed(stdout: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in stdout.splitlines():
        match = LIST_LINE.match(line.strip())
        if match:
            rows.append((match.group(2), match.group(3), match.group(5)))
    return rows


def test_list_shows_running_sessions_of_the_current_user(
    emulator_factory: EmuFactory, clearml_client_env: EnvFactory
) -> None:
    emu = emulator_factory(sessions=13)
    proc = run_cli(clearml_client_env(emu), "list")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = own_running(emu)
    assert len(expected) >= 3
    assert listed(proc.stdout) == [(t["id"], t["name"], "DevOps") for t in expected]
    others = {t["id"] for t in own_running(emu, all_users=True)} - {t["id"] for t in expected}
    assert others and not any(o in proc.stdout for o in others)


def test_list_all_users_includes_other_owners(
    emulator_factory: EmuFactory, clearml_client_env: EnvFactory
) -> None:
    emu = emulator_factory(sessions=13)
    proc = run_cli(clearml_client_env(emu), "list", "--all_users")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = [row[0] for row in listed(proc.stdout)]
    assert ids == [t["id"] for t in own_running(emu, all_users=True)]


def test_list_with_no_sessions(
    emulator_factory: EmuFactory, clearml_client_env: EnvFactory
) -> None:
    emu = emulator_factory(sessions=0)
    proc = run_cli(clearml_client_env(emu), "list")
    assert proc.returncode == 0 and "No interactive sessions found" in proc.stdout


def test_shutdown_stops_the_session(
    emulator_factory: EmuFactory, clearml_client_env: EnvFactory
) -> None:
    emu = emulator_factory(sessions=13)
    target, *rest = own_running(emu)
    # Sessions whose stop was requested before (seeded "stopping") finish stopping on the step.
    before = {
        t["id"]: t["status"]
        for t in emu.state.tasks.values()
        if t.get("status_message") != "stopping"
    }
    proc = run_cli(clearml_client_env(emu), "--shutdown", target["id"], "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Shutting down active session id={target['id']}" in proc.stdout
    assert f"Session #{target['id']} shut down, goodbye!" in proc.stdout
    # A live worker runs it: the server marks it "stopping" and the agent finishes the stop.
    task = emu.state.tasks[target["id"]]
    assert task["status"] == "in_progress" and task["status_message"] == "stopping"
    assert task["status_reason"] == "abort request"
    emu.agent.step()
    assert task["status"] == "stopped"
    untouched = [t for t in rest if t["id"] in before]
    assert untouched
    for other in untouched:
        assert emu.state.tasks[other["id"]]["status"] == before[other["id"]]


def test_shutdown_subcommand_stops_the_session(
    emulator_factory: EmuFactory, clearml_client_env: EnvFactory
) -> None:
    emu = emulator_factory(sessions=5)
    target = own_running(emu)[0]
    proc = run_cli(clearml_client_env(emu), "--yes", "shutdown", "--id", target["id"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Session #{target['id']} shutdown" in proc.stdout
    assert emu.state.tasks[target["id"]]["status_message"] == "stopping"


def test_shutdown_of_a_stopped_session_is_refused(
    emulator_factory: EmuFactory, clearml_client_env: EnvFactory
) -> None:
    emu = emulator_factory(sessions=5)
    stopped = next(t for t in emu.state.tasks.values() if t["status"] == "stopped")
    proc = run_cli(clearml_client_env(emu), "--shutdown", stopped["id"], "--yes")
    assert proc.returncode != 0
    assert f"Could not connect to requested session id={stopped['id']} - status 'stopped'" in (
        proc.stdout + proc.stderr
    )
    assert emu.state.tasks[stopped["id"]]["status"] == "stopped"


class _Output:
    """Collects a child's merged output on a thread so the test can poll it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.text = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._lock:
                self.text += line

    def wait_for(self, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if needle in self.text:
                    return True
            time.sleep(0.05)
        return False


@pytest.mark.skipif(shutil.which("ssh") is None, reason="clearml-session needs an ssh client")
def test_launch_creates_a_session_the_agent_runs(
    emulator_factory: EmuFactory, clearml_client_env: EnvFactory
) -> None:
    """Create → enqueue → agent pulls → ports published → CLI starts its SSH tunnel.

    The test stops the CLI once it has got that far (the tunnel itself is proved in
    tests/e2e/test_connect_e2e.py).
    """
    emu = emulator_factory(sessions=0, agent_tick=0.1)
    client_env = clearml_client_env(emu)
    proc = subprocess.Popen(
        [str(CLI), "--queue", "sessions", "--project", "DevOps", "--yes", "--verbose"],
        env=client_env.env,
        cwd=client_env.home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = _Output(proc)
        assert output.wait_for("Starting SSH tunnel to", 90), output.text
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    created = re.search(r"New session created \[id=(\w+)\]", output.text)
    assert created, output.text
    task = emu.state.tasks[created.group(1)]
    assert task["status"] == "in_progress" and task["type"] == "application"
    assert "interactive" in task["system_tags"]
    assert emu.state.projects[task["project"]]["name"] == "DevOps"
    assert emu.state.queues[task["execution"]["queue"]]["name"] == "sessions"
    props = {k: v["value"] for k, v in task["hyperparams"]["properties"].items()}
    assert "Remote machine is ready" in output.text
    assert (
        f"Starting SSH tunnel to root@{props['external_address']}, "
        f"port {props['internal_ssh_port']}" in output.text
    )
    # The CLI stored the user's API key in the task, as the real one does.
    assert task["runtime"]["_user_key"] == emu.access_key
    assert client_env.network_attempts() == []

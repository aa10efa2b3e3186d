"""Emulator fault injection and the real-socket server (restart, dropped connections, CLI)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.emulator import AsgiEmulator, EmulatorHandle

from tray_app.demo import DEMO_ACCESS_KEY, DroppedConnection, FaultKind

ROOT = Path(__file__).resolve().parents[3]


async def post(emu: AsgiEmulator, endpoint: str = "tasks.get_all") -> httpx.Response:
    async with emu.client(headers=emu.basic_header) as client:
        return await client.post(f"/{endpoint}", json={"only_fields": ["id"]})


async def test_next_500_is_an_envelope_then_recovers(asgi_emulator: AsgiEmulator) -> None:
    asgi_emulator.state.faults.fail_next(FaultKind.ERROR_500, 2)
    for _ in range(2):
        response = await post(asgi_emulator)
        assert response.status_code == 500
        assert response.json()["meta"]["result_code"] == 500
    assert (await post(asgi_emulator)).status_code == 200
    assert [k for _, k in asgi_emulator.state.faults.injected] == [FaultKind.ERROR_500] * 2


async def test_502_looks_like_a_proxy_page(asgi_emulator: AsgiEmulator) -> None:
    asgi_emulator.state.faults.fail_next("502")
    response = await post(asgi_emulator)
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")


async def test_injected_401_is_expired_token(asgi_emulator: AsgiEmulator) -> None:
    asgi_emulator.state.faults.fail_next(FaultKind.TOKEN_EXPIRED)
    response = await post(asgi_emulator)
    meta = response.json()["meta"]
    assert (response.status_code, meta["result_subcode"]) == (401, 30)
    assert "Signature has expired" in meta["result_msg"]


async def test_malformed_reply_is_not_json(asgi_emulator: AsgiEmulator) -> None:
    asgi_emulator.state.faults.fail_next(FaultKind.MALFORMED)
    response = await post(asgi_emulator)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_drop_in_process_raises(asgi_emulator: AsgiEmulator) -> None:
    asgi_emulator.state.faults.fail_next(FaultKind.DROP)
    with pytest.raises(DroppedConnection):
        await post(asgi_emulator)


async def test_rates_and_endpoint_scope(asgi_emulator: AsgiEmulator) -> None:
    faults = asgi_emulator.state.faults
    faults.set_rate(FaultKind.ERROR_500, 1.0)
    faults.only_endpoints = frozenset({"tasks.get_all"})
    assert (await post(asgi_emulator)).status_code == 500
    assert (await post(asgi_emulator, "queues.get_all")).status_code == 200
    faults.clear()
    assert (await post(asgi_emulator)).status_code == 200


def test_latency_makes_a_short_timeout_expire(emulator: EmulatorHandle) -> None:
    emulator.state.faults.latency = 5.0
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{emulator.url}/debug.ping", json={}, timeout=0.2)
    emulator.state.faults.latency = 0.0


def test_drop_over_a_socket_closes_without_reply(emulator: EmulatorHandle) -> None:
    emulator.state.faults.fail_next(FaultKind.DROP)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{emulator.url}/debug.ping", json={})
    assert httpx.post(f"{emulator.url}/debug.ping", json={}).status_code == 200


def test_restart_on_the_same_port_keeps_state(emulator: EmulatorHandle) -> None:
    url = emulator.url
    auth = emulator.basic_auth
    created = httpx.post(
        f"{url}/tasks.create", json={"name": "survivor", "type": "training"}, auth=auth
    ).json()["data"]["id"]
    emulator.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/debug.ping", json={}, timeout=2)
    emulator.start()
    assert emulator.url == url
    reply = httpx.post(f"{url}/tasks.get_by_id", json={"task": created}, auth=auth)
    assert reply.json()["data"]["task"]["name"] == "survivor"


def test_write_config_points_at_the_server(emulator: EmulatorHandle, tmp_path: Path) -> None:
    path = emulator.write_config(tmp_path / "conf" / "clearml.conf")
    text = path.read_text()
    assert f"api_server: {emulator.url}" in text and DEMO_ACCESS_KEY in text
    assert path.stat().st_mode & 0o777 == 0o600


def test_factory_agent_tick_runs_the_agent_in_background(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = emulator_factory(sessions=0, agent_tick=0.05)
    auth = emu.basic_auth
    tid = httpx.post(
        f"{emu.url}/tasks.create", json={"name": "abc", "type": "application"}, auth=auth
    ).json()["data"]["id"]
    httpx.post(f"{emu.url}/tasks.enqueue", json={"task": tid, "queue_name": "sessions"}, auth=auth)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        props = emu.state.tasks[tid]["hyperparams"].get("properties", {})
        if "internal_ssh_port" in props:
            break
        time.sleep(0.02)
    assert emu.state.tasks[tid]["status"] == "in_progress"
    assert emu.state.tasks[tid]["hyperparams"]["properties"]["internal_ssh_port"]["value"]


# Starts the command with SIGINT's disposition set as given, whatever this test run inherited.
WITH_SIGINT = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, getattr(signal, sys.argv[1]))\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and dispositions")
@pytest.mark.parametrize(
    ("inherited", "stop_with"),
    [
        ("SIG_DFL", signal.SIGINT),
        # As a shell starts a background command (`... &`, CI jobs): SIGINT ignored.
        ("SIG_IGN", signal.SIGINT),
        ("SIG_IGN", signal.SIGTERM),
    ],
)
def test_demo_server_command_serves_and_stops_on_ctrl_c(
    tmp_path: Path, inherited: str, stop_with: signal.Signals
) -> None:
    conf = tmp_path / "demo.conf"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WITH_SIGINT,
            inherited,
            "-m",
            "tray_app",
            "demo-server",
            "--port",
            "0",
            "--sessions",
            "3",
            "--write-config",
            str(conf),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(lines)
        match = re.search(r"api_server: (http://127\.0\.0\.1:\d+)", output)
        assert match, output
        url = match.group(1)
        assert conf.read_text().count(url) >= 1
        reply = httpx.post(
            f"{url}/tasks.get_all",
            json={"system_tags": ["interactive"]},
            auth=(DEMO_ACCESS_KEY, _secret_from(output)),
        )
        assert len(reply.json()["data"]["tasks"]) == 3
        proc.send_signal(stop_with)
        assert proc.wait(timeout=15) == 0
        assert proc.stdout.read().strip().endswith("Stopped.")
        assert "PySide6" not in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _secret_from(output: str) -> str:
    match = re.search(r'"secret_key": "([^"]+)"', output)
    assert match
    return match.group(1)

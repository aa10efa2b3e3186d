"""The demo sessions' SSH endpoints: password login, echo only, forwards, free ports."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from support.emulator import AsgiEmulator, EmulatorHandle
from test_emulator_agent import create_session, props

from tray_app.demo import seeded_state
from tray_app.demo.seed import SessionPorts
from tray_app.demo.ssh_endpoint import (
    FDS_PER_ENDPOINT,
    MAX_ENDPOINTS,
    RESERVED_FDS,
    SHELLS,
    SessionEndpoints,
    endpoint_budget,
    pick_ports,
    remote_shell,
)


def props_of(task: dict[str, Any]) -> dict[str, str]:
    return {k: v["value"] for k, v in task["hyperparams"]["properties"].items()}


def _hold(address: str, port: int) -> socket.socket | None:
    """Listen on the port like another program would; None if someone already does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        return None
    sock.listen()
    return sock


def test_pick_ports_gives_free_distinct_ports_never_the_fixed_ones() -> None:
    address = "127.0.199.41"
    holder = _hold(address, SessionPorts().ssh)  # e.g. the user's own demo
    try:
        first = pick_ports(address)
        held = [_hold(address, port) for port in astuple(first)]
        try:
            second = pick_ports(address)  # another emulator on the same machine
        finally:
            for sock in held:
                if sock:
                    sock.close()
    finally:
        if holder:
            holder.close()
    assert all(held), "every picked port was free"
    usual = set(astuple(SessionPorts()))
    assert len(set(astuple(first))) == 4 and not set(astuple(first)) & usual
    assert not set(astuple(first)) & set(astuple(second))


def test_a_live_emulator_moves_its_seeded_sessions_off_the_fixed_ports(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    seeded = seeded_state(sessions=5)
    ready = [
        t for t in seeded.tasks.values()
        if t["status"] == "in_progress"
        and (t["hyperparams"].get("properties") or {}).get("internal_ssh_port")
    ]  # fmt: skip
    assert ready and all(props_of(t)["internal_ssh_port"] == "10022" for t in ready)
    # Hold one seeded session's usual port, as the user's own `clearml-tray --demo` does.
    address = props_of(ready[0])["external_address"]
    holder = _hold(address, SessionPorts().ssh)
    try:
        emu = emulator_factory(state=seeded, agent_tick=0.1, ssh_endpoints=False)
        for task in ready:
            published = props_of(emu.state.tasks[task["id"]])
            ports = {published[k] for k in ("internal_ssh_port", "internal_stable_ssh_port")}
            assert not ports & {str(p) for p in astuple(SessionPorts())}
            sock = _hold(published["external_address"], int(published["internal_ssh_port"]))
            assert sock is not None, "the published port is free for the session's server"
            sock.close()
    finally:
        if holder:
            holder.close()


async def test_session_endpoint_logs_in_runs_echo_forwards_and_moves_off_held_port(
    asgi_emulator: AsgiEmulator,
) -> None:
    emu = asgi_emulator
    tid = await create_session(emu)
    emu.agent.step()
    emu.agent.step()  # pulled, then ports published (the usual ones: no picker here)
    published = props(emu, tid)
    address = published["external_address"]
    assert published["internal_ssh_port"] == str(SessionPorts().ssh)
    emu.state.tasks[tid]["runtime"]["_ssh_password"] = "pw-for-the-test"
    holder = _hold(address, SessionPorts().ssh)  # another program has the session's port
    endpoints = SessionEndpoints(emu.state)
    try:
        await endpoints.sync()
        moved = props(emu, tid)
        assert moved["internal_ssh_port"] != published["internal_ssh_port"]
        assert moved["jupyter_url"] == f"http://{address}:{moved['jupyter_port']}/"
        await endpoints.sync()
        port = int(moved["internal_ssh_port"])
        async with asyncssh.connect(
            address, port, username="root", password="pw-for-the-test", known_hosts=None
        ) as conn:
            result = await conn.run("echo ok")
            assert (result.exit_status, result.stdout) == (0, "ok\n")
            refused = await conn.run("rm -rf /tmp/x")
            assert refused.exit_status == 127 and "only `echo`" in str(refused.stderr)
            # "localhost" on the session is its own address: the stand-in JupyterLab answers.
            reader, writer = await conn.open_connection("localhost", int(moved["jupyter_port"]))
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = await reader.read()
            assert reply.startswith(b"HTTP/1.1 200 OK") and b"JupyterLab" in reply
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("192.0.2.1", 80)  # never beyond loopback
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect(
                address, port, username="root", password="wrong", known_hosts=None
            )
        # A stopped session's endpoint goes away.
        emu.state.tasks[tid]["status"] = "stopped"
        await endpoints.sync()
        with pytest.raises(OSError):
            await asyncssh.connect(
                address, port, username="root", password="pw-for-the-test", known_hosts=None
            )
    finally:
        await endpoints.close_all()
        if holder:
            holder.close()


async def test_an_address_this_machine_lacks_is_reported_once_not_retried(
    asgi_emulator: AsgiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """macOS has only 127.0.0.1 on its loopback: the session then has no endpoint, quietly."""
    emu = asgi_emulator
    tid = await create_session(emu)
    emu.agent.step()
    emu.agent.step()
    endpoints = SessionEndpoints(emu.state)
    monkey = pytest.MonkeyPatch()

    async def refuse(*args: object, **kwargs: object) -> object:
        raise OSError(99, "Cannot assign requested address")

    def no_ports(address: str) -> SessionPorts:
        raise OSError(99, "Cannot assign requested address")

    monkey.setattr("tray_app.demo.ssh_endpoint.asyncssh.create_server", refuse)
    monkey.setattr("tray_app.demo.ssh_endpoint.pick_ports", no_ports)
    try:
        before = props(emu, tid)
        for _ in range(3):
            await endpoints.sync()
        assert props(emu, tid) == before  # nothing republished
        warnings = [r.getMessage() for r in caplog.records if "no SSH endpoint" in r.getMessage()]
        ours = [w for w in warnings if tid in w]
        assert len(ours) == 1 and "Cannot assign requested address" in ours[0]
        assert len(warnings) == len(set(warnings))  # every session once, however many syncs
    finally:
        monkey.undo()
        await endpoints.close_all()


async def test_a_shell_closed_mid_line_ends_that_shell_not_the_connection(
    asgi_emulator: AsgiEmulator,
) -> None:
    """As sshd does: a client that drops one channel (a killed ssh sharing the connection)
    leaves the connection and its other channels working."""
    emu = asgi_emulator
    tid = await create_session(emu)
    emu.agent.step()
    emu.agent.step()
    emu.state.tasks[tid]["runtime"]["_ssh_password"] = "pw-for-the-test"
    endpoints = SessionEndpoints(emu.state)
    try:
        await endpoints.sync()
        published = props(emu, tid)
        address, port = published["external_address"], int(published["internal_ssh_port"])
        async with asyncssh.connect(
            address, port, username="root", password="pw-for-the-test", known_hosts=None
        ) as conn:
            for _ in range(3):
                shell = await conn.create_process(term_type="xterm")
                await shell.stdout.readuntil(remote_shell(tid).prompt)
                shell.stdin.write("half a line")  # the shell echoes it when the channel ends
                shell.close()
                await shell.wait_closed()
            result = await conn.run("echo still here", timeout=10)
            assert (result.exit_status, result.stdout) == (0, "still here\n")
    finally:
        await endpoints.close_all()


def test_the_demo_prints_no_library_warnings_on_the_terminal() -> None:
    """`clearml-tray --demo` imports asyncssh, whose DSA names cryptography deprecates: that
    note is for asyncssh's authors, not for the user's terminal."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import tray_app.demo.ssh_endpoint"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "Warning" not in done.stderr, done.stderr


def test_the_endpoint_budget_follows_the_file_descriptor_limit() -> None:
    assert endpoint_budget(1024) == (1024 - RESERVED_FDS) // FDS_PER_ENDPOINT
    assert endpoint_budget(1 << 20) == MAX_ENDPOINTS
    assert endpoint_budget(64) == 1  # never none at all


async def test_endpoints_are_bounded_kept_ones_and_the_users_newest_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = seeded_state(sessions=60)
    endpoints = SessionEndpoints(state, max_endpoints=3)
    running = endpoints._candidates()
    assert len(running) > 3
    me = state.current_user_id
    try:
        await endpoints.sync()
        first = endpoints.served
        assert len(first) == 3
        own = sorted(
            (t for tid, t in state.tasks.items() if tid in running and t["user"] == me),
            key=lambda t: t["started"],
            reverse=True,
        )
        assert len(own) >= 3 and first == {t["id"] for t in own[:3]}
        await endpoints.sync()
        assert endpoints.served == first  # the same ones keep theirs
        limited = [r for r in caplog.records if "SSH endpoints for 3 of" in r.getMessage()]
        assert len(limited) == 1  # said once, not at every sync
    finally:
        await endpoints.close_all()


def test_a_demo_with_20000_sessions_runs_within_1024_file_descriptors(tmp_path: Path) -> None:
    """It ran out of file descriptors (four listeners per session) and logged ~78,000
    tracebacks in 2.5 minutes; now it serves what fits and the API keeps answering."""
    conf = tmp_path / "demo.conf"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tray_app", "demo-server", "--port", "0", "--sessions", "20000",
         "--write-config", str(conf)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Press Ctrl-C to stop" in line:
                break
        fds = Path(f"/proc/{proc.pid}/fd")
        deadline = time.monotonic() + 60
        while len(list(fds.iterdir())) < 100:  # the endpoints are being opened
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        listed = subprocess.run(
            [sys.executable, "-m", "tray_app", "--config-file", str(conf), "list", "--json",
             "--no-tray"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout)["sessions"]
        assert proc.poll() is None
        assert len(list(fds.iterdir())) < 1024
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "Traceback" not in out
    assert "Too many open files" not in out


async def test_each_session_greets_a_login_as_its_machine_would(
    asgi_emulator: AsgiEmulator,
) -> None:
    """A banner before the password, a slow message of the day, prompts that clearml-session's
    own pattern (`$ ` or `# `) does not know: the demo has machines of each kind."""
    assert {s.prompt for s in SHELLS} >= {"$ ", "% ", "❯ ", "$"}
    assert max(s.motd_delay_s for s in SHELLS) >= 1.5
    emu = asgi_emulator
    seen: set[str] = set()
    endpoints = SessionEndpoints(emu.state)
    try:
        while len(seen) < 2:  # two kinds through a real login, with their delays
            tid = await create_session(emu)
            emu.agent.step()
            emu.agent.step()
            shell = remote_shell(tid)
            if shell.name in seen or not (shell.banner or shell.motd_delay_s):
                continue
            seen.add(shell.name)
            emu.state.tasks[tid]["runtime"]["_ssh_password"] = "pw-for-the-test"
            await endpoints.sync()
            published = props(emu, tid)
            address, port = published["external_address"], int(published["internal_ssh_port"])
            async with asyncssh.connect(
                address, port, username="root", password="pw-for-the-test", known_hosts=None
            ) as conn:
                process = await conn.create_process(term_type="xterm")
                greeting = await process.stdout.readuntil(shell.prompt)
                first_line = (shell.motd or "ClearML demo session").splitlines()[0]
                assert greeting.startswith(first_line) and "ClearML demo session" in greeting
                process.close()
    finally:
        await endpoints.close_all()

"""The tunnels' real processes: `QtChildProcess` under the registry, with the real
`clearml-session` (0.17) against the emulator, and a stand-in CLI for what it cannot produce.

The emulator runs here without its sessions' SSH endpoints, so the CLI gets as far as its SSH
tunnel and then retries forever: that is where the retry policy and the process-tree cleanup
are exercised with real processes. A silent TCP listener on the session's address makes the
next `ssh` hang in its handshake, so that a live `ssh` grandchild exists when the app quits.
"""

from __future__ import annotations

import re
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from support.emulator import ClientEnv, EmulatorHandle
from support.qt_wait import until
from support.tunnel_rig import Rig, build_rig

from tray_app.core.settings.presets import PasswordPolicy, Preset
from tray_app.core.tunnels.children import descendants
from tray_app.core.tunnels.environment import find_executable
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.qt.session_process import QtChildren

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="clearml-session needs ssh")

EmuFactory = Callable[..., EmulatorHandle]
EnvFactory = Callable[[EmulatorHandle], ClientEnv]
PRESET = Preset(name="cpu", queue="sessions", project="DevOps", session_name="tray-test")


class History:
    """Every state a rig's tunnels went through, and all they printed."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.seen: list[TunnelInfo] = []
        changed, output = rig.rec.changed, rig.rec.output

        def on_changed() -> None:
            changed()
            self.seen.extend(rig.registry.tunnels().values())

        rig.rec.changed = on_changed  # type: ignore[method-assign]
        rig.rec.output = output  # type: ignore[method-assign]

    def states(self) -> list[TunnelState]:
        seen: list[TunnelState] = []
        for info in self.seen:
            if not seen or seen[-1] != info.state:
                seen.append(info.state)
        return seen

    def text(self) -> str:
        return "".join(text for _, text in self.rig.rec.outputs)


@pytest.fixture
def qt_rig(qtbot: QtBot, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """A registry running real processes (`QtChildProcess`)."""
    made: list[tuple[Rig, QtChildren]] = []

    def make(**options: object) -> Rig:
        children = QtChildren()
        rig = build_rig(
            tmp_path / f"data{len(made)}",
            start_child=children,
            real_time=True,
            **options,  # type: ignore[arg-type]
        )
        made.append((rig, children))
        return rig

    yield make
    for rig, children in made:
        rig.registry.close()
        children.close()


@pytest.fixture
def cli_rig(
    qt_rig: Callable[..., Rig],
    emulator_factory: EmuFactory,
    clearml_client_env: EnvFactory,
) -> Iterator[Callable[..., tuple[Rig, EmulatorHandle, History]]]:
    envs: list[ClientEnv] = []

    def make(
        *, sessions: int = 5, secret_key: str | None = None, retry_limit: int = 3
    ) -> tuple[Rig, EmulatorHandle, History]:
        emu = emulator_factory(sessions=sessions, agent_tick=0.1, ssh_endpoints=False)
        client_env = clearml_client_env(emu)
        if secret_key is not None:
            emu.server.write_config(client_env.config, secret_key=secret_key)
        envs.append(client_env)
        rig = qt_rig(
            executable=find_executable(),
            env=lambda: client_env.env,
            tunnel_retry_limit=retry_limit,
            open_editor_when_ready=False,
        )
        return rig, emu, History(rig)

    yield make
    for client_env in envs:
        assert client_env.network_attempts() == []


def test_the_cli_is_found_in_the_venv() -> None:
    found = find_executable()
    assert found is not None and Path(found).parent == Path(sys.executable).parent


async def test_new_session_goes_queued_allocated_ready_machine_then_retry_limit_stops_it(
    qtbot: QtBot, cli_rig: Callable[..., tuple[Rig, EmulatorHandle, History]]
) -> None:
    """Seeded running sessions make the CLI offer to reconnect: the registry declines (N),
    confirms the queue and the launch, follows the setup, and after three failed tunnels
    stops the child with a notification; the remote session keeps running."""
    rig, emu, history = cli_rig(sessions=5)
    before = set(emu.state.tasks)
    launched = await rig.registry.create(PRESET)
    assert launched.key == "launch-1"
    await until(lambda: rig.only().state is TunnelState.FAILED, limit_s=90)
    info = rig.only()
    new = set(emu.state.tasks) - before
    assert len(new) == 1, "exactly one new session (no attach to an existing one)"
    (task_id,) = new
    assert info.session_id == task_id and info.key == task_id
    task = emu.state.tasks[task_id]
    assert task["name"] == "tray-test" and task["status"] == "in_progress"
    assert emu.state.queues[task["execution"]["queue"]]["name"] == "sessions"
    seq = history.states()
    assert seq[0] is TunnelState.LAUNCHING
    assert seq.index(TunnelState.CONNECTING) < seq.index(TunnelState.RETRYING)
    assert seq[-1] is TunnelState.FAILED
    messages = [i.last_message for i in history.seen]
    # The agent may pull the task before the CLI's first poll: "queued" is not always seen.
    assert any(m.startswith("Status: ") for m in messages), messages
    assert "Remote machine allocated" in messages
    text = history.text()
    assert text.count("SSH tunneling failed") == 3
    assert "Connect to session [0-" in text
    # Notified once (after "Starting a session"), with the log lines and a working Show log.
    assert rig.rec.kinds() == ["progress", "tunnel_problems"]
    _kind, _title, body, buttons, _tag = rig.rec.notices[-1]
    assert "3" in body and "SSH tunneling failed" in body
    assert [label for label, _ in buttons] == ["Show log"]
    buttons[0][1]()
    assert rig.rec.followed == [task_id]
    # The child is gone, its state file (which holds the password) deleted, the log kept.
    child = rig.registry.child("launch-1")
    assert child is not None
    await until(lambda: not child.running, limit_s=10)
    assert not child.state_file.exists()
    log_text = child.output.log_path.read_text()
    assert "clearml-session --config-file" in log_text and "Creating new session" in log_text
    password = emu.state.tasks[task_id]["runtime"].get("_ssh_password") or ""
    assert len(password) > 8
    assert password not in log_text and password not in text
    assert emu.state.tasks[task_id]["status"] == "in_progress"


async def test_a_fixed_password_reaches_the_session_but_never_the_command_line(
    qtbot: QtBot, cli_rig: Callable[..., tuple[Rig, EmulatorHandle, History]]
) -> None:
    """Any local user can read /proc/<pid>/cmdline: the fixed password goes through the CLI's
    own state file, and the real clearml-session uses it for the new session."""
    rig, emu, _ = cli_rig(sessions=0)
    before = set(emu.state.tasks)
    preset = Preset(name="fixed", queue="sessions", password_policy=PasswordPolicy.FIXED)
    launched = await rig.registry.create(preset, "Fixed pw 0123")
    child = rig.registry.child(launched.key or "")
    assert child is not None and child.process is not None
    cmdline = _cmdline(child.process.pid)
    assert "clearml-session" in cmdline
    assert "Fixed pw 0123" not in cmdline and "--password" not in cmdline
    await until(lambda: rig.only().session_id is not None, limit_s=60)
    task_id = rig.only().session_id
    assert task_id in set(emu.state.tasks) - before

    def password() -> str:
        with emu.state.lock:
            return str((emu.state.tasks[task_id].get("runtime") or {}).get("_ssh_password", ""))

    await until(lambda: bool(password()), limit_s=30)
    assert password() == "Fixed pw 0123"
    rig.registry.disconnect("launch-1")
    await until(lambda: not child.running, limit_s=15)
    assert not child.state_file.exists()  # it held the password


async def test_unknown_queue_notifies_with_the_cli_error(
    qtbot: QtBot, cli_rig: Callable[..., tuple[Rig, EmulatorHandle, History]]
) -> None:
    rig, _, _ = cli_rig(sessions=0)
    await rig.registry.create(Preset(name="x", queue="no-such-queue"))
    await until(lambda: rig.only().state is TunnelState.FAILED, limit_s=60)
    await until(lambda: len(rig.rec.notices) > 1, limit_s=10)
    kind, _title, body, buttons, _ = rig.rec.notices[1]
    assert kind == "session_failed"
    assert 'Could not find queue named "no-such-queue"' in body + rig.only().last_message
    assert [label for label, _ in buttons] == ["Show log"]
    assert rig.rec.kinds() == ["progress", "session_failed"]


async def test_wrong_credentials_notify_an_auth_error(
    qtbot: QtBot, cli_rig: Callable[..., tuple[Rig, EmulatorHandle, History]]
) -> None:
    rig, emu, history = cli_rig(sessions=0, secret_key="not-the-right-secret-0000")
    await rig.registry.create(PRESET)
    await until(lambda: rig.only().state is TunnelState.FAILED, limit_s=60)
    await until(lambda: len(rig.rec.notices) > 1, limit_s=10)
    kind, title, body, _, _ = rig.rec.notices[1]
    assert kind == "session_failed"
    assert "401" in body or "credentials" in (title + body).lower()
    assert "not-the-right-secret" not in history.text()
    assert emu.state.tasks == {} or all(t["name"] != "tray-test" for t in emu.state.tasks.values())


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _in_session(sid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[4]) == sid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="walks /proc")
async def test_stop_all_leaves_no_clearml_session_or_ssh_behind(
    qtbot: QtBot, cli_rig: Callable[..., tuple[Rig, EmulatorHandle, History]]
) -> None:
    rig, emu, history = cli_rig(sessions=5, retry_limit=100)
    running = next(
        t for t in emu.state.tasks.values()
        if t["status"] == "in_progress" and t["user"] == emu.state.current_user_id
        and t.get("status_message") != "stopping"
        and (t.get("hyperparams") or {}).get("properties", {}).get("external_address")
    )  # fmt: skip
    props = running["hyperparams"]["properties"]
    host, port = props["external_address"]["value"], int(props["internal_ssh_port"]["value"])
    assert host.startswith("127.")
    # Accepts and never answers: ssh waits for the server's banner.
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind((host, port))
    silent.listen(8)
    try:
        key = await rig.registry.attach_now(running["id"])
        child = rig.registry.child(key or "")
        assert child is not None and child.process is not None
        child_pid = child.process.pid
        assert child_pid > 0

        def ssh_pids() -> list[int]:
            return [
                p for p in descendants(child_pid) if Path(_cmdline(p).split(" ")[0]).name == "ssh"
            ]

        try:
            await until(lambda: bool(ssh_pids()), limit_s=60)
        except Exception:
            raise AssertionError(history.text()) from None
        tree = [child_pid, *descendants(child_pid)]
        ssh = ssh_pids()
        assert any(f"{host}" in _cmdline(p) for p in ssh)
        rig.registry.stop_all(shutdown_remote=False)
        assert not child.running
        assert [p for p in tree if _alive(p)] == []
        assert _in_session(child_pid) == []
        assert rig.only().state is TunnelState.CLOSED
        # Disconnecting is local: the remote session is still running.
        assert emu.state.tasks[running["id"]]["status"] == "in_progress"
    finally:
        silent.close()


# A stand-in for what the emulator cannot produce (no SSH server behind the sessions): the
# connected phase and an unknown question. The lines are the real CLI's (0.17) strings.
FAKE_CLI = """#!{python}
import sys
def ask(question):
    sys.stdout.write(question)
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    print("<got %s>" % answer, flush=True)
    return answer
print("clearml-session - CLI for launching JupyterLab / VSCode / SSH on a remote machine")
ask("Launch interactive session [Y]/n? ")
ask("Overwrite the local workspace folder '/tmp/x' [Y]/n? ")
print("New session created [id=0123456789abcdef0123456789abcdef]")
print("Remote machine is ready")
print("Starting SSH tunnel to root@127.0.3.17, port 10022")
print("Interactive session is running:")
print("SSH: ssh root@localhost -p 8023 [password: Fake-Pass-0123]")
print("Jupyter Lab URL: http://localhost:8879/?token=faketoken0123")
print("VSCode server available at http://localhost:8899/")
print()
print("Connection is up and running")
print('Enter "r" (or "reconnect") to reconnect the session (for example after suspend)')
print("or \\"Shutdown\\" to shut down remote interactive session", flush=True)
for line in sys.stdin:
    line = line.strip()
    print("<got %s>" % line, flush=True)
    if line == "r":
        print("Reconnecting to interactive session", flush=True)
    elif line == "Shutdown":
        print("Shutting down interactive session")
        print("Remote session shutdown", flush=True)
        sys.exit(0)
"""


def _script(tmp_path: Path, name: str, text: str) -> str:
    script = tmp_path / name
    script.write_text(text.replace("{python}", sys.executable))
    script.chmod(0o755)
    return str(script)


async def test_an_unknown_prompt_is_asked_when_the_child_goes_quiet_never_answered(
    qtbot: QtBot, qt_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = qt_rig(executable=_script(tmp_path, "clearml-session", FAKE_CLI))
    rig.rec.answers = ["n"]
    launched = await rig.registry.create(Preset(name="p", queue="q"))
    await until(lambda: bool(rig.rec.asked), limit_s=15)
    assert "Overwrite the local workspace folder" in rig.rec.asked[0]
    await rig.settle()
    await until(lambda: "<got n>" in _printed(rig), limit_s=10)
    text = _printed(rig)
    assert "<got y>" in text  # the known "Launch" prompt was answered by the registry
    assert rig.registry.child(launched.key or "") is not None


async def _ready_fake(qt_rig: Callable[..., Rig], tmp_path: Path) -> Rig:
    rig = qt_rig(executable=_script(tmp_path, "clearml-session", FAKE_CLI))
    rig.rec.answers = ["y"]
    await rig.registry.create(Preset(name="p", queue="q"))
    await until(lambda: rig.only().state is TunnelState.READY, limit_s=15)
    await rig.settle()
    return rig


async def test_reconnect_and_shutdown_are_typed_into_the_real_child(
    qt_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = await _ready_fake(qt_rig, tmp_path)
    session = rig.only().key
    assert rig.registry.password(session) == "Fake-Pass-0123"
    rig.registry.reconnect(session)
    await until(lambda: "Reconnecting to interactive session" in _printed(rig), limit_s=10)
    rig.registry.shutdown("launch-1")  # the launch key still works after the session id is known
    await until(lambda: rig.only().state is TunnelState.CLOSED, limit_s=10)
    assert "Remote session shutdown" in _printed(rig)
    assert rig.rec.kinds() == ["progress", "session_ready"]


async def test_quit_with_shutdown_lets_a_ready_child_end_by_itself(
    qt_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = await _ready_fake(qt_rig, tmp_path)
    child = rig.registry.child(rig.only().key)
    assert child is not None
    rig.registry.stop_all(shutdown_remote=True)
    assert not child.running
    assert child.exit_code == 0  # it ended by itself after "Shutdown", not by a signal
    log_text = child.output.log_path.read_text()
    assert "<got Shutdown>" in log_text and "Remote session shutdown" in log_text
    assert re.fullmatch(r"\d{8}-\d{6}-launch-1\.log", child.output.log_path.name)
    assert "Fake-Pass-0123" not in log_text


def _printed(rig: Rig) -> str:
    return "".join(text for _, text in rig.rec.outputs)


# `clearml-session --attach <id> --yes` as the real CLI prints it; the ready block waits for a
# gate file, so a test can take the tunnel over while it is still coming up.
FAKE_ATTACH_CLI = """#!{python}
import os, sys, time
SID = "0123456789abcdef0123456789abcdef"
print("clearml-session - CLI for launching JupyterLab / VSCode / SSH on a remote machine")
print("Checking session #" + SID)
print("Connecting to active session id=" + SID)
print("Waiting for remote machine allocation [id=" + SID + "]")
print("Remote machine allocated")
print("Remote machine is ready")
print("Setting up connection to remote session")
print("Starting SSH tunnel to root@127.0.3.17, port 10022", flush=True)
while not os.path.exists("{gate}"):
    time.sleep(0.05)
print("Interactive session is running:")
print("SSH: ssh root@localhost -p 8023 [password: Fake-Pass-0123]")
print()
print("Connection is up and running", flush=True)
for line in sys.stdin:
    print("<got %s>" % line.strip(), flush=True)
"""
SID = "0123456789abcdef0123456789abcdef"


SID = "0123456789abcdef0123456789abcdef"


async def test_an_unused_prewarmed_attach_ends_quietly_and_leaves_no_process(
    qtbot: QtBot, qt_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    gate = tmp_path / "ready-gate"
    gate.touch()
    text = FAKE_ATTACH_CLI.replace("{gate}", str(gate))
    rig = qt_rig(executable=_script(tmp_path, "clearml-session-attach", text))
    rig.registry.attach(SID, "Interactive Session", prewarm=True)
    await rig.settle()
    await until(lambda: rig.only().state is TunnelState.READY, limit_s=15)
    key = rig.only().key
    child = rig.registry.child(key)
    assert child is not None and child.process is not None
    pid, log_path, state_file = child.process.pid, child.output.log_path, child.state_file
    tree = [pid, *descendants(pid)]
    rig.registry.retire(key)
    await until(lambda: key not in rig.registry.tunnels(), limit_s=15)
    assert [p for p in tree if _alive(p)] == []
    assert not log_path.exists() and not state_file.exists()
    assert rig.rec.notices == []
    pid_file = rig.registry.pid_file.path
    assert not pid_file.exists() or str(pid) not in pid_file.read_text()


async def test_a_program_that_cannot_start_ends_its_tunnel_in_words(
    qtbot: QtBot, qt_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = qt_rig(executable=str(tmp_path / "no-such-program"))
    await rig.registry.attach_now(SID, "gpu box")
    await until(lambda: rig.only().state is TunnelState.FAILED, limit_s=10)
    kind, title, body, _, _ = rig.rec.notices[-1]
    assert (kind, title) == ("session_failed", "clearml-session stopped")
    # Under setpriv (Linux) the wrapper says it; elsewhere QProcess's own error does.
    assert "no-such-program" in body and (
        "exited with code 127" in body or "could not start" in body
    )

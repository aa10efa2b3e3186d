"""SessionLauncher with the real `clearml-session` (0.17) against the emulator.

The emulator runs here without its sessions' SSH endpoints, so the CLI gets as far as its SSH
tunnel and then retries forever: that is where the retry policy and the process-tree cleanup
are exercised with real processes. A silent TCP listener on the session's address makes the
next `ssh` hang in its handshake, so that a live `ssh` grandchild exists when the app quits.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from support.emulator import ClientEnv, EmulatorHandle

from tray_app.core.settings.presets import Preset
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.qt.launcher import SessionLauncher, descendants, find_executable

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="clearml-session needs ssh")

EmuFactory = Callable[..., EmulatorHandle]
EnvFactory = Callable[[EmulatorHandle], ClientEnv]
TUNNEL_LINE = re.compile(r"Starting SSH tunnel to (\S+)@(\S+), port (\d+)")


@dataclass
class RecordingNotifier:
    sent: list[tuple[str, str, str, list[tuple[str, Callable[[], None]]], bool]] = field(
        default_factory=list
    )
    progress: list[tuple[str, str, list[tuple[str, Callable[[], None]]], str]] = field(
        default_factory=list
    )
    tags: list[str] = field(default_factory=list)

    def notify(
        self,
        kind: str,
        title: str,
        body: str,
        buttons: Any = (),
        *,
        critical: bool = False,
        on_clicked: Callable[[], None] | None = None,
        tag: str = "",
    ) -> bool:
        if kind == "progress":  # "Starting a session": kept apart, the tests below are on outcomes
            self.progress.append((title, body, list(buttons), tag))
            return True
        self.sent.append((kind, title, body, list(buttons), critical))
        self.tags.append(tag)
        return True

    def kinds(self) -> list[str]:
        return [n[0] for n in self.sent]


@dataclass
class Rig:
    launcher: SessionLauncher
    notifier: RecordingNotifier
    emu: EmulatorHandle
    client_env: ClientEnv
    settings: Settings
    history: list[TunnelInfo]
    output: list[str]
    shown_logs: list[str]

    def only(self) -> TunnelInfo:
        (info,) = self.launcher.tunnels().values()
        return info


@pytest.fixture
def rig_factory(
    qtbot: QtBot,
    tmp_path: Path,
    emulator_factory: EmuFactory,
    clearml_client_env: EnvFactory,
) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(*, sessions: int = 5, secret_key: str | None = None, retry_limit: int = 3) -> Rig:
        emu = emulator_factory(sessions=sessions, agent_tick=0.1, ssh_endpoints=False)
        client_env = clearml_client_env(emu)
        if secret_key is not None:
            emu.server.write_config(client_env.config, secret_key=secret_key)
        settings = Settings(tunnel_retry_limit=retry_limit, open_editor_when_ready=False)
        notifier = RecordingNotifier()
        shown: list[str] = []
        launcher = SessionLauncher(
            lambda: settings,
            notifier,
            env=lambda: client_env.env,
            data_dir=tmp_path / "data",
            show_log=shown.append,
        )
        rig = Rig(launcher, notifier, emu, client_env, settings, [], [], shown)
        launcher.tunnels_changed.connect(lambda: rig.history.extend(launcher.tunnels().values()))
        launcher.output.connect(lambda key, text: rig.output.append(text))
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.launcher.close()
        assert rig.client_env.network_attempts() == []


PRESET = Preset(name="cpu", queue="sessions", project="DevOps", session_name="tray-test")


def states(rig: Rig) -> list[TunnelState]:
    seen: list[TunnelState] = []
    for info in rig.history:
        if not seen or seen[-1] != info.state:
            seen.append(info.state)
    return seen


def test_the_cli_is_found_in_the_venv() -> None:
    assert Path(find_executable()).parent == Path(os.sys.executable).parent  # type: ignore[attr-defined]


def test_new_session_goes_queued_allocated_ready_machine_then_retry_limit_stops_it(
    qtbot: QtBot, rig_factory: Callable[..., Rig]
) -> None:
    """Seeded running sessions make the CLI offer to reconnect: the launcher declines (N),
    confirms the queue and the launch, follows the setup, and after three failed tunnels
    stops the child with a notification; the remote session keeps running."""
    rig = rig_factory(sessions=5)
    before = set(rig.emu.state.tasks)
    key = rig.launcher.create(PRESET)
    assert key.startswith("launch-")
    qtbot.waitUntil(lambda: rig.only().state is TunnelState.FAILED, timeout=90_000)
    info = rig.only()
    new = set(rig.emu.state.tasks) - before
    assert len(new) == 1, "exactly one new session (no attach to an existing one)"
    (task_id,) = new
    assert info.session_id == task_id and info.key == task_id
    task = rig.emu.state.tasks[task_id]
    assert task["name"] == "tray-test" and task["status"] == "in_progress"
    assert rig.emu.state.queues[task["execution"]["queue"]]["name"] == "sessions"
    seq = states(rig)
    assert seq[0] is TunnelState.LAUNCHING
    assert seq.index(TunnelState.CONNECTING) < seq.index(TunnelState.RETRYING)
    assert seq[-1] is TunnelState.FAILED
    messages = [i.last_message for i in rig.history]
    # The agent may pull the task before the CLI's first poll: "queued" is not always seen.
    assert any(m.startswith("Status: ") for m in messages), messages
    assert "Remote machine allocated" in messages
    text = "".join(rig.output)
    assert text.count("SSH tunneling failed") == 3
    assert "Connect to session [0-" in text
    # Notified once, with the log lines and a working "Show log" button.
    assert rig.notifier.kinds() == ["tunnel_problems"]
    _kind, _title, body, buttons, critical = rig.notifier.sent[0]
    assert critical and "3" in body and "SSH tunneling failed" in body
    assert [label for label, _ in buttons] == ["Show log"]
    buttons[0][1]()
    assert rig.shown_logs == [task_id]
    # The child is gone, its state file (which holds the password) deleted, the log kept.
    proc = rig.launcher.process(key)
    assert proc is not None
    qtbot.waitUntil(lambda: not proc.running(), timeout=10_000)
    assert proc.config_file is not None and not proc.config_file.exists()
    log_text = proc.log_path.read_text()
    assert "clearml-session --config-file" in log_text and "Creating new session" in log_text
    password = rig.emu.state.tasks[task_id]["runtime"].get("_ssh_password") or ""
    assert len(password) > 8
    assert password not in log_text and password not in text
    assert rig.emu.state.tasks[task_id]["status"] == "in_progress"


def test_a_fixed_password_reaches_the_session_but_never_the_command_line(
    qtbot: QtBot, rig_factory: Callable[..., Rig]
) -> None:
    """Any local user can read /proc/<pid>/cmdline: the fixed password goes through the CLI's
    own state file, and the real clearml-session uses it for the new session."""
    from tray_app.core.settings.presets import PasswordPolicy

    rig = rig_factory(sessions=0)
    before = set(rig.emu.state.tasks)
    preset = Preset(name="fixed", queue="sessions", password_policy=PasswordPolicy.FIXED)
    key = rig.launcher.create(preset, "Fixed pw 0123")
    proc = rig.launcher.process(key)
    assert proc is not None
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    assert b"Fixed pw 0123" not in cmdline and b"--password" not in cmdline
    qtbot.waitUntil(lambda: rig.only().session_id is not None, timeout=60_000)
    task_id = rig.only().session_id
    assert task_id in set(rig.emu.state.tasks) - before

    def password() -> str:
        with rig.emu.state.lock:
            return str((rig.emu.state.tasks[task_id].get("runtime") or {}).get("_ssh_password", ""))

    qtbot.waitUntil(lambda: bool(password()), timeout=30_000)
    assert password() == "Fixed pw 0123"
    rig.launcher.disconnect(key)
    qtbot.waitUntil(lambda: not proc.running(), timeout=15_000)
    assert proc.config_file is not None and not proc.config_file.exists()  # it held the password


def test_unknown_queue_notifies_with_the_cli_error(
    qtbot: QtBot, rig_factory: Callable[..., Rig]
) -> None:
    rig = rig_factory(sessions=0)
    rig.launcher.create(Preset(name="x", queue="no-such-queue"))
    qtbot.waitUntil(lambda: rig.only().state is TunnelState.FAILED, timeout=60_000)
    qtbot.waitUntil(lambda: bool(rig.notifier.sent), timeout=10_000)
    kind, _title, body, buttons, _ = rig.notifier.sent[0]
    assert kind == "session_failed"
    assert 'Could not find queue named "no-such-queue"' in body + rig.only().last_message
    assert [label for label, _ in buttons] == ["Show log"]
    assert len(rig.notifier.sent) == 1, rig.notifier.sent


def test_wrong_credentials_notify_an_auth_error(
    qtbot: QtBot, rig_factory: Callable[..., Rig]
) -> None:
    rig = rig_factory(sessions=0, secret_key="not-the-right-secret-0000")
    rig.launcher.create(PRESET)
    qtbot.waitUntil(lambda: rig.only().state is TunnelState.FAILED, timeout=60_000)
    qtbot.waitUntil(lambda: bool(rig.notifier.sent), timeout=10_000)
    kind, title, body, _, _ = rig.notifier.sent[0]
    assert kind == "session_failed"
    assert "401" in body or "credentials" in (title + body).lower()
    assert "not-the-right-secret" not in "".join(rig.output)
    assert rig.emu.state.tasks == {} or all(
        t["name"] != "tray-test" for t in rig.emu.state.tasks.values()
    )


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
def test_stop_all_leaves_no_clearml_session_or_ssh_behind(
    qtbot: QtBot, rig_factory: Callable[..., Rig]
) -> None:
    rig = rig_factory(sessions=5, retry_limit=100)
    running = next(
        t for t in rig.emu.state.tasks.values()
        if t["status"] == "in_progress" and t["user"] == rig.emu.state.current_user_id
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
        key = rig.launcher.attach(running["id"])
        proc = rig.launcher.process(key)
        assert proc is not None
        qtbot.waitUntil(lambda: proc.pid > 0, timeout=10_000)
        child_pid = proc.pid

        def ssh_pids() -> list[int]:
            return [
                p for p in descendants(child_pid) if Path(_cmdline(p).split(" ")[0]).name == "ssh"
            ]

        try:
            qtbot.waitUntil(lambda: bool(ssh_pids()), timeout=60_000)
        except Exception:
            raise AssertionError("".join(rig.output)) from None
        tree = [child_pid, *descendants(child_pid)]
        ssh = ssh_pids()
        assert any(f"{host}" in _cmdline(p) for p in ssh)
        rig.launcher.stop_all(shutdown_remote=False)
        assert not proc.running()
        assert [p for p in tree if _alive(p)] == []
        assert _in_session(child_pid) == []
        assert rig.only().state is TunnelState.CLOSED
        # Disconnecting is local: the remote session is still running.
        assert rig.emu.state.tasks[running["id"]]["status"] == "in_progress"
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


@dataclass
class FakeRig:
    launcher: SessionLauncher
    notifier: RecordingNotifier
    settings: Settings
    ready: list[TunnelInfo]
    editors: list[TunnelInfo]
    copied: list[str]
    opened: list[str]
    prompts: list[tuple[str, str]]
    output: list[str]


@pytest.fixture
def fake_rig(qtbot: QtBot, tmp_path: Path) -> Iterator[FakeRig]:
    script = tmp_path / "clearml-session"
    script.write_text(FAKE_CLI.replace("{python}", os.sys.executable))  # type: ignore[attr-defined]
    script.chmod(0o755)
    settings = Settings(open_editor_when_ready=True)
    notifier = RecordingNotifier()
    ready: list[TunnelInfo] = []
    editors: list[TunnelInfo] = []
    copied: list[str] = []
    opened: list[str] = []
    launcher = SessionLauncher(
        lambda: settings,
        notifier,
        executable=str(script),
        data_dir=tmp_path / "data",
        on_ready=ready.append,
        open_editor=editors.append,
        open_url=opened.append,
    )
    launcher.copy_ssh = lambda info: copied.append(f"ssh {info.ssh_host_alias}")
    rig = FakeRig(launcher, notifier, settings, ready, editors, copied, opened, [], [])
    rig.launcher.prompt_needed.connect(lambda key, q: rig.prompts.append((key, q)))
    rig.launcher.output.connect(lambda key, text: rig.output.append(text))
    yield rig
    rig.launcher.close()


def test_an_unknown_prompt_is_asked_to_the_user_never_answered(
    qtbot: QtBot, fake_rig: FakeRig
) -> None:
    key = fake_rig.launcher.create(Preset(name="p", queue="q"))
    qtbot.waitUntil(lambda: bool(fake_rig.prompts), timeout=15_000)
    (asked_key, question) = fake_rig.prompts[0]
    assert asked_key == key and "Overwrite the local workspace folder" in question
    text = "".join(fake_rig.output)
    assert "<got y>" in text  # the known "Launch" prompt was answered
    assert text.count("<got") == 1
    assert fake_rig.launcher.tunnels()[key].state is TunnelState.LAUNCHING
    fake_rig.launcher.answer(key, "n")
    qtbot.waitUntil(lambda: "<got n>" in "".join(fake_rig.output), timeout=10_000)


def test_ready_notifies_with_buttons_and_opens_the_editor(qtbot: QtBot, fake_rig: FakeRig) -> None:
    key = fake_rig.launcher.create(Preset(name="p", queue="q"))
    qtbot.waitUntil(lambda: bool(fake_rig.prompts), timeout=15_000)
    fake_rig.launcher.answer(key, "y")
    qtbot.waitUntil(lambda: bool(fake_rig.ready), timeout=15_000)
    info = fake_rig.ready[0]
    assert info.key == info.session_id == "0123456789abcdef0123456789abcdef"
    assert info.state is TunnelState.READY and info.local_ssh_port == 8023
    assert info.user == "root"
    assert info.jupyter_url == "http://localhost:8879/?token=faketoken0123"
    assert fake_rig.editors == [info]  # settings.open_editor_when_ready
    (kind, title, body, buttons, _) = fake_rig.notifier.sent[0]
    assert (kind, title) == ("session_ready", "Session ready")
    assert [label for label, _ in buttons] == [
        "Open in VS Code",
        "Copy SSH command",
        "Open JupyterLab",
    ]
    dict(buttons)["Copy SSH command"]()
    dict(buttons)["Open JupyterLab"]()
    assert fake_rig.copied == ["ssh clearml-01234567"]  # the flow writes the Host block
    assert body == "p (01234567) is connected."
    assert fake_rig.opened == ["http://localhost:8879/?token=faketoken0123"]
    assert fake_rig.launcher.password(key) == "Fake-Pass-0123"
    proc = fake_rig.launcher.process(key)
    assert proc is not None
    # Named by start time: the next run's launch-1 does not overwrite this run's log.
    assert re.fullmatch(r"\d{8}-\d{6}-launch-1\.log", proc.log_path.name)
    assert "Fake-Pass-0123" not in proc.log_path.read_text()
    assert "Fake-Pass-0123" not in "".join(fake_rig.output) + body


def test_reconnect_and_shutdown_are_written_to_the_child(qtbot: QtBot, fake_rig: FakeRig) -> None:
    fake_rig.settings.open_editor_when_ready = False
    key = fake_rig.launcher.create(Preset(name="p", queue="q"))
    qtbot.waitUntil(lambda: bool(fake_rig.prompts), timeout=15_000)
    fake_rig.launcher.answer(key, "y")
    qtbot.waitUntil(lambda: bool(fake_rig.ready), timeout=15_000)
    assert fake_rig.editors == []
    session = fake_rig.ready[0].key
    fake_rig.launcher.reconnect(session)
    qtbot.waitUntil(
        lambda: "Reconnecting to interactive session" in "".join(fake_rig.output), timeout=10_000
    )
    fake_rig.launcher.shutdown(key)  # the launch key still works after the session id is known
    qtbot.waitUntil(
        lambda: fake_rig.launcher.tunnels()[session].state is TunnelState.CLOSED, timeout=10_000
    )
    assert "Remote session shutdown" in "".join(fake_rig.output)
    assert [n[0] for n in fake_rig.notifier.sent] == ["session_ready"]


def test_disconnect_ends_the_child(qtbot: QtBot, fake_rig: FakeRig) -> None:
    key = fake_rig.launcher.create(Preset(name="p", queue="q"))
    qtbot.waitUntil(lambda: bool(fake_rig.prompts), timeout=15_000)
    proc = fake_rig.launcher.process(key)
    assert proc is not None and proc.running()
    fake_rig.launcher.disconnect(key)
    qtbot.waitUntil(lambda: not proc.running(), timeout=10_000)
    assert fake_rig.launcher.tunnels()[key].state is TunnelState.CLOSED
    assert fake_rig.notifier.sent == []


def test_a_launch_says_so_at_once_with_follow_log_and_cancel(
    qtbot: QtBot, fake_rig: FakeRig
) -> None:
    followed: list[str] = []
    fake_rig.launcher._show_log = followed.append
    key = fake_rig.launcher.create(Preset(name="p", queue="q", session_name="My session"))
    # Posted before the CLI said anything.
    ((title, body, buttons, tag),) = fake_rig.notifier.progress
    assert title == "Starting a session" and body.startswith("My session: ")
    assert [label for label, _ in buttons] == ["Follow log", "Cancel"]
    dict(buttons)["Follow log"]()
    assert followed == [key]
    proc = fake_rig.launcher.process(key)
    assert proc is not None and proc.running()
    dict(buttons)["Cancel"]()
    qtbot.waitUntil(lambda: not proc.running(), timeout=10_000)
    assert fake_rig.launcher.tunnels()[key].state is TunnelState.CLOSED
    assert tag


def test_ready_replaces_the_starting_notice(qtbot: QtBot, fake_rig: FakeRig) -> None:
    fake_rig.settings.open_editor_when_ready = False
    key = fake_rig.launcher.create(Preset(name="p", queue="q"))
    qtbot.waitUntil(lambda: bool(fake_rig.prompts), timeout=15_000)
    fake_rig.launcher.answer(key, "y")
    qtbot.waitUntil(lambda: bool(fake_rig.notifier.sent), timeout=15_000)
    # The same tag: the notifier withdraws "Starting a session" when "Session ready" shows.
    assert fake_rig.notifier.tags == [fake_rig.notifier.progress[0][3]]


def test_quit_with_shutdown_sends_shutdown_to_connected_children(
    qtbot: QtBot, fake_rig: FakeRig
) -> None:
    fake_rig.settings.open_editor_when_ready = False
    key = fake_rig.launcher.create(Preset(name="p", queue="q"))
    qtbot.waitUntil(lambda: bool(fake_rig.prompts), timeout=15_000)
    fake_rig.launcher.answer(key, "y")
    qtbot.waitUntil(lambda: bool(fake_rig.ready), timeout=15_000)
    proc = fake_rig.launcher.process(key)
    assert proc is not None
    fake_rig.launcher.stop_all(shutdown_remote=True)
    assert not proc.running()
    assert proc.exit_code == 0  # it ended by itself after "Shutdown", not by a signal
    log_text = proc.log_path.read_text()
    assert "<got Shutdown>" in log_text and "Remote session shutdown" in log_text


def test_a_flooding_child_cannot_fill_the_disk_with_its_log(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from tray_app.qt import launcher as launcher_mod
    from tray_app.qt.launcher import SessionProcess

    monkeypatch.setattr(launcher_mod, "LOG_LIMIT_CHARS", 50_000)
    flood = "import sys\nfor i in range(3000): print('x' * 99)\nprint('the end')\n"
    proc = SessionProcess(
        "flood",
        [sys.executable, "-c", flood],
        env=dict(os.environ),
        log_path=tmp_path / "flood.log",
    )
    proc.start()
    qtbot.waitUntil(lambda: not proc.running(), timeout=20_000)
    proc.close_log()
    text = (tmp_path / "flood.log").read_text()
    assert len(text) < 50_000 + 200  # ~300 kB of output, the log capped
    assert "[the log stops here: over 0 MB of output]" in text
    assert proc.last_lines[-1] == "the end"  # still read and remembered after the cap


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


@pytest.fixture
def attach_rig(fake_rig: FakeRig, tmp_path: Path) -> tuple[FakeRig, Path]:
    gate = tmp_path / "ready-gate"
    script = tmp_path / "clearml-session-attach"
    text = FAKE_ATTACH_CLI.replace("{python}", os.sys.executable)  # type: ignore[attr-defined]
    script.write_text(text.replace("{gate}", str(gate)))
    script.chmod(0o755)
    fake_rig.launcher._executable = str(script)
    return fake_rig, gate


def test_a_prewarmed_attach_is_silent_until_connect_takes_it_over(
    qtbot: QtBot, attach_rig: tuple[FakeRig, Path]
) -> None:
    rig, gate = attach_rig
    gate.touch()
    key = rig.launcher.attach(SID, "Interactive Session", prewarm=True)
    qtbot.waitUntil(lambda: rig.launcher.tunnels()[key].state is TunnelState.READY, timeout=15_000)
    info = rig.launcher.tunnels()[key]
    assert info.prewarmed and rig.launcher.password(key) == "Fake-Pass-0123"
    # Nobody asked yet: no notice, no Host block or login (the ready hook), no editor.
    assert rig.notifier.progress == [] and rig.notifier.sent == []
    assert rig.ready == [] and rig.editors == []
    taken = rig.launcher.promote(key)
    assert taken is not None and not taken.prewarmed and taken.state is TunnelState.READY
    assert [i.key for i in rig.ready] == [key]  # the Host block and login now
    assert [(n[0], n[1]) for n in rig.notifier.sent] == [("session_ready", "Session ready")]
    # The caller (ConnectFlow.connect) opens the editor on a ready tunnel: not twice.
    assert rig.editors == []
    assert rig.launcher.attach(SID) == key  # a later attach reuses it


def test_connect_on_a_prewarmed_tunnel_still_coming_up_says_so_and_opens_when_ready(
    qtbot: QtBot, attach_rig: tuple[FakeRig, Path]
) -> None:
    rig, gate = attach_rig
    key = rig.launcher.attach(SID, "Interactive Session", prewarm=True)
    qtbot.waitUntil(lambda: "Starting SSH tunnel" in "".join(rig.output), timeout=15_000)
    assert rig.notifier.progress == []
    assert rig.launcher.attach(SID, "Interactive Session") == key  # Connect: taken over
    ((title, body, buttons, _tag),) = rig.notifier.progress
    assert title == "Connecting to the session" and body.startswith("Interactive Session")
    assert [label for label, _ in buttons] == ["Follow log", "Cancel"]
    gate.touch()
    qtbot.waitUntil(lambda: bool(rig.editors), timeout=15_000)
    assert [i.key for i in rig.ready] == [key]
    assert [(n[0], n[1]) for n in rig.notifier.sent] == [("session_ready", "Session ready")]
    rig.launcher.show_progress(key)  # Connect again: the same notice, with its buttons
    assert len(rig.notifier.progress) == 2 and rig.notifier.progress[1][0] == title


def test_an_unused_prewarmed_attach_ends_quietly_and_leaves_nothing(
    qtbot: QtBot, attach_rig: tuple[FakeRig, Path]
) -> None:
    rig, gate = attach_rig
    gate.touch()
    key = rig.launcher.attach(SID, "Interactive Session", prewarm=True)
    qtbot.waitUntil(lambda: rig.launcher.tunnels()[key].state is TunnelState.READY, timeout=15_000)
    proc = rig.launcher.process(key)
    assert proc is not None and proc.config_file is not None
    pid, log_path, state_file = proc.started_pid, proc.log_path, proc.config_file
    tree = [pid, *descendants(pid)]
    rig.launcher.retire(key)
    qtbot.waitUntil(lambda: key not in rig.launcher.tunnels(), timeout=15_000)
    assert [p for p in tree if _alive(p)] == []
    assert not log_path.exists() and not state_file.exists()
    assert rig.notifier.sent == [] and rig.notifier.progress == []
    registry = rig.launcher.registry.path
    assert not registry.exists() or str(pid) not in registry.read_text()

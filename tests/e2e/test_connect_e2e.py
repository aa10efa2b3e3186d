"""The whole loop with real programs: New session → tunnel → ssh config → editor → ssh works.

Emulator + its simulated agent (which now serves each ready session's SSH on loopback) + the
real `clearml-session` started by the app's tunnels + a recording stand-in for `code` on PATH +
the real OpenSSH client reusing the app's authenticated master connection (no password prompt),
logged in by the app's SSH_ASKPASS helper, which asks the tray over its instance socket for the
session password the tray holds in memory: nothing of it in the (real GNOME) keyring or a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from support.emulator import EmulatorHandle
from support.qt_dialogs import click_answer
from support.qt_wait import until
from support.secret_service import SecretService

from tray_app.app import TrayApplication
from tray_app.core.settings.presets import Preset
from tray_app.core.settings.secrets import SecretStore
from tray_app.core.tunnels.children import descendants
from tray_app.core.tunnels.ssh_config import host_alias

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def _until(predicate: Any, what: str, limit_s: float = 120.0) -> None:
    await until(predicate, what, limit_s)


def _guard_children(monkeypatch: pytest.MonkeyPatch, client_env: Any) -> None:
    """The loopback guard, inherited by clearml-session and the SDK in the tray's children."""
    for name in ("PYTHONPATH", "EMULATOR_NET_REPORT", "CLEARML_NO_DEFAULT_SERVER"):
        monkeypatch.setenv(name, client_env.env[name])


_listening: list[Any] = []  # the trays' instance sockets, closed after each test


@pytest.fixture(autouse=True)
def _close_instance_sockets() -> Any:
    yield
    while _listening:
        _listening.pop().close()


def _tray(client_env: Any) -> TrayApplication:
    """The tray as run.py builds it, with its instance socket listening (the askpass helper
    asks it for the session password)."""
    from tray_app.qt.single_instance import SingleInstance

    args = argparse.Namespace(
        config_file=str(client_env.config), demo=False, show=False, debug=False, command=None
    )
    app = TrayApplication(args)
    instance = SingleInstance(app.requests.handle)
    assert instance.listen()
    _listening.append(instance)
    return app


def _windows_opened(record: Path) -> int:
    """Editor windows the stand-in `code` was asked to open."""
    if not record.exists():
        return 0
    return sum(1 for line in record.read_text().splitlines() if "--new-window" in line)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ssh_with_our_password(cli_pid: int) -> list[int]:
    """The CLI's ssh processes that read the session password with the tray's askpass helper
    (handed over by the tray, once) instead of prompting the CLI for it."""
    found = []
    for pid in descendants(cli_pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        askpass = [e for e in environ if e.startswith(b"SSH_ASKPASS=")]
        if "NumberOfPasswordPrompts=1" in _cmdline(pid) and askpass:
            assert askpass[0].endswith(b"/clearml-tray-askpass")
            assert any(e.startswith(b"CLEARML_TRAY_ASKPASS_TOKEN=") for e in environ)
            found.append(pid)
    return found


def _files_holding(root: Path, secret: str) -> list[Path]:
    """Every file under `root` whose bytes contain `secret`."""
    found = []
    needle = secret.encode()
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


def _passes_the_clis_liveness_check(ssh_pid: int) -> None:
    """What clearml-session checks of its ssh every 3 s, reconnecting when it fails: the ssh
    itself listens on the tunnel's local ports and holds the connection to the machine's SSH
    port (an ssh that only rode on another connection holds neither)."""
    argv = _cmdline(ssh_pid).split()
    remote = int(argv[argv.index("-p") + 1])
    local = {int(argv[k + 1].split(":")[0]) for k, a in enumerate(argv) if a == "-L"}
    sockets = psutil.Process(ssh_pid).net_connections(kind="tcp4")
    listening = {c.laddr.port for c in sockets if c.status == psutil.CONN_LISTEN}
    peers = {c.raddr.port for c in sockets if c.status == psutil.CONN_ESTABLISHED and c.raddr}
    assert local and local <= listening, (local, listening)
    assert remote in peers, (remote, peers)


def _editor_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extensions: str) -> Path:
    """A `code` first on PATH that records each call (JSON lines) and lists `extensions`."""
    record = tmp_path / "code-argv.jsonl"  # one line per invocation of the stand-in
    stand_in = tmp_path / "bin" / "code"
    stand_in.parent.mkdir(exist_ok=True)
    stand_in.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:] == ['--list-extensions']:\n"
        f"    print({extensions!r})\n"
    )
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}")
    return record


async def test_new_session_to_vscode_and_passwordless_ssh(
    qapp: Any,
    emulator_factory: Any,
    clearml_client_env: Any,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_keyring: SecretService,
) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    emu: EmulatorHandle = emulator_factory(sessions=0, agent_tick=0.3)
    client_env = clearml_client_env(emu)
    _guard_children(monkeypatch, client_env)
    record = _editor_on_path(tmp_path, monkeypatch, "ms-python.python\nms-vscode-remote.remote-ssh")
    terminal_record = tmp_path / "terminal-argv.json"
    terminal = tmp_path / "bin" / "my-terminal"
    terminal.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(terminal_record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    terminal.chmod(0o755)
    monkeypatch.setenv("TERMINAL", "my-terminal")

    def invocations() -> list[list[str]]:
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]

    app = _tray(client_env)
    flow = app.hosts
    log_in = flow._log_in

    async def slow_log_in(*a: Any, **k: Any) -> bool:  # far away: the editor's ssh comes first
        await asyncio.sleep(1.5)
        return await log_in(*a, **k)

    flow._log_in = slow_log_in  # type: ignore[method-assign]
    await app.start()
    await app.launch(Preset(name="e2e", queue="sessions", project="DevOps"))
    # The first launch ever asks, at the click, before anything touches ~/.ssh/config: the
    # user agrees (the launch went on meanwhile).
    asked = await click_answer(app.ask, "Add the line", limit_s=120)
    assert "+Include ~/.ssh/clearml-tray/config" in asked

    await _until(lambda: len(invocations()) >= 2, "the editor to be started on the session")
    (tunnel,) = [t for t in app.tunnels.tunnels().values() if t.session_id]
    assert tunnel.session_id is not None
    alias = host_alias(tunnel.session_id)
    # The new session's CLI got the password handed to its ssh (when it said its tunnel was
    # starting), so it typed none and did not wait for a second prompt; the tunnel is the
    # CLI's own connection, which its liveness check accepts.
    assert tunnel.session_id in app.password_ahead.sessions()
    cli = app.tunnels.child(tunnel.key)
    assert cli is not None and cli.process is not None
    (cli_ssh,) = _ssh_with_our_password(cli.process.pid)
    _passes_the_clis_liveness_check(cli_ssh)
    # Remote-SSH is checked first (installed here, so nothing is offered), then the folder opens.
    assert invocations() == [
        ["--list-extensions"],
        ["--new-window", f"--folder-uri=vscode-remote://ssh-remote+{alias}/root"],
    ]
    managed = (isolated_home / ".ssh" / "clearml-tray" / "config").read_text()
    assert f"Host {alias}" in managed and f"Port {tunnel.local_ssh_port}" in managed

    def ssh_echo() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-F", str(isolated_home / ".ssh" / "config"), "-o", "BatchMode=yes",
             alias, "echo", "ok"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    # The editor is started without waiting for the tray's login; an ssh started right then
    # (as VS Code's is) waits for that login through the block's Match exec, and never asks.
    # (Qt events keep flowing meanwhile: the tray's login is a QProcess.)
    assert alias not in flow.masters  # the login is still under way
    echo = asyncio.ensure_future(asyncio.to_thread(ssh_echo))
    await _until(echo.done, "ssh through the shared login", 60)
    result = echo.result()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert alias in flow.masters
    # The password the logins used is in the tray's memory only: not in the keyring daemon,
    # not in the fallback file, nowhere in the home folder.
    password = app.tunnels.password(tunnel.key)
    assert password
    assert real_keyring.stored() == {}
    assert not SecretStore().fallback_path.exists()
    assert _files_holding(isolated_home, password) == []

    # "Open terminal (ssh)" runs the user's $TERMINAL with `ssh <alias>` on the same Host.
    app.controller.handle("open_terminal", tunnel.session_id)
    await _until(terminal_record.exists, "the terminal to be started", 30)
    assert json.loads(terminal_record.read_text()) == ["-e", "ssh", alias]
    app.controller.handle("connect", tunnel.session_id)  # the extension check is not repeated
    await _until(lambda: len(invocations()) >= 3, "the editor to be started again", 30)
    assert invocations()[2][0] == "--new-window"

    # Disconnect: the tunnel ends, so its Host block, master connection and password go.
    managed_file = isolated_home / ".ssh" / "clearml-tray" / "config"
    app.controller.handle("disconnect", tunnel.key)
    await _until(lambda: f"Host {alias}" not in managed_file.read_text(), "the block removed", 30)
    assert alias not in flow.masters
    assert "Include ~/.ssh/clearml-tray/config" in (isolated_home / ".ssh" / "config").read_text()
    assert len(app.session_passwords) == 0  # no grant left to answer

    await app.quit(shutdown_remote=False)
    assert client_env.network_attempts() == []


async def test_a_tunnel_heals_after_a_server_restart_without_a_second_editor_window(
    qapp: Any,
    emulator_factory: Any,
    clearml_client_env: Any,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server (API, agent and the sessions' sshd, with a new host key) restarts under a
    connected session: the tunnel comes back by itself, ssh works again without a password, and
    the editor is not opened a second time."""
    from tray_app.core.settings.settings import Settings, save_settings
    from tray_app.core.tunnels.model import TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig

    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    emu: EmulatorHandle = emulator_factory(sessions=0, agent_tick=0.3)
    client_env = clearml_client_env(emu)
    _guard_children(monkeypatch, client_env)
    record = _editor_on_path(tmp_path, monkeypatch, "ms-vscode-remote.remote-ssh")
    save_settings(Settings(tunnel_retry_limit=20), [])
    SshConfig().ensure_include()  # agreed on an earlier connect

    def windows_opened() -> int:
        return _windows_opened(record)

    app = _tray(client_env)
    try:
        await app.start()
        await app.launch(Preset(name="heal", queue="sessions", project="DevOps"))
        await _until(lambda: windows_opened() == 1, "the editor on the session")
        (tunnel,) = [t for t in app.tunnels.tunnels().values() if t.session_id]
        assert tunnel.session_id is not None
        alias = host_alias(tunnel.session_id)
        await _until(lambda: alias in app.hosts.masters, "the first login")

        def ssh_echo() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["ssh", "-F", str(isolated_home / ".ssh" / "config"), "-o", "BatchMode=yes",
                 alias, "echo", "ok"],
                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
            )  # fmt: skip

        await asyncio.to_thread(emu.stop)
        await asyncio.to_thread(emu.start)

        def healed() -> bool:
            info = app.tunnels.tunnel_for(tunnel.session_id or "")
            return info is not None and info.state == TunnelState.READY and info.generation > 1

        flow = app.hosts
        await _until(healed, "the tunnel to come back by itself", 150)
        await _until(
            lambda: (
                flow.host_generation(tunnel.session_id or "") > 1
                and not flow.logins_pending
                and alias in flow.masters
            ),
            "the login made again",
            60,
        )
        result = await asyncio.to_thread(ssh_echo)
        assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
        assert windows_opened() == 1  # no second window for the same session
    finally:
        await app.quit(shutdown_remote=False)
    assert client_env.network_attempts() == []


async def test_pointing_at_a_session_opens_its_tunnel_ahead_and_connect_takes_it_over(
    qapp: Any,
    emulator_factory: Any,
    clearml_client_env: Any,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real clearml-session, started silently when a session's submenu opens: no notice,
    no Host block, nothing in the menu; Connect takes the same child over and opens the editor
    without a second attach. Another pointed-at session's unused tunnel ends without a trace
    when the setting is switched off, and warm tunnels cover every running session."""
    from tray_app.core.server.session_ref import connectable
    from tray_app.core.settings.settings import Settings, save_settings
    from tray_app.core.tunnels.model import TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig

    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    emu: EmulatorHandle = emulator_factory(sessions=8, agent_tick=0.3)
    client_env = clearml_client_env(emu)
    _guard_children(monkeypatch, client_env)
    record = _editor_on_path(tmp_path, monkeypatch, "ms-vscode-remote.remote-ssh")
    save_settings(Settings(), [])
    SshConfig().ensure_include()  # agreed on an earlier connect
    managed = isolated_home / ".ssh" / "clearml-tray" / "config"

    def windows_opened() -> int:
        return _windows_opened(record)

    app = _tray(client_env)
    try:
        await app.start()
        await _until(lambda: len(connectable(app.poller.snapshot)) >= 2, "two running sessions")
        first, second = (s.id for s in connectable(app.poller.snapshot)[:2])

        def prewarmed(sid: str) -> Any:
            return next((t for t in app.tunnels.tunnels().values() if t.session_id == sid), None)

        app.controller.handle("intent", first)  # what the session's submenu opening sends
        await _until(
            lambda: (t := prewarmed(first)) is not None and t.state == TunnelState.READY,
            "the tunnel opened ahead to come up",
        )
        tunnel = prewarmed(first)
        assert tunnel.prewarmed and app.view().tunnels == {}  # not in the menu yet
        assert windows_opened() == 0
        assert not managed.exists() or host_alias(first) not in managed.read_text()
        child = app.tunnels.child(tunnel.key)
        assert child is not None and child.process is not None
        pid = child.process.pid
        # The CLI's ssh read the password with the tray's askpass helper, so the CLI saw no
        # prompt and did not wait 5 s for a second one: the tunnel comes up in about 1 s.
        cli_ssh = _ssh_with_our_password(pid)
        assert len(cli_ssh) == 1, [_cmdline(p) for p in descendants(pid)]
        _passes_the_clis_liveness_check(cli_ssh[0])
        assert first in app.password_ahead.sessions()

        app.controller.handle("connect", first)
        await _until(lambda: windows_opened() == 1, "the editor on the session", 30)
        taken = prewarmed(first)
        assert not taken.prewarmed and taken.key == tunnel.key
        taken_child = app.tunnels.child(taken.key)
        assert taken_child is not None and taken_child.process is not None
        assert taken_child.process.pid == pid  # the same child: no re-attach
        assert host_alias(first) in managed.read_text()
        assert list(app.view().tunnels) == [taken.key]

        # Pointed at, never used: switching the setting off ends it, and nothing is left.
        app.controller.handle("intent", second)
        await _until(lambda: prewarmed(second) is not None, "the second tunnel started")
        other = app.tunnels.child(prewarmed(second).key)
        assert other is not None and other.process is not None
        other_pid = other.process.pid
        await _until(lambda: bool(descendants(other_pid)), "its ssh to start", 60)
        tree = [other_pid, *descendants(other_pid)]
        log_path = other.output.log_path
        app.settings.tunnel_on_intent = False
        app.prewarm.apply()
        await _until(lambda: prewarmed(second) is None, "the unused tunnel to end", 30)
        await _until(
            lambda: not any(Path(f"/proc/{p}").exists() for p in tree), "its processes gone", 30
        )
        assert not log_path.exists()
        assert prewarmed(first) is not None  # the one in use is untouched

        # Warm tunnels: the user's newest running sessions get one, silently, as many as
        # Settings allows (3 by default).
        app.settings.warm_tunnels = True
        app.prewarm.apply()
        running = [s.id for s in connectable(app.poller.snapshot)]
        newest = set(running[: app.settings.warm_tunnels_max])

        def with_tunnels() -> set[str | None]:
            return {t.session_id for t in app.tunnels.tunnels().values() if t.live}

        await _until(lambda: with_tunnels() >= newest, "a tunnel to the newest running sessions")
        assert with_tunnels() <= newest | {first}  # none past the cap but the one in use
        assert windows_opened() == 1
    finally:
        await app.quit(shutdown_remote=False)
    assert client_env.network_attempts() == []


async def test_the_password_goes_ahead_whatever_prompt_or_banner_the_machine_has(
    qapp: Any,
    emulator_factory: Any,
    clearml_client_env: Any,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Machines whose prompt is not clearml-session's `$ ` or `# ` (`% `, `❯ `, `$` without a
    space), or that greet slowly: the CLI's ssh still gets the password from the tray and says
    it is logged in, so the CLI goes on without typing a password or timing out."""
    from tray_app.core.server.session_ref import connectable
    from tray_app.core.settings.settings import Settings, save_settings
    from tray_app.core.tunnels.model import TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig
    from tray_app.demo.ssh_endpoint import remote_shell

    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    emu: EmulatorHandle = emulator_factory(sessions=12, agent_tick=0.3)
    client_env = clearml_client_env(emu)
    _guard_children(monkeypatch, client_env)
    _editor_on_path(tmp_path, monkeypatch, "ms-vscode-remote.remote-ssh")
    save_settings(Settings(tunnel_on_intent=False), [])
    SshConfig().ensure_include()
    app = _tray(client_env)
    try:
        await app.start()
        await _until(lambda: len(connectable(app.poller.snapshot)) >= 3, "running sessions")
        by_shell: dict[str, str] = {}
        for session in connectable(app.poller.snapshot):
            by_shell.setdefault(remote_shell(session.id).name, session.id)
        odd = {name: sid for name, sid in by_shell.items() if name != "bash"}
        assert odd, by_shell  # the seed has machines of other kinds
        for sid in odd.values():
            app.controller.handle("connect", sid)

        def ready(sid: str) -> bool:
            info = app.tunnels.tunnel_for(sid)
            return info is not None and info.state == TunnelState.READY

        for name, sid in odd.items():
            await _until(lambda sid=sid: ready(sid), f"the tunnel to the {name} machine", 60)
            info = app.tunnels.tunnel_for(sid)
            assert info is not None
            child = app.tunnels.child(info.key)
            assert child is not None and child.process is not None
            (cli_ssh,) = _ssh_with_our_password(child.process.pid)
            _passes_the_clis_liveness_check(cli_ssh)
            log = app.tunnels.log_text(info.key)
            # Neither the CLI's wrong-password path nor its 20 s timeout and retry.
            assert "incorrect password" not in log and "SSH tunneling failed" not in log, log
            assert sid in app.password_ahead.sessions()
    finally:
        await app.quit(shutdown_remote=False)
    assert client_env.network_attempts() == []

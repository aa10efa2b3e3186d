"""Password-less connect: a ControlMaster opened with our askpass helper (which asks the tray),
reused by plain ssh; and the pure pieces: which ssh asks, proxies rewritten, OpenSSH versions."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.ssh_server import running_ssh_server

from benchmarks.answering_tray import answering_tray
from tray_app.core.tunnels.session_passwords import SessionPasswords
from tray_app.core.tunnels.ssh_config import HostEntry, SshConfig
from tray_app.core.tunnels.ssh_master import (
    ASKPASS_VARIABLES,
    SshTarget,
    askpass_env,
    askpass_launcher,
    askpass_works_on_a_terminal,
    check_argv,
    exit_argv,
    master_argv,
    openssh_version,
    proxy_command,
    resolved_options,
    ssh_target,
)

needs_ssh = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal: ssh may only use our askpass helper
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )


@needs_ssh
def test_master_with_askpass_then_batch_mode_ssh_needs_no_password(isolated_home: Path) -> None:
    session_id = "0123456789abcdef0123456789abcdef"
    with running_ssh_server(password="p4ss]w0rd with spaces") as server, answering_tray() as tray:
        config = SshConfig(isolated_home)
        config.ensure_include()
        control = str(config.control_dir / "%C")
        alias = config.add(HostEntry(session_id, server.port, server.user, control_path=control))
        user_config = isolated_home / ".ssh" / "config"
        helper = askpass_launcher(config.managed.parent)
        token = tray.passwords.new(
            server.password, user="root", host=alias, port=server.port, prompt_host="127.0.0.1"
        )
        env = askpass_env(dict(os.environ), helper, token, tray.socket)
        assert server.password not in " ".join(env.values())  # only the token is handed out

        opened = _run(master_argv(alias, user_config, port=server.port), env)
        assert opened.returncode == 0, opened.stderr
        assert server.logins == ["root"]
        assert len(tray.passwords) == 0  # answered once, then gone
        assert _run(check_argv(alias, user_config), env).returncode == 0

        plain = {k: v for k, v in os.environ.items() if not k.startswith("SSH_ASKPASS")}
        reused = _run(
            ["ssh", "-F", str(user_config), "-o", "BatchMode=yes", alias, "echo", "ok"], plain
        )
        assert reused.returncode == 0, reused.stderr
        assert reused.stdout.strip() == "ok"
        assert server.logins == ["root"]  # no second login: the master was reused

        assert _run(exit_argv(alias, user_config), env).returncode == 0
        again = _run(
            ["ssh", "-F", str(user_config), "-o", "BatchMode=yes", alias, "echo", "ok"], plain
        )
        assert again.returncode != 0  # without the master, BatchMode cannot log in


@needs_ssh
def test_a_token_used_once_or_never_given_gets_no_password(isolated_home: Path) -> None:
    with answering_tray() as tray:
        helper = askpass_launcher(isolated_home)
        token = tray.passwords.new("pw-1234", user="root", host="clearml-0123", port=4022)
        env = askpass_env(dict(os.environ), helper, "not-a-token", tray.socket)
        result = _run([str(helper), "root@127.0.0.1's password: "], env)
        assert (result.returncode, result.stdout) == (1, "")
        assert "no session password is waiting for this ssh" in result.stderr
        # Our own process is no ssh to clearml-0123:4022 (its command line does not even read
        # as one, or names another host, as pytest was started): refused, the grant stays.
        env = askpass_env(dict(os.environ), helper, token, tray.socket)
        result = _run([str(helper), "root@clearml-0123's password: "], env)
        assert (result.returncode, result.stdout) == (1, "")
        assert any(
            why in result.stderr
            for why in (
                "this ssh logs in to another host or port",
                "the asking ssh could not be identified",
            )
        ), result.stderr
        assert len(tray.passwords) == 1
    gone = _run([str(helper), "root@clearml-0123's password: "], env)  # the tray quit
    assert gone.returncode == 1 and "did not answer" in gone.stderr


# --- which ssh asks ---------------------------------------------------------------------------


def test_ssh_target_reads_the_command_line_as_ssh_does() -> None:
    cli = ["ssh", "-o", "NumberOfPasswordPrompts=1", "-C", "root@10.0.0.5", "-p", "10022",
           "-o", "Compression=yes", "-L", "8022:localhost:10022"]  # fmt: skip
    assert ssh_target(cli) == SshTarget("root", "10.0.0.5", 10022, False)
    master = ["ssh", "-F", "/h/.ssh/config", "-o", "ControlMaster=yes", "-p", "8022", "-N", "-f",
              "clearml-01234567"]  # fmt: skip
    assert ssh_target(master) == SshTarget("", "clearml-01234567", 8022, False)
    jump = ["/usr/bin/ssh", "-l", "jumper", "-p", "2222", "-W", "[10.0.0.5]:10022", "bastion"]
    assert ssh_target(jump) == SshTarget("jumper", "bastion", 2222, True)
    assert ssh_target(["ssh", "-oPort=23", "-lme", "h", "echo", "-p", "9"]) == SshTarget(
        "me", "h", 23, False
    )
    assert ssh_target(["ssh", "ssh://u@h:2200"]) == SshTarget("u", "h", 2200, False)
    assert ssh_target(["ssh", "-G"]) is None


# --- proxies ----------------------------------------------------------------------------------


def test_a_proxy_jump_becomes_a_batch_mode_command_without_the_askpass_variables() -> None:
    options = resolved_options("hostname 10.0.0.5\nproxyjump u@j1:2200,v@j2:23\nport 22\n")
    command = proxy_command(options, ssh="/usr/bin/ssh", config_file="/h/.ssh/config")
    assert command is not None
    assert command.startswith("env " + " ".join(f"-u {name}" for name in ASKPASS_VARIABLES))
    assert command.endswith(
        "/usr/bin/ssh -F /h/.ssh/config -l v -p 23 -J u@j1:2200 -o BatchMode=yes -W '[%h]:%p' j2"
    )
    assert proxy_command(resolved_options("hostname h\nport 22\n")) is None


def test_a_proxy_command_runs_as_written_without_the_askpass_variables() -> None:
    options = resolved_options("proxycommand nc -X connect -x 'proxy:3128' %h %p\n")
    command = proxy_command(options, setsid="/usr/bin/setsid")
    assert command == (
        "env " + " ".join(f"-u {name}" for name in ASKPASS_VARIABLES)
        + " /usr/bin/setsid -w /bin/sh -c 'nc -X connect -x '\\''proxy:3128'\\'' %h %p'"
    )  # fmt: skip


@needs_ssh
def test_ssh_itself_takes_the_rewritten_proxy_over_the_users_proxy_jump(tmp_path: Path) -> None:
    """A ProxyCommand on the command line wins over the config's ProxyJump (ssh uses the first
    it reads): what ssh will run is our command."""
    config = tmp_path / "config"
    config.write_text("Host far\n  HostName 10.0.0.5\n  ProxyJump u@j1:2200\n")
    resolved = _run(["ssh", "-F", str(config), "-G", "far"], dict(os.environ)).stdout
    command = proxy_command(resolved_options(resolved), config_file=str(config))
    assert command is not None
    again = _run(
        ["ssh", "-F", str(config), "-o", f"ProxyCommand={command}", "-G", "far"], dict(os.environ)
    )
    options = resolved_options(again.stdout)
    assert options.get("proxycommand", "").startswith("env -u SSH_ASKPASS")
    assert options.get("proxyjump", "none") == "none"


# --- versions ---------------------------------------------------------------------------------


def test_openssh_versions_and_askpass_on_a_terminal() -> None:
    assert openssh_version("OpenSSH_9.2p1 Debian-2+deb12u6, OpenSSL 3.0.19") == (9, 2)
    assert openssh_version("OpenSSH_for_Windows_8.1p1, LibreSSL 3.0.2") == (8, 1)
    assert openssh_version("PuTTY plink") is None
    assert askpass_works_on_a_terminal((8, 4)) and askpass_works_on_a_terminal((10, 0))
    assert not askpass_works_on_a_terminal((8, 2)) and not askpass_works_on_a_terminal(None)


def test_a_one_time_grant_expires(isolated_home: Path) -> None:
    now = [100.0]
    grants = SessionPasswords(clock=lambda: now[0], argv_of=lambda pid: ["ssh", "-p", "1", "h"])
    token = grants.new("pw", user="root", host="h", port=1)
    now[0] += 1000
    assert grants.answer(token, "root@h's password: ", 42).password is None

"""The managed ssh config: the user's file changes by one Include line, nothing else."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tray_app.core.tunnels.ssh_config import (
    HostEntry,
    SshConfig,
    UnsafeSshValue,
    host_alias,
    include_diff,
    parse_blocks,
    plan_include,
    render_block,
)

LINE = "Include ~/.ssh/clearml-tray/config"
USER_CONFIGS = {
    "includes, match blocks, comments": (
        b"# my config\nInclude ~/.ssh/conf.d/*\n\nHost work\n    HostName 127.0.0.5\n"
        b'    User me # trailing comment\n\nMatch host *.corp exec "true"\n    ForwardAgent no\n'
    ),
    "crlf": b"Host a\r\n    HostName 127.0.0.6\r\n\r\nHost b\r\n    Port 2222\r\n",
    "no final newline": b"Host a\n    HostName 127.0.0.7",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(USER_CONFIGS))
def test_only_the_include_line_is_added(name: str) -> None:
    original = USER_CONFIGS[name]
    new = plan_include(original, LINE)
    assert new is not None
    assert new.endswith(original)  # every original byte, in order, untouched
    added = new[: len(new) - len(original)].decode()
    newline = "\r\n" if b"\r\n" in original else "\n"
    assert added.splitlines()[1] == LINE
    assert all(line.endswith(newline) for line in added.splitlines(keepends=True))
    assert plan_include(new, LINE) is None  # idempotent


def test_absent_config_gets_just_the_include() -> None:
    assert plan_include(None, LINE) == f"# added by ClearML Session Tray\n{LINE}\n".encode()


def test_dry_run_diff_shows_the_line(tmp_path: Path) -> None:
    diff = include_diff(USER_CONFIGS["crlf"], LINE, tmp_path / "config")
    assert f"+{LINE}" in diff and "-Host a" not in diff


def test_apply_backs_up_and_keeps_everything(isolated_home: Path) -> None:
    ssh = isolated_home / ".ssh"
    ssh.mkdir(mode=0o700)
    original = USER_CONFIGS["includes, match blocks, comments"]
    (ssh / "config").write_bytes(original)
    (ssh / "config").chmod(0o644)
    config = SshConfig(isolated_home)
    assert config.include_pending()
    backup = config.ensure_include()
    assert backup is not None and backup.read_bytes() == original
    assert (ssh / "config").read_bytes().endswith(original)
    assert config.ensure_include() is None and config.include_pending() == ""
    # The user's mode is kept (ssh accepts 0644; only group/world-writable is refused).
    assert stat.S_IMODE((ssh / "config").stat().st_mode) == 0o644


def test_missing_user_config_is_created_private(isolated_home: Path) -> None:
    config = SshConfig(isolated_home)
    assert config.ensure_include() is None  # nothing to back up
    path = isolated_home / ".ssh" / "config"
    assert path.read_text().splitlines()[1] == LINE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((isolated_home / ".ssh").stat().st_mode) == 0o700


def test_blocks_add_replace_remove(isolated_home: Path) -> None:
    config = SshConfig(isolated_home)
    alias = config.add(HostEntry("0123456789abcdef", 8022))
    assert alias == host_alias("0123456789abcdef") == "clearml-01234567"
    config.add(HostEntry("fedcba9876543210", 8023, user="dev"))
    config.add(HostEntry("0123456789abcdef", 8024))  # reconnected on another port
    blocks = parse_blocks(config.managed.read_text())
    assert sorted(blocks) == ["clearml-01234567", "clearml-fedcba98"]
    assert "Port 8024" in blocks["clearml-01234567"]
    assert config.remove("0123456789abcdef") is True
    assert config.remove("0123456789abcdef") is False
    assert config.aliases() == ["clearml-fedcba98"]


def _writer(home: str, start: int, count: int) -> None:
    config = SshConfig(Path(home))
    for i in range(start, start + count):
        config.add(HostEntry(f"{i:08x}" + "0" * 24, 9000 + i))


def test_concurrent_writers_lose_nothing(isolated_home: Path) -> None:
    context = multiprocessing.get_context("fork")
    procs = [
        context.Process(target=_writer, args=(str(isolated_home), n * 20, 20)) for n in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert len(SshConfig(isolated_home).aliases()) == 80


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_real_ssh_resolves_our_host(isolated_home: Path) -> None:
    (isolated_home / ".ssh").mkdir(mode=0o700)
    (isolated_home / ".ssh" / "config").write_bytes(
        USER_CONFIGS["includes, match blocks, comments"]
    )
    config = SshConfig(isolated_home)
    config.ensure_include()
    control = str(config.control_dir / "%C")
    config.add(HostEntry("0123456789abcdef", 8022, user="root", control_path=control))
    out = subprocess.run(
        ["ssh", "-G", "-F", str(isolated_home / ".ssh" / "config"), "clearml-01234567"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOME": str(isolated_home), "PATH": "/usr/bin:/bin"},
    ).stdout.lower()
    assert "hostname 127.0.0.1" in out and "port 8022" in out and "user root" in out
    assert "stricthostkeychecking accept-new" in out
    assert "known_hosts.d/clearml-01234567" in out  # a key file per host, ours
    assert "controlpath " in out
    # the user's own hosts still resolve as before
    work = subprocess.run(
        ["ssh", "-G", "-F", str(isolated_home / ".ssh" / "config"), "work"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOME": str(isolated_home), "PATH": "/usr/bin:/bin"},
    ).stdout.lower()
    assert "hostname 127.0.0.5" in work and "user me" in work


def test_a_long_runtime_dir_falls_back_to_a_short_private_one(tmp_path: Path) -> None:
    from tray_app.core.tunnels.ssh_config import short_control_dir

    usual = Path("/run/user/1000/clearml-tray/cm")
    assert short_control_dir(usual, tmp=tmp_path) == usual
    long = Path("/Users") / ("x" * 60) / "Library/Caches/TemporaryItems/clearml-tray/cm"
    assert short_control_dir(long, tmp=tmp_path) == tmp_path / f"clearml-tray-{os.getuid()}" / "cm"
    # What ssh binds (dir + %C + its temporary suffix) fits a Unix socket address (104 bytes).
    chosen = short_control_dir(long)
    assert len(str(chosen / ("0" * 40 + ".abcdefghijklmnop"))) < 104


def test_block_with_wait_round_trips_and_removes_whole(isolated_home: Path) -> None:
    config = SshConfig(isolated_home)
    wait = "/run/cm/wait-master /run/cm/clearml-01234567.pending"
    config.add(HostEntry("0123456789abcdef", 8022, control_path="/run/cm/%C", wait_command=wait))
    config.add(HostEntry("fedcba9876543210", 8023))
    blocks = parse_blocks(config.managed.read_text())
    assert blocks["clearml-01234567"].splitlines()[-1] == (
        f'Match originalhost clearml-01234567 exec "{wait}"'
    )
    assert "Match" not in blocks["clearml-fedcba98"]
    config.remove("0123456789abcdef")
    assert "Match" not in config.managed.read_text()


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_real_ssh_waits_while_the_tray_logs_in(isolated_home: Path, tmp_path: Path) -> None:
    """ssh for our alias (only) holds while the login marker exists; our master never waits."""
    from tray_app.core.tunnels.ssh_master import (
        MASTER_ENV,
        pending_marker,
        wait_command,
        write_wait_script,
    )

    (isolated_home / ".ssh").mkdir(mode=0o700)
    (isolated_home / ".ssh" / "config").write_text("Host work\n    HostName 127.0.0.5\n")
    control_dir = tmp_path / "cm"
    config = SshConfig(isolated_home, control_dir=control_dir)
    config.ensure_include()
    alias = "clearml-01234567"
    config.add(
        HostEntry(
            "0123456789abcdef",
            8022,
            control_path=str(control_dir / "%C"),
            wait_command=wait_command(control_dir, alias),
        )
    )
    write_wait_script(control_dir)
    marker = pending_marker(control_dir, alias)
    marker.touch()
    env = {"HOME": str(isolated_home), "PATH": "/usr/bin:/bin"}
    user_config = str(isolated_home / ".ssh" / "config")

    def resolve(host: str, **extra: str) -> subprocess.Popen[str]:
        argv = ["ssh", "-G", "-F", user_config, host]
        return subprocess.Popen(argv, env={**env, **extra}, stdout=subprocess.PIPE, text=True)

    # Other hosts and our own master resolve at once, marker or not.
    assert resolve("work").wait(20) == 0
    assert resolve(alias, **{MASTER_ENV: "1"}).wait(20) == 0
    waiting = resolve(alias)
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(1.5)  # still held by the marker
    marker.unlink()
    assert waiting.wait(20) == 0
    assert waiting.stdout is not None and "port 8022" in waiting.stdout.read()


# -- the user's files keep what they are (issue 18) ---------------------------------------------


def test_a_symlinked_user_config_stays_a_symlink_with_its_mode(isolated_home: Path) -> None:
    ssh = isolated_home / ".ssh"
    ssh.mkdir(mode=0o755)
    ssh.chmod(0o755)
    dotfiles = isolated_home / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "ssh_config"
    real.write_text("Host *\n    ServerAliveInterval 60\n")
    real.chmod(0o444)
    (ssh / "config").symlink_to(real)
    SshConfig(isolated_home).ensure_include()
    assert (ssh / "config").is_symlink() and (ssh / "config").resolve() == real
    assert real.read_text().splitlines()[1] == LINE
    assert stat.S_IMODE(real.stat().st_mode) == 0o444
    assert stat.S_IMODE(ssh.stat().st_mode) == 0o755


@pytest.mark.parametrize("mode", [0o500, 0o755])
def test_the_mode_of_dot_ssh_is_kept(isolated_home: Path, mode: int) -> None:
    ssh = isolated_home / ".ssh"
    ssh.mkdir()
    ssh.chmod(mode)
    config = SshConfig(isolated_home)
    config.ensure_dirs()
    config.add(HostEntry("0123456789abcdef", 8022))
    assert stat.S_IMODE(ssh.stat().st_mode) == mode


@pytest.mark.parametrize(
    "existing",
    [
        "Include ~/.ssh/clearml-tray/config",
        "include ~/.ssh/clearml-tray/config",
        "INCLUDE=~/.ssh/clearml-tray/config",
        'Include "~/.ssh/clearml-tray/config"',
        "Include {home}/.ssh/clearml-tray/config",
        "Include clearml-tray/config",
        "  Include ~/.ssh/other.conf ~/.ssh/clearml-tray/*",
        "Include {home}/.ssh/./clearml-tray/config # ours",
    ],
)
def test_an_equivalent_include_is_not_duplicated(isolated_home: Path, existing: str) -> None:
    ssh = isolated_home / ".ssh"
    ssh.mkdir(mode=0o700)
    text = existing.format(home=isolated_home) + "\nHost x\n    User y\n"
    (ssh / "config").write_text(text)
    config = SshConfig(isolated_home)
    assert config.include_pending() == ""
    assert config.ensure_include() is None
    assert (ssh / "config").read_text() == text


def test_an_include_of_another_file_still_gets_ours(isolated_home: Path) -> None:
    ssh = isolated_home / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "config").write_text("Include ~/.ssh/clearml-tray/config.old\n")
    assert SshConfig(isolated_home).include_pending() != ""


@pytest.mark.parametrize(
    "entry",
    [
        HostEntry("0123456789abcdef", 8022, user='ro"ot'),
        HostEntry("0123456789abcdef", 8022, user="root\nHost *"),
        HostEntry("0123456789abcdef", 8022, user="a b"),
        HostEntry("0123456789abcdef", 8022, user="-oProxyCommand=x"),
        HostEntry("0123\nHost *", 8022),
        HostEntry("0123456789abcdef", 8022, hostname="h\n  ProxyCommand x"),
        HostEntry("0123456789abcdef", 0),
        HostEntry("0123456789abcdef", 8022, control_path='/tmp/a"b'),
        HostEntry("0123456789abcdef", 8022, control_path="/tmp/a", wait_command='x" y'),
    ],
)
def test_values_that_would_break_the_ssh_config_are_refused(
    isolated_home: Path, entry: HostEntry
) -> None:
    config = SshConfig(isolated_home)
    config.add(HostEntry("fedcba9876543210", 8023))
    before = config.managed.read_bytes()
    with pytest.raises(UnsafeSshValue, match=r"ssh config|TCP port"):
        config.add(entry)
    assert config.managed.read_bytes() == before


def test_a_path_with_spaces_is_quoted(isolated_home: Path) -> None:
    block = render_block(
        HostEntry("0123456789abcdef", 8022, control_path="/tmp/my dir/%C"), Path("/a b/known")
    )
    assert '    ControlPath "/tmp/my dir/%C"' in block
    assert '    UserKnownHostsFile "/a b/known"' in block

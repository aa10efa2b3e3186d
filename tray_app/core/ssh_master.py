"""A shared, already-authenticated SSH connection for the editor (OpenSSH ControlMaster).

clearml-session 0.17's remote sshd takes the session password and the CLI cannot install a key,
so the tray opens one master connection through the tunnel, answering the password prompt with
an SSH_ASKPASS helper that reads the password from the keyring (never from argv, env or a
file); the Host block shares its ControlPath, so VS Code's ssh reuses the connection and never
asks. Pure argv/env builders here; the app runs them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from tray_app.core.atomic import atomic_write_text

ASKPASS_KEY_ENV = "CLEARML_TRAY_ASKPASS_KEY"
MASTER_ENV = "CLEARML_TRAY_MASTER"  # set for our own master, which must not wait for itself
WAIT_SECONDS = 30

# Run by ssh (`Match originalhost <alias> exec`) before it looks for a shared connection. While
# the tray is still logging in for that host (the marker file exists), it waits, so an editor
# started at once joins the login instead of asking for the password. It always answers "no
# match": the Match block is empty, only the wait matters.
_WAIT_SCRIPT = f"""#!/bin/sh
[ "${MASTER_ENV}" = 1 ] && exit 1
n=0
while [ -e "$1" ] && [ $n -lt {WAIT_SECONDS * 10} ]; do sleep 0.1; n=$((n + 1)); done
exit 1
"""


def master_supported() -> bool:
    """OpenSSH multiplexing needs Unix sockets: not on Windows' OpenSSH."""
    return os.name == "posix"


def master_argv(alias: str, config_file: Path) -> list[str]:
    return [
        "ssh",
        "-F",
        str(config_file),
        "-o",
        "ControlMaster=yes",
        "-o",
        "ControlPersist=yes",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "-N",
        "-f",
        alias,
    ]


def check_argv(alias: str, config_file: Path) -> list[str]:
    return ["ssh", "-F", str(config_file), "-O", "check", alias]


def exit_argv(alias: str, config_file: Path) -> list[str]:
    return ["ssh", "-F", str(config_file), "-O", "exit", alias]


def askpass_env(base: Mapping[str, str], helper: Path, secret_name: str) -> dict[str, str]:
    """The master's environment: our askpass helper, forced even without a terminal."""
    env = dict(base)
    env.update(
        SSH_ASKPASS=str(helper),
        SSH_ASKPASS_REQUIRE="force",
        DISPLAY=base.get("DISPLAY", ":0"),  # older OpenSSH only uses askpass with a DISPLAY
        **{ASKPASS_KEY_ENV: secret_name, MASTER_ENV: "1"},
    )
    return env


def pending_marker(control_dir: Path, alias: str) -> Path:
    """Exists while the tray's master login for `alias` is under way."""
    return control_dir / f"{alias}.pending"


def wait_command(control_dir: Path, alias: str) -> str:
    """The `Match ... exec` command for the alias's Host block ("" if a path would not parse).

    ssh splits the command on whitespace before handing it to the shell, so paths with spaces
    (not expected in the short control directory) leave the block without the wait.
    """
    script, marker = control_dir / "wait-master", pending_marker(control_dir, alias)
    if any(c in str(control_dir) for c in ' "\\%'):
        return ""
    return f"{script} {marker}"


def write_wait_script(control_dir: Path) -> Path:
    path = control_dir / "wait-master"
    try:
        if path.read_text() == _WAIT_SCRIPT and os.access(path, os.X_OK):
            return path  # the usual case: written by an earlier connect
    except OSError:
        pass
    atomic_write_text(path, _WAIT_SCRIPT, mode=0o700, durable=False)
    return path


def askpass_launcher(directory: Path) -> Path:
    """An executable that runs `python -m tray_app.askpass` with this interpreter."""
    path = directory / "clearml-tray-askpass"
    atomic_write_text(path, f'#!/bin/sh\nexec "{sys.executable}" -m tray_app.askpass "$@"\n')
    path.chmod(0o700)
    return path


# --- the tray's own login to a session's machine, shared with clearml-session's ssh ----------
#
# clearml-session types the session password into its ssh and then waits 5 s for a second
# password prompt (how it notices a wrong one) before it reports the tunnel: most of a Connect.
# The CLI finds `ssh` on PATH, so the tray puts a shim first on the CLI's PATH that adds a
# ControlPath; when the tray has already logged in to that machine (same user, host and port:
# `%C`), the CLI's ssh rides on that connection, gets a shell prompt with no password asked,
# and the CLI goes on at once. Without such a login ssh connects as usual.

SHIM_DIR_NAME = "ssh-shim"
DIRECT_PERSIST_S = 3  # the login ends this long after its last user (the CLI's ssh) is gone
# Set in one clearml-session's environment: the file that exists while the tray logs in to its
# machine. The CLI starts at once; its ssh (the shim) waits for the login, at most this long.
LOGIN_MARKER_ENV = "CLEARML_TRAY_LOGIN_MARKER"
LOGIN_WAIT_S = 15


def login_marker(control_dir: Path, session_id: str) -> Path:
    """Exists while the tray logs in to the machine of `session_id` (cleared at start)."""
    return control_dir / f"login-{session_id[:8]}.pending"


def direct_control_path(control_dir: Path) -> str:
    """The socket of the tray's login to a session's machine (`%C` fits the dir's budget)."""
    return str(control_dir / "%C")


def _option(key: str, value: str) -> str:
    """`-o` text: ssh splits an option's value on blanks unless it is double-quoted."""
    return f'{key}="{value}"' if any(c.isspace() for c in value) else f"{key}={value}"


def direct_master_argv(
    user: str, host: str, port: int, control_dir: Path, known_hosts: Path
) -> list[str]:
    """Log in once, in the background; it ends by itself DIRECT_PERSIST_S after the last
    connection over it closed, so a tray killed outright leaves nothing behind for long."""
    return [
        "ssh",
        "-o", "ControlMaster=yes",
        "-o", _option("ControlPath", direct_control_path(control_dir)),
        "-o", f"ControlPersist={DIRECT_PERSIST_S}",
        "-o", _option("UserKnownHostsFile", str(known_hosts)),
        "-o", "StrictHostKeyChecking=accept-new",  # a fresh file per login, as the CLI trusts
        "-o", "NumberOfPasswordPrompts=1",
        "-o", "PreferredAuthentications=password,keyboard-interactive",
        "-o", "ServerAliveInterval=10",
        "-o", "ServerAliveCountMax=10",
        "-N", "-f",
        "-p", str(port),
        f"{user}@{host}",
    ]  # fmt: skip


def direct_exit_argv(user: str, host: str, port: int, control_dir: Path) -> list[str]:
    return [
        "ssh",
        "-o", _option("ControlPath", direct_control_path(control_dir)),
        "-O", "exit",
        "-p", str(port),
        f"{user}@{host}",
    ]  # fmt: skip


def shim_text(real_ssh: str, control_dir: Path) -> str:
    import shlex

    option = shlex.quote(_option("ControlPath", direct_control_path(control_dir)))
    lines = [
        "#!/bin/sh",
        "# clearml-session's ssh, as ClearML Session Tray starts it: a login the tray makes to",
        "# the session's machine meanwhile is waited for, then reused (no password prompt, no",
        "# 5 s wait).",
        "n=0",
        f'while [ -n "${LOGIN_MARKER_ENV}" ] && [ -e "${LOGIN_MARKER_ENV}" ] '
        f"&& [ $n -lt {LOGIN_WAIT_S * 20} ]; do",
        "  sleep 0.05; n=$((n + 1))",
        "done",
        f'exec {shlex.quote(real_ssh)} -o {option} "$@"',
    ]
    return "\n".join(lines) + "\n"


def write_ssh_shim(directory: Path, control_dir: Path | None = None) -> Path | None:
    """The folder to put first on clearml-session's PATH (None: no ssh, no multiplexing, or
    it could not be written: the CLI then logs in by itself, as it always did)."""
    import logging
    import shutil

    real = shutil.which("ssh")
    if real is None or not master_supported():
        return None
    if control_dir is None:
        from tray_app.core.ssh_config import default_control_dir

        control_dir = default_control_dir()
    folder = directory / SHIM_DIR_NAME
    path = folder / "ssh"
    text = shim_text(real, control_dir)
    try:
        if path.read_text() == text and os.access(path, os.X_OK):
            return folder
    except OSError:
        pass
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(path, text, mode=0o700, durable=False)
    except OSError as exc:
        logging.getLogger(__name__).warning("ssh shim not written: %s", exc)
        return None
    return folder

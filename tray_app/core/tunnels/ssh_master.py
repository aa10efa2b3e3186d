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
    text = f'#!/bin/sh\nexec "{sys.executable}" -m tray_app.askpass "$@"\n'
    try:
        if path.read_text() == text and os.access(path, os.X_OK):
            return path  # the usual case: written by an earlier start or login
    except OSError:
        pass
    atomic_write_text(path, text, mode=0o700)
    return path


# --- the session password handed to clearml-session's ssh -----------------------------------
#
# clearml-session types the session password into its ssh and then waits 5 s for a second
# password prompt (how it notices a wrong one) before it reports the tunnel: most of a Connect.
# It waits only when ssh prompts. The CLI finds `ssh` on PATH, so the tray puts a shim first on
# the CLI's PATH: when the tray has left the name of the session's password in the keyring
# (a note beside the marker, used once), that ssh asks our askpass helper instead of prompting,
# logs in, and the CLI sees the shell at once. Otherwise ssh runs exactly as the CLI asked.

SHIM_DIR_NAME = "ssh-shim"
# Set in one clearml-session's environment: the file that exists while the tray fetches the
# password of its session. The CLI starts at once; its ssh (the shim) waits, at most this long.
LOGIN_MARKER_ENV = "CLEARML_TRAY_LOGIN_MARKER"
LOGIN_WAIT_S = 15


def login_marker(control_dir: Path, session_id: str) -> Path:
    """Exists while the tray fetches the password of `session_id` (cleared at start)."""
    return control_dir / f"login-{session_id[:8]}.pending"


def askpass_note(marker: Path) -> Path:
    """Beside `marker`: the keyring entry the CLI's next ssh reads with our askpass helper."""
    return marker.with_suffix(".askpass")


def shim_text(real_ssh: str, askpass: Path) -> str:
    import shlex

    ssh, helper = shlex.quote(real_ssh), shlex.quote(str(askpass))
    lines = [
        "#!/bin/sh",
        "# clearml-session's ssh, as ClearML Session Tray starts it: it waits while the tray",
        "# fetches the session's password; if the tray left the name of the password in the",
        "# keyring, this one ssh reads it with the tray's askpass helper instead of prompting.",
        f'm="${LOGIN_MARKER_ENV}"',
        "n=0",
        f'while [ -n "$m" ] && [ -e "$m" ] && [ $n -lt {LOGIN_WAIT_S * 20} ]; do',
        "  sleep 0.05; n=$((n + 1))",
        "done",
        'note="${m%.pending}.askpass"',
        'if [ -n "$m" ] && [ -s "$note" ]; then',
        f'  {ASKPASS_KEY_ENV}=$(cat "$note"); rm -f "$note"',
        f'  SSH_ASKPASS={helper}; SSH_ASKPASS_REQUIRE=force; DISPLAY="${{DISPLAY:-:0}}"',
        f"  export {ASKPASS_KEY_ENV} SSH_ASKPASS SSH_ASKPASS_REQUIRE DISPLAY",
        f'  exec {ssh} -o NumberOfPasswordPrompts=1 "$@"',
        "fi",
        f'exec {ssh} "$@"',
    ]
    return "\n".join(lines) + "\n"


def write_ssh_shim(directory: Path) -> Path | None:
    """The folder to put first on clearml-session's PATH (None: no ssh or no POSIX shell, or
    it could not be written: the CLI's ssh then prompts, as it always did)."""
    import logging
    import shutil

    real = shutil.which("ssh")
    if real is None or os.name != "posix":  # the shim is a POSIX shell script
        return None
    folder = directory / SHIM_DIR_NAME
    path = folder / "ssh"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = shim_text(real, askpass_launcher(folder))
        if not (path.exists() and path.read_text() == text and os.access(path, os.X_OK)):
            atomic_write_text(path, text, mode=0o700, durable=False)
    except OSError as exc:
        logging.getLogger(__name__).warning("ssh shim not written: %s", exc)
        return None
    return folder

"""argv, environments and small scripts for the ssh the tray starts or shapes: pure builders.

Two logins use the session password, and both get it from the running tray's memory through
our SSH_ASKPASS helper (`tray_app.askpass`), which asks the tray over its user-only socket with a
one-time token (`session_passwords.py`): never from argv, the environment, a file or a keyring.

- The editor's shared connection (OpenSSH ControlMaster): clearml-session 0.17's remote sshd
  takes the session password and the CLI cannot install a key, so the tray opens one master
  connection through the tunnel; the Host block shares its ControlPath, so VS Code's ssh reuses
  it and never asks.
- clearml-session's own first ssh, through a shim first on the CLI's PATH (see below).

An ssh that a ProxyJump or ProxyCommand starts for either never sees any of it: the proxy is
rewritten to run with the askpass variables cleared (`proxy_command`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tray_app.core.atomic import atomic_write_text
from tray_app.core.tunnels.askpass_words import (
    ASKPASS_SOCKET_ENV,
    ASKPASS_TOKEN_ENV,
    LOGIN_MARKER_ENV,
    PROXIED_SSH_ARG,
)

MASTER_ENV = "CLEARML_TRAY_MASTER"  # set for our own master, which must not wait for itself
WAIT_SECONDS = 30
# The variables an ssh started by a ProxyJump / ProxyCommand must not inherit.
ASKPASS_VARIABLES = (
    "SSH_ASKPASS",
    "SSH_ASKPASS_REQUIRE",
    ASKPASS_TOKEN_ENV,
    ASKPASS_SOCKET_ENV,
    LOGIN_MARKER_ENV,
)
# OpenSSH uses an askpass helper on a terminal only when SSH_ASKPASS_REQUIRE=force (8.4+).
ASKPASS_REQUIRE_VERSION = (8, 4)

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

# Printed by ssh itself (LocalCommand) once it has logged in and its forwards listen: the CLI
# takes a line ending in "$ " for its shell prompt and goes on at once. Without it, a remote
# whose prompt ends otherwise ("% ", "❯ ", no space) or that prints a slow banner first would
# keep the CLI waiting up to its 20 s timeout.
LOGGED_IN_LINE = "ClearML Session Tray: logged in with the session password $ "


def master_supported() -> bool:
    """OpenSSH multiplexing needs Unix sockets: not on Windows' OpenSSH."""
    return os.name == "posix"


def openssh_version(banner: str) -> tuple[int, int] | None:
    """(major, minor) from `ssh -V`'s "OpenSSH_9.2p1 Debian-2, OpenSSL 3.0" (None: not OpenSSH)."""
    match = re.search(r"OpenSSH[_ ]for[_ ]Windows[_ ](\d+)\.(\d+)|OpenSSH_(\d+)\.(\d+)", banner)
    if match is None:
        return None
    numbers = [int(g) for g in match.groups() if g is not None]
    return numbers[0], numbers[1]


def askpass_works_on_a_terminal(version: tuple[int, int] | None) -> bool:
    """Whether this ssh uses our helper even with a terminal (the CLI runs ssh on a pty)."""
    return version is not None and version >= ASKPASS_REQUIRE_VERSION


def master_argv(
    alias: str, config_file: Path, port: int | None = None, options: Sequence[str] = ()
) -> list[str]:
    """The master login. `port` repeats the Host block's, so that the askpass answer can be
    checked against the ssh that asks (`session_passwords`)."""
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
        *options,
        *(["-p", str(port)] if port else []),
        "-N",
        "-f",
        alias,
    ]


def check_argv(alias: str, config_file: Path) -> list[str]:
    return ["ssh", "-F", str(config_file), "-O", "check", alias]


def exit_argv(alias: str, config_file: Path) -> list[str]:
    return ["ssh", "-F", str(config_file), "-O", "exit", alias]


def resolved_argv(alias: str, config_file: Path) -> list[str]:
    """`ssh -G`: the options ssh would use for `alias`, proxies included."""
    return ["ssh", "-F", str(config_file), "-G", alias]


def askpass_env(
    base: Mapping[str, str], helper: Path, token: str, socket: str = ""
) -> dict[str, str]:
    """The master's environment: our askpass helper, forced even on a terminal, with the
    one-time token of the password it may be given."""
    env = {k: v for k, v in base.items() if k not in ASKPASS_VARIABLES}
    env.update(
        SSH_ASKPASS=str(helper),
        SSH_ASKPASS_REQUIRE="force",
        DISPLAY=base.get("DISPLAY", ":0"),  # older OpenSSH only uses askpass with a DISPLAY
        **{ASKPASS_TOKEN_ENV: token, MASTER_ENV: "1"},
    )
    if socket:
        env[ASKPASS_SOCKET_ENV] = socket
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


def frozen() -> bool:
    """A PyInstaller bundle: `sys.executable` is the tray itself, not a Python."""
    return bool(getattr(sys, "frozen", False))


def askpass_command() -> list[str]:
    """How to run the askpass helper: an entry of the bundled executable when frozen (it has no
    `-m`), else this interpreter on the module."""
    if frozen():
        return [sys.executable, "_askpass"]
    return [sys.executable, "-m", "tray_app.askpass"]


def askpass_launcher(directory: Path, command: Sequence[str] | None = None) -> Path:
    """An executable ssh can run as SSH_ASKPASS (it takes no arguments of its own)."""
    path = directory / "clearml-tray-askpass"
    argv = " ".join(shlex.quote(part) for part in (command or askpass_command()))
    text = f'#!/bin/sh\nexec {argv} "$@"\n'
    try:
        if path.read_text() == text and os.access(path, os.X_OK):
            return path  # the usual case: written by an earlier start or login
    except OSError:
        pass
    atomic_write_text(path, text, mode=0o700)
    return path


# --- which ssh, as ssh reads its own options -------------------------------------------------

# ssh's options that take an argument (ssh(1) SYNOPSIS); the others are flags.
_WITH_ARGUMENT = set("BbcDEeFIiJLlmOoPpQRSWw")


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Whom an ssh command line logs in to, as far as its argv says."""

    user: str
    host: str
    port: int | None  # None: not on the command line (ssh's config or 22)
    forwarding_stdio: bool  # `-W`: a ProxyJump / ProxyCommand hop, never a login of ours


def ssh_target(argv: Sequence[str]) -> SshTarget | None:
    """Read `ssh [options] [user@]host [options] [command]` as ssh does (options may follow the
    destination; argv[0] is the program); None when there is no destination. `-o User=` and
    `-o Port=` count like `-l` and `-p`; the first value of each wins, as in ssh."""
    user = host_arg = ""
    port: int | None = None
    stdio = False
    k = 1
    while k < len(argv):
        arg = argv[k]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            if arg == "--":
                k += 1
                if k >= len(argv):
                    break
                arg = argv[k]
            if host_arg:
                break  # the remote command
            host_arg = arg
            k += 1
            continue
        letters = arg[1:]
        for j, letter in enumerate(letters):
            if letter not in _WITH_ARGUMENT:
                continue
            value = letters[j + 1 :]
            if not value:
                k += 1
                value = argv[k] if k < len(argv) else ""
            if letter == "l" and not user:
                user = value
            elif letter == "p" and port is None:
                port = _port(value)
            elif letter == "W":
                stdio = True
            elif letter == "o":
                name, _, option = value.replace("=", " ", 1).partition(" ")
                option = option.strip()
                if name.lower() == "user" and not user:
                    user = option
                elif name.lower() == "port" and port is None:
                    port = _port(option)
            break
        k += 1
    if not host_arg:
        return None
    destination = host_arg
    if destination.startswith("ssh://"):
        destination = destination[len("ssh://") :].rstrip("/")
        given, _, rest = destination.rpartition("@")
        if rest.count(":") == 1:
            rest, _, text = rest.partition(":")
            port = port if port is not None else _port(text)
        destination = f"{given}@{rest}" if given else rest
    if "@" in destination:
        given, _, destination = destination.rpartition("@")
        user = user or given
    return SshTarget(user, destination, port, stdio)


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


# --- proxies: never handed the askpass variables ---------------------------------------------


def resolved_options(text: str) -> dict[str, str]:
    """`ssh -G`'s output: lowercase option → its value (the first line of each)."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name and name.lower() not in options:
            options[name.lower()] = value.strip()
    return options


def uses_proxy(options: Mapping[str, str]) -> bool:
    return any(options.get(k, "none").lower() != "none" for k in ("proxyjump", "proxycommand"))


def proxy_command(
    options: Mapping[str, str],
    *,
    ssh: str = "ssh",
    config_file: str = "",
    setsid: str | None = None,
) -> str | None:
    """A ProxyCommand that does what the configured ProxyJump / ProxyCommand does, run with
    the askpass variables cleared (None: no proxy). A jump ssh also runs in batch mode: under
    clearml-session its password prompt would reach the CLI, which would type the session's
    password into it; a jump host is reached with keys or an agent, never with that password.
    `setsid` (Linux) takes a user's own ProxyCommand off the terminal for the same reason."""
    clear = "env " + " ".join(f"-u {name}" for name in ASKPASS_VARIABLES)
    jump = options.get("proxyjump", "none")
    if jump.lower() != "none":
        hops = [h.strip() for h in jump.split(",") if h.strip()]
        if not hops:
            return None
        *rest, last = hops
        user, host, port = _hop(last)
        parts = [shlex.quote(ssh)]
        if config_file:
            parts += ["-F", shlex.quote(config_file)]
        if user:
            parts += ["-l", shlex.quote(user)]
        if port:
            parts += ["-p", str(port)]
        if rest:
            parts += ["-J", shlex.quote(",".join(rest))]
        parts += ["-o", "BatchMode=yes", "-W", "'[%h]:%p'", shlex.quote(host)]
        return f"{clear} {' '.join(parts)}"
    command = options.get("proxycommand", "none")
    if command.lower() == "none" or not command.strip():
        return None
    detach = f"{shlex.quote(setsid)} -w " if setsid else ""
    # ssh expands %h, %p… in the whole option before the shell sees it: the command is passed
    # on as ssh resolved it, quoted as one word for the inner shell.
    return f"{clear} {detach}/bin/sh -c {_quote_keeping_percent(command)}"


def _quote_keeping_percent(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _hop(hop: str) -> tuple[str, str, int | None]:
    """`[user@]host[:port]` or `ssh://[user@]host[:port]` of a ProxyJump list."""
    if hop.startswith("ssh://"):
        hop = hop[len("ssh://") :].rstrip("/")
    user, _, rest = hop.rpartition("@")
    port: int | None = None
    if rest.startswith("["):  # [IPv6]:port
        host, _, tail = rest[1:].partition("]")
        port = _port(tail.lstrip(":")) if tail else None
    elif rest.count(":") == 1:
        host, _, text = rest.partition(":")
        port = _port(text)
    else:
        host = rest
    return user, host, port


# --- the session password handed to clearml-session's ssh -----------------------------------
#
# clearml-session types the session password into its ssh and then waits 5 s for a second
# password prompt (how it notices a wrong one) before it reports the tunnel: most of a Connect.
# It waits only when ssh prompts. The CLI finds `ssh` on PATH (with `which`), so the tray puts
# a shim first on the CLI's PATH: when the tray holds the session's password for it (a note
# beside the marker, used once), that ssh asks our askpass helper instead of prompting, logs in,
# says so (LOGGED_IN_LINE), and the CLI goes on at once. Otherwise ssh runs exactly as the CLI
# asked. Either way, a proxy of that ssh gets none of the askpass variables.

SHIM_DIR_NAME = "ssh-shim"
# The CLI starts at once; its ssh (the shim) waits on the marker (LOGIN_MARKER_ENV, the file
# that exists while the tray fetches the password of its session), at most this long.
LOGIN_WAIT_S = 5


def login_marker(control_dir: Path, key: str) -> Path:
    """Exists while the tray fetches the password for the child `key` (cleared at start)."""
    return control_dir / f"login-{key[:24]}.pending"


def askpass_note(marker: Path) -> Path:
    """Beside `marker`: exists when the CLI's next ssh may ask the tray for the password."""
    return marker.with_suffix(".askpass")


def shim_text(real_ssh: str, askpass: Path, python: Sequence[str]) -> str:
    ssh, helper = shlex.quote(real_ssh), shlex.quote(str(askpass))
    proxied = " ".join(shlex.quote(p) for p in python)
    logged_in = shlex.quote(f"LocalCommand=echo {shlex.quote(LOGGED_IN_LINE)}")
    lines = [
        "#!/bin/sh",
        "# clearml-session's ssh, as ClearML Session Tray starts it: it waits while the tray",
        "# fetches the session's password; if the tray holds it for this ssh (the note), this",
        "# one ssh gets it from the tray through the askpass helper instead of prompting.",
        f'm="${LOGIN_MARKER_ENV}"',
        "n=0",
        f'while [ -n "$m" ] && [ -e "$m" ] && [ $n -lt {LOGIN_WAIT_S * 20} ]; do',
        "  sleep 0.05; n=$((n + 1))",
        "done",
        'note="${m%.pending}.askpass"',
        "use=0",
        'if [ -n "$m" ] && [ -e "$note" ]; then rm -f "$note"; use=1; fi',
        "# A ProxyJump / ProxyCommand is run without the askpass variables.",
        f'if {ssh} -G "$@" 2>/dev/null | grep -Eiq "^proxy(jump|command) "; then',
        f'  exec {proxied} {PROXIED_SSH_ARG} "$use" {helper} {ssh} "$@"',
        "fi",
        'if [ "$use" = 1 ]; then',
        f'  SSH_ASKPASS={helper}; SSH_ASKPASS_REQUIRE=force; DISPLAY="${{DISPLAY:-:0}}"',
        "  export SSH_ASKPASS SSH_ASKPASS_REQUIRE DISPLAY",
        f'  exec {ssh} -o NumberOfPasswordPrompts=1 -o PermitLocalCommand=yes -o {logged_in} "$@"',
        "fi",
        f'exec {ssh} "$@"',
    ]
    return "\n".join(lines) + "\n"


def logged_in_options() -> list[str]:
    """What the shim adds to the ssh it hands the password to (also for the proxied path)."""
    return [
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "PermitLocalCommand=yes",
        "-o",
        f"LocalCommand=echo {shlex.quote(LOGGED_IN_LINE)}",
    ]


# clearml-session finds ssh with `which ssh`: a system without `which` (minimal images, some
# distributions moved it out of the base system) gets this one, first on the CLI's PATH.
WHICH_TEXT = """#!/bin/sh
# `which` for clearml-session, written by ClearML Session Tray: this system has none.
status=0
for name in "$@"; do command -v "$name" || status=1; done
exit $status
"""


def write_ssh_shim(
    directory: Path,
    *,
    real_ssh: str | None = None,
    python: Sequence[str] | None = None,
    which_missing: bool = False,
) -> Path | None:
    """The folder to put first on clearml-session's PATH (None: no ssh or no POSIX shell, or
    it could not be written: the CLI's ssh then prompts, as it always did)."""
    import logging
    import shutil

    log = logging.getLogger(__name__)
    real = real_ssh or shutil.which("ssh")
    if real is None or os.name != "posix":  # the shim is a POSIX shell script
        return None
    folder = directory / SHIM_DIR_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = list(python or askpass_command())
        files = {"ssh": shim_text(real, askpass_launcher(folder, command), command)}
        if which_missing:
            files["which"] = WHICH_TEXT
        elif (folder / "which").exists():
            (folder / "which").unlink()
        for name, text in files.items():
            path = folder / name
            if not (path.exists() and path.read_text() == text and os.access(path, os.X_OK)):
                atomic_write_text(path, text, mode=0o700, durable=False)
    except OSError as exc:
        log.warning("ssh shim not written: %s", exc)
        return None
    return folder

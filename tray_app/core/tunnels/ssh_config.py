"""A managed ssh config file of ours, Include'd once from the user's ~/.ssh/config.

One `Host clearml-<first 8 of the task id>` block per connected session points at the local end
of its `clearml-session` tunnel. The user's own file is never rewritten: the only change ever
made to it is one `Include` line at its top (after a backup, atomically), and the bytes around
it stay exactly as they were (CRLF files get a CRLF line). "Prepare" functions are pure; the
"apply" functions do the I/O under a lock file so that concurrent writers cannot lose blocks.

The user's file keeps what it is: a symlink stays a symlink (the file it points to is
written), its mode and that of `~/.ssh` are left alone, and an Include that already names our
file (another spelling: `~` or absolute, `include`/`Include=`, quoted, a glob) is not added
again. Values in a Host block come partly from the server or a preset (the user name): they are
validated, and one that could break the file (a quote, a space, a line break) is refused with
`UnsafeSshValue` instead of written — one bad line would break ssh to every host.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tray_app.core.atomic import atomic_write_bytes, backup_file
from tray_app.core.tunnels.errors import UnsafeSshValue
from tray_app.core.untrusted import valid_host, valid_port, valid_ssh_user

MARK = "managed by ClearML Session Tray"
ALIAS_PREFIX = "clearml-"


@dataclass(frozen=True, slots=True)
class HostEntry:
    session_id: str
    port: int  # the local port of the tunnel to the session's sshd
    user: str = "root"
    hostname: str = "127.0.0.1"
    control_path: str = ""  # share an authenticated master connection ("" = none)
    wait_command: str = ""  # run before ssh looks for that connection (ssh_master.wait_command)

    @property
    def alias(self) -> str:
        return host_alias(self.session_id)


def host_alias(session_id: str) -> str:
    return ALIAS_PREFIX + session_id[:8]


def default_managed_path(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".ssh" / "clearml-tray" / "config"


_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _path_value(what: str, value: str) -> str:
    """A path as an ssh config argument: quoted when it holds spaces; quotes refused."""
    if '"' in value or any(not ch.isprintable() for ch in value):
        raise UnsafeSshValue(
            f"The {what} {value!r} cannot go into an ssh config (quotes or control characters)"
        )
    return f'"{value}"' if any(ch.isspace() for ch in value) else value


def check_entry(entry: HostEntry) -> None:
    """Raise UnsafeSshValue when a field of `entry` could break the ssh config."""
    if not _SESSION_ID.fullmatch(entry.session_id):
        raise UnsafeSshValue(
            f"The session id {entry.session_id!r} cannot go into an ssh config "
            "(only letters, digits, - and _)"
        )
    if not valid_ssh_user(entry.user):
        raise UnsafeSshValue(
            f"The user name {entry.user!r} cannot go into an ssh config: only letters, digits, "
            "'.', '_' and '-' (not first) are allowed"
        )
    if not valid_host(entry.hostname):
        raise UnsafeSshValue(f"The host name {entry.hostname!r} cannot go into an ssh config")
    if not valid_port(entry.port):
        raise UnsafeSshValue(f"The port {entry.port!r} is not a TCP port (1-65535)")
    if '"' in entry.wait_command or any(not ch.isprintable() for ch in entry.wait_command):
        raise UnsafeSshValue("The wait command cannot go into an ssh config (quotes)")


def render_block(entry: HostEntry, known_hosts: Path) -> str:
    """The Host block of `entry`; raises UnsafeSshValue for a value that would break the file."""
    check_entry(entry)
    known = _path_value("known-hosts path", str(known_hosts))
    # Tunnel ports are reused by other sessions (and by the same session after a restart), each
    # with its own host key. A key file per alias, emptied whenever the block is written for a
    # new tunnel, learns the key on first use and holds it for that tunnel: a changed key never
    # meets an old one (ssh would then refuse password logins: "HOST IDENTIFICATION HAS
    # CHANGED"), and a different process taking the port mid-tunnel is refused.
    lines = [
        f"Host {entry.alias}",
        f"    # {MARK}: session {entry.session_id}",
        f"    HostName {entry.hostname}",
        f"    Port {entry.port}",
        f"    User {entry.user}",
        "    StrictHostKeyChecking accept-new",
        f"    UserKnownHostsFile {known}",
        "    ServerAliveInterval 30",
        "    ServerAliveCountMax 3",
    ]
    if entry.control_path:
        control = _path_value("control path", entry.control_path)
        lines += ["    ControlMaster auto", f"    ControlPath {control}"]
        if entry.wait_command:
            # `originalhost`: by now `host` is the HostName above. The Match has no options;
            # its exec is what counts (see ssh_master), and ssh runs it for this alias only.
            lines.append(f'Match originalhost {entry.alias} exec "{entry.wait_command}"')
    return "\n".join(lines) + "\n"


_BLOCK = re.compile(r"^Host (\S+)\n(?:[ \t].*\n|Match originalhost \1 .*\n|\n)*", re.M)


def parse_blocks(text: str) -> dict[str, str]:
    """alias → block text of the managed file (ours only, so the format is known)."""
    return {m.group(1): m.group(0).rstrip("\n") + "\n" for m in _BLOCK.finditer(text)}


def render_managed(blocks: dict[str, str]) -> str:
    header = f"# {MARK}. Do not edit: rewritten when sessions connect and disconnect.\n\n"
    return header + "\n".join(blocks[alias] for alias in sorted(blocks))


# A Unix socket path holds at most 104 bytes (macOS; 108 on Linux). ssh names a master socket
# <dir>/<%n: the alias, 16 characters; budgeted as %C's 40> and first binds it with a
# 17-character temporary suffix.
MAX_CONTROL_DIR = 104 - 1 - 40 - 17 - 1


def default_control_dir() -> Path:
    """The user-only runtime directory, or /tmp/clearml-tray-<uid>/cm when that is too long.

    A long runtime directory (macOS's is under the home, and so is a test's or a benchmark's
    private XDG_RUNTIME_DIR) would make ssh refuse to create the master socket.
    """
    from tray_app.core.runtime_dir import private_runtime_dir

    try:
        # Checked to be ours: without XDG_RUNTIME_DIR, /tmp/runtime-<uid> may be another user's.
        runtime = private_runtime_dir("clearml-tray") / "cm"
    except OSError:
        import warnings

        import platformdirs

        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR: platformdirs falls back and warns
            warnings.simplefilter("ignore")
            runtime = Path(platformdirs.user_runtime_dir("clearml-tray", appauthor=False)) / "cm"
    return short_control_dir(runtime)


def short_control_dir(preferred: Path, tmp: Path = Path("/tmp")) -> Path:
    if len(str(preferred)) <= MAX_CONTROL_DIR or not hasattr(os, "getuid"):
        return preferred
    fallback = tmp / f"clearml-tray-{os.getuid()}"
    try:
        if fallback.exists() and fallback.lstat().st_uid != os.getuid():
            return preferred  # someone else's: the master fails and the password is offered
    except OSError:
        return preferred
    return fallback / "cm"


def include_line(managed: Path, home: Path) -> str:
    try:
        shown = "~/" + managed.relative_to(home).as_posix()
    except ValueError:
        shown = managed.as_posix()
    return f"Include {shown}"


_INCLUDE = re.compile(r"^\s*include(?:\s*=\s*|\s+)(?P<args>.*)$", re.I)


def _include_args(args: str) -> list[str]:
    """The file arguments of an Include line (double quotes group, as ssh reads them)."""
    return [a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', args.split("#", 1)[0])]


def _include_target(arg: str, home: Path) -> str:
    """An Include argument as the absolute path (or glob) ssh reads from a user config."""
    if arg == "~" or arg.startswith("~/"):
        path = str(home) + arg[1:]
    elif not arg.startswith("/"):
        path = str(home / ".ssh" / arg)  # relative: to ~/.ssh in a user configuration
    else:
        path = arg
    return os.path.normpath(path)


def includes_path(text: str, target: Path, home: Path) -> bool:
    """Whether an Include line of `text` already names `target` (any spelling, or a glob)."""
    wanted = os.path.normpath(str(target))
    for existing in text.splitlines():
        match = _INCLUDE.match(existing)
        if not match:
            continue
        for arg in _include_args(match.group("args")):
            named = _include_target(arg, home)
            if named == wanted or (
                any(c in named for c in "*?[") and fnmatch.fnmatchcase(wanted, named)
            ):
                return True
    return False


def plan_include(user_config: bytes | None, line: str, home: Path | None = None) -> bytes | None:
    """The user's ~/.ssh/config with our Include line at the top, or None if it is there.

    `Include` must come before any Host/Match block to apply to every host. Nothing else in
    the bytes changes: line endings follow the file, a missing final newline stays missing.
    With `home`, an Include naming the same file another way counts as there.
    """
    data = user_config or b""
    text = data.decode("utf-8", errors="surrogateescape")
    for existing in text.splitlines():
        if existing.strip() == line:
            return None
    if home is not None:
        args = _include_args(line.split(None, 1)[1]) if " " in line else []
        if args and includes_path(text, Path(_include_target(args[0], home)), home):
            return None
    newline = "\r\n" if "\r\n" in text else "\n"
    added = f"# added by ClearML Session Tray{newline}{line}{newline}"
    if data:
        added += newline
    return added.encode("utf-8") + data


def include_diff(user_config: bytes | None, line: str, path: Path, home: Path | None = None) -> str:
    """What adding the Include line would change, for the first-time confirmation."""
    new = plan_include(user_config, line, home)
    if new is None:
        return ""
    before = (user_config or b"").decode("utf-8", "replace").splitlines(keepends=True)
    after = new.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, str(path), str(path) + " (new)"))


# --- apply ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """An exclusive lock on a file of ours (never a new file in the user's ~/.ssh)."""
    lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(lock, "a+b") as handle:
        if os.name == "posix":
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows; imported by name (mypy checks this on Linux)
            import importlib

            msvcrt: Any = importlib.import_module("msvcrt")
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
        yield


class SshConfig:
    """The managed file and the one Include line in the user's config."""

    def __init__(self, home: Path | None = None, control_dir: Path | None = None) -> None:
        self.home = home or Path.home()
        self.ssh_dir = self.home / ".ssh"
        self.managed = default_managed_path(self.home)
        self.user_config = self.ssh_dir / "config"
        self.known_hosts_dir = self.managed.parent / "known_hosts.d"
        self.lock = self.managed.parent / "config.lock"
        # Unix socket paths are limited to ~104 bytes: master sockets live in the short runtime
        # directory (user-only), not under a possibly long home.
        self.control_dir = control_dir or default_control_dir()

    def ensure_dirs(self) -> None:
        # ~/.ssh is the user's: created private when missing, its mode never changed.
        if not self.ssh_dir.is_dir():
            self.ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory in (self.managed.parent, self.known_hosts_dir, self.control_dir):  # ours
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory.chmod(0o700)

    def include_pending(self) -> str:
        """The diff of the Include line still to be added ("" when it is already there)."""
        current = self.user_config.read_bytes() if self.user_config.exists() else None
        return include_diff(
            current, include_line(self.managed, self.home), self.user_config, self.home
        )

    def ensure_include(self) -> Path | None:
        """Add the Include line once (backup first); returns the backup path if one was made."""
        self.ensure_dirs()
        with _locked(self.lock):
            current = self.user_config.read_bytes() if self.user_config.exists() else None
            new = plan_include(current, include_line(self.managed, self.home), self.home)
            if new is None:
                return None
            backup = backup_file(self.user_config) if current is not None else None
            # Through a symlink, keeping the file's mode (a new file is 0600).
            atomic_write_bytes(self.user_config, new)
            return backup

    def known_hosts_for(self, alias: str) -> Path:
        return self.known_hosts_dir / alias

    def add(self, entry: HostEntry, *, fresh_host_key: bool = False) -> str:
        """Write (or replace) the session's Host block; returns its alias.

        `fresh_host_key`: a new tunnel, so forget the host key learnt through the previous one.
        Raises UnsafeSshValue (before touching anything) for a value that would break the file.
        """
        check_entry(entry)
        self.ensure_dirs()
        with _locked(self.lock):
            if fresh_host_key:
                self.known_hosts_for(entry.alias).unlink(missing_ok=True)
            blocks = parse_blocks(self.managed.read_text()) if self.managed.exists() else {}
            blocks[entry.alias] = render_block(entry, self.known_hosts_for(entry.alias))
            # Not fsync'd: the file is ours, rebuilt from live tunnels, and the editor waits.
            atomic_write_bytes(self.managed, render_managed(blocks).encode(), durable=False)
            self.managed.chmod(0o600)
        return entry.alias

    def remove(self, session_id: str) -> bool:
        return self.remove_aliases([host_alias(session_id)]) == 1

    def remove_aliases(self, aliases: list[str] | None = None) -> int:
        """Remove these Host blocks (None: all of ours) in one write; how many went."""
        with _locked(self.lock):
            if not self.managed.exists():
                return 0
            blocks = parse_blocks(self.managed.read_text())
            gone = [a for a in (list(blocks) if aliases is None else aliases) if a in blocks]
            if not gone:
                return 0
            for alias in gone:
                del blocks[alias]
                self.known_hosts_for(alias).unlink(missing_ok=True)
            atomic_write_bytes(self.managed, render_managed(blocks).encode())
            return len(gone)

    def aliases(self) -> list[str]:
        if not self.managed.exists():
            return []
        return sorted(parse_blocks(self.managed.read_text()))

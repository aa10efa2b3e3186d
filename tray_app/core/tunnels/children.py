"""No `clearml-session` child outlives the tray, even when the tray is killed.

Three layers: the whole tree below a child is signalled when it ends (`descendants`: the CLI's
ssh runs in a session of its own, out of the child's process group); on Linux each child starts
under `setpriv --pdeathsig TERM` (util-linux), so the kernel ends it the moment the tray dies,
SIGKILL included, and its pty'd `ssh` then gets a hang-up.
Everywhere, the children's pids (with their start times, so a reused pid is never hit) are
recorded in a file of ours, and the next start ends what an unclean exit left.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from tray_app.core.atomic import atomic_write_text

log = logging.getLogger(__name__)


def guarded_argv(argv: Sequence[str], setpriv: str | None = None) -> list[str]:
    """`argv` run so that the kernel sends it SIGTERM when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    tool = setpriv if setpriv is not None else shutil.which("setpriv")
    if not tool:
        return list(argv)
    return [tool, "--pdeathsig", "TERM", "--", *argv]


def process_token(pid: int) -> str | None:
    """Something that names this very process: its start time in clock ticks since boot.

    None when there is no such process (or no /proc: then the pid alone is checked).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if Path("/proc").is_dir():
            return None
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        except OSError:
            return None
        return "alive"
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[19]  # field 22 of proc(5): starttime


class ChildPidFile:
    """The pids of our live children, kept in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[int, str] = {}

    def add(self, pid: int) -> None:
        token = process_token(pid) if pid > 0 else None
        if token is None:
            return
        self._entries[pid] = token
        self._save()

    def discard(self, pid: int) -> None:
        if self._entries.pop(pid, None) is not None:
            self._save()

    def reap_stale(self) -> int:
        """End the children an earlier run left behind (its pid file); how many were alive."""
        try:
            recorded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return 0
        ended = 0
        if isinstance(recorded, dict):
            for pid_text, token in recorded.items():
                with contextlib.suppress(ValueError):
                    pid = int(pid_text)
                    if pid != os.getpid() and token and process_token(pid) == token:
                        ended += 1
                        _end_tree(pid)
        with contextlib.suppress(OSError):
            self.path.unlink()
        if ended:
            log.warning("ended %d clearml-session child(ren) left by an earlier run", ended)
        return ended

    def _save(self) -> None:
        try:
            if self._entries:
                text = json.dumps({str(k): v for k, v in self._entries.items()})
                atomic_write_text(self.path, text, durable=False)
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not record the children: %s", exc)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children first). The CLI's ssh runs in its own session
    (pexpect forks it on a pty with setsid), so killing our child's process group misses it."""
    try:
        import psutil  # type: ignore[import-untyped]

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    except ImportError:
        pass
    parents: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) comes after the parenthesised command, which may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory of `pid` and everything below it, in MB (Linux /proc); None where it
    cannot be read (another system, the process gone)."""
    if pid <= 0 or not Path("/proc/self/statm").exists():
        return None
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    total = 0
    for member in (pid, *descendants(pid)):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            if member == pid:
                return None
    return total / (1024 * 1024)


def signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def signal_group(pid: int, sig: int) -> None:
    """`sig` to the process group `pid` leads (each child starts a session of its own)."""
    if os.name != "posix":
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _end_tree(pid: int) -> None:
    """SIGTERM the child's process group (it ran in a session of its own) and the child."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGTERM)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)

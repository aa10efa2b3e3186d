"""The user's files, followed: a change on disk is noticed within seconds, without a restart.

`FileWatch` looks at groups of files every `every_s` on the asyncio loop (the `stat` calls run
in a worker thread) and runs a group's coroutine when one of its files changed: its device,
inode, size, modification or change time, or its coming or going (a missing ~/clearml.conf that
`clearml-init` writes counts). Polling works the same on every system and filesystem (network
homes, containers) and needs no library; a handful of `stat` calls every 1.5 s costs nothing.

An editor saving a file may write it in several steps (truncate, then write; a temporary file
renamed over it): a change is acted on once the files have stayed the same for one more look,
so a half-written file is not read. A group whose list of files changes (another clearml.conf
chosen in Settings) takes the new list as its starting point: whoever changed it has already
applied it. `rearm` does the same after the app writes a file itself.

Tested in tests/unit/test_file_watch.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tray_app.core.periodic import Periodic

log = logging.getLogger(__name__)

WATCH_EVERY_S = 1.5

# (device, inode, size, mtime ns, ctime ns); None: missing; "?": cannot be looked at.
Stamp = tuple[int, int, int, int, int] | None | str


def stamp(path: Path) -> Stamp:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def stamps(paths: Iterable[Path]) -> dict[Path, Stamp]:
    return {path: stamp(path) for path in paths}


@dataclass
class _Group:
    paths: Callable[[], Iterable[Path]]
    changed: Callable[[], Awaitable[None]]
    seen: dict[Path, Stamp] | None = None  # as last acted on (None: not looked at yet)
    pending: dict[Path, Stamp] | None = None  # a change seen, waiting for the files to settle


class FileWatch:
    def __init__(self, every_s: float = WATCH_EVERY_S) -> None:
        self._groups: dict[str, _Group] = {}
        self._periodic = Periodic(every_s, self._tick, "file watch")
        self._lock = asyncio.Lock()

    def watch(
        self, name: str, paths: Callable[[], Iterable[Path]], changed: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `changed` when one of `paths()` (asked anew at every look) changes."""
        self._groups[name] = _Group(paths, changed)

    async def start(self) -> None:
        """Take the files as they are now as the starting point, then look every few seconds
        (a change made between now and the first look is not missed)."""
        for name in list(self._groups):
            await self.rearm(name)
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _tick(self) -> None:
        await self.check_once()

    async def rearm(self, name: str) -> None:
        """The files of `name` as they are now are the starting point (the app wrote them)."""
        group = self._groups.get(name)
        if group is not None:
            group.seen = await asyncio.to_thread(stamps, list(group.paths()))
            group.pending = None

    async def check_once(self) -> list[str]:
        """One look at every group; the names of those whose change was acted on."""
        async with self._lock:  # a slow reaction never overlaps the next look
            looked = {
                name: list(dict.fromkeys(group.paths())) for name, group in self._groups.items()
            }
            now = await asyncio.to_thread(
                lambda: {name: stamps(paths) for name, paths in looked.items()}
            )
            acted: list[str] = []
            for name, current in now.items():
                group = self._groups.get(name)
                if group is None:
                    continue
                if group.seen is None or set(group.seen) != set(current):
                    group.seen, group.pending = current, None  # new files: a new start
                    continue
                if current == group.seen:
                    group.pending = None
                    continue
                if current != group.pending:
                    group.pending = current  # changed: act once it holds still
                    continue
                files = sorted(str(p) for p in current if current[p] != group.seen.get(p))
                group.seen, group.pending = current, None
                log.info("%s changed on disk: %s", name, ", ".join(files))
                try:
                    await group.changed()
                except Exception:  # one bad reaction must not end the watch
                    log.exception("reacting to a change of %s failed", name)
                acted.append(name)
            return acted

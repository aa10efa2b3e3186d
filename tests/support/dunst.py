"""A private, real dunst notification daemon for desktop tests.

dunst runs on the current X display and D-Bus session bus (CI: `xvfb-run -a dbus-run-session`).
Its `dmenu` setting points at a script that records the context-menu lines dunst offers and
answers with the one matching the label the test wants, so `dunstctl context` presses a button
exactly as a user picking it from dunst's menu would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.desktop import stop_process, wait_for

PICK_SCRIPT = """#!/bin/sh
cat > "{menu}"
grep -m1 -F -- "$(cat "{choice}")" "{menu}"
"""


def require_dunst() -> None:
    if not os.environ.get("DISPLAY"):
        pytest.skip("notification tests need an X display: run under `xvfb-run -a`")
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        pytest.skip("notification tests need a D-Bus session bus: run under `dbus-run-session`")
    for tool in ("dunst", "dunstctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"notification tests need `{tool}` (apt-get install dunst)")


@dataclass
class Dunst:
    proc: subprocess.Popen[bytes]
    workdir: Path

    def _ctl(self, *args: str) -> str:
        return subprocess.run(
            ["dunstctl", *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout

    def displayed(self) -> int:
        return int(self._ctl("count", "displayed").strip())

    def history(self) -> list[dict[str, Any]]:
        data = json.loads(self._ctl("history"))
        return [
            {k: v.get("data") for k, v in item.items()} for group in data["data"] for item in group
        ]

    def close_all(self) -> None:
        self._ctl("close-all")

    def press(self, label: str) -> list[str]:
        """Pick the button `label` through dunst's context menu; returns the menu lines."""
        menu = self.workdir / "menu"
        menu.unlink(missing_ok=True)
        (self.workdir / "choice").write_text(label)
        self._ctl("context")  # returns before dunst has run the dmenu script
        deadline = time.monotonic() + 10
        while not menu.exists() or not menu.read_text():
            if time.monotonic() > deadline:
                raise AssertionError("dunst did not open its context menu")
            time.sleep(0.05)
        return menu.read_text().splitlines()


def notifications_owner() -> int | None:
    """PID of whoever owns org.freedesktop.Notifications on the session bus (no activation)."""
    result = subprocess.run(
        [
            "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixProcessID",
            "string:org.freedesktop.Notifications",
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )  # fmt: skip
    match = re.search(r"uint32 (\d+)", result.stdout)
    return int(match.group(1)) if match else None


@contextmanager
def running_dunst(workdir: Path) -> Iterator[Dunst]:
    require_dunst()
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "pick.sh"
    script.write_text(PICK_SCRIPT.format(menu=workdir / "menu", choice=workdir / "choice"))
    script.chmod(0o755)
    config = workdir / "dunstrc"
    config.write_text(
        "[global]\n"
        f"    dmenu = {script}\n"
        "    show_indicators = no\n"
        "[urgency_low]\n    timeout = 0\n"
        "[urgency_normal]\n    timeout = 0\n"
        "[urgency_critical]\n    timeout = 0\n"
    )
    # The bus may have started a default dunst by D-Bus activation (any earlier notification or
    # dunstctl call does that): it would own the name and ignore our configuration.
    stray = notifications_owner()
    if stray is not None:
        os.kill(stray, signal.SIGTERM)
        wait_for(lambda: notifications_owner() is None, 10, "the old notification daemon to exit")
    proc = subprocess.Popen(
        ["dunst", "-config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    dunst = Dunst(proc, workdir)
    try:
        wait_for(lambda: notifications_owner() == proc.pid, 10, "our dunst to own the bus name")
    except AssertionError:
        proc.kill()
        raise
    try:
        yield dunst
    finally:
        stop_process(proc)

"""tools/screenshots.py takes the README's pictures; the ready notification from a real connect."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
PICTURES = (
    "menu.png",
    "session.png",
    "new-session.png",
    "notification.png",
    "settings.png",
    "keys.png",
    "outage.png",
)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_script_takes_every_picture_and_the_ready_notice_comes_from_a_real_connect(
    tmp_path: Path,
) -> None:
    if shutil.which("xvfb-run") is None:
        pytest.skip("needs xvfb-run (apt-get install xvfb)")
    # Its own X server and bus: the script starts its own tray host, dunst and keyring.
    run = subprocess.run(
        [
            "xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "dbus-run-session", "--",
            sys.executable, str(ROOT / "tools" / "screenshots.py"), str(tmp_path / "shots"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # The tunnel of `clearml-tray connect <short id>` came up (the launcher's own hook said so)
    # before the picture was taken; the script then found "Session ready" in dunst's history.
    assert re.search(r"^tunnel up: clearml-[0-9a-f]{8} on localhost:\d+ ", run.stdout, re.M), (
        run.stdout
    )
    for name in PICTURES:
        width, height = _png_size(tmp_path / "shots" / name)
        assert width > 200 and height > 80, (name, width, height)

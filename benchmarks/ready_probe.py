"""Runs the real tray in this process and times "ready line → editor command spawned".

Started by benchmarks/logparse.py with a private HOME, a file keyring inside it, a stand-in
`code` first on PATH and a clearml.conf for an emulator (with its agent and SSH endpoints) in
another process. The tray launches a session through the real `clearml-session`; the moment
the tunnel registry has the parsed ready line is taken here, the moment the editor
process starts is written by the stand-in itself (`date +%s.%N`, before anything else). Prints
one JSON line.

What the tray adds to launch → ready over the CLI alone is measured from both ends instead of
as the difference of two launches (the CLI polls the server with 2 s sleeps, so two launches
differ by seconds for reasons of their own): the launch call → the CLI process created, plus
the CLI writing its ready line (stamped inside the CLI by the `sitecustomize` below, found on
PYTHONPATH; it does nothing in any other process) → the tunnel ready in the tray.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

STAMP_ENV = "BENCH_READY_STAMP"
SITECUSTOMIZE = """
import os, sys, time
def _is_cli():
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return b"clearml-session" in f.read()
    except OSError:
        return False
if os.environ.get("BENCH_READY_STAMP") and _is_cli():
    with open(os.environ["BENCH_READY_STAMP"], "a") as f:
        f.write("start %r\\n" % time.time())
    class _Stamped:
        def __init__(self, stream):
            self._stream = stream
        def write(self, text):
            if "SSH: ssh " in text:
                with open(os.environ["BENCH_READY_STAMP"], "a") as f:
                    f.write("ready %r\\n" % time.time())
            return self._stream.write(text)
        def __getattr__(self, name):
            return getattr(self._stream, name)
    sys.stdout = _Stamped(sys.stdout)
"""


def write_sitecustomize(folder: Path) -> None:
    """The stamp for the CLI's ready line: put `folder` first on the probe's PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)


def _stamps(path: Path | None) -> dict[str, float]:
    if path is None or not path.exists():
        return {}
    return {k: float(v) for k, v in (line.split() for line in path.read_text().splitlines())}


async def measure(app: Any, record: Path) -> dict[str, Any]:
    from tray_app.core.settings.presets import Preset
    from tray_app.core.tunnels.model import TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig

    ready_at: list[float] = []

    def tunnels_changed() -> None:  # the registry has the parsed ready line
        ready = (t.state == TunnelState.READY for t in app.tunnels.tunnels().values())
        if not ready_at and any(ready):
            ready_at.append(time.time())

    app.tunnel_signals.tunnels_changed.connect(tunnels_changed)
    # A user who agreed to the Include line on an earlier connect: no question on this one.
    await asyncio.to_thread(SshConfig().ensure_include)
    await app.start()
    import os

    stamp = Path(os.environ[STAMP_ENV]) if os.environ.get(STAMP_ENV) else None
    launched = time.time()
    await app.launch(Preset(name="bench", queue="sessions", project="DevOps"))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        spawns = _spawns(record)
        if ready_at and spawns:
            break
        await asyncio.sleep(0.05)
    else:
        raise TimeoutError("the session did not become ready / the editor was not started")
    spawns = _spawns(record)
    for _ in range(3000):  # the login goes on meanwhile: wait for it (30 s at most)
        if not app.hosts.logins_pending:
            break
        await asyncio.sleep(0.01)
    master_at = time.time()
    masters = dict(app.hosts.masters)
    await app.quit(shutdown_remote=True)
    stamps = _stamps(stamp)
    nan = float("nan")
    return {
        # to the CLI's first Python line (its interpreter start, which the CLI alone pays too,
        # is counted here as the tray's)
        "launch_to_spawn_ms": (stamps.get("start", nan) - launched) * 1000,
        "ready_line_to_hook_ms": (ready_at[0] - stamps.get("ready", nan)) * 1000,
        "launch_to_ready_s": ready_at[0] - launched,
        "ready_to_editor_ms": (spawns[0][0] - ready_at[0]) * 1000,
        "editor_argv": spawns[0][1],
        "extension_checks": sum(1 for _t, argv in _all(record) if argv == ["--list-extensions"]),
        "master_up": bool(masters),
        "ready_to_login_ms": (master_at - ready_at[0]) * 1000,
    }


def _all(record: Path) -> list[tuple[float, list[str]]]:
    if not record.exists():
        return []
    rows = []
    for line in record.read_text().splitlines():
        stamp, _, argv = line.partition(" ")
        rows.append((float(stamp), argv.split()))
    return rows


def _spawns(record: Path) -> list[tuple[float, list[str]]]:
    return [row for row in _all(record) if row[1][:1] == ["--new-window"]]


def main() -> int:
    from benchmarks.tray_child import run_tray

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--record", required=True, type=Path)
    args = parser.parse_args()
    return run_tray(args.config, lambda app: measure(app, args.record))


if __name__ == "__main__":
    raise SystemExit(main())

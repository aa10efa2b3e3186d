"""Snapshot latency and HTTP request count vs. number of sessions, against the emulator.

Run: `.venv/bin/python benchmarks/snapshot_bench.py [--repeat 5] [--sizes 0,1,50,200,1000]`.
Two transports: in-process (httpx.ASGITransport, no sockets) and a real uvicorn server on
loopback. Prints figures only; no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tray_app.core.api import ClearMLClient
from tray_app.core.config import ServerConfig
from tray_app.core.sessions import SessionService
from tray_app.demo import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    DemoServer,
    EmulatorState,
    create_app,
)


async def measure(
    url: str,
    transport: httpx.AsyncBaseTransport | None,
    state: EmulatorState,
    repeat: int,
    all_users: bool,
) -> tuple[float, float, int, int]:
    """(median ms, max ms, requests per snapshot, sessions shown)."""
    cfg = ServerConfig(url, url, "", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    async with ClearMLClient(cfg, transport=transport) as client:
        service = SessionService(client)
        snap = await service.snapshot(all_users=all_users)  # warm-up: login, caches
        times = []
        before = state.count_requests()
        for _ in range(repeat):
            start = time.perf_counter()
            snap = await service.snapshot(all_users=all_users)
            times.append((time.perf_counter() - start) * 1000)
        per_snapshot = (state.count_requests() - before) // repeat
    return statistics.median(times), max(times), per_snapshot, len(snap.sessions)


def run(
    label: str,
    sizes: list[int],
    repeat: int,
    serve: Callable[
        [EmulatorState], tuple[str, httpx.AsyncBaseTransport | None, Callable[[], None]]
    ],
) -> None:
    print(f"\n{label}")
    print(
        f"{'sessions':>8} {'scope':>5} {'shown':>6} {'requests':>8} {'median ms':>10} {'max ms':>8}"
    )
    for size in sizes:
        state = EmulatorState.seeded(sessions=size)
        url, transport, stop = serve(state)
        try:
            for all_users in (False, True):
                median, worst, requests, shown = asyncio.run(
                    measure(url, transport, state, repeat, all_users)
                )
                scope = "all" if all_users else "own"
                print(
                    f"{size:>8} {scope:>5} {shown:>6} {requests:>8} {median:>10.1f} {worst:>8.1f}"
                )
        finally:
            stop()


def in_process(state: EmulatorState) -> tuple[str, httpx.AsyncBaseTransport, Callable[[], None]]:
    return "http://emulator.test", httpx.ASGITransport(app=create_app(state)), lambda: None


def uvicorn_server(state: EmulatorState) -> tuple[str, None, Callable[[], None]]:
    server = DemoServer(state, port=0).start()
    return server.url, None, server.stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="0,1,50,200,1000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"snapshot benchmark: {args.repeat} snapshots per row after one warm-up")
    print("requests = HTTP requests the emulator handled per snapshot (login excluded)")
    run("in-process emulator (httpx.ASGITransport)", sizes, args.repeat, in_process)
    run("uvicorn emulator on 127.0.0.1", sizes, args.repeat, uvicorn_server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Refresh time with 50 ms added to every request, at 1, 100 and 1000 seeded sessions.

The emulator runs in a process of its own (a real server is not in the tray's process; here it
would also compete with the client for the GIL) and adds `LATENCY_S` to every request it
handles (`state.faults.latency`). Timed: our steady-state snapshot (median of 5, after a
warm-up that logged in and learnt the page count), own sessions and all users; the VS Code
extension's refresh (login, projects.get_all, tasks.get_all_ex, one after the other); and one
run of `clearml-session list` / `list --all_users`.

Round trips = milliseconds / 50. Besides, a transport wrapper counts the sequential waves of
requests (a wave starts when a request is sent while none is in flight): the number of round
trips whatever the CPU time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.common import Context, Figure, at_most, median, run_measured, tool_env, venv_bin
from benchmarks.emulator_proc import ChildEmulator
from benchmarks.traffic import extension_refresh, server_config
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.http_httpx import HTTP_LIMITS
from tray_app.core.server.sessions import SessionService
from tray_app.demo import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, clearml_conf_text

SECTION = "latency"
LATENCY_S = 0.05
SIZES = (1, 100, 1000)
QUICK_SIZES = (1, 10)
REPEATS = 11
QUICK_REPEATS = 2
TARGET_ROUND_TRIPS = 1.5

NOTE = (
    "Emulator in its own process on 127.0.0.1 adding 50 ms to each HTTP request (not to TCP or "
    "TLS handshakes: connections are kept alive between refreshes). Milliseconds include the "
    "emulator's own work (pure Python: filtering, projecting and encoding every task; it handles "
    "concurrent requests one after the other) and the client's (decoding the JSON, building "
    "Sessions), which grow with sessions; a real server does its share with indexes and in "
    "parallel workers. "
)
NOTES = {
    "ours": NOTE
    + "Steady state: one wave of concurrent requests (workers.get_all + the task pages the "
    "last snapshot needed); no login (token kept until shortly before it expires).",
    "extension": NOTE
    + "The VS Code extension 0.0.6 sends login, projects.get_all and tasks.get_all_ex one "
    "after the other, the last with whole task documents (script.diff of ~72 KB each).",
    "list": NOTE + "One run of the real clearml-session CLI: Python and SDK start-up, its login, "
    "then one request at a time (one projects.get_by_id per listed session).",
}


# -- clients ------------------------------------------------------------------------------------


class WaveCounter(httpx.AsyncBaseTransport):
    """Counts sequential waves: a request sent while none is in flight starts a new one."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.in_flight = 0
        self.waves = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.in_flight == 0:
            self.waves += 1
        self.in_flight += 1
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()  # in flight until the whole body is in
        finally:
            self.in_flight -= 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(frozen=True, slots=True)
class Timing:
    client: str
    kind: str  # "ours", "extension", "list"
    ms: float  # median with LATENCY_S per request
    ms_no_latency: float  # median without
    waves: float  # sequential request waves per refresh (-1: not counted)

    @property
    def round_trips(self) -> float:
        return self.ms / (LATENCY_S * 1000)

    @property
    def added_round_trips(self) -> float:
        """What the latency added, in round trips (the CPU time taken out)."""
        return (self.ms - self.ms_no_latency) / (LATENCY_S * 1000)


async def _median_ms(action: Callable[[], Awaitable[None]], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await action()
        times.append((time.perf_counter() - start) * 1000)
    return median(times)


async def _interleaved(
    emu: ChildEmulator,
    refresh: Callable[[], Awaitable[None]],
    counter: WaveCounter,
    repeats: int,
) -> tuple[float, float, float]:
    """(median ms without latency, median ms with it, waves per refresh with it).

    Runs alternate, so that drift in the machine's load weighs on both medians alike: their
    difference is what the latency costs.
    """
    plain, slow = [], []
    waves = 0
    for _ in range(repeats):
        emu.set_latency(0)
        plain.append(await _median_ms(refresh, 1))
        emu.set_latency(LATENCY_S)
        counter.waves = 0
        slow.append(await _median_ms(refresh, 1))
        waves += counter.waves
    return median(plain), median(slow), waves / repeats


async def time_ours(emu: ChildEmulator, all_users: bool, repeats: int) -> Timing:
    counter = WaveCounter(httpx.AsyncHTTPTransport(limits=HTTP_LIMITS))
    async with ClearMLClient(server_config(emu.url), transport=counter) as client:
        service = SessionService(client)

        async def refresh() -> None:
            await service.snapshot(all_users=all_users)

        emu.set_latency(0)
        await refresh()  # warm-up: login, page count, connections
        plain, slow, waves = await _interleaved(emu, refresh, counter, repeats)
    label = "ours (all users)" if all_users else "ours (own)"
    return Timing(label, "ours", slow, plain, waves)


async def time_extension(emu: ChildEmulator, repeats: int) -> Timing:
    counter = WaveCounter(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(transport=counter, timeout=120) as http:

        async def refresh() -> None:
            await extension_refresh(http, emu.url)

        emu.set_latency(0)
        await refresh()  # warm-up: connection
        plain, slow, waves = await _interleaved(emu, refresh, counter, repeats)
    return Timing("extension", "extension", slow, plain, waves)


def time_list(emu: ChildEmulator, workdir: Path, all_users: bool) -> Timing:
    home = workdir / "clearml-session-home"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "clearml.conf"
    config.write_text(clearml_conf_text(emu.url, DEMO_ACCESS_KEY, DEMO_SECRET_KEY))
    config.chmod(0o600)
    argv = [venv_bin("clearml-session"), "list"] + (["--all_users"] if all_users else [])
    env = tool_env(config, home)
    seconds = {}
    for latency in (0.0, LATENCY_S):
        emu.set_latency(latency)
        run = run_measured(argv, env, timeout=900)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:])} exited with {run.returncode}")
        seconds[latency] = run.seconds
    label = "clearml-session list" + (" --all_users" if all_users else "")
    return Timing(label, "list", seconds[LATENCY_S] * 1000, seconds[0.0] * 1000, -1)


def measure_size(sessions: int, workdir: Path, repeats: int) -> list[Timing]:
    with ChildEmulator(sessions, like_clearml_session=True) as emu:
        return [
            asyncio.run(time_ours(emu, all_users=False, repeats=repeats)),
            asyncio.run(time_ours(emu, all_users=True, repeats=repeats)),
            asyncio.run(time_extension(emu, repeats)),
            time_list(emu, workdir, all_users=False),
            time_list(emu, workdir, all_users=True),
        ]


# -- figures ------------------------------------------------------------------------------------


def _figures_for(sessions: int, t: Timing) -> list[Figure]:
    name = f"{t.client}, {sessions} sessions"
    note = NOTES[t.kind]
    if t.kind == "list":
        return [
            Figure(SECTION, f"run time with 50 ms latency, {name}", t.ms / 1000, "s", note=note),
            Figure(SECTION, f"run time without latency, {name}", t.ms_no_latency / 1000, "s",
                   note=note),
        ]  # fmt: skip
    return [
        Figure(SECTION, f"refresh with 50 ms latency, {name}", t.ms, "ms", note=note),
        Figure(
            SECTION,
            f"refresh with 50 ms latency, round trips (ms/50), {name}",
            t.round_trips,
            "round trips",
            note=note,
        ),
        Figure(SECTION, f"refresh without latency, {name}", t.ms_no_latency, "ms", note=note),
        Figure(
            SECTION,
            f"round trips added by the latency ((ms - ms without)/50), {name}",
            t.added_round_trips,
            "round trips",
            note="Difference of two medians: noisy by a few ms.",
        ),
        Figure(
            SECTION,
            f"sequential request waves per refresh, {name}",
            t.waves,
            "waves",
            note="Counted by a transport wrapper: requests sent while none was in flight.",
        ),
    ]


def target_figures(results: dict[int, list[Timing]]) -> list[Figure]:
    """The target is judged on what the latency costs: (ms with - ms without) / 50.

    ms/50 alone also counts CPU time that no latency causes (the pure-Python emulator building
    a 1000-session answer, the client decoding it): it is reported next to it, not judged.
    """
    ours = [(size, t) for size, timings in results.items() for t in timings if t.kind == "ours"]
    span = f"{min(results)}..{max(results)} sessions"
    size, worst = max(ours, key=lambda item: item[1].added_round_trips)
    raw_size, raw = max(ours, key=lambda item: item[1].round_trips)
    waves = max(t.waves for _, t in ours)
    return [
        Figure(
            SECTION,
            f"round trips the 50 ms latency adds to a refresh, ours, worst of {span} "
            f"(at {size}, {worst.client.removeprefix('ours ')})",
            worst.added_round_trips,
            "round trips",
            target=f"<= {TARGET_ROUND_TRIPS}",
            met=at_most(worst.added_round_trips, TARGET_ROUND_TRIPS),
            note=NOTES["ours"]
            + f" Counted: at most {waves:g} sequential wave(s) of requests per refresh.",
        ),
        Figure(
            SECTION,
            f"refresh with 50 ms latency in round trips (ms/50, CPU included), ours, worst of "
            f"{span} (at {raw_size}, {raw.client.removeprefix('ours ')})",
            raw.round_trips,
            "round trips",
            note="At 1000 sessions most of it is CPU: the emulator (pure Python, one request "
            "at a time) and the client decoding ~1 MB of JSON; see the 'without latency' rows.",
        ),
    ]


def run(ctx: Context) -> list[Figure]:
    sizes = QUICK_SIZES if ctx.quick else SIZES
    repeats = QUICK_REPEATS if ctx.quick else REPEATS
    results: dict[int, list[Timing]] = {}
    for sessions in sizes:
        ctx.say(f"latency: {sessions} sessions")
        results[sessions] = measure_size(sessions, ctx.workdir, repeats)
        for t in results[sessions]:
            ctx.say(
                f"  {t.client:34} {t.ms:9.1f} ms ({t.round_trips:5.2f} rt)"
                f" {t.ms_no_latency:9.1f} ms without latency, waves {t.waves:g}"
            )
    figures = target_figures(results)
    for sessions, timings in results.items():
        for timing in timings:
            figures += _figures_for(sessions, timing)
    return figures


__all__ = ["Timing", "WaveCounter", "run"]

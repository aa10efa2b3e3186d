"""Idle cost: the real tray polling the emulator (50 sessions) for five minutes.

The tray runs as `clearml-tray` (not `--demo`: the emulator must not be inside the measured
process) against the emulator in this process. Before it starts, the simulated agent is stepped
until no session is queued or starting: a steady state, in which the tray polls at its normal
interval (Settings.poll_interval_s, 15 s by default, ±20 % jitter from RefreshSchedule) instead
of the 3 s it uses while something is starting. Once the icon is docked and the first refresh
has reached the emulator (and SETTLE_S more), the CPU time and RSS of the tray's process tree
are read from /proc every second for the window; refreshes are counted in the emulator.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from benchmarks.child import (
    describe,
    emulator,
    requests_by_endpoint,
    stop_tree,
    tray_panel,
    wait_docked,
)
from benchmarks.common import Context, Figure, venv_bin
from tray_app.core.server.refresh import RefreshSchedule
from tray_app.core.settings.settings import Settings
from tray_app.demo import DemoServer

SECTION = "idle"
SESSIONS = 50
WINDOW_S = 300.0
QUICK_WINDOW_S = 10.0
SETTLE_S = 2.0  # after the first refresh: the idle check and the hotkey setup it triggers
CPU_TARGET = 0.5  # percent of one core
RSS_TARGET_MB = 150.0
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc's clock ticks


def steady(server: DemoServer) -> None:
    """Step the agent until it has nothing left to pull or publish (at most 20 steps)."""
    for _ in range(20):
        report = server.agent.step()
        if not report.pulled and not report.published:
            return


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (from /proc/<pid>/task/*/children)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                todo += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and of its reaped children (cutime + cstime), in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return sum(int(fields[i - 3]) for i in (14, 15, 16, 17)) / _HZ


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_rss(pid: int) -> float:
    return sum(rss_mb(p) for p in process_tree(pid))


def run(ctx: Context, window_s: float | None = None) -> list[Figure]:
    if not Path("/proc/self/stat").exists():
        raise RuntimeError("the idle section reads /proc: Linux only")
    window = window_s if window_s is not None else QUICK_WINDOW_S if ctx.quick else WINDOW_S
    interval = Settings().poll_interval_s
    jitter = RefreshSchedule().jitter
    panel = tray_panel()
    with emulator(ctx, "idle", SESSIONS, prepare=steady) as emu:
        state = emu.server.state
        proc = subprocess.Popen(
            [venv_bin("clearml-tray")],
            env=emu.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped with its children
        )
        try:
            wait_docked(panel, proc, time.perf_counter())
            deadline = time.monotonic() + 60
            while state.count_requests("tasks.get_all_ex") == 0:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the tray never refreshed from the emulator")
                time.sleep(0.05)
            time.sleep(SETTLE_S)
            ctx.say(f"tray pid {proc.pid} polling; measuring {window:g} s")
            requests0 = requests_by_endpoint(state)
            cpu0, t0 = tree_cpu(proc.pid), time.monotonic()
            samples = [tree_rss(proc.pid)]
            while (elapsed := time.monotonic() - t0) < window:
                time.sleep(min(1.0, window - elapsed))
                if proc.poll() is not None:
                    raise RuntimeError(f"the tray exited during the window ({proc.returncode})")
                samples.append(tree_rss(proc.pid))
            cpu1, t1 = tree_cpu(proc.pid), time.monotonic()
            hwm = rss_mb(proc.pid, "VmHWM")
            requests = requests_by_endpoint(state) - requests0
        finally:
            code = stop_tree(proc)
            ctx.say(f"tray stopped (exit status {code})")
    wall = t1 - t0
    cpu_percent = 100.0 * (cpu1 - cpu0) / wall
    peak, final = max(samples), samples[-1]
    what = f"{SESSIONS} sessions, {wall:.0f} s"
    polling = f"polls every {interval} s ±{jitter:.0%} (Settings.poll_interval_s default)"
    return [
        Figure(
            SECTION,
            f"idle CPU of the tray ({what})",
            cpu_percent,
            "%",
            target=f"< {CPU_TARGET:g} %",
            met=cpu_percent < CPU_TARGET,
            note=f"{cpu1 - cpu0:.2f} CPU s (utime+stime of the process tree, 10 ms ticks) over"
            f" {wall:.0f} s wall, % of one core; {polling}",
        ),
        Figure(
            SECTION,
            f"idle peak RSS of the tray ({what})",
            peak,
            "MB",
            target=f"< {RSS_TARGET_MB:g} MB",
            met=peak < RSS_TARGET_MB,
            note=f"VmRSS of the process tree sampled every 1 s; the kernel's high-water mark"
            f" since start (VmHWM, startup included) was {hwm:.0f} MB",
        ),
        Figure(
            SECTION,
            f"idle final RSS of the tray ({what})",
            final,
            "MB",
            target=f"< {RSS_TARGET_MB:g} MB",
            met=final < RSS_TARGET_MB,
            note="VmRSS at the end of the window",
        ),
        Figure(
            SECTION,
            f"refreshes seen by the server ({what})",
            requests["tasks.get_all_ex"],
            "",
            note=f"tasks.get_all_ex requests, about {wall / interval:.0f} expected: {polling};"
            f" {describe(requests)} in all",
        ),
    ]

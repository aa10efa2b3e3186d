"""Startup: how soon the tray is up, seen from inside and outside, and the headless `list`.

- Cold start, inside: `clearml-tray --benchmark-startup` against the emulator (50 sessions)
  prints its own milestones (seconds since the process started, see tray_app/startup_probe.py);
  the median of each over the runs.
- Cold start, outside: wall time from Popen until our icon sits in trayer's panel (polled with
  xwininfo) and until the process has exited after printing its milestones.
- `clearml-tray list --json` against `clearml-session list`, both real console scripts of this
  environment on the same emulator data, run alternately: median wall time and peak RSS.

"Cold" means a new process each time; the OS file cache is warm (one unmeasured run first).
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from benchmarks.child import Emulated, emulator, measure, tray_panel, wait_docked
from benchmarks.common import Context, Figure, median, venv_bin
from tray_app.startup_probe import MILESTONES

SECTION = "startup"
SESSIONS = 50
SPEED_UP_TARGET = 3.0
RSS_NOTE = "the child's own ru_maxrss, forked from a small launcher (see benchmarks/child.py)"

MILESTONE_NOTES = {
    "qt_imported": "interpreter start + imports up to PySide6/qasync",
    "event_loop": "QApplication and every service object built, qasync loop turning",
    "tray_shown": "settings read (thread), QSystemTrayIcon.show()",
    "tray_embedded": "the tray host's XEmbed round trip (trayer on Xvfb: fast)",
    "first_snapshot_in_menu": "clearml.conf parsed, login + tasks.get_all_ex + workers.get_all"
    " on loopback, menu model built",
}


def tray_argv(*extra: str) -> list[str]:
    return [venv_bin("clearml-tray"), *extra]


def probe_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"clearml-tray --benchmark-startup printed no JSON: {stdout[-300:]!r}")
    doc: dict[str, Any] = json.loads(lines[-1])
    if not doc.get("complete"):
        raise RuntimeError(f"startup milestones incomplete: {lines[-1]}")
    return doc


def inside(ctx: Context, emu: Emulated, runs: int) -> list[Figure]:
    docs, rss = [], []
    for i in range(runs + 1):
        run = measure(tray_argv("--benchmark-startup"), emu.env, timeout=120)
        doc = probe_json(run.stdout)
        if i == 0:
            continue  # warm-up: page cache, .pyc files
        docs.append(doc)
        rss.append(run.peak_rss_mb)
        ctx.say(f"  inside run {i}: {doc['milestones']}")
    origin, in_menu = docs[0]["origin"], docs[0]["sessions_in_menu"]
    figures = []
    for name in MILESTONES:
        values = [d["milestones"][name] for d in docs if d["milestones"][name] is not None]
        if not values:
            ctx.say(f"  {name}: not reached ({docs[0]['tray']} tray)")
            continue
        note = MILESTONE_NOTES[name] + (
            f" ({in_menu} sessions in the menu)" if "menu" in name else ""
        )
        figures.append(
            Figure(
                SECTION,
                f"cold start to {name} (inside, {SESSIONS} sessions, median of {len(values)})",
                median(values),
                "s",
                note=f"{note}; seconds since {origin}",
            )
        )
    figures.append(
        Figure(
            SECTION,
            f"cold start peak RSS (--benchmark-startup, median of {len(rss)})",
            median(rss),
            "MB",
            note="peak RSS of the tray process (its own rusage) up to its first snapshot and Quit",
        )
    )
    return figures


def outside(ctx: Context, emu: Emulated, runs: int) -> list[Figure]:
    panel = tray_panel()
    docked, exited = [], []
    for i in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(
            tray_argv("--benchmark-startup"),
            env=emu.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            docked.append(wait_docked(panel, proc, start))
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        exited.append(time.perf_counter() - start)
        probe_json(out.decode("utf-8", "replace"))
        ctx.say(f"  outside run {i + 1}: docked {docked[-1]:.3f} s, exited {exited[-1]:.3f} s")
    return [
        Figure(
            SECTION,
            f"cold start to icon docked in trayer (outside, from Popen, median of {runs})",
            median(docked),
            "s",
            note="xwininfo -root -tree polled every 10 ms (~4 ms per run), so up to ~15 ms late;"
            " includes fork/exec",
        ),
        Figure(
            SECTION,
            f"cold start to exit after the first snapshot (outside, median of {runs})",
            median(exited),
            "s",
            note="the whole --benchmark-startup run: start, first snapshot in the menu, Quit path",
        ),
    ]


def list_comparison(ctx: Context, sessions: int, runs: int) -> list[Figure]:
    ours_argv = tray_argv("list", "--json")
    theirs_argv = [venv_bin("clearml-session"), "list"]
    with emulator(ctx, f"list-{sessions}", sessions) as emu:
        ours_runs, theirs_runs = [], []
        for i in range(runs + 1):
            ours = measure(ours_argv, emu.env, timeout=300)
            theirs = measure(theirs_argv, emu.env, timeout=300)
            for argv, run in ((ours_argv, ours), (theirs_argv, theirs)):
                if run.returncode != 0:
                    raise RuntimeError(f"{' '.join(argv)} exited {run.returncode}")
            if i == 0:
                listed = len(json.loads(ours.stdout)["sessions"])
                their_listed = sum(1 for line in theirs.stdout.splitlines() if " id=" in line)
                continue  # warm-up
            ours_runs.append(ours)
            theirs_runs.append(theirs)
            ctx.say(
                f"  list {sessions}: ours {ours.seconds:.3f} s {ours.peak_rss_mb:.0f} MB,"
                f" clearml-session {theirs.seconds:.3f} s {theirs.peak_rss_mb:.0f} MB"
            )
    ours_s = median([r.seconds for r in ours_runs])
    theirs_s = median([r.seconds for r in theirs_runs])
    speed_up = theirs_s / ours_s
    what = f"{sessions} seeded sessions, median of {runs}"
    return [
        Figure(
            SECTION,
            f"clearml-tray list --json ({what})",
            ours_s,
            "s",
            note=f"{listed} live sessions listed; 3 requests (login, tasks, workers); import time"
            " of httpx, asyncio and pyhocon is most of it",
        ),
        Figure(
            SECTION,
            f"clearml-session list ({what})",
            theirs_s,
            "s",
            note=f"{their_listed} running sessions listed; imports the clearml SDK, then one"
            " projects.get_by_id per session",
        ),
        Figure(
            SECTION,
            f"clearml-tray list --json peak RSS ({sessions} sessions)",
            median([r.peak_rss_mb for r in ours_runs]),
            "MB",
            note=RSS_NOTE,
        ),
        Figure(
            SECTION,
            f"clearml-session list peak RSS ({sessions} sessions)",
            median([r.peak_rss_mb for r in theirs_runs]),
            "MB",
            note=RSS_NOTE,
        ),
        Figure(
            SECTION,
            f"speed-up list --json vs clearml-session list ({sessions} sessions)",
            speed_up,
            "x",
            target=f">= {SPEED_UP_TARGET:g}x",
            met=speed_up >= SPEED_UP_TARGET,
            note="ratio of the medians; both are mostly Python start-up and imports at this size",
        ),
    ]


def run(ctx: Context) -> list[Figure]:
    runs = 1 if ctx.quick else 5
    figures: list[Figure] = []
    with emulator(ctx, "startup", SESSIONS) as emu:
        ctx.say(f"cold start, inside ({runs} runs)")
        figures += inside(ctx, emu, runs)
        ctx.say(f"cold start, outside ({runs} runs)")
        figures += outside(ctx, emu, runs)
    for sessions in (SESSIONS,) if ctx.quick else (SESSIONS, 1000):
        ctx.say(f"list --json vs clearml-session list, {sessions} sessions ({runs} runs each)")
        figures += list_comparison(ctx, sessions, runs)
    return figures

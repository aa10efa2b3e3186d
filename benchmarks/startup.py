"""Startup: how soon the tray is up, seen from inside and outside, and the headless `list`.

- Cold start, inside: `clearml-tray --benchmark-startup` against the emulator (50 sessions)
  prints its own milestones (seconds since the process started, see tray_app/startup_probe.py);
  the median of each over the runs.
- Cold start, outside: wall time from Popen until our icon sits in trayer's panel (polled with
  xwininfo) and until the process has exited after printing its milestones.
- `clearml-tray list --json` against `clearml-session list`, both real console scripts of this
  environment on the same emulator data, run alternately: median wall time, CPU time (user +
  system, from the child's rusage) and peak RSS.
- `clearml-tray list --json` (and `--status --json`) while a real tray runs on the same data:
  the tray answers from its latest snapshot over its socket; median wall and CPU time.

"Cold" means a new process each time; the OS file cache is warm (one unmeasured run first).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.child import (
    Emulated,
    XWindow,
    describe,
    emulator,
    requests_by_endpoint,
    stop_tree,
    tray_panel,
    wait_docked,
)
from benchmarks.common import PYTHON, Context, Figure, median, run_measured, venv_bin
from tray_app.startup_probe import MILESTONES

SECTION = "startup"
SESSIONS = 50
# list without a tray: the speed-up over `clearml-session list` asked at each size, and its CPU.
SPEED_UP_TARGETS = {50: 3.0, 200: 5.0, 1000: 3.0}
LIST_CPU_TARGET_S = 0.25  # at 200 sessions
TRAY_LIST_TARGET_S = 0.05  # list answered by a running tray, wall
TRAY_LIST_SESSIONS = 200
RSS_NOTE = "the child's own ru_maxrss, forked from a small launcher (common.run_measured)"

MILESTONE_NOTES = {
    "qt_imported": "interpreter start, then the imports of cli, tray_app.app (httpx, the core),"
    " PySide6 and qasync",
    "event_loop": "QApplication (X connection), single-instance check, logging, every service"
    " and Qt object of the app built",
    "tray_shown": "settings read in a thread, QSystemTrayIcon.show(); checked every 5 ms",
    "tray_embedded": "trayer's XEmbed round trip through the X server (fast on Xvfb); checked"
    " every 5 ms",
    "first_snapshot_in_menu": "clearml.conf read (pyhocon import and parse), HTTP client built,"
    " global hotkey grabbed, login + tasks.get_all_ex + workers.get_all on loopback (the first"
    " request pays the lazy imports of the HTTP stack), menu model built with {in_menu} sessions",
}


def tray_argv(*extra: str) -> list[str]:
    return [venv_bin("clearml-tray"), *extra]


def probe_json(stdout: str, code: int) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(
            f"clearml-tray --benchmark-startup exited {code} without its JSON: {stdout[-300:]!r}"
        )
    doc: dict[str, Any] = json.loads(lines[-1])
    if not doc.get("complete"):
        raise RuntimeError(f"startup milestones incomplete: {lines[-1]}")
    return doc


def inside_run(emu: Emulated) -> tuple[dict[str, Any], float]:
    """One `--benchmark-startup` run: its milestones and its peak RSS (MB)."""
    run = run_measured(tray_argv("--benchmark-startup"), emu.env, timeout=120)
    return probe_json(run.stdout, run.returncode), run.peak_rss_mb


def outside_run(emu: Emulated, panel: XWindow) -> tuple[float, float, float]:
    """One run seen from outside: seconds from Popen to the icon docked, and to the exit; and
    the run's own `tray_embedded` milestone, to compare."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        tray_argv("--benchmark-startup"),
        env=emu.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        docked = wait_docked(panel, proc, start)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    exited = time.perf_counter() - start
    doc = probe_json(out.decode("utf-8", "replace"), proc.returncode)
    own = doc["milestones"]["tray_embedded"]
    return docked, exited, own if own is not None else float("nan")


def cold_start(ctx: Context, emu: Emulated, runs: int) -> list[Figure]:
    """Inside and outside runs alternate, so that both see the same machine load."""
    panel = tray_panel()
    docs, rss, docked, exited, own = [], [], [], [], []
    for i in range(runs + 1):
        doc, peak = inside_run(emu)
        seen = outside_run(emu, panel)
        if i == 0:
            continue  # warm-up: page cache, .pyc files
        docs.append(doc)
        rss.append(peak)
        docked.append(seen[0])
        exited.append(seen[1])
        own.append(seen[2])
        ctx.say(f"  run {i}: inside {doc['milestones']}")
        ctx.say(f"  run {i}: outside docked {seen[0]:.3f} s, exited {seen[1]:.3f} s")
    origin, in_menu = docs[0]["origin"], docs[0]["sessions_in_menu"]
    figures = []
    for name in MILESTONES:
        values = [d["milestones"][name] for d in docs if d["milestones"][name] is not None]
        if not values:
            ctx.say(f"  {name}: not reached ({docs[0]['tray']} tray)")
            continue
        note = MILESTONE_NOTES[name].format(in_menu=in_menu)
        figures.append(
            Figure(
                SECTION,
                f"cold start to {name} (inside, {SESSIONS} sessions, median of {len(values)})",
                median(values),
                "s",
                note=f"{note}; seconds since {origin}",
            )
        )
    return [
        *figures,
        Figure(
            SECTION,
            f"cold start peak RSS (--benchmark-startup, median of {runs})",
            median(rss),
            "MB",
            note="the tray's own ru_maxrss up to its first snapshot and Quit: Qt, PySide6,"
            " Python and the app's modules",
        ),
        Figure(
            SECTION,
            f"cold start to icon docked in trayer (outside, from Popen, median of {runs})",
            median(docked),
            "s",
            note="fork/exec included; xwininfo -root -tree polled every 10 ms (~4 ms a run), up"
            " to ~15 ms late, and the polling competes with the starting tray for the CPUs:"
            f" the same runs' own tray_embedded was {median(own):.3f} s (median)",
        ),
        Figure(
            SECTION,
            f"cold start to exit after the first snapshot (outside, median of {runs})",
            median(exited),
            "s",
            note="the whole --benchmark-startup run: start, first snapshot in the menu, Quit path",
        ),
    ]


def import_seconds(module: str, env: dict[str, str]) -> float:
    """Wall time of a bare interpreter importing `module` (the floor of a CLI built on it)."""
    run_measured([PYTHON, "-c", f"import {module}"], env)  # warm-up
    return run_measured([PYTHON, "-c", f"import {module}"], env).seconds


def list_comparison(ctx: Context, sessions: int, runs: int) -> list[Figure]:
    ours_argv = tray_argv("list", "--json")
    theirs_argv = [venv_bin("clearml-session"), "list"]
    with emulator(ctx, f"list-{sessions}", sessions) as emu:
        state = emu.server.state
        ours_runs, theirs_runs, changed_runs = [], [], []
        for i in range(runs + 1):
            before = requests_by_endpoint(state)
            ours = run_measured(ours_argv, emu.env, timeout=300)
            between = requests_by_endpoint(state)
            theirs = run_measured(theirs_argv, emu.env, timeout=300)
            # A clearml.conf saved since the last run: `list` parses it again (its cache of the
            # settings is keyed by the file's stat) and stores it for the next run.
            os.utime(emu.config)
            changed = run_measured(ours_argv, emu.env, timeout=300)
            for argv, run in ((ours_argv, ours), (theirs_argv, theirs), (ours_argv, changed)):
                if run.returncode != 0:
                    raise RuntimeError(f"{' '.join(argv)} exited {run.returncode}")
            if i == 0:  # warm-up; what each one fetched, for the notes
                listed = len(json.loads(ours.stdout)["sessions"])
                their_listed = sum(1 for line in theirs.stdout.splitlines() if " id=" in line)
                our_requests = describe(between - before)
                their_requests = describe(requests_by_endpoint(state) - between)
                our_imports = import_seconds("tray_app.list_command", emu.env)
                their_imports = import_seconds("clearml_session.__main__", emu.env)
                continue
            ours_runs.append(ours)
            theirs_runs.append(theirs)
            changed_runs.append(changed)
            ctx.say(
                f"  list {sessions}: ours {ours.seconds:.3f} s {ours.peak_rss_mb:.0f} MB,"
                f" clearml-session {theirs.seconds:.3f} s {theirs.peak_rss_mb:.0f} MB"
            )
    ours_s = median([r.seconds for r in ours_runs])
    theirs_s = median([r.seconds for r in theirs_runs])
    ours_cpu = median([r.cpu_seconds for r in ours_runs])
    speed_up = theirs_s / ours_s
    target = SPEED_UP_TARGETS.get(sessions, 3.0)
    what = f"{sessions} seeded sessions, median of {runs}"
    cpu_target = sessions == TRAY_LIST_SESSIONS
    return [
        Figure(
            SECTION,
            f"clearml-tray list --json CPU, no tray ({what})",
            ours_cpu,
            "s",
            target=f"< {LIST_CPU_TARGET_S:g} s" if cpu_target else "",
            met=ours_cpu < LIST_CPU_TARGET_S if cpu_target else None,
            note="user + system time of the process (rusage); clearml-session list:"
            f" {median([r.cpu_seconds for r in theirs_runs]):.2f} s",
        ),
        Figure(
            SECTION,
            f"clearml-tray list --json ({what})",
            ours_s,
            "s",
            note=f"{listed} live sessions (running and queued) from {our_requests}; starting"
            f" Python and importing tray_app.list_command alone takes {our_imports:.2f} s",
        ),
        Figure(
            SECTION,
            f"clearml-tray list --json, clearml.conf changed since the last run ({what})",
            median([r.seconds for r in changed_runs]),
            "s",
            note="its cached settings no longer match the file's stat: pyhocon imported and"
            f" the file parsed again; CPU {median([r.cpu_seconds for r in changed_runs]):.2f} s",
        ),
        Figure(
            SECTION,
            f"clearml-session list ({what})",
            theirs_s,
            "s",
            note=f"{their_listed} running sessions from {their_requests}; starting Python and"
            f" importing clearml_session (and the clearml SDK) alone takes {their_imports:.2f} s",
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
            target=f">= {target:g}x",
            met=speed_up >= target,
            note="ratio of the two medians; the runs alternate, so both see the same load",
        ),
    ]


def tray_answers(env: dict[str, str]) -> bool:
    """Whether the tray of `env` (its runtime dir) answers `list` from a snapshot yet."""
    from tray_app.core.instance_socket import ask_running

    path = str(Path(env["XDG_RUNTIME_DIR"]) / "clearml-tray" / "instance.sock")
    answer = ask_running({"cmd": "snapshot", "format": "json"}, 2.0, path=path)
    return answer is not None and answer.get("ok") is True


def list_with_tray(ctx: Context, sessions: int, runs: int) -> list[Figure]:
    """`list` while the real tray runs: answered from its snapshot, no request to the server."""
    runs = runs * 4  # tens of milliseconds each: more runs for a steadier median
    with (
        emulator(ctx, f"list-tray-{sessions}", sessions) as emu,
        tempfile.TemporaryDirectory(prefix="clt-") as runtime,
    ):
        # A Unix socket path holds ~100 bytes: the runtime dir under a deep workdir may not fit.
        env = {**emu.env, "XDG_RUNTIME_DIR": runtime}
        os.chmod(runtime, 0o700)
        state = emu.server.state
        log = ctx.workdir / f"list-tray-{sessions}.log"
        with log.open("wb") as sink:
            tray = subprocess.Popen(
                tray_argv(),
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            while not tray_answers(env):
                if tray.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text("utf-8", "replace")[-800:]
                    raise RuntimeError(f"the tray (exit {tray.poll()}) did not answer: {tail}")
                time.sleep(0.1)
            figures = []
            for fmt, argv in (
                ("--json", tray_argv("list", "--json")),
                ("--status --json", tray_argv("list", "--status", "--json")),
            ):
                measured = []
                before = requests_by_endpoint(state)
                for i in range(runs + 1):
                    run = run_measured(argv, env, timeout=60)
                    if run.returncode != 0:
                        raise RuntimeError(f"{' '.join(argv)} exited {run.returncode}")
                    if i:
                        measured.append(run)
                seen = describe(requests_by_endpoint(state) - before)
                wall = median([r.seconds for r in measured])
                cpu = median([r.cpu_seconds for r in measured])
                ctx.say(f"  list {fmt} with a tray: {wall * 1000:.1f} ms, CPU {cpu * 1000:.0f} ms")
                what = f"tray running, {sessions} seeded sessions, median of {runs}"
                figures += [
                    Figure(
                        SECTION,
                        f"clearml-tray list {fmt}, {what}",
                        wall,
                        "s",
                        target=f"< {TRAY_LIST_TARGET_S * 1000:g} ms" if fmt == "--json" else "",
                        met=wall < TRAY_LIST_TARGET_S if fmt == "--json" else None,
                        note="answered by the tray from its latest snapshot over its socket;"
                        f" server requests meanwhile (the tray's own polls only): {seen}",
                    ),
                    Figure(
                        SECTION,
                        f"clearml-tray list {fmt} CPU, {what}",
                        cpu,
                        "s",
                        note="user + system time of the list process (rusage)",
                    ),
                ]
        finally:
            stop_tree(tray)
    return figures


def run(ctx: Context) -> list[Figure]:
    runs = 1 if ctx.quick else 5
    figures: list[Figure] = []
    with emulator(ctx, "startup", SESSIONS) as emu:
        ctx.say(f"cold start, inside and outside ({runs} runs each, alternating)")
        figures += cold_start(ctx, emu, runs)
    for sessions in (SESSIONS,) if ctx.quick else (SESSIONS, TRAY_LIST_SESSIONS, 1000):
        ctx.say(f"list --json vs clearml-session list, {sessions} sessions ({runs} runs each)")
        figures += list_comparison(ctx, sessions, runs)
    sessions = SESSIONS if ctx.quick else TRAY_LIST_SESSIONS
    ctx.say(f"list answered by a running tray, {sessions} sessions")
    figures += list_with_tray(ctx, sessions, runs)
    return figures

"""`python -m benchmarks`: run every benchmark, print one table, write the figures as JSON.

Sections: traffic, latency, startup, idle, ui, logparse, askpass, connect, api_budget (`--only`
picks some). The startup, idle, ui, logparse and connect sections need an X display with a tray
host; without DISPLAY the runner starts itself again under `xvfb-run -a dbus-run-session` and
starts trayer (and dunst) there. askpass serves the tray's socket itself; connect runs its own
D-Bus buses and gnome-keyring-daemon.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, Context, Figure, machine

SECTIONS = (
    "traffic", "latency", "startup", "idle", "ui", "logparse", "askpass", "connect", "api_budget",
)  # fmt: skip
NEEDS_DISPLAY = {"startup", "idle", "ui", "logparse", "connect"}
DEFAULT_JSON = REPO / "benchmarks" / "results.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, short windows (a smoke run, not figures)"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write figures")
    return parser.parse_args(argv)


def chosen(only: str) -> list[str]:
    names = [n.strip() for n in only.split(",") if n.strip()] or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return names


def reexec_under_xvfb() -> int:
    """No display: run again inside a private X server and D-Bus session bus."""
    missing = [t for t in ("xvfb-run", "dbus-run-session") if shutil.which(t) is None]
    if missing:
        print(f"no DISPLAY and no {' '.join(missing)}: install xvfb and dbus", file=sys.stderr)
        return 2
    env = {**os.environ, "CLEARML_BENCH_XVFB": "1"}
    argv = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "dbus-run-session", "--"]
    argv += [sys.executable, "-m", "benchmarks", *sys.argv[1:]]
    return subprocess.call(argv, env=env, cwd=REPO)


class DesktopHelpers:
    """trayer (the tray host) and dunst (notifications) on the display, for the whole run."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> DesktopHelpers:
        for argv in (
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
             "--width", "240", "--heighttype", "pixel", "--height", "32"],
            ["dunst"],
        ):  # fmt: skip
            if shutil.which(argv[0]):
                self.procs.append(
                    subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
        time.sleep(0.5)  # let trayer claim the tray selection before any app starts
        return self

    def __exit__(self, *_exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def render(figures: list[Figure]) -> str:
    rows = [("section", "figure", "value", "target", "")]
    for f in figures:
        value = f"{f.value:,.3g}" if abs(f.value) < 100 else f"{f.value:,.0f}"
        mark = "" if f.met is None else ("met" if f.met else "MISSED")
        rows.append((f.section, f.name, f"{value} {f.unit}".strip(), f.target, mark))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = chosen(args.only)
    if NEEDS_DISPLAY & set(sections) and not os.environ.get("DISPLAY"):
        return reexec_under_xvfb()
    figures: list[Figure] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="clearml-tray-bench-") as tmp:
        ctx = Context(quick=args.quick, workdir=Path(tmp))
        helpers = DesktopHelpers() if NEEDS_DISPLAY & set(sections) else None
        if helpers is not None:
            helpers.__enter__()
        try:
            for name in sections:
                ctx.say(f"== {name}")
                module = importlib.import_module(f"benchmarks.{name}")
                try:
                    figures += module.run(ctx)
                except Exception as exc:  # one broken section must not hide the others' figures
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")
                    ctx.say(f"!! {name} failed: {exc}")
        finally:
            if helpers is not None:
                helpers.__exit__(None, None, None)
    info = machine()
    print(
        f"\nmachine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, {info['os']},"
        f" Python {info['python']}, PySide6 {info['pyside6']}"
        + (" (quick run: not representative)" if args.quick else "")
    )
    print(render(figures))
    for failure in failures:
        print(f"FAILED {failure}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": info,
        "quick": args.quick,
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": [f.as_dict() for f in figures],
        "failures": failures,
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

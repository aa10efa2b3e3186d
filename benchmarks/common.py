"""What every benchmark shares: the figure record, the machine description, small helpers.

A benchmark module exposes `run(ctx: Context) -> list[Figure]`. It prints progress with
`ctx.say`, never asserts on time, and reports targets as figures with `target` set so that the
runner can mark each one met or missed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Figure:
    """One measured number, with the target it is judged against (if any)."""

    section: str  # "traffic", "latency", ...
    name: str  # what was measured, with its conditions
    value: float
    unit: str
    target: str = ""  # human form, e.g. "<= 3"; empty when the figure is informative only
    met: bool | None = None  # None when there is no target
    note: str = ""  # what limits the figure

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    quick: bool = False  # smaller sizes and shorter windows: for the smoke test, not for figures
    say: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr))
    workdir: Path = field(default_factory=lambda: Path("/tmp"))


# What installers/linux/build_deb.sh leaves: the .deb's content, run in place.
BUNDLE = REPO / "build" / "pyinstaller" / "dist" / "clearml-tray" / "clearml-tray"


def packaged_bundle(ctx: Context) -> Path | None:
    """The built bundle, if there is one built from the code as it is now: a bundle older than
    any file of `tray_app/` would measure an older app (or fail on what it lacks)."""
    if not BUNDLE.is_file():
        return None
    built = BUNDLE.stat().st_mtime
    newer = [p for p in (REPO / "tray_app").rglob("*.py") if p.stat().st_mtime > built]
    if newer:
        ctx.say(
            f"packaged bundle skipped: {BUNDLE.relative_to(REPO)} is older than "
            f"{newer[0].relative_to(REPO)} (rebuild: bash installers/linux/build_deb.sh)"
        )
        return None
    return BUNDLE


def at_most(value: float, limit: float) -> bool:
    return value <= limit


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    """The machine the figures were taken on (stated next to them in the README)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        qt = version("PySide6-Essentials")
    except Exception:
        qt = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "pyside6": qt,
    }


# PYTHONDONTWRITEBYTECODE (set in some shells and CI images) would make every measured run
# compile again the modules whose .pyc is missing or older than a fresh checkout's sources:
# ~30 ms of CPU that an installed package (pip compiles at install) never pays. Without it the
# unmeasured warm-up run writes them.
_NOT_INHERITED = ("PYTHONDONTWRITEBYTECODE",)


def tool_env(config_file: Path, home: Path) -> dict[str, str]:
    """Environment for a child (our CLI, clearml-session, the tray) pointed at `config_file`.

    A private HOME (and runtime dir, where the tray's single-instance socket lives) keeps the
    user's clearml.conf, ssh config, settings and running tray out of it.
    """
    runtime = home / ".run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLEARML_", "TRAINS_")) and k not in ("HOME", *_NOT_INHERITED)
    }
    env.update(
        HOME=str(home),
        CLEARML_CONFIG_FILE=str(config_file),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
        PYTHONUNBUFFERED="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        NO_PROXY="*",
    )
    return env


def venv_bin(name: str) -> str:
    """A console script of this interpreter's environment (clearml-tray, clearml-session)."""
    candidate = Path(PYTHON).parent / name
    return str(candidate) if candidate.exists() else name


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    cpu_seconds: float = float("nan")  # the child's user + system time (rusage, 1 ms or better)


# Forks the command, waits for it, prints its wall time and rusage as JSON on stderr; the
# command's own stderr goes to /dev/null.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 2)
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
print(json.dumps({"seconds": seconds, "code": os.waitstatus_to_exitcode(status),
                  "maxrss": usage.ru_maxrss * scale,
                  "cpu": usage.ru_utime + usage.ru_stime}), file=sys.stderr)
"""


def run_measured(argv: list[str], env: dict[str, str], timeout: float = 300) -> ChildRun:
    """Run a command to its end: wall time from fork to exit, its own peak RSS, its stdout.

    Linux carries the parent's high-water mark into a child through fork (or vfork) and exec,
    so `wait4` on a child of this (big) process would report at least this process's own peak.
    The child is forked from a small launcher (`python -S`, ~6 MB: the floor of the figure)
    that reads its rusage.
    """
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-c", _LAUNCHER, *argv],
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"launcher for {argv[0]} failed: {lines[-1:]}")
    doc = json.loads(lines[-1])
    return ChildRun(
        doc["seconds"],
        doc["maxrss"] / (1024 * 1024),
        doc["code"],
        result.stdout.decode("utf-8", "replace"),
        doc["cpu"],
    )

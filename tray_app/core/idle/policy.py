"""Is a session idle? A pure policy over its machine's series (Qt-free, no I/O).

Three answers, each with a reason in words: **busy**, **idle** (on positive evidence only: the
machine reported, bucket after bucket, that it was quiet for the whole window, and the session
has been running that long), and **unknown** whenever the numbers cannot say (never idle, and
never stopped).

- **CPU in cores.** clearml-agent reports `cpu_usage` as the mean over every core of the host,
  so one busy core of 64 reads 1.56 %. Busy cores = `cpu_usage` × the machine's cores / 100 (the
  cores are the session's runtime `cpu_cores`, which the SDK reads with psutil on the same
  machine), judged against a threshold in cores.
- **GPUs one by one.** The series are asked per GPU (`split_by_resource`) and the busiest GPU
  is judged, not the mean: one GPU of eight at 30 % is busy. Where only the mean came back, the
  busiest GPU is at most GPUs × mean.
- **Readings the agent cannot have measured** make the verdict unknown: a GPU whose utilization
  is the agent's `default_gpu_utilization` (100) in every report while its temperature or memory
  does not move (MIG slices, devices without a utilization counter), GPUs the agent stopped
  reading (after three failures it sends none), or none at all.
- **A shared machine.** When other workers report the same host (or the session is a k8s pod,
  whose CPU figure is its node's), busy cores may be someone else's: a session whose own GPUs are
  quiet on a busy shared CPU is unknown, and its reason says so. A quiet shared CPU is quiet.

Series come from `workers.get_stats` (see series.py): the real server returns every bucket of
the range, a bucket without a report reading 0.0 like a machine at 0 %. A bucket counts only
when it held a report (its host memory is above 0: the server never stores a 0), and a GPU's
reading only with its temperature (no GPU is at 0 °C). Buckets older than the session's start
belong to whatever the worker ran before and are ignored.

Tested in tests/unit/idle/test_policy.py (and, per emulated machine, tests/unit/idle/
test_machine_shapes.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from tray_app.core.idle.machine import Machine
from tray_app.core.idle.series import ALL_GPUS, GpuReading, Sample, reported
from tray_app.core.server.models import Session, Snapshot, format_duration, format_percent

if TYPE_CHECKING:
    from tray_app.core.settings.settings import IdlePolicy

DEFAULT_SAMPLE_INTERVAL_S = 30.0
# Agents report every 30 s and the monitor asks for 60 s buckets: up to two buckets without a
# report is jitter (a slow report, a request that failed once); a longer hole is missing data.
MIN_GAP_S = 180.0
RECENT_START_S = 600.0  # metrics missing this soon after the start are simply not there "yet"
# agent.resource_monitoring.default_gpu_utilization: what clearml-agent sends for a GPU whose
# utilization it cannot read (clearml_agent/helper/resource_monitor.py).
DEFAULT_GPU_UTILIZATION = 100.0
FLAT_TEMPERATURE_C = 1.0  # a GPU at work warms and cools by more than this within minutes
FLAT_MEMORY_MB = 16.0
FLAT_MEMORY_SHARE = 0.01
# "Your job finished": GPUs busy for this long, then quiet for this long.
JOB_BUSY_S = 600.0
JOB_QUIET_S = 300.0
OFF_REASON = "idle checks are off (Settings → Idle sessions)"
NOT_CHECKED_REASON = "not checked yet"


class IdleState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class IdleVerdict:
    state: IdleState
    reason: str = ""  # in words, for menus, notices, logs and `list --json`
    idle_since: float | None = None  # start of the quiet run (epoch s), when idle
    idle_for_s: float = 0.0  # the quiet run's length when judged
    reports: int = 0  # buckets with a report in the quiet run
    max_cores: float | None = None  # the run's busiest bucket: cores busy on the machine
    max_gpu: float | None = None  # ... and its busiest GPU's utilization (%)


def judged(snapshot: Snapshot) -> list[Session]:
    """The sessions the policy looks at: the user's own, running on a known worker."""
    return [s for s in snapshot.own if s.status == "in_progress" and s.worker_id]


def format_cores(cores: float) -> str:
    text = f"{cores:.1f}"
    return f"{text} core" if text == "1.0" else f"{text} cores"


def _gpu_name(name: str, machine: Machine) -> str:
    # A worker with one GPU gets no per-GPU series (the total is that GPU): its GPU 0.
    if name == ALL_GPUS:
        return "GPU 0" if machine.gpus <= 1 else "the GPUs on average"
    return f"GPU {name}"


def _gpu_list(names: Iterable[str], machine: Machine) -> str:
    names = list(names)
    if names == [ALL_GPUS]:
        return "GPU 0" if machine.gpus <= 1 else "the GPUs"
    return ("GPU " if len(names) == 1 else "GPUs ") + ", ".join(names)


# --- the GPUs as a whole: can they be read at all? --------------------------------------------


@dataclass(frozen=True, slots=True)
class _Gpus:
    names: frozenset[str] = frozenset()  # GPUs read at least once (ALL_GPUS: only their mean)
    unmeasured: frozenset[str] = frozenset()  # reading the agent's default, not a measurement
    problem: str = ""  # why the GPUs cannot be judged ("": they can)


def _flat(values: list[float], tolerance: float) -> bool:
    return bool(values) and max(values) - min(values) <= tolerance


def _default_only(readings: list[GpuReading], mig: bool) -> bool:
    if not readings or any(r.usage != DEFAULT_GPU_UTILIZATION for r in readings):
        return False
    if mig:  # the agent never reads a MIG slice's utilization
        return True
    temps = [r.temp for r in readings if r.temp is not None]
    mems = [r.mem for r in readings if r.mem is not None and r.mem > 0]
    tolerance = max(FLAT_MEMORY_MB, FLAT_MEMORY_SHARE * max(mems, default=0.0))
    return _flat(temps, FLAT_TEMPERATURE_C) or _flat(mems, tolerance)


def _gpus(reports: list[Sample], machine: Machine, now: float) -> _Gpus:
    if not machine.gpus:
        return _Gpus()
    where = machine.host or "this machine"
    read_at = [s.t for s in reports if any(r.read for r in s.gpus.values())]
    names = frozenset(n for s in reports for n, r in s.gpus.items() if r.read)
    if not names:
        return _Gpus(problem=f"clearml-agent sends no GPU readings for {where}")
    unmeasured = frozenset(
        n
        for n in names
        if _default_only(
            [s.gpus[n] for s in reports if n in s.gpus and s.gpus[n].read], machine.mig
        )
    )
    latest = reports[-1].gpus
    missing = sorted((n for n in names if not (n in latest and latest[n].read)), key=_order)
    if len(missing) == len(names):
        ago = format_duration(now - max(read_at))
        problem = (
            f"clearml-agent stopped sending GPU readings for {where} {ago} ago (it gives up "
            "after three failed reads)"
        )
    elif missing:
        problem = f"no reading of {_gpu_list(missing, machine)} in the latest metrics"
    elif unmeasured:
        which = _gpu_list(sorted(unmeasured, key=_order), machine)
        value = format_percent(DEFAULT_GPU_UTILIZATION)
        one = which.startswith("GPU ")
        if machine.mig:
            kind = "is a MIG slice" if one else "are MIG slices"
            problem = (
                f"{which} on {where} {kind}: clearml-agent cannot read the utilization and "
                f"sends {value} instead"
            )
        else:
            problem = (
                f"{which} on {where} {'reads' if one else 'read'} {value} in every report while "
                f"{'its' if one else 'their'} temperature or memory does not move: the value "
                "clearml-agent sends when it cannot read a GPU"
            )
    else:
        problem = ""
    return _Gpus(names, unmeasured, problem)


def _order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)


# --- one bucket ---------------------------------------------------------------------------------


class _Kind(Enum):
    BUSY = "busy"  # the session's own GPUs, or an unshared CPU, at work
    SHARED = "shared"  # busy cores on a CPU other work shares, and its GPUs not busy
    QUIET = "quiet"  # known to be under every threshold that applies
    UNREAD = "unread"  # something needed is missing


@dataclass(frozen=True, slots=True)
class _Bucket:
    kind: _Kind
    why: str = ""  # for BUSY / SHARED / UNREAD: what makes it so
    cores: float | None = None  # cores busy on the machine
    gpu: float | None = None  # the busiest measured GPU
    gpu_busy: bool = False
    gpu_quiet: bool = False  # every GPU read, all under the threshold


def _bucket(sample: Sample, machine: Machine, policy: IdlePolicy, gpus: _Gpus) -> _Bucket:
    where = machine.host or "the machine"
    cores: float | None = None
    cpu_busy: bool | None = None
    if sample.cpu is not None:
        if machine.cores:
            cores = sample.cpu * machine.cores / 100.0
            cpu_busy = cores >= policy.cpu_threshold_cores
        elif sample.cpu / 100.0 >= policy.cpu_threshold_cores:
            cpu_busy = True  # at least that many cores, whatever their number
    gpu: float | None = None
    gpu_busy = False
    gpu_quiet = not machine.gpus
    why_gpu = ""
    unread = "no GPU readings in the latest metrics"
    if machine.gpus:
        measured = {
            n: r.usage
            for n, r in sample.gpus.items()
            if r.read and r.usage is not None and n not in gpus.unmeasured
        }
        if measured:
            name, gpu = max(measured.items(), key=lambda kv: (kv[1], -_order(kv[0])[0]))
            gpu_busy = gpu >= policy.gpu_threshold_percent
            why_gpu = f"{_gpu_name(name, machine)} at {format_percent(gpu)} on {where}"
            if name == ALL_GPUS:  # the busiest GPU is at most GPUs × their mean
                gpu_quiet = gpu * machine.gpus < policy.gpu_threshold_percent
                unread = (
                    f"only the mean of the {machine.gpus} GPUs on {where} came back "
                    f"({format_percent(gpu)}): one of them may be busy"
                )
            else:
                wanted = gpus.names - gpus.unmeasured
                gpu_quiet = not gpu_busy and not gpus.unmeasured and wanted <= measured.keys()

    def bucket(kind: _Kind, why: str = "") -> _Bucket:
        return _Bucket(kind, why, cores, gpu, gpu_busy, gpu_quiet)

    if gpu_busy:
        return bucket(_Kind.BUSY, why_gpu)
    if cpu_busy:
        busy = f"{format_cores(cores)} busy" if cores is not None else "a busy CPU"
        if machine.pod:
            why = f"{busy} on the node of {where}, which other pods share: it may be their work"
            return bucket(_Kind.SHARED, why)
        if machine.sharers:
            why = (
                f"{busy} on {where}, which {machine.sharers + 1} workers share: it may be "
                "another's work"
            )
            return bucket(_Kind.SHARED, why)
        return bucket(_Kind.BUSY, f"{busy} on {where}")
    if cpu_busy is False and gpu_quiet:
        return bucket(_Kind.QUIET)
    if sample.cpu is None:
        return bucket(_Kind.UNREAD, "no CPU figure in the latest metrics")
    if cpu_busy is None:
        why = "the machine's core count is unknown (the session's runtime has no cpu_cores)"
        return bucket(_Kind.UNREAD, why)
    return bucket(_Kind.UNREAD, unread)


# --- the verdict ----------------------------------------------------------------------------


def max_gap(samples: list[Sample]) -> float:
    """The longest silence that still counts as continuous data for this series."""
    steps = sorted(b.t - a.t for a, b in itertools.pairwise(samples) if b.t > a.t)
    # The median step (statistics.median, without that module's imports)
    middle = len(steps) // 2
    if not steps:
        interval = DEFAULT_SAMPLE_INTERVAL_S
    elif len(steps) % 2:
        interval = steps[middle]
    else:
        interval = (steps[middle - 1] + steps[middle]) / 2
    return max(3 * interval, MIN_GAP_S)


def _since_start(samples: Iterable[Sample], now: float, started: float | None) -> list[Sample]:
    # Clock skew: a sample "from the future" is treated as taken now. Buckets that begin before
    # the session started describe the worker's previous work, not this session.
    return sorted(
        (
            s if s.t <= now else replace(s, t=now)
            for s in samples
            if started is None or s.t >= started
        ),
        key=lambda s: s.t,
    )


def _idle_reason(run: list[_Bucket], quiet_for: float, machine: Machine) -> str:
    parts = []
    max_gpu = max((b.gpu for b in run if b.gpu is not None), default=None)
    if machine.gpus and max_gpu is not None:
        parts.append(f"GPU {format_percent(max_gpu)}")
    max_cores = max((b.cores for b in run if b.cores is not None), default=0.0)
    parts.append(f"{format_cores(max_cores)} busy")
    text = f"{' and '.join(parts)} for {format_duration(quiet_for)}"
    if machine.host:
        text += f" on {machine.host}"
    if machine.pod:
        text += " (its whole node)"
    elif machine.sharers:
        text += f" (the whole host, which {machine.sharers + 1} workers share)"
    return text


def evaluate(
    samples: Iterable[Sample],
    now: float,
    machine: Machine,
    policy: IdlePolicy,
    *,
    started: float | None,
) -> IdleVerdict:
    """The verdict for one session. `started` is the task's start (epoch seconds); without it
    the session cannot be shown to have run for the whole window, so it is never idle."""
    window = policy.window_minutes * 60.0
    series = _since_start(samples, now, started)
    reports = [s for s in series if reported(s)]
    if not reports:
        if series:
            return IdleVerdict(
                IdleState.UNKNOWN,
                f"no machine metrics in the last {format_duration(now - series[0].t)}",
            )
        fresh = started is not None and now - started < RECENT_START_S
        return IdleVerdict(
            IdleState.UNKNOWN, "no machine metrics yet" if fresh else "no recent machine metrics"
        )
    last = reports[-1]
    gap = max_gap(reports)
    if now - last.t > gap:
        return IdleVerdict(
            IdleState.UNKNOWN, f"no machine metrics for {format_duration(now - last.t)}"
        )
    gpus = _gpus(reports, machine, now)
    latest = _bucket(last, machine, policy, gpus)
    if latest.kind == _Kind.BUSY:
        return IdleVerdict(IdleState.BUSY, latest.why)
    if gpus.problem:
        return IdleVerdict(IdleState.UNKNOWN, gpus.problem)
    if latest.kind != _Kind.QUIET:
        return IdleVerdict(IdleState.UNKNOWN, latest.why)
    if started is None:
        return IdleVerdict(IdleState.UNKNOWN, "the session's start time is unknown")
    if now - started < window:
        return IdleVerdict(
            IdleState.UNKNOWN,
            f"running for {format_duration(now - started)} only, the window is "
            f"{format_duration(window)}",
        )

    # The trailing run of quiet reports, cut at the last busy one or the last missing data.
    run: list[tuple[Sample, _Bucket]] = []
    previous_t = now
    stop: _Bucket | None = None
    for sample in reversed(reports):
        if previous_t - sample.t > gap:
            break
        bucket = _bucket(sample, machine, policy, gpus)
        if bucket.kind in (_Kind.BUSY, _Kind.SHARED):
            stop = bucket
            break
        if bucket.kind == _Kind.QUIET:
            run.append((sample, bucket))
        previous_t = sample.t
    run_start = run[-1][0].t
    quiet_for = now - run_start
    buckets = [b for _, b in run]
    evidence = IdleVerdict(
        IdleState.UNKNOWN,
        idle_for_s=quiet_for,
        reports=len(run),
        max_cores=max((b.cores for b in buckets if b.cores is not None), default=None),
        max_gpu=max((b.gpu for b in buckets if b.gpu is not None), default=None)
        if machine.gpus
        else None,
    )
    if quiet_for >= window:
        return replace(
            evidence,
            state=IdleState.IDLE,
            idle_since=run_start,
            reason=_idle_reason(buckets, quiet_for, machine),
        )
    quiet = f"quiet for {format_duration(quiet_for)} only"
    if stop is not None and stop.kind == _Kind.BUSY:
        return replace(evidence, state=IdleState.BUSY, reason=f"{quiet}; before that {stop.why}")
    if stop is not None:
        return replace(evidence, reason=f"{quiet}; before that {stop.why}")
    return replace(
        evidence,
        reason=f"only {format_duration(quiet_for)} of metrics, the window is "
        f"{format_duration(window)}",
    )


def gpus_went_quiet(
    samples: Iterable[Sample],
    now: float,
    machine: Machine,
    policy: IdlePolicy,
    *,
    started: float | None,
) -> float | None:
    """When the session's GPUs were busy for JOB_BUSY_S and have been quiet for JOB_QUIET_S
    since (a training run that ended): the start of the quiet stretch; None otherwise."""
    if not machine.gpus:
        return None
    reports = [s for s in _since_start(samples, now, started) if reported(s)]
    if not reports:
        return None
    gap = max_gap(reports)
    gpus = _gpus(reports, machine, now)
    if now - reports[-1].t > gap or gpus.problem:
        return None
    quiet_start: float | None = None
    busy_start: float | None = None
    previous_t = now
    for sample in reversed(reports):
        if previous_t - sample.t > gap:
            break
        bucket = _bucket(sample, machine, policy, gpus)
        if busy_start is None and bucket.gpu_quiet:
            quiet_start = sample.t
        elif quiet_start is not None and bucket.gpu_busy:
            busy_start = sample.t
        else:
            break
        previous_t = sample.t
    if quiet_start is None or busy_start is None:
        return None
    if now - quiet_start < JOB_QUIET_S or quiet_start - busy_start < JOB_BUSY_S:
        return None
    return quiet_start


# --- words ------------------------------------------------------------------------------------


def idle_for(verdict: IdleVerdict, now: float) -> float | None:
    """How long an idle session has been quiet at `now`; None unless it is idle."""
    if verdict.state != IdleState.IDLE or verdict.idle_since is None:
        return None
    return max(now - verdict.idle_since, verdict.idle_for_s)


def idle_mark(verdict: IdleVerdict, now: float) -> str:
    """The few words a session's row gets: "idle 1h 10m" ("" unless idle)."""
    seconds = idle_for(verdict, now)
    return "" if seconds is None else f"idle {format_duration(seconds)}"


def evidence(verdict: IdleVerdict) -> str:
    """What an idle verdict rests on, for the log: "62 reporting intervals, at most 0.1 cores
    busy, the busiest GPU at most 1 %"."""
    parts = [f"{verdict.reports} reporting intervals"]
    if verdict.max_cores is not None:
        parts.append(f"at most {format_cores(verdict.max_cores)} busy")
    if verdict.max_gpu is not None:
        parts.append(f"the busiest GPU at most {format_percent(verdict.max_gpu)}")
    return ", ".join(parts)


def idle_note(verdict: IdleVerdict) -> str:
    """The menu row for an idle session, e.g. "Idle for 1h 12m (GPU 0 %, 0.1 cores busy)"."""
    if verdict.state != IdleState.IDLE:
        return ""
    figures = []
    if verdict.max_gpu is not None:
        figures.append(f"GPU {format_percent(verdict.max_gpu)}")
    if verdict.max_cores is not None:
        figures.append(f"{format_cores(verdict.max_cores)} busy")
    detail = f" ({', '.join(figures)})" if figures else ""
    return f"Idle for {format_duration(verdict.idle_for_s)}{detail}"


def sentence(text: str) -> str:
    """A reason as a sentence of a notice: capitalised, with a full stop."""
    text = text.strip()
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")

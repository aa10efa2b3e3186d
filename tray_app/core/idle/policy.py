"""Is a session idle? A pure policy over its machine's CPU/GPU series (Qt-free, no I/O).

A session is idle only on positive evidence: the machine reported, bucket after bucket, values
under the thresholds for the whole policy window, and the session itself has been running for
that long. Anything less is "unknown", never idle.

Series come from `workers.get_stats`, which the real server computes as an Elasticsearch
`date_histogram` with `extended_bounds` (clearml-server `apiserver/bll/workers/stats.py`): every
bucket of the requested range comes back, and a bucket in which the worker sent no report reads
0.0, exactly like a machine at 0 %. So a zero is not evidence. The evidence used is the worker's
`memory_used`: the agent sends it in every report (psutil's used memory, in MB), the server
stores a report's value only when it is non-zero, and a running machine never uses 0 MB. A
bucket whose memory_used (or any other value) is above 0 therefore held at least one report; a
bucket where everything is 0.0 held none and is treated as missing data. For a GPU's 0 % the
evidence is its temperature in the same bucket (see `_quiet`). Buckets older than the
session's start belong to whatever the worker ran before and are ignored. The response changed
shape in server 2.1 (API 2.32); both shapes are parsed, dates are epoch milliseconds.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from tray_app.core.server.models import format_duration, format_percent
from tray_app.core.settings.settings import IdlePolicy

DEFAULT_SAMPLE_INTERVAL_S = 30.0
# Agents report every 30 s and the monitor asks for 60 s buckets: up to two buckets without a
# report is jitter (a slow report, a request that failed once); a longer hole is missing data.
MIN_GAP_S = 180.0
RECENT_START_S = 600.0  # metrics missing this soon after the start are simply not there "yet"


class IdleState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # epoch seconds
    cpu: float | None = None  # % (average over cores)
    gpu: float | None = None  # % (average over GPUs)
    mem: float | None = None  # memory used (MB); > 0 only where the machine reported
    gpu_temp: float | None = None  # °C (average over GPUs); > 0 only where GPUs were read


def reported(sample: Sample) -> bool:
    """Whether the bucket held at least one report: a zero-filled bucket is all 0.0."""
    return any(v is not None and v > 0 for v in (sample.mem, sample.cpu, sample.gpu))


@dataclass(frozen=True, slots=True)
class IdleVerdict:
    state: IdleState
    idle_since: float | None = None
    idle_for_s: float = 0.0
    last_cpu: float | None = None
    last_gpu: float | None = None
    reason: str = ""
    reports: int = 0  # buckets with a report in the quiet run that makes the verdict
    max_cpu: float | None = None  # the run's highest CPU / GPU bucket
    max_gpu: float | None = None


def _busy(sample: Sample, has_gpu: bool, policy: IdlePolicy) -> bool:
    if sample.cpu is not None and sample.cpu >= policy.cpu_threshold_percent:
        return True
    return has_gpu and sample.gpu is not None and sample.gpu >= policy.gpu_threshold_percent


def _quiet(sample: Sample, has_gpu: bool, policy: IdlePolicy) -> bool:
    """Known to be under every threshold that applies (a missing GPU value is not quiet).

    A GPU's 0 % counts only with its temperature in the same bucket: the agent reads both from
    every GPU in every report, and a GPU is never at 0 °C. Without it the bucket may just be
    zero-filled because the agent stopped reading the GPUs (it gives up after three failures)
    while it still reports CPU and memory.
    """
    if sample.cpu is None or sample.cpu >= policy.cpu_threshold_percent:
        return False
    if has_gpu:
        return (
            sample.gpu is not None
            and sample.gpu < policy.gpu_threshold_percent
            and sample.gpu_temp is not None
            and sample.gpu_temp > 0
        )
    return True


def max_gap(samples: list[Sample]) -> float:
    """The longest silence that still counts as continuous data for this series."""
    steps = [b.t - a.t for a, b in itertools.pairwise(samples) if b.t > a.t]
    interval = statistics.median(steps) if steps else DEFAULT_SAMPLE_INTERVAL_S
    return max(3 * interval, MIN_GAP_S)


def evaluate(
    samples: Iterable[Sample],
    now: float,
    has_gpu: bool,
    policy: IdlePolicy,
    *,
    started: float | None,
) -> IdleVerdict:
    """The verdict for one session. `started` is the task's start (epoch seconds); without it
    the session cannot be shown to have run for the whole window, so it is never idle."""
    window = policy.window_minutes * 60.0
    # Clock skew: a sample "from the future" is treated as taken now. Buckets that begin before
    # the session started describe the worker's previous work, not this session.
    series = sorted(
        (
            replace(s, t=min(s.t, now))
            for s in samples
            if (s.cpu is not None or s.gpu is not None) and (started is None or s.t >= started)
        ),
        key=lambda s: s.t,
    )
    reports = [s for s in series if reported(s)]
    if not reports:
        if series:
            return IdleVerdict(
                IdleState.UNKNOWN,
                reason=f"no machine metrics in the last {format_duration(now - series[0].t)}",
            )
        fresh = started is not None and now - started < RECENT_START_S
        reason = "no machine metrics yet" if fresh else "no recent machine metrics"
        return IdleVerdict(IdleState.UNKNOWN, reason=reason)
    last = reports[-1]
    base = IdleVerdict(IdleState.UNKNOWN, last_cpu=last.cpu, last_gpu=last.gpu)
    gap = max_gap(reports)
    if now - last.t > gap:
        return replace(base, reason=f"no machine metrics for {format_duration(now - last.t)}")
    if _busy(last, has_gpu, policy):
        return replace(base, state=IdleState.BUSY, reason="in use now")
    if has_gpu and not (last.gpu_temp is not None and last.gpu_temp > 0):
        return replace(base, reason="no GPU readings in the latest metrics")
    if started is None:
        return replace(base, reason="the session's start time is unknown")
    if now - started < window:
        return replace(
            base,
            reason=f"running for {format_duration(now - started)} only, the window is "
            f"{format_duration(window)}",
        )

    # The trailing run of quiet reports, cut at the last busy one or the last missing data.
    run: list[Sample] = []
    previous_t = now
    interrupted_by = ""
    for sample in reversed(reports):
        if previous_t - sample.t > gap:
            interrupted_by = "gap"
            break
        if _busy(sample, has_gpu, policy):
            interrupted_by = "busy"
            break
        if _quiet(sample, has_gpu, policy):
            run.append(sample)
        previous_t = sample.t
    if not run:
        return replace(base, reason="metrics incomplete")
    run_start = run[-1].t
    quiet_for = now - run_start
    evidence = replace(
        base,
        idle_for_s=quiet_for,
        reports=len(run),
        max_cpu=max((s.cpu for s in run if s.cpu is not None), default=None),
        max_gpu=max((s.gpu for s in run if s.gpu is not None), default=None) if has_gpu else None,
    )
    if quiet_for >= window:
        return replace(
            evidence,
            state=IdleState.IDLE,
            idle_since=run_start,
            reason=f"under the thresholds for {format_duration(quiet_for)}",
        )
    if interrupted_by == "busy":
        return replace(
            evidence, state=IdleState.BUSY, reason=f"quiet for {format_duration(quiet_for)} only"
        )
    return replace(
        evidence,
        reason=f"only {format_duration(quiet_for)} of metrics, the window is "
        f"{format_duration(window)}",
    )


def evidence(verdict: IdleVerdict) -> str:
    """What an idle verdict rests on, for the log: "62 reporting intervals, CPU at most 1 %"."""
    parts = [
        f"{verdict.reports} reporting intervals",
        f"CPU at most {format_percent(verdict.max_cpu)}",
    ]
    if verdict.max_gpu is not None:
        parts.append(f"GPU at most {format_percent(verdict.max_gpu)}")
    return ", ".join(parts)


def idle_note(verdict: IdleVerdict) -> str:
    """The menu row for an idle session, e.g. "Idle for 1h 12m (CPU 1 %, GPU 0 %)"."""
    if verdict.state != IdleState.IDLE:
        return ""
    figures = [f"CPU {format_percent(verdict.last_cpu)}"]
    if verdict.last_gpu is not None:
        figures.append(f"GPU {format_percent(verdict.last_gpu)}")
    return f"Idle for {format_duration(verdict.idle_for_s)} ({', '.join(figures)})"


# --- workers.get_stats --------------------------------------------------------------------------

_KEYS = {
    "cpu_usage": "cpu",
    "gpu_usage": "gpu",
    "memory_used": "mem",
    "gpu_temperature": "gpu_temp",
}


def _stat_series(metric: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    stats = metric.get("stats") or []
    chosen = next((s for s in stats if s.get("aggregation") == "avg"), stats[0] if stats else {})
    dates = chosen.get("dates") or metric.get("dates") or []
    values = chosen.get("values") or []
    return list(dates), list(values)


def parse_worker_stats(data: Mapping[str, Any]) -> dict[str, list[Sample]]:
    """`workers.get_stats` data (server ≤2.0 or ≥2.1 shape) → worker id → samples by time."""
    out: dict[str, list[Sample]] = {}
    for entry in data.get("workers") or []:
        worker = str(entry.get("worker") or "")
        if not worker:
            continue
        # (ms, field) → values of every variant (≤2.0 sends one metric entry per variant)
        points: dict[int, dict[str, list[float]]] = {}
        for metric in entry.get("metrics") or []:
            field = _KEYS.get(str(metric.get("metric")))
            if field is None:
                continue
            dates, values = _stat_series(metric)
            for date, value in zip(dates, values, strict=False):
                try:
                    ms, number = int(float(date)), float(value)
                except (TypeError, ValueError):
                    continue
                points.setdefault(ms, {}).setdefault(field, []).append(number)
        samples = []
        for ms in sorted(points):
            fields = points[ms]
            cpu = fields.get("cpu")
            gpu = fields.get("gpu")
            mem = fields.get("mem")
            temp = fields.get("gpu_temp")
            samples.append(
                Sample(
                    t=ms / 1000.0,
                    cpu=sum(cpu) / len(cpu) if cpu else None,
                    gpu=sum(gpu) / len(gpu) if gpu else None,
                    mem=sum(mem) / len(mem) if mem else None,
                    gpu_temp=sum(temp) / len(temp) if temp else None,
                )
            )
        out[worker] = samples
    return out

"""Is a session idle? A pure policy over its machine's CPU/GPU series (Qt-free, no I/O).

A session is idle when every sample in the policy window stayed under the thresholds and the
samples really cover the window. Missing data is never taken for idleness: no samples, stale
samples or a gap in the series give "unknown". Series come from `workers.get_stats`, whose
response changed shape in server 2.3 (both are parsed; dates are epoch milliseconds).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from tray_app.core.models import format_duration, format_percent
from tray_app.core.settings import IdlePolicy

DEFAULT_SAMPLE_INTERVAL_S = 30.0
MIN_GAP_S = 300.0  # a gap shorter than this is normal jitter of agent reports


class IdleState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # epoch seconds
    cpu: float | None = None  # % (average over cores)
    gpu: float | None = None  # % (average over GPUs)


@dataclass(frozen=True, slots=True)
class IdleVerdict:
    state: IdleState
    idle_since: float | None = None
    idle_for_s: float = 0.0
    last_cpu: float | None = None
    last_gpu: float | None = None
    reason: str = ""


def _busy(sample: Sample, has_gpu: bool, policy: IdlePolicy) -> bool:
    if sample.cpu is not None and sample.cpu >= policy.cpu_threshold_percent:
        return True
    return has_gpu and sample.gpu is not None and sample.gpu >= policy.gpu_threshold_percent


def _quiet(sample: Sample, has_gpu: bool, policy: IdlePolicy) -> bool:
    """Known to be under every threshold that applies (a missing GPU value is not quiet)."""
    if sample.cpu is None or sample.cpu >= policy.cpu_threshold_percent:
        return False
    if has_gpu:
        return sample.gpu is not None and sample.gpu < policy.gpu_threshold_percent
    return True


def max_gap(samples: list[Sample]) -> float:
    """The longest silence that still counts as continuous data for this series."""
    steps = [b.t - a.t for a, b in itertools.pairwise(samples) if b.t > a.t]
    interval = statistics.median(steps) if steps else DEFAULT_SAMPLE_INTERVAL_S
    return max(3 * interval, MIN_GAP_S)


def evaluate(
    samples: Iterable[Sample], now: float, has_gpu: bool, policy: IdlePolicy
) -> IdleVerdict:
    window = policy.window_minutes * 60.0
    # Clock skew: a sample "from the future" is treated as taken now.
    series = sorted(
        (replace(s, t=min(s.t, now)) for s in samples if s.cpu is not None or s.gpu is not None),
        key=lambda s: s.t,
    )
    if not series:
        return IdleVerdict(IdleState.UNKNOWN, reason="no machine metrics yet")
    last = series[-1]
    base = IdleVerdict(IdleState.UNKNOWN, last_cpu=last.cpu, last_gpu=last.gpu)
    gap = max_gap(series)
    if now - last.t > gap:
        return replace(base, reason=f"no machine metrics for {format_duration(now - last.t)}")
    if _busy(last, has_gpu, policy):
        return replace(base, state=IdleState.BUSY, reason="in use now")

    # The trailing run of quiet samples, cut at the last busy sample or the last data gap.
    run_start: float | None = None
    previous_t = now
    interrupted_by = ""
    for sample in reversed(series):
        if previous_t - sample.t > gap:
            interrupted_by = "gap"
            break
        if _busy(sample, has_gpu, policy):
            interrupted_by = "busy"
            break
        if _quiet(sample, has_gpu, policy):
            run_start = sample.t
        previous_t = sample.t
    if run_start is None:
        return replace(base, reason="metrics incomplete")
    quiet_for = now - run_start
    if quiet_for >= window:
        return replace(
            base,
            state=IdleState.IDLE,
            idle_since=run_start,
            idle_for_s=quiet_for,
            reason=f"under the thresholds for {format_duration(quiet_for)}",
        )
    if interrupted_by == "busy":
        return replace(
            base,
            state=IdleState.BUSY,
            reason=f"quiet for {format_duration(quiet_for)} only",
            idle_for_s=quiet_for,
        )
    return replace(
        base,
        reason=f"only {format_duration(quiet_for)} of metrics, the window is "
        f"{format_duration(window)}",
        idle_for_s=quiet_for,
    )


def idle_note(verdict: IdleVerdict) -> str:
    """The menu row for an idle session, e.g. "Idle for 1h 12m (CPU 1 %, GPU 0 %)"."""
    if verdict.state != IdleState.IDLE:
        return ""
    figures = [f"CPU {format_percent(verdict.last_cpu)}"]
    if verdict.last_gpu is not None:
        figures.append(f"GPU {format_percent(verdict.last_gpu)}")
    return f"Idle for {format_duration(verdict.idle_for_s)} ({', '.join(figures)})"


# --- workers.get_stats --------------------------------------------------------------------------

_KEYS = {"cpu_usage": "cpu", "gpu_usage": "gpu"}


def _stat_series(metric: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    stats = metric.get("stats") or []
    chosen = next((s for s in stats if s.get("aggregation") == "avg"), stats[0] if stats else {})
    dates = chosen.get("dates") or metric.get("dates") or []
    values = chosen.get("values") or []
    return list(dates), list(values)


def parse_worker_stats(data: Mapping[str, Any]) -> dict[str, list[Sample]]:
    """`workers.get_stats` data (server ≤2.0 or ≥2.3 shape) → worker id → samples by time."""
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
            samples.append(
                Sample(
                    t=ms / 1000.0,
                    cpu=sum(cpu) / len(cpu) if cpu else None,
                    gpu=sum(gpu) / len(gpu) if gpu else None,
                )
            )
        out[worker] = samples
    return out

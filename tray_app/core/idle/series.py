"""`workers.get_stats` answers → per-bucket samples of one worker (pure, no I/O).

What the numbers are (clearml-agent `clearml_agent/helper/resource_monitor.py`, every 30 s):
`cpu_usage` one value, the mean over all of the host's cores; `memory_used` the host's used
memory in MB; per watched GPU its utilization (`gpu_usage`), temperature (`gpu_temperature`)
and used memory (`gpu_memory_used`).

How the server returns them (clearml-server `apiserver/bll/workers/stats.py`): an
Elasticsearch `date_histogram` with `extended_bounds`, so every bucket of the range comes back
and a bucket without any report reads 0.0; the GPU keys are averaged over all of a worker's
GPUs unless `split_by_resource` is set, and then each GPU also gets its own series in
`resource_series` (left out when the worker has a single GPU: its series is the total). A
server before 2.1 (API 2.32) has no `split_by_resource`; with `split_by_variant` it sends one
entry per variant instead, and its dates sit on the metric, not on the aggregation. Dates are
epoch milliseconds.

A GPU's series without a split is the mean over the worker's GPUs; it is kept under the name
`ALL_GPUS` so that the policy can bound the busiest GPU by it. Zero-filled buckets are left out
(but the first): a bucket without a report is missing data, whatever its zeros say.

Tested in tests/unit/idle/test_series.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_GPUS = ""  # the series of a worker's GPUs averaged together (no per-GPU split)
STAT_ITEMS = (
    "cpu_usage",
    "memory_used",
    "gpu_usage",
    "gpu_temperature",
    "gpu_memory_used",
)


# Not frozen: an answer holds thousands of these, a frozen dataclass costs three times as much
# to make, and nothing changes one once parsed (the policy makes new ones).
@dataclass(slots=True)
class GpuReading:
    usage: float | None = None  # %
    temp: float | None = None  # °C; > 0 only where the GPU was read (no GPU is at 0 °C)
    mem: float | None = None  # MB used

    @property
    def read(self) -> bool:
        return self.temp is not None and self.temp > 0


@dataclass(slots=True)
class Sample:
    """One bucket of one worker: a zero-filled bucket (no report) reads 0.0 everywhere."""

    t: float  # epoch seconds
    cpu: float | None = None  # % of the host, averaged over all of its cores
    mem: float | None = None  # MB of the host's memory used; > 0 only where it reported
    gpus: Mapping[str, GpuReading] = field(default_factory=dict)  # GPU name ("0", …) → reading


def reported(sample: Sample) -> bool:
    """Whether the bucket held at least one report: a zero-filled bucket is all 0.0. The
    server never stores a scalar 0 (a host never uses 0 MB), so memory alone tells; CPU and
    GPU values are looked at too in case a report lacked memory."""
    if (sample.mem or 0.0) > 0 or (sample.cpu or 0.0) > 0:
        return True
    return any((r.temp or 0.0) > 0 or (r.usage or 0.0) > 0 for r in sample.gpus.values())


_FIELDS = {
    "cpu_usage": "cpu",
    "memory_used": "mem",
    "gpu_usage": "usage",
    "gpu_temperature": "temp",
    "gpu_memory_used": "gmem",
}
_GPU_FIELDS = {"usage", "temp", "gmem"}


def _aggregation(metric: Mapping[str, Any]) -> Mapping[str, Any]:
    stats = metric.get("stats")
    if not isinstance(stats, list) or not stats:
        return {}
    aggregations = [s for s in stats if isinstance(s, Mapping)]
    avg = [s for s in aggregations if s.get("aggregation") == "avg"]
    return (avg or aggregations or [{}])[0]


def _column(dates: Any, values: Any) -> dict[int, float]:
    """One series as bucket (ms) → value; entries that are not numbers are left out."""
    if not isinstance(dates, list) or not isinstance(values, list):
        return {}
    out: dict[int, float] = {}
    for date, value in zip(dates, values, strict=False):
        try:
            out[int(date)] = float(value)
        except (TypeError, ValueError, OverflowError):
            continue
    return out


def parse_worker_stats(data: Mapping[str, Any]) -> dict[str, list[Sample]]:
    """`workers.get_stats` data (either shape) → worker id → samples, oldest first."""
    out: dict[str, list[Sample]] = {}
    workers = data.get("workers")
    for entry in workers if isinstance(workers, list) else []:
        if isinstance(entry, Mapping) and str(entry.get("worker") or ""):
            out[str(entry["worker"])] = _worker_samples(entry)
    return out


def _worker_samples(entry: Mapping[str, Any]) -> list[Sample]:
    # Column by column (a worker's answer holds thousands of numbers): field → variant → series.
    # A 2.0 server sends one entry per variant; CPU and memory variants are averaged.
    columns: dict[str, dict[str, list[dict[int, float]]]] = {}
    metrics = entry.get("metrics")
    for metric in metrics if isinstance(metrics, list) else []:
        if not isinstance(metric, Mapping):
            continue
        name = _FIELDS.get(str(metric.get("metric")))
        if name is None:
            continue
        stat = _aggregation(metric)
        dates = stat.get("dates") or metric.get("dates")
        by_variant = columns.setdefault(name, {})
        resources = stat.get("resource_series") if name in _GPU_FIELDS else None
        per_gpu = [r for r in resources or [] if isinstance(r, Mapping) and "name" in r]
        if per_gpu:  # one series per GPU: the averaged total is not needed
            for resource in per_gpu:
                column = _column(dates, resource.get("values"))
                by_variant.setdefault(str(resource["name"]), []).append(column)
            continue
        variant = str(metric.get("variant") or ALL_GPUS) if name in _GPU_FIELDS else ""
        by_variant.setdefault(variant, []).append(_column(dates, stat.get("values")))
    stamps = sorted({ms for by in columns.values() for cs in by.values() for c in cs for ms in c})
    names = {v for name in _GPU_FIELDS for v in columns.get(name, {})}
    if len(names) > 1:  # per-GPU series beside a total of another key: the total is no GPU
        names.discard(ALL_GPUS)
    gpus = sorted(names, key=_gpu_order)

    def merged(name: str, variant: str | None = None) -> dict[int, float]:
        """One column per field (and GPU): several (a 2.0 server's variants) averaged."""
        by = columns.get(name, {})
        found = [c for cs in by.values() for c in cs] if variant is None else by.get(variant, [])
        if len(found) == 1:
            return found[0]
        sums: dict[int, list[float]] = {}
        for column in found:
            for ms, value in column.items():
                sums.setdefault(ms, []).append(value)
        return {ms: sum(v) / len(v) for ms, v in sums.items()}

    cpu, mem = merged("cpu"), merged("mem")
    by_gpu = [(g, merged("usage", g), merged("temp", g), merged("gmem", g)) for g in gpus]
    samples: list[Sample] = []
    for ms in stamps:
        c, m = cpu.get(ms), mem.get(ms)
        held = (c or 0.0) > 0 or (m or 0.0) > 0
        held = held or any(
            (t.get(ms) or 0.0) > 0 or (u.get(ms) or 0.0) > 0 for _, u, t, _ in by_gpu
        )
        # A zero-filled bucket held no report: to the policy it is missing data, like no bucket
        # at all. Only the first is kept, to say how far back the answer goes. (Most of a short
        # history is zero-filled: making them all would be most of the parsing.)
        if not held and samples:
            continue
        readings = {g: GpuReading(u.get(ms), t.get(ms), gm.get(ms)) for g, u, t, gm in by_gpu}
        samples.append(Sample(ms / 1000.0, c, m, readings))
    return samples


def _gpu_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)

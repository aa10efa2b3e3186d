"""`workers.get_stats` computed the way the real server does it (pure functions, no state).

Mirrors clearml-server `apiserver/bll/workers/__init__.py` (`log_stats_to_es`: which reported
values become documents) and `apiserver/bll/workers/stats.py` (the Elasticsearch query and how
its answer is cut), in both response shapes: up to 2.0 (`services/workers.py` of v2.0.0, one
query for every item, dates on the metric) and from 2.1 on (API 2.32: one query per item, dates
inside each aggregation, `resource_series` for GPUs).

What matters to clients: the series are **dense**. The server asks Elasticsearch for a
`date_histogram` with `extended_bounds` over the requested range, so every bucket from the
range's start to its end comes back, and a bucket without any report reads 0.0 — the same as a
machine that reported 0 %. Only a worker that sent no document for a metric in the whole range
is missing from the answer (a `terms` aggregation lists only keys with documents, and at most
10 of them: its default `size`).

Tested in tests/unit/demo/test_emulator_conformance.py (get_stats) and
test_emulator_agent.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

STAT_KEYS = (
    "cpu_usage",
    "cpu_temperature",
    "memory_used",
    "memory_free",
    "gpu_usage",
    "gpu_temperature",
    "gpu_fraction",
    "gpu_memory_free",
    "gpu_memory_used",
    "network_tx",
    "network_rx",
    "disk_free_home",
    "disk_free_temp",
    "disk_read",
    "disk_write",
)
AGGREGATIONS = ("avg", "min", "max")
MIN_CHART_INTERVAL_S = 40  # services.workers.min_chart_interval_sec
TERMS_SIZE = 10  # Elasticsearch's default `size` of a terms aggregation

Shape = Literal["2.0", "2.3"]


@dataclass(frozen=True, slots=True)
class StatDoc:
    """One document of the `worker_stats_<company>_*` index."""

    timestamp: int  # epoch ms, as the agent sent it
    worker: str
    metric: str
    variant: str
    value: float


@dataclass(frozen=True, slots=True)
class StatItem:
    key: str
    aggregation: str = "avg"


def stat_documents(
    worker: str, timestamp_ms: int, machine_stats: Mapping[str, Any]
) -> list[StatDoc]:
    """The documents one `workers.status_report` writes (`log_stats_to_es`).

    A falsy value is skipped (`if not value: continue`): a scalar 0 is never stored, while a
    list is stored element by element (variant "0", "1", ...) even when its values are 0.
    Scalars get the variant "total".
    """
    docs = []
    for metric, value in machine_stats.items():
        if metric not in STAT_KEYS or not value:
            continue
        if isinstance(value, list | tuple):
            for i, element in enumerate(value):
                if isinstance(element, int | float) and not isinstance(element, bool):
                    docs.append(StatDoc(timestamp_ms, worker, metric, str(i), float(element)))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            docs.append(StatDoc(timestamp_ms, worker, metric, "total", float(value)))
    return docs


def bucket_keys(from_date: float, to_date: float, interval_s: int) -> list[int]:
    """Every bucket key (epoch ms) of a fixed-interval `date_histogram` with `extended_bounds`
    [int(from_date)*1000, int(to_date)*1000]: keys are multiples of the interval since the epoch,
    from the bucket holding the lower bound to the one holding the upper bound."""
    step = interval_s * 1000
    low = int(from_date) * 1000 // step * step
    high = int(to_date) * 1000 // step * step
    return list(range(low, high + step, step))


def complete_keys(keys: list[int], to_date: float, interval_s: int, shape: Shape) -> list[int]:
    """Drops the incomplete last bucket(s): the server's cutoff is to_date - 0.9 interval.

    v2.0.0 keeps the buckets with `key <= cutoff`; from v2.1 on trailing buckets with
    `key >= cutoff` are trimmed (the same except for a key exactly at the cutoff).
    """
    cutoff = (to_date - 0.9 * interval_s) * 1000
    if shape == "2.0":
        return [k for k in keys if k <= cutoff]
    end = len(keys)
    while end > 0 and keys[end - 1] >= cutoff:
        end -= 1
    return keys[:end]


def _aggregate(values: Sequence[float], how: str) -> float:
    # An empty bucket's metric aggregation is null; the server turns it into 0.0.
    if not values:
        return 0.0
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    return sum(values) / len(values)


def _terms(docs: Iterable[StatDoc], key: str) -> list[tuple[str, list[StatDoc]]]:
    """A terms aggregation: groups ordered by document count (desc) then key, at most 10."""
    groups: dict[str, list[StatDoc]] = {}
    field = attrgetter(key)
    for doc in docs:
        name = field(doc)
        group = groups.get(name)
        if group is None:
            groups[name] = [doc]
        else:
            group.append(doc)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return ordered[:TERMS_SIZE]


def _series(docs: Sequence[StatDoc], keys: list[int], interval_s: int, how: str) -> list[float]:
    step = interval_s * 1000
    per_bucket: dict[int, list[float]] = {}
    for doc in docs:
        per_bucket.setdefault(doc.timestamp // step * step, []).append(doc.value)
    return [_aggregate(per_bucket.get(k, []), how) for k in keys]


def get_stats(
    docs: Iterable[StatDoc],
    *,
    worker_ids: Sequence[str],
    from_date: float,
    to_date: float,
    interval: int,
    items: Sequence[StatItem],
    shape: Shape,
    split_by_variant: bool = False,
    split_by_resource: bool = False,
) -> list[dict[str, Any]]:
    """The `workers` list of a `workers.get_stats` answer. Raises ValueError on a bad range."""
    if from_date >= to_date:
        raise ValueError("from_date must be less than to_date")
    interval = max(interval, MIN_CHART_INTERVAL_S)
    keys = complete_keys(bucket_keys(from_date, to_date, interval), to_date, interval, shape)
    wanted = set(worker_ids)
    # range query {gte: int(from), lte: int(to)} in epoch_second; lte rounds up to the last ms.
    low, high = int(from_date) * 1000, int(to_date) * 1000 + 999
    selected = [
        d for d in docs if low <= d.timestamp <= high and (not wanted or d.worker in wanted)
    ]
    if shape == "2.0":
        return _get_stats_2_0(selected, keys, interval, items, split_by_variant)
    return _get_stats_2_1(selected, keys, interval, items, split_by_resource)


def _get_stats_2_0(
    docs: list[StatDoc],
    keys: list[int],
    interval: int,
    items: Sequence[StatItem],
    split_by_variant: bool,
) -> list[dict[str, Any]]:
    # One query: terms(worker) > terms(metric) [> terms(variant)] > date_histogram.
    aggs_by_metric: dict[str, list[str]] = {}
    for item in items:
        aggs_by_metric.setdefault(item.key, [])
        if item.aggregation not in aggs_by_metric[item.key]:
            aggs_by_metric[item.key].append(item.aggregation)
    docs = [d for d in docs if d.metric in aggs_by_metric]
    workers = []
    for worker, worker_docs in _terms(docs, "worker"):
        metrics = []
        for metric, metric_docs in _terms(worker_docs, "metric"):
            groups = _terms(metric_docs, "variant") if split_by_variant else [("", metric_docs)]
            for variant, group in groups:
                entry: dict[str, Any] = {"metric": metric}
                if variant:
                    entry["variant"] = variant
                entry["dates"] = list(keys)
                entry["stats"] = [
                    {"aggregation": how, "values": _series(group, keys, interval, how)}
                    for how in aggs_by_metric[metric]
                ]
                metrics.append(entry)
        workers.append({"worker": worker, "metrics": metrics})
    return workers


def _get_stats_2_1(
    docs: list[StatDoc],
    keys: list[int],
    interval: int,
    items: Sequence[StatItem],
    split_by_resource: bool,
) -> list[dict[str, Any]]:
    # One query per item: terms(worker) > date_histogram [> terms(variant) for gpu_* keys].
    result: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    by_metric: dict[str, list[StatDoc]] = {}
    for doc in docs:
        by_metric.setdefault(doc.metric, []).append(doc)
    for item in items:
        metric_docs = by_metric.get(item.key, [])
        for worker, worker_docs in _terms(metric_docs, "worker"):
            stat: dict[str, Any] = {
                "aggregation": item.aggregation,
                "dates": list(keys),
                "values": _series(worker_docs, keys, interval, item.aggregation),
                "resource_series": [],
            }
            if split_by_resource and item.key.startswith("gpu_"):
                per_resource = _terms(worker_docs, "variant")
                if len(per_resource) > 1:  # a single resource repeats the total: left out
                    stat["resource_series"] = [
                        {"name": name, "values": _series(group, keys, interval, item.aggregation)}
                        for name, group in per_resource
                    ]
            result.setdefault(worker, {}).setdefault(item.key, {})[item.aggregation] = stat
    return [
        {
            "worker": worker,
            "metrics": [
                {"metric": metric, "stats": list(by_agg.values())}
                for metric, by_agg in metrics.items()
            ],
        }
        for worker, metrics in result.items()
    ]

"""`workers.get_stats` answers → samples: both response shapes, per-GPU series, garbage."""

from __future__ import annotations

from tray_app.core.idle.series import ALL_GPUS, GpuReading, Sample, parse_worker_stats, reported


def test_server_2_3_shape_with_one_series_per_gpu() -> None:
    """From server 2.1 (API 2.32): dates inside each aggregation, `resource_series` per GPU
    when the request set split_by_resource (clearml-server apiserver/bll/workers/stats.py)."""
    dates = [1_700_000_000_000, 1_700_000_060_000]
    data = {
        "workers": [
            {
                "worker": "dgx-000:gpu0,1",
                "metrics": [
                    {
                        "metric": "cpu_usage",
                        "stats": [{"aggregation": "avg", "dates": dates, "values": [1.5, 2.5]}],
                    },
                    {
                        "metric": "memory_used",
                        "stats": [{"aggregation": "avg", "dates": dates, "values": [9000.0, 0.0]}],
                    },
                    {
                        "metric": "gpu_usage",
                        "stats": [
                            {
                                "aggregation": "avg",
                                "dates": dates,
                                "values": [15.0, 0.0],  # the mean: left aside
                                "resource_series": [
                                    {"name": "0", "values": [0.0, 0.0]},
                                    {"name": "1", "values": [30.0, 0.0]},
                                ],
                            }
                        ],
                    },
                    {
                        "metric": "gpu_temperature",
                        "stats": [
                            {
                                "aggregation": "avg",
                                "dates": dates,
                                "values": [40.0, 0.0],
                                "resource_series": [
                                    {"name": "0", "values": [35.0, 0.0]},
                                    {"name": "1", "values": [45.0, 0.0]},
                                ],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    first, second = parse_worker_stats(data)["dgx-000:gpu0,1"]
    assert first == Sample(
        1_700_000_000.0,
        1.5,
        9000.0,
        {"0": GpuReading(0.0, 35.0, None), "1": GpuReading(30.0, 45.0, None)},
    )
    assert reported(first) and first.gpus["0"].read
    assert not second.gpus["1"].read  # a zero-filled bucket: no temperature
    assert reported(second)  # ... but its CPU figure came from a report


def test_a_single_gpu_has_only_the_total() -> None:
    """stats.py `_extract_results`: one resource only → no `resource_series` (it is the total)."""
    data = {
        "workers": [
            {
                "worker": "w",
                "metrics": [
                    {
                        "metric": "gpu_usage",
                        "stats": [
                            {
                                "aggregation": "avg",
                                "dates": [1000],
                                "values": [42.0],
                                "resource_series": [],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    assert parse_worker_stats(data) == {"w": [Sample(1.0, gpus={ALL_GPUS: GpuReading(42.0)})]}


def test_server_2_0_shape_with_variants() -> None:
    """Up to server 2.0: dates on the metric, one entry per variant with split_by_variant."""
    data = {
        "workers": [
            {
                "worker": "w1",
                "metrics": [
                    {
                        "metric": "cpu_usage",
                        "variant": "0",
                        "dates": [1_000, 2_000],
                        "stats": [{"aggregation": "avg", "values": [10.0, 20.0]}],
                    },
                    {
                        "metric": "gpu_usage",
                        "variant": "0",
                        "dates": [1_000, 2_000],
                        "stats": [{"aggregation": "avg", "values": [0.0, 40.0]}],
                    },
                    {
                        "metric": "gpu_usage",
                        "variant": "1",
                        "dates": [1_000, 2_000],
                        "stats": [{"aggregation": "avg", "values": [2.0, 60.0]}],
                    },
                    {
                        "metric": "memory_used",
                        "variant": "total",
                        "dates": [1_000],
                        "stats": [{"values": [5]}],
                    },
                ],
            },
            {"worker": "", "metrics": []},
        ]
    }
    assert parse_worker_stats(data) == {
        "w1": [
            Sample(1.0, 10.0, 5.0, {"0": GpuReading(0.0), "1": GpuReading(2.0)}),
            Sample(2.0, 20.0, None, {"0": GpuReading(40.0), "1": GpuReading(60.0)}),
        ]
    }


def test_garbage_is_skipped() -> None:
    data = {"workers": [{"worker": "w", "metrics": [{"metric": "cpu_usage", "stats": []}]}]}
    assert parse_worker_stats(data) == {"w": []}
    bad_values = {
        "workers": [
            {
                "worker": "w",
                "metrics": [
                    {"metric": "cpu_usage", "dates": ["x", 1000], "stats": [{"values": [1, None]}]},
                    "not a metric",
                    {
                        "metric": "gpu_usage",
                        "stats": [
                            {"dates": [1000], "values": [3], "resource_series": [{"values": [1]}]}
                        ],
                    },
                ],
            },
            7,
        ]
    }
    assert parse_worker_stats(bad_values) == {"w": [Sample(1.0, gpus={ALL_GPUS: GpuReading(3.0)})]}
    assert parse_worker_stats({}) == {} and parse_worker_stats({"workers": "x"}) == {}

"""The idle policy over metric series: thresholds, gaps, GPU vs CPU-only, skew, both shapes."""

from __future__ import annotations

from tray_app.core.idle import IdleState, Sample, evaluate, idle_note, parse_worker_stats
from tray_app.core.settings import IdlePolicy

NOW = 1_800_000_000.0
POLICY = IdlePolicy(cpu_threshold_percent=5, gpu_threshold_percent=5, window_minutes=60)


def series(minutes: int, cpu: float, gpu: float | None = None, step_s: int = 30) -> list[Sample]:
    return [
        Sample(NOW - minutes * 60 + i * step_s, cpu, gpu) for i in range(minutes * 60 // step_s + 1)
    ]


def test_quiet_for_the_whole_window_is_idle() -> None:
    verdict = evaluate(series(75, 1.0, 0.0), NOW, has_gpu=True, policy=POLICY)
    assert verdict.state == IdleState.IDLE
    assert verdict.idle_since == NOW - 75 * 60
    assert verdict.idle_for_s == 75 * 60
    assert idle_note(verdict) == "Idle for 1h 15m (CPU 1 %, GPU 0 %)"


def test_not_long_enough_after_activity_is_busy() -> None:
    samples = series(90, 50.0)[:121] + series(30, 1.0)[1:]  # busy until 30 min ago
    verdict = evaluate(samples, NOW, has_gpu=False, policy=POLICY)
    assert verdict.state == IdleState.BUSY
    assert verdict.reason == "quiet for 29m only"  # the first quiet sample is 29.5 min old


def test_busy_now_is_busy() -> None:
    samples = series(75, 1.0)
    samples[-1] = Sample(NOW, 80.0)
    assert evaluate(samples, NOW, False, POLICY).state == IdleState.BUSY


def test_threshold_is_exclusive() -> None:
    assert evaluate(series(75, 5.0), NOW, False, POLICY).state == IdleState.BUSY
    assert evaluate(series(75, 4.99), NOW, False, POLICY).state == IdleState.IDLE


def test_gpu_counts_only_when_the_session_has_gpus() -> None:
    samples = series(75, 1.0, 60.0)  # CPU quiet, GPU busy (a training job)
    assert evaluate(samples, NOW, has_gpu=True, policy=POLICY).state == IdleState.BUSY
    assert evaluate(samples, NOW, has_gpu=False, policy=POLICY).state == IdleState.IDLE


def test_missing_gpu_values_are_not_idle() -> None:
    samples = series(75, 1.0, None)
    assert evaluate(samples, NOW, has_gpu=True, policy=POLICY).state == IdleState.UNKNOWN


def test_no_data_is_unknown_never_idle() -> None:
    verdict = evaluate([], NOW, False, POLICY)
    assert verdict.state == IdleState.UNKNOWN and "no machine metrics" in verdict.reason
    assert idle_note(verdict) == ""


def test_short_history_is_unknown() -> None:
    verdict = evaluate(series(10, 1.0), NOW, False, POLICY)
    assert verdict.state == IdleState.UNKNOWN
    assert "only 10m of metrics" in verdict.reason


def test_stale_metrics_are_unknown() -> None:
    old = [Sample(s.t - 3600, s.cpu) for s in series(75, 1.0)]
    verdict = evaluate(old, NOW, False, POLICY)
    assert verdict.state == IdleState.UNKNOWN and "no machine metrics for" in verdict.reason


def test_a_gap_cuts_the_quiet_run() -> None:
    # Quiet samples 120..70 min ago, nothing for 40 min, quiet again for the last 30 min.
    before = [Sample(NOW - m * 60, 1.0) for m in range(120, 69, -1)]
    after = [Sample(NOW - m * 60, 1.0) for m in range(30, -1, -1)]
    verdict = evaluate(before + after, NOW, False, POLICY)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.idle_for_s == 30 * 60


def test_small_jitter_is_not_a_gap() -> None:
    samples = [s for i, s in enumerate(series(75, 1.0)) if i % 7]  # some reports missing
    assert evaluate(samples, NOW, False, POLICY).state == IdleState.IDLE


def test_clock_skew_future_samples_are_clamped() -> None:
    samples = [*series(75, 1.0), Sample(NOW + 600, 1.0)]
    verdict = evaluate(samples, NOW, False, POLICY)
    assert verdict.state == IdleState.IDLE
    assert verdict.idle_for_s == 75 * 60
    busy_future = [*series(75, 1.0), Sample(NOW + 600, 90.0)]
    assert evaluate(busy_future, NOW, False, POLICY).state == IdleState.BUSY


def test_window_comes_from_the_policy() -> None:
    short = IdlePolicy(window_minutes=10)
    assert evaluate(series(12, 1.0), NOW, False, short).state == IdleState.IDLE


def test_parse_server_2_3_shape() -> None:
    data = {
        "workers": [
            {
                "worker": "gpu-node-000:gpu0",
                "metrics": [
                    {
                        "metric": "cpu_usage",
                        "stats": [
                            {
                                "aggregation": "avg",
                                "dates": [1_700_000_000_000, 1_700_000_060_000],
                                "values": [1.5, 2.5],
                                "resource_series": [],
                            }
                        ],
                    },
                    {
                        "metric": "gpu_usage",
                        "stats": [
                            {
                                "aggregation": "avg",
                                "dates": [1_700_000_060_000],
                                "values": [0.0],
                                "resource_series": [{"name": "0", "values": [0.0]}],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    assert parse_worker_stats(data) == {
        "gpu-node-000:gpu0": [
            Sample(1_700_000_000.0, 1.5, None),
            Sample(1_700_000_060.0, 2.5, 0.0),
        ]
    }


def test_parse_server_2_0_shape_with_variants() -> None:
    data = {
        "workers": [
            {
                "worker": "w1",
                "metrics": [
                    {
                        "metric": "cpu_usage",
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
                    {"metric": "memory_used", "dates": [1_000], "stats": [{"values": [5]}]},
                ],
            },
            {"worker": "", "metrics": []},
        ]
    }
    assert parse_worker_stats(data) == {"w1": [Sample(1.0, 10.0, 1.0), Sample(2.0, 20.0, 50.0)]}


def test_parse_tolerates_garbage() -> None:
    data = {"workers": [{"worker": "w", "metrics": [{"metric": "cpu_usage", "stats": []}]}]}
    assert parse_worker_stats(data) == {"w": []}
    bad_values = {
        "workers": [
            {
                "worker": "w",
                "metrics": [
                    {"metric": "cpu_usage", "dates": ["x", 1000], "stats": [{"values": [1, None]}]}
                ],
            }
        ]
    }
    assert parse_worker_stats(bad_values) == {"w": []}
    assert parse_worker_stats({}) == {}

"""The idle policy over metric series: thresholds, gaps, GPU vs CPU-only, skew, both shapes,
and the real server's dense, zero-filled `workers.get_stats` series (computed here by the
emulator's copy of clearml-server's apiserver/bll/workers/stats.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tray_app.core.idle.policy import (
    IdleState,
    Sample,
    evaluate,
    evidence,
    idle_note,
    parse_worker_stats,
)
from tray_app.core.settings.settings import IdlePolicy
from tray_app.demo.worker_stats import StatItem, get_stats, stat_documents

NOW = 1_800_000_000.0
POLICY = IdlePolicy(cpu_threshold_percent=5, gpu_threshold_percent=5, window_minutes=60)
LONG_AGO = NOW - 24 * 3600  # a session started long before any of these windows


def series(minutes: int, cpu: float, gpu: float | None = None, step_s: int = 30) -> list[Sample]:
    temp = None if gpu is None else 35.0  # GPUs that were read report their temperature
    return [
        Sample(NOW - minutes * 60 + i * step_s, cpu, gpu, gpu_temp=temp)
        for i in range(minutes * 60 // step_s + 1)
    ]


def test_quiet_for_the_whole_window_is_idle() -> None:
    verdict = evaluate(series(75, 1.0, 0.0), NOW, has_gpu=True, policy=POLICY, started=LONG_AGO)
    assert verdict.state == IdleState.IDLE
    assert verdict.idle_since == NOW - 75 * 60
    assert verdict.idle_for_s == 75 * 60
    assert idle_note(verdict) == "Idle for 1h 15m (CPU 1 %, GPU 0 %)"


def test_not_long_enough_after_activity_is_busy() -> None:
    samples = series(90, 50.0)[:121] + series(30, 1.0)[1:]  # busy until 30 min ago
    verdict = evaluate(samples, NOW, has_gpu=False, policy=POLICY, started=LONG_AGO)
    assert verdict.state == IdleState.BUSY
    assert verdict.reason == "quiet for 29m only"  # the first quiet sample is 29.5 min old


def test_busy_now_is_busy() -> None:
    samples = series(75, 1.0)
    samples[-1] = Sample(NOW, 80.0)
    assert evaluate(samples, NOW, False, POLICY, started=LONG_AGO).state == IdleState.BUSY


def test_threshold_is_exclusive() -> None:
    assert evaluate(series(75, 5.0), NOW, False, POLICY, started=LONG_AGO).state == IdleState.BUSY
    assert evaluate(series(75, 4.99), NOW, False, POLICY, started=LONG_AGO).state == IdleState.IDLE


def test_gpu_counts_only_when_the_session_has_gpus() -> None:
    samples = series(75, 1.0, 60.0)  # CPU quiet, GPU busy (a training job)
    assert (
        evaluate(samples, NOW, has_gpu=True, policy=POLICY, started=LONG_AGO).state
        == IdleState.BUSY
    )
    assert (
        evaluate(samples, NOW, has_gpu=False, policy=POLICY, started=LONG_AGO).state
        == IdleState.IDLE
    )


def test_missing_gpu_values_are_not_idle() -> None:
    samples = series(75, 1.0, None)
    assert (
        evaluate(samples, NOW, has_gpu=True, policy=POLICY, started=LONG_AGO).state
        == IdleState.UNKNOWN
    )


def test_no_data_is_unknown_never_idle() -> None:
    verdict = evaluate([], NOW, False, POLICY, started=LONG_AGO)
    assert verdict.state == IdleState.UNKNOWN and "machine metrics" in verdict.reason
    assert idle_note(verdict) == ""


def test_short_history_is_unknown() -> None:
    verdict = evaluate(series(10, 1.0), NOW, False, POLICY, started=LONG_AGO)
    assert verdict.state == IdleState.UNKNOWN
    assert "only 10m of metrics" in verdict.reason


def test_stale_metrics_are_unknown() -> None:
    old = [Sample(s.t - 3600, s.cpu) for s in series(75, 1.0)]
    verdict = evaluate(old, NOW, False, POLICY, started=LONG_AGO)
    assert verdict.state == IdleState.UNKNOWN and "no machine metrics for" in verdict.reason


def test_a_gap_cuts_the_quiet_run() -> None:
    # Quiet samples 120..70 min ago, nothing for 40 min, quiet again for the last 30 min.
    before = [Sample(NOW - m * 60, 1.0) for m in range(120, 69, -1)]
    after = [Sample(NOW - m * 60, 1.0) for m in range(30, -1, -1)]
    verdict = evaluate(before + after, NOW, False, POLICY, started=LONG_AGO)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.idle_for_s == 30 * 60


def test_small_jitter_is_not_a_gap() -> None:
    samples = [s for i, s in enumerate(series(75, 1.0)) if i % 7]  # some reports missing
    assert evaluate(samples, NOW, False, POLICY, started=LONG_AGO).state == IdleState.IDLE


def test_clock_skew_future_samples_are_clamped() -> None:
    samples = [*series(75, 1.0), Sample(NOW + 600, 1.0)]
    verdict = evaluate(samples, NOW, False, POLICY, started=LONG_AGO)
    assert verdict.state == IdleState.IDLE
    assert verdict.idle_for_s == 75 * 60
    busy_future = [*series(75, 1.0), Sample(NOW + 600, 90.0)]
    assert evaluate(busy_future, NOW, False, POLICY, started=LONG_AGO).state == IdleState.BUSY


def test_window_comes_from_the_policy() -> None:
    short = IdlePolicy(window_minutes=10)
    assert evaluate(series(12, 1.0), NOW, False, short, started=LONG_AGO).state == IdleState.IDLE


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
    assert parse_worker_stats(data) == {
        "w1": [Sample(1.0, 10.0, 1.0, mem=5.0), Sample(2.0, 20.0, 50.0)]
    }


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


# --- against the dense series the real server returns ------------------------------------------

DENSE_NOW = 1_800_000_017.0  # not on a bucket boundary
ITEMS = [StatItem(k, "avg") for k in ("cpu_usage", "gpu_usage", "memory_used", "gpu_temperature")]
Report = tuple[float, dict[str, Any]]


def agent_reports(
    from_min: float, to_min: float, cpu: float, gpu: float | None = None
) -> list[Report]:
    """What clearml-agent sends every 30 s from `from_min` to `to_min` minutes before now."""
    reports = []
    t = DENSE_NOW - from_min * 60
    while t <= DENSE_NOW - to_min * 60:
        stats: dict[str, Any] = {"cpu_usage": [cpu], "memory_used": 2048.0, "memory_free": 6000.0}
        if gpu is not None:
            stats["gpu_usage"] = [gpu, gpu]
            stats["gpu_temperature"] = [34.0, 36.0]
        reports.append((t, stats))
        t += 30
    return reports


def dense(reports: list[Report], shape: str = "2.3", window_min: int = 60) -> list[Sample]:
    """The samples the tray parses from the server's answer to the idle monitor's request."""
    docs = [d for t, stats in reports for d in stat_documents("w", int(t * 1000), stats)]
    workers = get_stats(
        docs,
        worker_ids=["w"],
        from_date=DENSE_NOW - window_min * 60 - 600,
        to_date=DENSE_NOW,
        interval=60,
        items=ITEMS,
        shape="2.0" if shape == "2.0" else "2.3",
    )
    return parse_worker_stats({"workers": workers}).get("w", [])


def judge(samples: list[Sample], started_min: float, has_gpu: bool = False) -> Any:
    return evaluate(samples, DENSE_NOW, has_gpu, POLICY, started=DENSE_NOW - started_min * 60)


@pytest.mark.parametrize("shape", ["2.0", "2.3"])
def test_dense_quiet_window_is_idle_with_its_evidence(shape: str) -> None:
    samples = dense(agent_reports(120, 0, cpu=0.0, gpu=0.0), shape)
    assert len(samples) == 70  # 71 buckets touch the 70 minutes; the incomplete last is cut
    verdict = judge(samples, started_min=125, has_gpu=True)
    assert verdict.state == IdleState.IDLE  # 0 % CPU that was reported is evidence
    assert verdict.idle_for_s >= 60 * 60 and verdict.reports == 70
    assert evidence(verdict) == "70 reporting intervals, CPU at most 0 %, GPU at most 0 %"


@pytest.mark.parametrize("shape", ["2.0", "2.3"])
def test_fresh_agent_is_never_idle(shape: str) -> None:
    # The agent's first report was 12 minutes ago: 58 of the 70 buckets are zero-filled.
    samples = dense(agent_reports(12, 0, cpu=1.0), shape)
    assert len(samples) == 70 and sum(1 for s in samples if s.cpu == 0.0 and s.mem == 0.0) == 58
    verdict = judge(samples, started_min=11)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "running for 11m only, the window is 1h 0m"
    # Even with a start time that is (wrongly) long ago, zeros without a report are not idle.
    verdict = judge(samples, started_min=600)
    assert verdict.state == IdleState.UNKNOWN and verdict.reason.startswith("only 1")


def test_restarted_agent_is_not_idle_across_its_silence() -> None:
    # Quiet since two hours, but the agent was down from 40 to 28 minutes ago.
    reports = agent_reports(120, 40, cpu=1.0) + agent_reports(28, 0, cpu=1.0)
    verdict = judge(dense(reports), started_min=180)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "only 28m of metrics, the window is 1h 0m"
    # Once it has reported for a whole window again, the session is idle.
    assert judge(dense(agent_reports(120, 40, 1.0) + agent_reports(65, 0, 1.0)), 180).state == (
        IdleState.IDLE
    )


def test_worker_that_went_silent_is_unknown() -> None:
    samples = dense(agent_reports(180, 20, cpu=1.0))
    assert samples[-1].cpu == 0.0 and samples[-1].mem == 0.0  # zero-filled, not missing
    verdict = judge(samples, started_min=200)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason.startswith("no machine metrics for 2")
    # Silent for the whole range: the server leaves the worker out of its answer.
    assert dense(agent_reports(300, 100, cpu=1.0)) == []
    assert judge([], started_min=400).reason == "no recent machine metrics"
    assert judge([], started_min=2).reason == "no machine metrics yet"


def test_session_started_within_the_window() -> None:
    # The worker has been quiet for hours (another task, or nothing), the session began 30
    # minutes ago: the buckets before its start are not its idleness.
    samples = dense(agent_reports(180, 0, cpu=1.0))
    verdict = judge(samples, started_min=30)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "running for 30m only, the window is 1h 0m"
    later = judge(samples, started_min=62)
    assert later.state == IdleState.IDLE
    assert later.idle_since is not None and later.idle_since >= DENSE_NOW - 62 * 60


def test_unknown_start_is_never_idle() -> None:
    samples = dense(agent_reports(180, 0, cpu=1.0))
    verdict = evaluate(samples, DENSE_NOW, False, POLICY, started=None)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "the session's start time is unknown"


def test_busy_bucket_after_zero_filled_ones_is_busy() -> None:
    samples = dense(agent_reports(5, 0, cpu=80.0))
    assert judge(samples, started_min=6).state == IdleState.BUSY


def test_gpu_readings_that_stopped_are_not_idle() -> None:
    # clearml-agent stops reading the GPUs after three failures but keeps reporting CPU and
    # memory: the GPU buckets then read 0 %, with no temperature beside them.
    reports = agent_reports(120, 0, cpu=1.0, gpu=90.0)
    for _t, stats in reports[-100:]:
        del stats["gpu_usage"], stats["gpu_temperature"]
    samples = dense(reports)
    assert samples[-1].gpu == 0.0 and samples[-1].mem and samples[-1].gpu_temp == 0.0
    verdict = judge(samples, started_min=130, has_gpu=True)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "no GPU readings in the latest metrics"
    assert judge(samples, started_min=130, has_gpu=False).state == IdleState.IDLE

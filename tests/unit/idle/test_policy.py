"""The idle policy over a machine's series: busy cores, the busiest GPU, readings the agent cannot
have measured, shared machines, gaps and starts, and the real server's dense, zero-filled
`workers.get_stats` series (computed here by the emulator's copy of clearml-server's
apiserver/bll/workers/stats.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tray_app.core.idle.machine import Machine
from tray_app.core.idle.policy import (
    IdleState,
    evaluate,
    evidence,
    gpus_went_quiet,
    idle_for,
    idle_mark,
    idle_note,
    sentence,
)
from tray_app.core.idle.series import ALL_GPUS, GpuReading, Sample, parse_worker_stats
from tray_app.core.settings.settings import IdlePolicy
from tray_app.demo.worker_stats import StatItem, get_stats, stat_documents

NOW = 1_800_000_000.0
POLICY = IdlePolicy(cpu_threshold_cores=0.5, gpu_threshold_percent=5, window_minutes=60)
LONG_AGO = NOW - 24 * 3600  # a session started long before any of these windows
CPU64 = Machine(host="cpu-host-1", cores=64)
GPU1 = Machine(host="gpu-node-1", cores=32, gpus=1)
DGX = Machine(host="dgx-1", cores=128, gpus=8)


def gpu(usage: float, temp: float = 35.0, mem: float = 437.0) -> GpuReading:
    return GpuReading(usage, temp, mem)


def series(
    minutes: int,
    cpu: float,
    gpus: dict[str, GpuReading] | None = None,
    *,
    end_min: float = 0,
    step_s: int = 60,
) -> list[Sample]:
    """A report every `step_s` from `minutes` to `end_min` minutes before NOW."""
    start = NOW - minutes * 60
    count = int((minutes - end_min) * 60 // step_s) + 1
    return [Sample(start + i * step_s, cpu, 4096.0, dict(gpus or {})) for i in range(count)]


def judge(samples: list[Sample], machine: Machine = CPU64, started: float | None = LONG_AGO) -> Any:
    return evaluate(samples, NOW, machine, POLICY, started=started)


# --- CPU in cores ------------------------------------------------------------------------------


def test_quiet_for_the_whole_window_is_idle_and_says_why() -> None:
    verdict = judge(series(75, 0.3, {"0": gpu(0.0)}), GPU1)  # 0.1 cores of 32
    assert verdict.state == IdleState.IDLE
    assert verdict.idle_since == NOW - 75 * 60 and verdict.idle_for_s == 75 * 60
    assert verdict.reason == "GPU 0 % and 0.1 cores busy for 1h 15m on gpu-node-1"
    assert idle_note(verdict) == "Idle for 1h 15m (GPU 0 %, 0.1 cores busy)"
    assert evidence(verdict) == (
        "76 reporting intervals, at most 0.1 cores busy, the busiest GPU at most 0 %"
    )


def test_one_busy_core_of_64_is_busy_though_it_reads_1_56_percent() -> None:
    verdict = judge(series(75, 100 / 64))
    assert verdict.state == IdleState.BUSY
    assert verdict.reason == "1.0 core busy on cpu-host-1"
    # The same percentage on an 8-core machine is a fifth of a core: quiet.
    small = Machine(host="laptop", cores=8)
    assert judge(series(75, 100 / 64), small).state == IdleState.IDLE


def test_the_threshold_is_in_cores_and_exclusive() -> None:
    at = 0.5 / 64 * 100
    assert judge(series(75, at)).state == IdleState.BUSY
    assert judge(series(75, at * 0.98)).state == IdleState.IDLE


def test_an_unknown_core_count_is_unknown_unless_the_percentage_alone_is_busy() -> None:
    no_cores = Machine(host="box")
    verdict = judge(series(75, 1.0), no_cores)
    assert verdict.state == IdleState.UNKNOWN
    assert "core count is unknown" in verdict.reason
    # 60 % of any machine is at least 0.6 of a core.
    assert judge(series(75, 60.0), no_cores).state == IdleState.BUSY


# --- GPUs one by one ---------------------------------------------------------------------------


def eight(busy: float, at: str = "3") -> dict[str, GpuReading]:
    return {str(i): gpu(busy if str(i) == at else 0.0) for i in range(8)}


def test_the_busiest_gpu_counts_not_the_mean() -> None:
    verdict = judge(series(75, 0.2, eight(30.0)), DGX)  # the mean is 3.75 %
    assert verdict.state == IdleState.BUSY
    assert verdict.reason == "GPU 3 at 30 % on dgx-1"
    assert judge(series(75, 0.2, eight(0.0)), DGX).state == IdleState.IDLE


def test_a_busy_gpu_is_busy_with_a_quiet_cpu() -> None:
    samples = series(75, 0.1, {"0": gpu(60.0, temp=70.0)})  # a training job on the GPU
    assert judge(samples, GPU1).state == IdleState.BUSY
    # The same numbers for a session without GPUs: only the CPU counts.
    assert judge(samples, Machine(host="cpu", cores=32)).state == IdleState.IDLE


def test_only_the_mean_of_several_gpus_bounds_the_busiest() -> None:
    # No per-GPU series (a server without split_by_resource): 3.75 % over 8 GPUs may be one
    # GPU at 30 %; 0.5 % cannot (at most 4 %).
    maybe = judge(series(75, 0.2, {ALL_GPUS: gpu(3.75)}), DGX)
    assert maybe.state == IdleState.UNKNOWN
    assert "only the mean of the 8 GPUs on dgx-1 came back (4 %)" in maybe.reason
    assert judge(series(75, 0.2, {ALL_GPUS: gpu(0.5)}), DGX).state == IdleState.IDLE
    assert judge(series(75, 0.2, {ALL_GPUS: gpu(6.0)}), DGX).state == IdleState.BUSY


def test_a_single_gpus_total_is_that_gpu() -> None:
    verdict = judge(series(75, 0.1, {ALL_GPUS: gpu(40.0)}), GPU1)
    assert (verdict.state, verdict.reason) == (IdleState.BUSY, "GPU 0 at 40 % on gpu-node-1")


# --- what the agent cannot have measured -------------------------------------------------------


def test_the_default_utilization_with_flat_memory_is_unknown_never_busy_forever() -> None:
    # 100 % in every report, its memory never moving: what the agent sends for a GPU whose
    # utilization it cannot read (agent.resource_monitoring.default_gpu_utilization).
    samples = [
        Sample(s.t, s.cpu, s.mem, {"0": gpu(100.0, temp=40.0 + (i % 5), mem=437.0)})
        for i, s in enumerate(series(75, 0.2))
    ]
    verdict = judge(samples, GPU1)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == (
        "GPU 0 on gpu-node-1 reads 100 % in every report while its temperature or memory does "
        "not move: the value clearml-agent sends when it cannot read a GPU"
    )
    # A busy CPU is still busy: that reading is real.
    busy_cpu = [Sample(s.t, 50.0, s.mem, s.gpus) for s in samples]
    assert judge(busy_cpu, GPU1).state == IdleState.BUSY


def test_a_gpu_at_100_whose_temperature_and_memory_move_is_busy() -> None:
    samples = [
        Sample(s.t, s.cpu, s.mem, {"0": gpu(100.0, temp=70.0 + (i % 7), mem=60000.0 + 100 * i)})
        for i, s in enumerate(series(75, 0.2))
    ]
    assert judge(samples, GPU1).state == IdleState.BUSY


def test_a_mig_slice_is_unknown_with_its_reason() -> None:
    mig = Machine(host="mig-node-1", cores=32, gpus=1, mig=True)
    samples = [
        Sample(s.t, s.cpu, s.mem, {"0": gpu(100.0, temp=50.0 + (i % 9), mem=437.0 + i)})
        for i, s in enumerate(series(75, 0.2))
    ]
    verdict = judge(samples, mig)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == (
        "GPU 0 on mig-node-1 is a MIG slice: clearml-agent cannot read the utilization and "
        "sends 100 % instead"
    )
    busy_cpu = [Sample(s.t, 20.0, s.mem, s.gpus) for s in samples]
    assert judge(busy_cpu, mig).state == IdleState.BUSY


def test_no_gpu_readings_at_all_is_unknown() -> None:
    verdict = judge(series(75, 0.2), GPU1)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "clearml-agent sends no GPU readings for gpu-node-1"


def test_gpus_that_are_not_read_in_every_bucket_are_not_quiet() -> None:
    two = Machine(host="gpu-node-2", cores=32, gpus=2)
    samples = series(75, 0.2, {"0": gpu(0.0), "1": gpu(0.0)})
    samples[-1] = Sample(samples[-1].t, 0.2, 4096.0, {"0": gpu(0.0), "1": gpu(0.0, temp=0.0)})
    verdict = judge(samples, two)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "no reading of GPU 1 in the latest metrics"


# --- shared machines ---------------------------------------------------------------------------

SHARED = Machine(host="gpu-a100-3", cores=32, gpus=1, sharers=1)
POD = Machine(host="clearml-id-6074a10f", cores=96, gpus=1, pod=True)


def test_busy_cores_on_a_shared_host_are_unknown_and_say_so() -> None:
    verdict = judge(series(75, 20.0, {"0": gpu(0.0)}), SHARED)  # 6.4 cores, its GPU quiet
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == (
        "6.4 cores busy on gpu-a100-3, which 2 workers share: it may be another's work"
    )
    # Its own GPU at work: busy. All quiet: idle, and the reason says whose quiet it is.
    assert judge(series(75, 20.0, {"0": gpu(70.0)}), SHARED).state == IdleState.BUSY
    quiet = judge(series(75, 0.5, {"0": gpu(0.0)}), SHARED)
    assert quiet.state == IdleState.IDLE
    assert quiet.reason.endswith("on gpu-a100-3 (the whole host, which 2 workers share)")


def test_a_pods_cpu_figure_is_its_nodes() -> None:
    verdict = judge(series(75, 19.0, {"0": gpu(0.0)}), POD)  # 18.2 cores of the node
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == (
        "18.2 cores busy on the node of clearml-id-6074a10f, which other pods share: it may be "
        "their work"
    )
    assert judge(series(75, 19.0, {"0": gpu(70.0)}), POD).state == IdleState.BUSY
    quiet = judge(series(75, 0.2, {"0": gpu(0.0)}), POD)
    assert quiet.state == IdleState.IDLE and quiet.reason.endswith("(its whole node)")


# --- gaps, starts, history ---------------------------------------------------------------------


def test_not_long_enough_after_activity_is_busy() -> None:
    samples = series(90, 50.0, end_min=31) + series(30, 0.2)  # busy until 31 min ago
    verdict = judge(samples)
    assert verdict.state == IdleState.BUSY
    assert verdict.reason == "quiet for 30m only; before that 32.0 cores busy on cpu-host-1"


def test_no_data_is_unknown_never_idle() -> None:
    verdict = judge([])
    assert verdict.state == IdleState.UNKNOWN and "machine metrics" in verdict.reason
    assert idle_note(verdict) == "" and idle_mark(verdict, NOW) == ""
    assert idle_for(verdict, NOW) is None


def test_short_history_is_unknown() -> None:
    verdict = judge(series(10, 0.2))
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "only 10m of metrics, the window is 1h 0m"


def test_stale_metrics_are_unknown() -> None:
    old = [Sample(s.t - 3600, s.cpu, s.mem) for s in series(75, 0.2)]
    verdict = judge(old)
    assert verdict.state == IdleState.UNKNOWN and verdict.reason == "no machine metrics for 1h 0m"


def test_a_gap_cuts_the_quiet_run() -> None:
    samples = series(120, 0.2, end_min=70) + series(30, 0.2)  # nothing from 70 to 30 min ago
    verdict = judge(samples)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.idle_for_s == 30 * 60


def test_small_jitter_is_not_a_gap() -> None:
    samples = [s for i, s in enumerate(series(75, 0.2)) if i % 3]  # some buckets empty
    assert judge(samples).state == IdleState.IDLE


def test_clock_skew_future_samples_are_clamped() -> None:
    samples = [*series(75, 0.2), Sample(NOW + 600, 0.2, 4096.0)]
    verdict = judge(samples)
    assert verdict.state == IdleState.IDLE and verdict.idle_for_s == 75 * 60
    busy_future = [*series(75, 0.2), Sample(NOW + 600, 90.0, 4096.0)]
    assert judge(busy_future).state == IdleState.BUSY


def test_window_comes_from_the_policy() -> None:
    short = IdlePolicy(window_minutes=10)
    assert evaluate(series(12, 0.2), NOW, CPU64, short, started=LONG_AGO).state == IdleState.IDLE


def test_idle_for_grows_with_the_clock_and_marks_the_row() -> None:
    verdict = judge(series(75, 0.2))
    assert idle_for(verdict, NOW + 600) == 85 * 60
    assert idle_mark(verdict, NOW + 600) == "idle 1h 25m"
    assert sentence(verdict.reason) == "0.1 cores busy for 1h 15m on cpu-host-1."


# --- against the dense series the real server returns ------------------------------------------

DENSE_NOW = 1_800_000_017.0  # not on a bucket boundary
KEYS = ("cpu_usage", "memory_used", "gpu_usage", "gpu_temperature", "gpu_memory_used")
ITEMS = [StatItem(k, "avg") for k in KEYS]
Report = tuple[float, dict[str, Any]]


def agent_reports(
    from_min: float, to_min: float, cpu: float, gpus: list[float] | None = None
) -> list[Report]:
    """What clearml-agent sends every 30 s from `from_min` to `to_min` minutes before now."""
    reports = []
    t = DENSE_NOW - from_min * 60
    while t <= DENSE_NOW - to_min * 60:
        stats: dict[str, Any] = {"cpu_usage": [cpu], "memory_used": 9000.0, "memory_free": 6e4}
        if gpus is not None:
            stats["gpu_usage"] = list(gpus)
            stats["gpu_temperature"] = [34.0 + g / 2 for g in gpus]
            stats["gpu_memory_used"] = [437.0 for _ in gpus]
        reports.append((t, stats))
        t += 30
    return reports


def dense(reports: list[Report], shape: str = "2.3", split: bool = True) -> list[Sample]:
    """The samples the tray parses from the server's answer to the idle monitor's request."""
    return parse_worker_stats({"workers": answer(reports, shape, split)}).get("w", [])


def answer(reports: list[Report], shape: str = "2.3", split: bool = True) -> list[Any]:
    """The server's answer (its `workers` list) to the idle monitor's request."""
    docs = [d for t, stats in reports for d in stat_documents("w", int(t * 1000), stats)]
    return get_stats(
        docs,
        worker_ids=["w"],
        from_date=DENSE_NOW - 70 * 60,
        to_date=DENSE_NOW,
        interval=60,
        items=ITEMS,
        shape="2.0" if shape == "2.0" else "2.3",
        split_by_variant=split,
        split_by_resource=split,
    )


def on(samples: list[Sample], started_min: float, machine: Machine = CPU64) -> Any:
    return evaluate(samples, DENSE_NOW, machine, POLICY, started=DENSE_NOW - started_min * 60)


@pytest.mark.parametrize("shape", ["2.0", "2.3"])
def test_dense_quiet_window_is_idle_with_its_evidence(shape: str) -> None:
    samples = dense(agent_reports(120, 0, cpu=0.2, gpus=[0.0, 0.0]), shape)
    assert len(samples) == 70  # 71 buckets touch the 70 minutes; the incomplete last is cut
    assert all(s.gpus["0"].usage == 0.0 and s.gpus["0"].read for s in samples)
    two = Machine(host="gpu-node-2", cores=64, gpus=2)
    verdict = on(samples, started_min=125, machine=two)
    assert verdict.state == IdleState.IDLE  # 0 % that was reported (with a temperature)
    assert verdict.idle_for_s >= 60 * 60 and verdict.reports == 70


@pytest.mark.parametrize("shape", ["2.0", "2.3"])
def test_dense_one_busy_gpu_of_eight_is_busy(shape: str) -> None:
    samples = dense(agent_reports(120, 0, cpu=0.2, gpus=[0, 0, 0, 30.0, 0, 0, 0, 0]), shape)
    assert sorted(samples[-1].gpus) == [str(i) for i in range(8)]  # one series per GPU
    verdict = on(samples, started_min=125, machine=DGX)
    assert (verdict.state, verdict.reason) == (IdleState.BUSY, "GPU 3 at 30 % on dgx-1")
    # Without the split only the mean comes back (3.75 %): never taken for quiet.
    mean_only = on(
        dense(agent_reports(120, 0, 0.2, [0, 0, 0, 30.0, 0, 0, 0, 0]), shape, False), 125, DGX
    )
    assert mean_only.state == IdleState.UNKNOWN


@pytest.mark.parametrize("shape", ["2.0", "2.3"])
def test_fresh_agent_is_never_idle(shape: str) -> None:
    # The agent's first report was 12 minutes ago: 58 of the 70 buckets are zero-filled.
    reports = agent_reports(12, 0, cpu=0.2)
    ((worker,),) = [answer(reports, shape)]
    cpu = next(m for m in worker["metrics"] if m["metric"] == "cpu_usage")["stats"][0]["values"]
    assert len(cpu) == 70 and cpu.count(0.0) == 58  # the server sends them all, zero-filled
    samples = dense(reports, shape)
    # ... and the tray keeps the reports (and the first bucket, how far back the answer goes)
    assert len(samples) == 13 and samples[0].mem == 0.0 and all(s.mem for s in samples[1:])
    verdict = on(samples, started_min=11)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "running for 11m only, the window is 1h 0m"
    # Even with a start time that is (wrongly) long ago, zeros without a report are not idle.
    verdict = on(samples, started_min=600)
    assert verdict.state == IdleState.UNKNOWN and verdict.reason.startswith("only 1")


def test_restarted_agent_is_not_idle_across_its_silence() -> None:
    # Quiet since two hours, but the agent was down from 40 to 28 minutes ago.
    reports = agent_reports(120, 40, cpu=0.2) + agent_reports(28, 0, cpu=0.2)
    verdict = on(dense(reports), started_min=180)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "only 28m of metrics, the window is 1h 0m"
    back = agent_reports(120, 40, 0.2) + agent_reports(65, 0, 0.2)
    assert on(dense(back), 180).state == IdleState.IDLE


def test_worker_that_went_silent_is_unknown() -> None:
    reports = agent_reports(180, 20, cpu=0.2)
    ((worker,),) = [answer(reports)]
    mem = next(m for m in worker["metrics"] if m["metric"] == "memory_used")["stats"][0]["values"]
    assert mem[-19:] == [0.0] * 19  # the last 20 minutes zero-filled, not missing
    samples = dense(reports)
    verdict = on(samples, started_min=200)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason.startswith("no machine metrics for 2")
    # Silent for the whole range: the server leaves the worker out of its answer.
    assert dense(agent_reports(300, 100, cpu=0.2)) == []
    assert on([], started_min=400).reason == "no recent machine metrics"
    assert on([], started_min=2).reason == "no machine metrics yet"


def test_session_started_within_the_window() -> None:
    samples = dense(agent_reports(180, 0, cpu=0.2))
    verdict = on(samples, started_min=30)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "running for 30m only, the window is 1h 0m"
    later = on(samples, started_min=62)
    assert later.state == IdleState.IDLE
    assert later.idle_since is not None and later.idle_since >= DENSE_NOW - 62 * 60


def test_unknown_start_is_never_idle() -> None:
    samples = dense(agent_reports(180, 0, cpu=0.2))
    verdict = evaluate(samples, DENSE_NOW, CPU64, POLICY, started=None)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == "the session's start time is unknown"


def test_busy_bucket_after_zero_filled_ones_is_busy() -> None:
    assert on(dense(agent_reports(5, 0, cpu=80.0)), started_min=6).state == IdleState.BUSY


def test_gpu_readings_that_stopped_are_unknown_and_say_since_when() -> None:
    # clearml-agent stops reading the GPUs after three failures but keeps reporting CPU and
    # memory: the GPU buckets then read 0 %, with no temperature beside them.
    reports = agent_reports(120, 0, cpu=0.2, gpus=[90.0])
    for _t, stats in reports[-100:]:
        del stats["gpu_usage"], stats["gpu_temperature"], stats["gpu_memory_used"]
    samples = dense(reports)
    assert samples[-1].gpus["0" if "0" in samples[-1].gpus else ALL_GPUS].usage == 0.0
    verdict = on(samples, started_min=130, machine=GPU1)
    assert verdict.state == IdleState.UNKNOWN
    assert verdict.reason == (
        "clearml-agent stopped sending GPU readings for gpu-node-1 50m ago (it gives up after "
        "three failed reads)"
    )
    assert on(samples, started_min=130).state == IdleState.IDLE  # no GPUs: the CPU alone


# --- "your job finished" ------------------------------------------------------------------------


def test_gpus_quiet_after_work_are_found_once_the_quiet_lasts() -> None:
    busy = series(40, 0.2, {"0": gpu(85.0, temp=70.0)}, end_min=8)
    quiet = series(7, 0.2, {"0": gpu(0.0)})
    went = gpus_went_quiet(busy + quiet, NOW, GPU1, POLICY, started=LONG_AGO)
    assert went == NOW - 7 * 60
    # Quiet for three minutes only, or busy for five minutes only: not yet / not a job.
    early = series(40, 0.2, {"0": gpu(85.0)}, end_min=4) + series(3, 0.2, {"0": gpu(0.0)})
    assert gpus_went_quiet(early, NOW, GPU1, POLICY, started=LONG_AGO) is None
    short = series(12, 0.2, {"0": gpu(85.0)}, end_min=8) + quiet
    assert gpus_went_quiet(short, NOW, GPU1, POLICY, started=LONG_AGO) is None
    # Still busy, or never busy, or no GPUs: nothing to tell.
    assert gpus_went_quiet(busy, NOW, GPU1, POLICY, started=LONG_AGO) is None
    assert gpus_went_quiet(series(40, 0.2, {"0": gpu(0.0)}), NOW, GPU1, POLICY, started=0) is None
    assert gpus_went_quiet(busy + quiet, NOW, CPU64, POLICY, started=LONG_AGO) is None

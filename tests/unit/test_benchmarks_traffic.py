"""Smoke run of `benchmarks.traffic` (quick sizes): what it counts, never how long it took."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not hasattr(os, "wait4"), reason="benchmarks.common.run_measured needs os.wait4 (POSIX)"
)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """One quick run (1 and 10 sessions), shared by the tests below: figure name -> value."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO))  # `benchmarks` lives next to tray_app, not installed
        traffic: ModuleType = importlib.import_module("benchmarks.traffic")
        common: ModuleType = importlib.import_module("benchmarks.common")
        workdir = tmp_path_factory.mktemp("bench")
        ctx = common.Context(quick=True, say=lambda _text: None, workdir=workdir)
        return {f.name: f.value for f in traffic.run(ctx)}


def value(figures: dict[str, float], start: str) -> float:
    (name,) = [n for n in figures if n.startswith(start)]
    return figures[name]


def test_our_requests_per_refresh_are_the_same_at_1_and_10_sessions_and_at_most_3(figures):
    for scope in ("ours (own)", "ours (all users)"):
        one = value(figures, f"requests/refresh, {scope}, 1 sessions")
        ten = value(figures, f"requests/refresh, {scope}, 10 sessions")
        assert one == ten <= 3


def test_the_target_figures_report_the_worst_count_and_no_spread(figures):
    assert value(figures, "requests per refresh, ours, 1..10 sessions") <= 3
    assert value(figures, "requests per refresh, ours, spread") == 0


def test_our_bytes_per_refresh_grow_with_sessions(figures):
    for scope in ("ours (own)", "ours (all users)"):
        assert value(figures, f"KB/refresh, {scope}, 10 sessions") > value(
            figures, f"KB/refresh, {scope}, 1 sessions"
        )


def test_the_extension_moves_more_bytes_per_refresh_than_we_do(figures):
    for size in (1, 10):
        ours = value(figures, f"KB/refresh, ours (all users), {size} sessions")
        assert value(figures, f"KB/refresh, extension, {size} sessions") > ours


def test_clearml_session_list_was_measured_with_requests(figures):
    for label in ("clearml-session list", "clearml-session list --all_users"):
        assert value(figures, f"requests/refresh, {label}, 10 sessions") >= 2

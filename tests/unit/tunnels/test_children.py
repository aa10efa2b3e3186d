"""Children of a tray that died are found and ended at the next start; others are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tray_app.core.tunnels.children import ChildPidFile, guarded_argv, process_token, tree_rss_mb


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_the_next_start_ends_what_an_unclean_exit_left(tmp_path: Path) -> None:
    child = _sleeper()
    try:
        ChildPidFile(tmp_path / "children.json").add(child.pid)  # the run that died
        assert ChildPidFile(tmp_path / "children.json").reap_stale() == 1
        assert child.wait(10) != 0  # ended by a signal
        assert not (tmp_path / "children.json").exists()
    finally:
        child.kill()
        child.wait()


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    child = _sleeper()
    try:
        (tmp_path / "children.json").write_text(f'{{"{child.pid}": "1"}}')  # another start time
        assert ChildPidFile(tmp_path / "children.json").reap_stale() == 0
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_a_broken_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "children.json").write_text("{not json")
    assert ChildPidFile(tmp_path / "children.json").reap_stale() == 0


def test_a_finished_child_is_forgotten(tmp_path: Path) -> None:
    registry = ChildPidFile(tmp_path / "children.json")
    registry.add(os.getpid())
    assert process_token(os.getpid()) is not None
    registry.discard(os.getpid())
    assert not (tmp_path / "children.json").exists()


def test_children_get_a_parent_death_signal_on_linux() -> None:
    argv = guarded_argv(["clearml-session", "--attach", "x"], setpriv="/usr/bin/setpriv")
    if sys.platform.startswith("linux"):
        assert argv == ["/usr/bin/setpriv", "--pdeathsig", "TERM", "--", "clearml-session",
                        "--attach", "x"]  # fmt: skip
    else:
        assert argv == ["clearml-session", "--attach", "x"]


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux /proc")
def test_a_tree_s_memory_counts_its_children(tmp_path: Path) -> None:
    """What the warm-tunnel memory cap measures: a clearml-session and its ssh together."""
    alone = tree_rss_mb(os.getpid())
    assert alone is not None and alone > 1
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with_child = None
        for _ in range(100):  # until the child's interpreter is resident
            with_child = tree_rss_mb(os.getpid())
            if with_child is not None and with_child > alone + 3:
                break
            time.sleep(0.05)
        assert with_child is not None and with_child > alone + 3
    finally:
        child.kill()
        child.wait()
    assert tree_rss_mb(child.pid) is None  # gone

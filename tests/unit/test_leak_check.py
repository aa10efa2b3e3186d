"""The suite's leak check (tests/support/leaks.py) run on a small inner test session."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.leaks import kind_of, watched_processes

TESTS = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="the check reads /proc")

INNER = """
import subprocess
import time
from pathlib import Path

FAKE_SSH = {fake!r}
PIDFILE = {pidfile!r}

def test_detached_ssh_left_running():
    # `sh -c '... &'` exits at once: the "ssh" is re-parented, only its environment says whose.
    subprocess.run(["sh", "-c", f"{{FAKE_SSH}} 600 & echo $! > {{PIDFILE}}"], check=True)
    # The test ends once the "ssh" runs, not while its fork is still the shell (a busy machine).
    pid = Path(PIDFILE).read_text().strip()
    deadline = time.monotonic() + 30
    while FAKE_SSH not in Path(f"/proc/{{pid}}/cmdline").read_bytes().decode(errors="replace"):
        assert time.monotonic() < deadline, "the fake ssh never started"
        time.sleep(0.01)

def test_child_that_is_waited_for():
    subprocess.run([FAKE_SSH, "0"], check=True)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def test_a_process_a_test_leaves_fails_the_run_is_named_and_killed(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "ssh"  # `sleep`, named like the real client the check watches
    fake.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    pidfile = tmp_path / "leaked.pid"
    pytester.makepyfile(test_inner=INNER.format(fake=str(fake), pidfile=str(pidfile)))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("CTRAY_LEAK_GRACE_S", "0.5")
    result = pytester.runpytest_subprocess("-p", "support.leaks", "-p", "no:cacheprovider")
    leaked = int(pidfile.read_text())
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=2)  # both tests pass; the run fails for what one left
    result.stdout.fnmatch_lines(
        [
            "*processes left behind*",
            f"*pid {leaked} ssh: *{fake}*",
            "*first seen after test_inner.py::test_detached_ssh_left_running*",
        ]
    )
    assert not _alive(leaked)


def test_a_clean_run_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        test_inner=textwrap.dedent(
            """
            import subprocess
            def test_waits():
                subprocess.run(["sh", "-c", "true"], check=True)
            """
        )
    )
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    result = pytester.runpytest_subprocess("-p", "support.leaks", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "left behind" not in result.stdout.str()


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["ssh", "-p", "22", "root@127.0.0.1"], "ssh"),
        (["/usr/bin/ssh", "-O", "exit", "host"], "ssh"),
        (["/venv/bin/python3", "/venv/bin/clearml-session", "--attach", "x"], "clearml-session"),
        (["/venv/bin/python3", "/venv/bin/clearml-tray", "--demo"], "demo"),
        (["/venv/bin/python", "-m", "tray_app", "demo-server", "--port", "0"], "demo"),
        (["/venv/bin/python", "-m", "tray_app", "--config-file", "c"], "clearml-tray"),
        (["/venv/bin/clearml-tray"], "clearml-tray"),
        (["/usr/bin/python3", "-m", "pytest", "-q"], None),
        (["sshd", "-D"], None),
        (["trayer", "--edge", "top"], None),
    ],
)
def test_which_programs_are_watched(argv: list[str], kind: str | None) -> None:
    assert kind_of(argv) == kind


def test_this_run_has_no_watched_process_besides_its_tests() -> None:
    """The marker is set for this run and nothing watched is running at this point."""
    marker = os.environ["CTRAY_TEST_RUN"].split("/")[-1]
    assert len(marker) == 32
    assert watched_processes(os.getpid(), marker) == {}


def test_a_run_stopped_with_sigterm_still_kills_what_its_tests_left(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """As when CI's timeout stops the run in the middle of a test."""
    fake = tmp_path / "ssh"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    pidfile, started = tmp_path / "leaked.pid", tmp_path / "started"
    pytester.makepyfile(
        test_inner=f"""
import subprocess, time
from pathlib import Path

def test_hangs_with_a_child():
    subprocess.run(["sh", "-c", "{fake} 600 & echo $! > {pidfile}"], check=True)
    Path({str(started)!r}).touch()
    time.sleep(600)
"""
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS), "CTRAY_LEAK_GRACE_S": "0.5"}
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "support.leaks", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert inner.poll() is None and time.monotonic() < deadline, "inner run did not start"
            time.sleep(0.05)
        inner.send_signal(signal.SIGTERM)
        output, _ = inner.communicate(timeout=60)
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait()
    leaked = int(pidfile.read_text())
    assert inner.returncode == pytest.ExitCode.INTERRUPTED, output
    assert f"pid {leaked} ssh:" in output
    assert not _alive(leaked)


@pytest.mark.skipif(
    not (shutil.which("gnome-keyring-daemon") and shutil.which("dbus-daemon")),
    reason="needs gnome-keyring and dbus",
)
def test_a_keyring_daemon_that_dbus_started_for_a_test_fails_the_run(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Code that reaches the Secret Service outside `real_keyring` makes D-Bus start the
    desktop's keyring daemon, with the real HOME, for good: the run stops it and fails."""
    pytester.makepyfile(
        test_inner="""
import keyring.errors
from keyring.backends.SecretService import Keyring

def test_uses_the_session_keyring():
    try:
        Keyring().get_password("clearml-tray", "x")
    except keyring.errors.KeyringError:
        pass  # no keyring to create it in without a prompt: D-Bus started the daemon anyway
"""
    )
    home = tmp_path / "bus-home"  # the activated daemon's, instead of the real one
    home.mkdir()
    bus_env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    bus_env.update(HOME=str(home), XDG_RUNTIME_DIR=str(tmp_path))  # no prompt window either
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=bus_env,
    )
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        env = {**bus_env, "DBUS_SESSION_BUS_ADDRESS": address, "PYTHONPATH": str(TESTS)}
        inner = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "support.secret_service",
             "-p", "no:cacheprovider"],
            cwd=pytester.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        from support.secret_service import SECRETS_NAME, name_owner_pid

        owner_after = name_owner_pid(SECRETS_NAME, address)
    finally:
        bus.terminate()
        bus.wait(10)
    assert inner.returncode == pytest.ExitCode.TESTS_FAILED, inner.stdout
    assert "Secret Service started outside real_keyring" in inner.stdout
    assert "gnome-keyring-daemon" in inner.stdout
    assert owner_after is None or not _alive(owner_after)

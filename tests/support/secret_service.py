"""pytest plugin: a real GNOME Keyring (Secret Service over D-Bus) for desktop and e2e tests.

`real_keyring` starts `gnome-keyring-daemon --components=secrets` on the run's session bus
(CI: `dbus-run-session`) with its keyrings in the test's HOME, unlocks its login keyring with a
test password (`--unlock` reads it from stdin, as a desktop login does through PAM), and makes
the `keyring` library use its SecretService backend: in this process, and in every child
through PYTHON_KEYRING_BACKEND (the tray, and the SSH_ASKPASS helper that ssh starts).

Unit tests keep a plaintext file (support/file_keyring.py, tests/conftest.py).
`no_secret_service_bus()` gives a bus where nothing provides or can start the Secret Service, as
on a desktop without a keyring daemon.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import keyring
import keyring.backend
import keyring.core
import pytest
from keyring.backends.SecretService import Keyring as SecretServiceKeyring

from support.desktop import stop_process, wait_for

SECRETS_NAME = "org.freedesktop.secrets"
BACKEND = "keyring.backends.SecretService.Keyring"
TEST_PASSWORD = "keyring pw for tests"

# A session bus without <servicedir>: nothing can be started on demand (D-Bus activation).
_NO_ACTIVATION_CONFIG = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir={tmpdir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def name_owner_pid(name: str, address: str | None = None) -> int | None:
    """PID of whoever owns `name` on the session bus (or the bus at `address`); no activation."""
    bus = ["--session"] if address is None else [f"--bus={address}"]
    result = subprocess.run(
        [
            "dbus-send", *bus, "--print-reply", "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixProcessID",
            f"string:{name}",
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )  # fmt: skip
    match = re.search(r"uint32 (\d+)", result.stdout)
    return int(match.group(1)) if match else None


def require_secret_service() -> None:
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        pytest.skip("needs a D-Bus session bus: run under `dbus-run-session` (as .ci/run does)")
    for tool in ("gnome-keyring-daemon", "dbus-send"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs `{tool}` (apt-get install gnome-keyring dbus)")


@dataclass
class SecretService:
    """A running gnome-keyring-daemon; `home` holds its keyrings (.local/share/keyrings)."""

    proc: subprocess.Popen[bytes]
    home: Path
    password: str = field(repr=False)

    def stored(self, service: str = "clearml-tray") -> dict[str, str]:
        """username -> secret of the items `keyring` stored for `service`, read over D-Bus."""
        import secretstorage
        from jeepney.wrappers import DBusErrorResponse
        from secretstorage.exceptions import ItemNotFoundException

        connection = secretstorage.dbus_init()
        try:
            collection = secretstorage.get_default_collection(connection)
            found: dict[str, str] = {}
            for item in collection.search_items({"service": service}):
                try:
                    found[item.get_attributes()["username"]] = item.get_secret().decode()
                except (ItemNotFoundException, DBusErrorResponse):
                    continue  # deleted by the tray between the search and this read
            return found
        finally:
            connection.close()


@contextmanager
def running_secret_service(
    home: Path, *, unlock: bool = True, password: str = TEST_PASSWORD
) -> Iterator[SecretService]:
    """gnome-keyring-daemon on the session bus; `unlock=False` leaves the login keyring locked
    (or, when there is none yet, absent: nothing can create it without a desktop prompt)."""
    require_secret_service()
    owner = name_owner_pid(SECRETS_NAME)
    if owner is not None:
        pytest.fail(
            f"{SECRETS_NAME} is already served on this D-Bus bus (pid {owner}), maybe by your "
            "desktop's keyring: run the tests on their own bus, under `dbus-run-session` "
            "(as .ci/run does)"
        )
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
    )
    argv = ["gnome-keyring-daemon", "--foreground", "--components=secrets"]
    proc = subprocess.Popen(
        [*argv, "--unlock"] if unlock else argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None
    if unlock:
        proc.stdin.write(password.encode())
    proc.stdin.close()
    try:
        wait_for(lambda: name_owner_pid(SECRETS_NAME) == proc.pid, 10, "gnome-keyring-daemon")
    except AssertionError:
        stop_process(proc)
        raise
    try:
        yield SecretService(proc, home, password)
    finally:
        stop_process(proc)
        wait_for(lambda: name_owner_pid(SECRETS_NAME) is None, 10, "the keyring to leave the bus")


@contextmanager
def use_backend(backend: keyring.backend.KeyringBackend) -> Iterator[None]:
    """`keyring`'s backend in this process (it keeps the first one it loaded). Afterwards it is
    as before, even "not loaded yet": later tests then load theirs from their environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keyring.core, "_keyring_backend", backend)
        yield


@pytest.fixture
def real_keyring(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretService]:
    """The test's secrets go to a real, unlocked GNOME Keyring (see the module docstring)."""
    with running_secret_service(isolated_home) as service:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
        with use_backend(SecretServiceKeyring()):
            yield service


# Whoever served the Secret Service on the run's bus when the run started (None: nobody).
_owner_at_start: list[int | None] = []


def _bus_checkable() -> bool:
    return (
        bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS")) and shutil.which("dbus-send") is not None
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if _bus_checkable():
        _owner_at_start.append(name_owner_pid(SECRETS_NAME))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A keyring daemon that D-Bus started for a test (some code used the Secret Service
    outside `real_keyring`) runs with the real HOME and outlives the run: stop it, fail."""
    if not _owner_at_start or _owner_at_start[0] is not None or not _bus_checkable():
        return
    owner = name_owner_pid(SECRETS_NAME)
    if owner is None:
        return
    cmdline = Path(f"/proc/{owner}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    with contextlib.suppress(OSError):
        os.kill(owner, signal.SIGTERM)
    _stray.append(f"pid {owner}: {cmdline}")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_stray: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _stray:
        return
    terminalreporter.section("Secret Service started outside real_keyring", sep="=", red=True)
    terminalreporter.line(
        "D-Bus started a keyring daemon for a test (with the real HOME); it was stopped and the "
        "run fails. Use the `real_keyring` fixture, or the plaintext backend of unit tests:",
        red=True,
    )
    for line in _stray:
        terminalreporter.line(f"  {line}")


@contextmanager
def no_secret_service_bus(workdir: Path) -> Iterator[str]:
    """A private session bus on which no Secret Service runs or can be started; its address."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "bus.conf"
    config.write_text(_NO_ACTIVATION_CONFIG.format(tmpdir=workdir))
    proc = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        yield address
    finally:
        stop_process(proc)

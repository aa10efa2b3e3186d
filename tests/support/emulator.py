"""pytest plugin: fixtures that run the ClearML API emulator.

- `emulator`: a running `DemoServer` on a free loopback port, seeded with 5 sessions.
- `emulator_factory(**kwargs)`: more of them, with other seeds / sizes / settings.
- `asgi_emulator`: the same app in-process through `httpx.ASGITransport` (no sockets; fast).

The simulated agent does not tick on its own unless `agent_tick=` is given: tests advance it
with `emu.agent.step()`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tray_app.demo import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    DemoServer,
    EmulatorState,
    SimulatedAgent,
    clearml_conf_text,
    create_app,
    seeded_state,
)


@dataclass
class EmulatorHandle:
    """A running emulator as tests see it."""

    server: DemoServer
    access_key: str = DEMO_ACCESS_KEY
    secret_key: str = field(default=DEMO_SECRET_KEY, repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    @property
    def agent(self) -> SimulatedAgent:
        return self.server.agent

    @property
    def conf_text(self) -> str:
        return clearml_conf_text(self.url, self.access_key, self.secret_key)

    def write_config(self, path: str | Path) -> Path:
        """Write a clearml.conf for this emulator (and the demo user) to `path`."""
        return self.server.write_config(path, self.access_key, self.secret_key)

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        """Start again (same port, same state) after `stop()`."""
        self.server.start()

    @property
    def basic_auth(self) -> tuple[str, str]:
        return (self.access_key, self.secret_key)


def _make_state(
    sessions: int = 5,
    seed: int = 0,
    state: EmulatorState | None = None,
    **state_kwargs: Any,
) -> EmulatorState:
    if state is not None:
        return state
    return seeded_state(sessions=sessions, seed=seed, **state_kwargs)


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorHandle]]:
    """`emulator_factory(sessions=5, seed=0, agent_tick=None, port=0, state=None, **seeded_kwargs)`.

    With `agent_tick`, ready sessions get SSH endpoints unless `ssh_endpoints=False` (a remote
    whose SSH server never answers: the CLI's tunnel fails and retries).

    Extra keyword arguments go to `seeded_state` (e.g. `token_lifetime=2`,
    `server_version="2.0.0"`). Every emulator started here is stopped after the test.
    """
    started: list[DemoServer] = []

    def make(
        sessions: int = 5,
        seed: int = 0,
        *,
        agent_tick: float | None = None,
        port: int = 0,
        state: EmulatorState | None = None,
        ssh_endpoints: bool = True,
        **state_kwargs: Any,
    ) -> EmulatorHandle:
        emu_state = _make_state(sessions, seed, state, **state_kwargs)
        server = DemoServer(
            emu_state, port=port, agent_tick=agent_tick, ssh_endpoints=ssh_endpoints
        )
        started.append(server)
        server.start()
        return EmulatorHandle(server)

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    """A running emulator seeded with 5 sessions (agent driven by `emulator.agent.step()`)."""
    return emulator_factory(sessions=5)


@dataclass
class AsgiEmulator:
    """The emulator app in-process: use `client()` or `transport` with `base_url`."""

    state: EmulatorState
    agent: SimulatedAgent
    transport: httpx.ASGITransport
    url: str = "http://emulator.test"
    access_key: str = DEMO_ACCESS_KEY
    secret_key: str = field(default=DEMO_SECRET_KEY, repr=False)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An AsyncClient on the in-process app (no auth set; add `auth=` or headers)."""
        return httpx.AsyncClient(transport=self.transport, base_url=self.url, **kwargs)

    @property
    def basic_header(self) -> dict[str, str]:
        raw = f"{self.access_key}:{self.secret_key}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def make_asgi_emulator(
    sessions: int = 5, seed: int = 0, *, state: EmulatorState | None = None, **kw: Any
) -> AsgiEmulator:
    emu_state = _make_state(sessions, seed, state, **kw)
    return AsgiEmulator(
        state=emu_state,
        agent=SimulatedAgent(emu_state),
        transport=httpx.ASGITransport(app=create_app(emu_state)),
    )


@pytest.fixture
def asgi_emulator() -> AsgiEmulator:
    """An in-process emulator with 5 sessions (see `make_asgi_emulator` for other sizes)."""
    return make_asgi_emulator()


@pytest.fixture
def asgi_emulator_factory() -> Callable[..., AsgiEmulator]:
    """`asgi_emulator_factory(sessions=5, seed=0, state=None, **seeded_kwargs)`."""
    return make_asgi_emulator


# Installed as `sitecustomize` in every client subprocess (SDK, clearml-session): any attempt to
# resolve or connect to a non-loopback address is refused and recorded, one JSON list per
# process appended to $EMULATOR_NET_REPORT.
_LOOPBACK_GUARD = """
import atexit, ipaddress, json, os, socket

_attempts = []
_connect, _connect_ex, _getaddrinfo = (
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)


def _loopback(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host in (None, "", "localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(address):
    if isinstance(address, tuple) and not _loopback(address[0]):
        _attempts.append(str(address[0]))
        raise OSError("blocked by the test: only loopback addresses may be used")


def connect(self, address):
    _check(address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _loopback(host):
        _attempts.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "blocked by the test")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = getaddrinfo


@atexit.register
def _report():
    with open(os.environ["EMULATOR_NET_REPORT"], "a") as handle:
        handle.write(json.dumps(_attempts) + "\\n")
"""


@dataclass
class ClientEnv:
    """Environment for running the real ClearML clients against an emulator in a subprocess."""

    env: dict[str, str]
    home: Path
    config: Path
    net_report: Path

    def network_attempts(self) -> list[str]:
        """Non-loopback hosts any client process tried to reach (all processes so far)."""
        if not self.net_report.exists():
            return []
        hosts: list[str] = []
        for line in self.net_report.read_text().splitlines():
            hosts.extend(json.loads(line))
        return hosts

    def processes_reported(self) -> int:
        if not self.net_report.exists():
            return 0
        return len(self.net_report.read_text().splitlines())


@pytest.fixture
def clearml_client_env(tmp_path: Path) -> Callable[[EmulatorHandle], ClientEnv]:
    """`clearml_client_env(emu) -> ClientEnv`: isolated HOME with a clearml.conf for `emu`.

    The env has no inherited CLEARML_* variables, CLEARML_CONFIG_FILE set, and the loopback guard
    installed through PYTHONPATH (check `network_attempts()` afterwards).
    """

    def make(emu: EmulatorHandle) -> ClientEnv:
        home = Path(os.environ.get("HOME", str(tmp_path / "home")))
        home.mkdir(parents=True, exist_ok=True)
        config = emu.write_config(home / "clearml.conf")
        guard_dir = tmp_path / "loopback_guard"
        guard_dir.mkdir(exist_ok=True)
        (guard_dir / "sitecustomize.py").write_text(_LOOPBACK_GUARD)
        report = tmp_path / "net_report.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
        env.update(
            HOME=str(home),
            CLEARML_CONFIG_FILE=str(config),
            CLEARML_NO_DEFAULT_SERVER="1",
            PYTHONPATH=str(guard_dir),
            PYTHONUNBUFFERED="1",
            EMULATOR_NET_REPORT=str(report),
            # The SDK must not think it runs under an agent or offline.
            CLEARML_LOG_LEVEL="WARNING",
        )
        for name in ("CLEARML_OFFLINE_MODE", "CLEARML_TASK_ID"):
            env.pop(name, None)
        return ClientEnv(env=env, home=home, config=config, net_report=report)

    return make


def reachable_own_session(emu: EmulatorHandle, limit_s: float = 60.0) -> str:
    """The id of a running interactive session of the user's with an SSH address (a Connect
    reaches it), waiting up to `limit_s` for the agent to set one up."""
    import time

    deadline = time.monotonic() + limit_s
    while True:
        with emu.state.lock:
            for task in emu.state.tasks.values():
                props = (task.get("hyperparams") or {}).get("properties") or {}
                if (
                    task.get("status") == "in_progress"
                    and "interactive" in (task.get("system_tags") or [])
                    and task.get("user") == emu.state.current_user_id
                    and task.get("status_message") != "stopping"
                    and "external_address" in props
                ):
                    return str(task["id"])
        assert time.monotonic() < deadline, "no running session of ours has an SSH endpoint"
        time.sleep(0.1)

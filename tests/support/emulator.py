"""pytest plugin: fixtures that run the ClearML API emulator.

- `emulator`: a running `DemoServer` on a free loopback port, seeded with 5 sessions.
- `emulator_factory(**kwargs)`: more of them, with other seeds / sizes / settings.
- `asgi_emulator`: the same app in-process through `httpx.ASGITransport` (no sockets; fast).

The simulated agent does not tick on its own unless `agent_tick=` is given: tests advance it
with `emu.agent.step()`.
"""

from __future__ import annotations

import base64
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
    return EmulatorState.seeded(sessions=sessions, seed=seed, **state_kwargs)


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorHandle]]:
    """`emulator_factory(sessions=5, seed=0, agent_tick=None, port=0, state=None, **seeded_kwargs)`.

    Extra keyword arguments go to `EmulatorState.seeded` (e.g. `token_lifetime=2`,
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
        **state_kwargs: Any,
    ) -> EmulatorHandle:
        emu_state = _make_state(sessions, seed, state, **state_kwargs)
        server = DemoServer(emu_state, port=port, agent_tick=agent_tick)
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

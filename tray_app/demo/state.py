"""The emulator's in-memory server: its documents and records, its clock, its fault injector.

Storage only: the dicts of users, projects, queues, tasks, workers and logs, the lock that
guards them, the handled requests and their traffic, and time and ids. What changes the
documents lives in `bll/<service>.py` (the server's rules) and runs under `state.lock`, so
the HTTP handlers (in the server's event loop thread), the simulated agent (driven by the
server loop or synchronously by a test) and the seed data share one set of rules.
`seed.seeded_state(...)` makes a state with realistic data.

Tested in tests/unit/demo/test_emulator.py (traffic, the clock) and test_emulator_faults.py
(the fault injector).
"""

from __future__ import annotations

import random
import secrets
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from tray_app.demo.machines import WorkerMachine
from tray_app.demo.values import iso

Doc = dict[str, Any]
StatsShape = Literal["2.0", "2.3"]

COMPANY_ID = "d1bd92a3b039400cbafc60a7a5b1e52b"
COMPANY_NAME = "clearml"


class FaultKind(StrEnum):
    """What the fault injector can do to one request."""

    ERROR_500 = "500"
    BAD_GATEWAY = "502"
    # The request is carried out, then the gateway in front answers 504 (it gave up waiting):
    # a change that went through without the client hearing so.
    GATEWAY_TIMEOUT_AFTER = "504-after"
    TOKEN_EXPIRED = "401"
    DROP = "drop"
    MALFORMED = "malformed"


@dataclass(slots=True)
class Faults:
    """Fault-injection knobs, read on every request (except those in `exempt`).

    - `latency`: seconds added to every request.
    - `rates`: probability per request for each `FaultKind` (drawn from `rng`).
    - `queue`: the next requests' faults, in order (`fail_next`).
    - `only_endpoints`: if set, faults apply only to these endpoint names.
    """

    latency: float = 0.0
    rates: dict[FaultKind, float] = field(default_factory=dict)
    queue: deque[FaultKind] = field(default_factory=deque)
    only_endpoints: frozenset[str] | None = None
    exempt: frozenset[str] = frozenset()
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    injected: list[tuple[str, FaultKind]] = field(default_factory=list)

    def fail_next(self, kind: FaultKind | str, count: int = 1) -> None:
        for _ in range(count):
            self.queue.append(FaultKind(kind))

    def set_rate(self, kind: FaultKind | str, rate: float) -> None:
        self.rates[FaultKind(kind)] = rate

    def clear(self) -> None:
        self.latency = 0.0
        self.rates.clear()
        self.queue.clear()
        self.only_endpoints = None

    def pick(self, endpoint: str) -> FaultKind | None:
        """The fault for this request, if any (consumes one queued fault)."""
        if endpoint in self.exempt:
            return None
        if self.only_endpoints is not None and endpoint not in self.only_endpoints:
            return None
        kind: FaultKind | None = None
        if self.queue:
            kind = self.queue.popleft()
        else:
            for candidate, rate in self.rates.items():
                if rate > 0 and self.rng.random() < rate:
                    kind = candidate
                    break
        if kind is not None:
            self.injected.append((endpoint, kind))
        return kind


@dataclass(slots=True)
class Credential:
    access_key: str
    secret_key: str = field(repr=False)
    user_id: str
    label: str = ""
    created: str = ""


@dataclass(slots=True)
class Worker:
    id: str
    user_id: str
    ip: str
    register_time: datetime
    last_activity_time: datetime
    last_report_time: datetime | None = None
    register_timeout: int = 600
    task_id: str | None = None
    queue_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    system_tags: list[str] = field(default_factory=list)
    # (epoch ms, machine_stats) as reported; newest last.
    stats: deque[tuple[int, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=240))
    # Owned by the simulated agent (it reports for it, runs its task).
    simulated: bool = False
    hostname: str = ""
    # The address sessions on this machine advertise (properties/external_address).
    external_address: str = ""
    # The machine the simulated agent reports for (None: a worker of a real agent).
    machine: WorkerMachine | None = None
    # The session it runs does nothing (a seeded idle session; the agent's modes override it).
    idle_work: bool = False
    # workers.get_stats' documents of each report, made once: (ts, id(stats)) → (stats, docs).
    stat_docs: dict[tuple[int, int], tuple[dict[str, Any], list[Any]]] = field(
        default_factory=dict, repr=False, compare=False
    )


@dataclass(slots=True)
class RequestRecord:
    """One handled request, kept for tests (bodies with secrets are redacted).

    `request_bytes` and `response_bytes` are the lengths of the raw request body and of the
    response body as sent (uncompressed JSON; headers are not counted).
    """

    endpoint: str
    version: str
    method: str
    body: dict[str, Any]
    user_id: str | None
    status: int
    request_bytes: int = 0
    response_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Traffic:
    """Handled requests and body bytes, cumulative; subtract two readings for a window."""

    requests: int = 0
    request_bytes: int = 0
    response_bytes: int = 0

    @property
    def bytes(self) -> int:
        return self.request_bytes + self.response_bytes

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.requests + other.requests,
            self.request_bytes + other.request_bytes,
            self.response_bytes + other.response_bytes,
        )

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.requests - other.requests,
            self.request_bytes - other.request_bytes,
            self.response_bytes - other.response_bytes,
        )


class EmulatorState:
    """The whole emulated server. `seed.seeded_state(...)` makes one with realistic data."""

    def __init__(
        self,
        *,
        server_version: str = "2.3.0",
        api_version: str | None = None,
        token_lifetime: float = 2592000.0,
        jwt_secret: str | None = None,
        rng_seed: int = 0,
        now: datetime | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.server_version = server_version
        self.api_version = api_version or ("2.31" if server_version.startswith("2.0") else "2.34")
        self.server_build = "emulator"
        self.stats_shape: StatsShape = "2.0" if server_version.startswith("2.0") else "2.3"
        self.token_lifetime = float(token_lifetime)
        self.jwt_secret = jwt_secret or secrets.token_hex(32)
        self.company_id = COMPANY_ID
        self.company_name = COMPANY_NAME
        self.rng = random.Random(rng_seed)
        self.seed = rng_seed
        self._time_offset = timedelta(0)
        self._fixed_now = now
        self.users: dict[str, Doc] = {}
        self.credentials: dict[str, Credential] = {}
        self.projects: dict[str, Doc] = {}
        self.queues: dict[str, Doc] = {}
        self.tasks: dict[str, Doc] = {}
        self.workers: dict[str, Worker] = {}
        self.logs: dict[str, list[Doc]] = {}
        self.scrolls: dict[str, int] = {}
        self.faults = Faults()
        self.current_user_id = ""
        # The latest handled requests, oldest first; tests count and inspect them.
        self.requests: deque[RequestRecord] = deque(maxlen=20000)
        # Every handled request since the state was made (not bounded, not reset by
        # `clear_requests`), for benchmarks that read it before and after a window.
        self._traffic = Traffic()

    # --- time and ids --------------------------------------------------------------------------
    def now(self) -> datetime:
        base = self._fixed_now or datetime.now(UTC)
        return base + self._time_offset

    def now_iso(self) -> str:
        return iso(self.now())

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock (token expiry, worker liveness, stats windows)."""
        with self.lock:
            self._time_offset += timedelta(seconds=seconds)

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def seeded_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    # --- handled requests ----------------------------------------------------------------------
    def count_requests(self, endpoint: str | None = None) -> int:
        """Handled requests so far (all, or for one endpoint name)."""
        with self.lock:
            return sum(1 for r in self.requests if endpoint is None or r.endpoint == endpoint)

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def record_request(self, record: RequestRecord) -> None:
        """Keep one handled request and add it to the running `traffic()` totals."""
        with self.lock:
            self.requests.append(record)
            self._traffic += Traffic(1, record.request_bytes, record.response_bytes)

    def traffic(self) -> Traffic:
        """Requests and body bytes handled so far; `after - before` gives a window's share."""
        with self.lock:
            return self._traffic


__all__ = [
    "COMPANY_ID",
    "Credential",
    "EmulatorState",
    "FaultKind",
    "Faults",
    "RequestRecord",
    "Traffic",
    "Worker",
]

"""SessionService: the tray's view of the server, one snapshot at a time, plus session actions.

A snapshot is one round trip of concurrent requests: `tasks.get_all_ex` (only the fields we
show, with user/project/queue names joined) and `workers.get_all` (private IPs). The workers'
answer is reused for up to two minutes unless a running session names a worker it lacks, so
most refreshes are the tasks request alone. Past the
server's page cap the tasks come in pages: the service remembers how many pages the last
snapshot of the same scope (own or all users) needed and asks for that many at once, next to
`workers.get_all`; only if the last of them comes back full does it fetch more, one page at a
time (a result that grew). Rows are deduplicated by id and kept in page order. So the steady
state costs 1 + pages requests and one round trip at any size.

The cap is a server setting (`services._mongo.max_page_size`, 500 by default) that the server
applies silently, so a short page is only the end once the cap is known: the first snapshot
also asks for the second page (in the same round trip), and later a short first page that is
longer than any list seen complete so far is checked the same way. A second page with new
rows means the cap is the first page's length. A server that ignores `page` (a page with no
new row) or never stops sending full pages is cut off at `MAX_PAGES`, logged.

A malformed row (a `tags` that is a number, a `runtime` that is a list, …) is skipped and
logged; the other sessions are shown. Names the server did not join are
filled from caches (`users.get_all_ex`, `projects.get_all`, `queues.get_all`), fetched once and
again only when an unknown id shows up.

Never asks for `runtime` as a whole: it holds the creator's API key and secret and the SSH
password. Only the `runtime.*` keys in `RUNTIME_KEYS` are requested.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tray_app.core.redact import redact
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import web_link_base
from tray_app.core.server.errors import (
    ClearMLOutcomeUnknown,
    ClearMLRequestError,
    ClearMLUnavailable,
)
from tray_app.core.server.models import (
    LogLine,
    QueueInfo,
    Session,
    SessionState,
    Snapshot,
    UserInfo,
)
from tray_app.core.untrusted import display_text

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # the default max_page_size: what we ask for (the server caps it silently)
MAX_PAGES = 100  # 50,000 sessions at the default cap: past that the server is misbehaving
LIVE_STATUSES = ("queued", "in_progress")
INTERACTIVE_TAG = "interactive"
WORKER_LAST_SEEN_S = 600
WORKERS_MAX_AGE_S = 120.0
STOP_REASON = "stopped from clearml-tray"
# A change of a task that got no answer is looked at, then sent again, at most this often.
CHANGE_ATTEMPTS = 3
CHANGE_PAUSE_S = 1.0
ENDPOINT_NOT_FOUND = 404  # the open-source server's answer to an endpoint it does not have

TaskState = tuple[str, str] | None  # (status, status_message); None: the task is gone
# What each change of a task looks like once it went through, read from the task's state: the
# reply the server would have sent, or None when the state does not show it (then it is sent
# again). A change not listed here (tasks.create, tasks.edit: the state cannot tell) is never
# sent twice; its unknown outcome is reported.
_SETTLED: dict[str, Callable[[TaskState], dict[str, Any] | None]] = {
    "tasks.delete": lambda state: {"deleted": True} if state is None else None,
    "tasks.stop": lambda state: (
        {"updated": 1, "fields": {"status": state[0], "status_message": state[1]}}
        if state is not None and (state[0] == "stopped" or state[1].strip().lower() == "stopping")
        else None
    ),
    "tasks.stopped": lambda state: (
        {"updated": 1, "fields": {"status": "stopped"}}
        if state is not None and state[0] == "stopped"
        else None
    ),
    "tasks.close": lambda state: (
        {"updated": 1, "fields": {"status": "closed"}}
        if state is not None and state[0] == "closed"
        else None
    ),
    "tasks.enqueue": lambda state: (
        {"queued": 1, "fields": {"status": state[0]}}
        if state is not None and state[0] in ("queued", "in_progress")
        else None
    ),
}


def _md5(text: str) -> str:
    # The server keys last_metrics by the md5 of the metric name.
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


MONITOR_MACHINE = ":monitor:machine"
MONITOR_GPU = ":monitor:gpu"
MACHINE_METRICS_KEY = _md5(MONITOR_MACHINE)
GPU_METRICS_KEY = _md5(MONITOR_GPU)
# The variants the menu shows, as the SDK's resource monitor names them. Asking for each one's
# `.value` (as the web UI's metric columns do) instead of the whole metric group keeps a task
# at about a sixth of its size: every variant otherwise brings nine statistics along, and the
# monitor reports several more variants than we show.
MACHINE_VARIANTS = ("cpu_usage", "memory_used_gb")
MAX_GPUS = 8  # GPUs past the eighth are left out of the averages
GPU_VARIANTS = tuple(
    f"gpu_{i}_{kind}" for i in range(MAX_GPUS) for kind in ("utilization", "mem_used_gb")
)
VARIANT_NAMES = {_md5(name): name for name in (*MACHINE_VARIANTS, *GPU_VARIANTS)}
METRIC_FIELDS = tuple(
    f"last_metrics.{group}.{_md5(name)}.value"
    for group, names in ((MACHINE_METRICS_KEY, MACHINE_VARIANTS), (GPU_METRICS_KEY, GPU_VARIANTS))
    for name in names
)

# Only harmless keys: specs from the SDK resource monitor, addresses and ports.
RUNTIME_KEYS = (
    "cpu_cores",
    "memory_gb",
    "gpu_count",
    "gpu_type",
    "gpu_memory",
    "hostname",
    "external_address",
    "internal_ssh_port",
    "internal_tcp_port",
    "external_tcp_port",
    "_ssh_user",
)
PROPERTY_KEYS = (
    "external_address",
    "k8s-gateway-address",
    "internal_ssh_port",
    "external_ssh_port",
    "k8s-pod-port",
    "jupyter_port",
    "vscode_port",
    "jupyter_url",
)
JOINED_FIELDS = ("user.name", "project.name", "execution.queue.name")
TASK_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "status_message",
    "status_changed",
    "created",
    "started",
    "last_update",
    "tags",
    "system_tags",
    "last_worker",
    # Joined forms: `user` comes back as {"id", "name"} (the web UI asks the same way).
    *JOINED_FIELDS,
    *(f"runtime.{k}" for k in RUNTIME_KEYS),
    # `.value` only: without it each property also repeats its section and name.
    *(f"hyperparams.properties.{k}.value" for k in PROPERTY_KEYS),
    *METRIC_FIELDS,
)

FORBIDDEN_RUNTIME_KEYS = ("_user_key", "_user_secret", "_ssh_password", "_jupyter_token")


# -- pure parsing ------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (the server's format) or epoch seconds/milliseconds → aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):  # year 300,000, NaN, …
            return None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, str | int | float):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            return int(float(str(value)))
        except (ValueError, OverflowError):  # "inf", "nan", "1e999"
            return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _port(value: Any) -> int | None:
    port = _int(value)
    return port if port is not None and 0 < port < 65536 else None


def task_problem(task: Any) -> str | None:
    """Why a task row cannot be shown (its structure is not the server's), or None.

    Odd *values* (an unparseable date, a port that is not a number) only blank that field;
    a wrong *structure* would make the rest of the row meaningless.
    """
    if not isinstance(task, Mapping):
        return f"a {type(task).__name__} instead of an object"
    task_id = task.get("id")
    if not isinstance(task_id, str) or not task_id:
        return "no text id"
    for key in ("name", "status", "status_message", "last_worker"):
        if task.get(key) is not None and not isinstance(task.get(key), str):
            return f"{key} is a {type(task.get(key)).__name__}"
    for key in ("tags", "system_tags"):
        value = task.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(t, str) for t in value)
        ):
            return f"{key} is not a list of text"
    for key in ("runtime", "hyperparams", "last_metrics", "execution"):
        if task.get(key) is not None and not isinstance(task.get(key), Mapping):
            return f"{key} is a {type(task.get(key)).__name__}"
    properties = _mapping(task.get("hyperparams")).get("properties")
    if properties is not None and not isinstance(properties, Mapping):
        return "hyperparams.properties is not an object"
    for key in ("user", "project"):
        if task.get(key) is not None and not isinstance(task.get(key), str | Mapping):
            return f"{key} is a {type(task.get(key)).__name__}"
    return None


def _ref(value: Any) -> tuple[str, str]:
    """A reference field: a plain id, or `{"id", "name"}` when joined → (id, name)."""
    if isinstance(value, Mapping):
        return str(value.get("id") or ""), str(value.get("name") or "")
    if value is None:
        return "", ""
    return str(value), ""


def _property(task: Mapping[str, Any], name: str) -> str:
    section = _mapping(_mapping(task.get("hyperparams")).get("properties"))
    item = section.get(name)
    if isinstance(item, Mapping):
        item = item.get("value")
    return item if isinstance(item, str) else "" if item is None else str(_int(item) or "")


def _metric_values(task: Mapping[str, Any], key: str) -> dict[str, float]:
    group = _mapping(_mapping(task.get("last_metrics")).get(key))
    values: dict[str, float] = {}
    for variant_key, entry in group.items():
        if not isinstance(entry, Mapping):
            continue
        # A projected entry holds only `value`: its variant is known from the key's hash.
        name = entry.get("variant") or VARIANT_NAMES.get(str(variant_key))
        value = _float(entry.get("value"))
        if name is not None and value is not None:
            values[str(name)] = value
    return values


def session_state(status: str, status_message: str, ssh_port: int | None) -> SessionState:
    if status == "queued":
        return SessionState.QUEUED
    if (status_message or "").strip().lower() == "stopping":
        return SessionState.STOPPING
    if ssh_port is None:
        return SessionState.STARTING
    return SessionState.RUNNING


def web_url(web_server: str, project_id: str, task_id: str) -> str:
    """The session's page in the web UI; "" without a usable web server (no link then)."""
    base = web_server.rstrip("/")
    if not base:
        return ""
    project = quote(project_id or "*", safe="*")
    return f"{base}/projects/{project}/experiments/{quote(task_id)}/output/execution"


def _gpu_average(gpu: Mapping[str, float], suffix: str) -> float | None:
    values = [v for k, v in gpu.items() if k.startswith("gpu_") and k.endswith(suffix)]
    return sum(values) / len(values) if values else None


def _gpu_sum(gpu: Mapping[str, float], suffix: str) -> float | None:
    values = [v for k, v in gpu.items() if k.startswith("gpu_") and k.endswith(suffix)]
    return sum(values) if values else None


def build_session(
    task: Mapping[str, Any],
    *,
    me: str,
    web_server: str,
    workers_by_task: Mapping[str, Mapping[str, Any]],
    workers_by_id: Mapping[str, Mapping[str, Any]],
    user_names: Mapping[str, str],
    project_names: Mapping[str, str],
    queue_names: Mapping[str, str],
) -> Session:
    """One task document (as returned for `TASK_FIELDS`) plus the worker list → `Session`."""
    task_id = str(task.get("id") or "")
    status = str(task.get("status") or "")
    status_message = str(task.get("status_message") or "")
    user_id, user_name = _ref(task.get("user"))
    project_id, project_name = _ref(task.get("project"))
    queue_id, queue_name = _ref(_mapping(task.get("execution")).get("queue"))
    runtime = _mapping(task.get("runtime"))

    # clearml-session's own order (__main__.py, where it builds the tunnel): what the remote
    # wrote at run time first (the router's address and port), then the k8s gateway, then the
    # --remote-gateway, then the sshd port itself.
    address = (
        _text(runtime.get("external_address"))
        or _property(task, "k8s-gateway-address")
        or _property(task, "external_address")
    )
    ssh_port = (
        _port(runtime.get("external_tcp_port"))
        or _port(_property(task, "k8s-pod-port"))
        or _port(_property(task, "external_ssh_port"))
        or _port(runtime.get("internal_tcp_port"))
        or _port(_property(task, "internal_ssh_port"))
        or _port(runtime.get("internal_ssh_port"))
    )
    last_worker = str(task.get("last_worker") or "")
    worker: Mapping[str, Any] | None = None
    if status == "in_progress":
        worker = workers_by_task.get(task_id) or workers_by_id.get(last_worker)
        worker = _mapping(worker) or None
    machine = _metric_values(task, MACHINE_METRICS_KEY)
    gpu = _metric_values(task, GPU_METRICS_KEY)
    running = status == "in_progress"
    return Session(
        id=task_id,
        name=str(task.get("name") or ""),
        status=status,
        state=session_state(status, status_message, ssh_port),
        status_message=status_message,
        project_id=project_id,
        project_name=project_name or project_names.get(project_id, ""),
        queue_id=queue_id,
        queue_name=queue_name or queue_names.get(queue_id, ""),
        creator_id=user_id,
        creator_name=user_name or user_names.get(user_id, ""),
        is_own=bool(me) and user_id == me,
        tags=tuple(str(t) for t in _list(task.get("tags"))),
        created=parse_time(task.get("created")),
        started=parse_time(task.get("started")) if running else None,
        last_update=parse_time(task.get("last_update")),
        status_changed=parse_time(task.get("status_changed")),
        worker_id=_text(worker.get("id")) if worker else (last_worker if running else ""),
        private_ip=_text(worker.get("ip")) if worker else "",
        public_address=address,
        ssh_port=ssh_port,
        ssh_user=_text(runtime.get("_ssh_user")),
        hostname=_text(runtime.get("hostname")),
        cpu_cores=_int(runtime.get("cpu_cores")),
        ram_total_gb=_float(runtime.get("memory_gb")),
        gpu_count=_int(runtime.get("gpu_count")),
        gpu_type=_text(runtime.get("gpu_type")),
        gpu_memory=_text(runtime.get("gpu_memory")),
        cpu_percent=machine.get("cpu_usage") if running else None,
        ram_used_gb=machine.get("memory_used_gb") if running else None,
        gpu_percent=_gpu_average(gpu, "_utilization") if running else None,
        gpu_memory_used_gb=_gpu_sum(gpu, "_mem_used_gb") if running else None,
        jupyter_port=_port(_property(task, "jupyter_port")),
        vscode_port=_port(_property(task, "vscode_port")),
        jupyter_url=_property(task, "jupyter_url"),
        web_url=web_url(web_server, project_id, task_id) if task_id else "",
    )


def order_sessions(sessions: Iterable[Session]) -> tuple[Session, ...]:
    """Own sessions first, newest first inside each group (stable while sessions update)."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return tuple(
        sorted(sessions, key=lambda s: (not s.is_own, -(s.created or oldest).timestamp(), s.id))
    )


def _workers_index(
    workers: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
    by_task: dict[str, Mapping[str, Any]] = {}
    by_id: dict[str, Mapping[str, Any]] = {}
    for worker in workers:
        worker_id = _text(worker.get("id"))
        if worker_id:
            by_id[worker_id] = worker
        task = worker.get("task")
        task_id = _ref(task)[0]
        if task_id:
            by_task[task_id] = worker
    return by_task, by_id


def _unknown_worker(tasks: Iterable[Mapping[str, Any]], workers: list[dict[str, Any]]) -> bool:
    """Whether a running task's `last_worker` is missing from this list."""
    by_id = {_text(w.get("id")) for w in workers}
    return any(
        task.get("status") == "in_progress" and _text(task.get("last_worker")) not in by_id
        for task in tasks
        if task.get("last_worker")
    )


def _same_ids(a: list[Any], b: list[Any]) -> bool:
    ids_a = {_text(_mapping(t).get("id")) for t in a}
    return all(_text(_mapping(t).get("id")) in ids_a for t in b)


# -- the service -------------------------------------------------------------------------------


class SessionService:
    """Snapshots and actions for the tray. All methods may raise `ClearMLError` subclasses."""

    def __init__(
        self,
        client: ClearMLClient,
        *,
        web_server: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self._clock = clock
        self._pause = pause
        # workers.get_all has no field selection and lists every worker, whatever the scope:
        # most of a refresh's bytes. Its answer is reused while no live session names a worker
        # it lacks, for at most WORKERS_MAX_AGE_S (an agent's address rarely changes).
        self._workers_cache: list[dict[str, Any]] | None = None
        self._workers_at = 0.0
        # Links are opened in the browser: only an http(s) web server gives them.
        self.web_server = web_link_base(web_server or client.config.web_server or "")
        self._me: UserInfo | None = None
        self._user_names: dict[str, str] = {}
        self._project_names: dict[str, str] = {}
        self._queue_names: dict[str, str] = {}
        # Pages of `tasks.get_all_ex` the last snapshot of each scope (user id, "" = all) needed.
        self._pages: dict[str, int] = {}
        # The server's page cap: PAGE_SIZE until a page shorter than asked proves less. Known
        # once a page came back full, or a short first page was followed by more rows.
        self.page_size = PAGE_SIZE
        self._cap_known = False
        # The longest first page seen to be the whole list (the cap is at least that).
        self._complete_max = 0

    # -- identity --------------------------------------------------------------------------

    async def current_user(self) -> UserInfo:
        """The logged-in user: from the token when it names one, else `users.get_current_user`."""
        if self._me is not None:
            return self._me
        info = await self.client.login()
        if info.user_id:
            self._me = UserInfo(info.user_id, info.user_name, info.company_id, info.company_name)
        else:
            data = await self.client.call("users.get_current_user", {})
            user = _mapping(data.get("user"))
            company = _mapping(user.get("company"))
            self._me = UserInfo(
                str(user.get("id") or ""),
                str(user.get("name") or ""),
                str(company.get("id") or ""),
                str(company.get("name") or ""),
            )
        if self._me.name:
            self._user_names[self._me.id] = self._me.name
        return self._me

    # -- snapshot --------------------------------------------------------------------------

    async def snapshot(self, all_users: bool = False) -> Snapshot:
        me = await self.current_user()
        cached = self._workers_cache
        if cached is not None and self._clock() - self._workers_at < WORKERS_MAX_AGE_S:
            tasks = await self._live_tasks(None if all_users else me.id)
            if _unknown_worker(tasks, cached):  # a session started on a worker not yet seen
                workers = await self._fresh_workers()
            else:
                workers = cached
        else:
            tasks, workers = await asyncio.gather(
                self._live_tasks(None if all_users else me.id), self._fresh_workers()
            )
        await self._fill_name_caches(tasks)
        # Building a thousand sessions is tens of milliseconds of pure Python. In a worker thread
        # the event loop (the tray's UI thread) gets the GIL back every switch interval (5 ms)
        # instead of freezing until the list is done.
        sessions = await asyncio.to_thread(self._build_sessions, tasks, workers, me.id)
        return Snapshot(
            sessions=sessions,
            fetched_at=datetime.now(UTC),
            user_id=me.id,
            user_name=me.name,
            server=self.client.server,
            web_server=self.web_server,
            all_users=all_users,
            workers=tuple(wid for w in workers if (wid := _text(w.get("id")))),
        )

    def _build_sessions(
        self, tasks: list[dict[str, Any]], workers: list[dict[str, Any]], me: str
    ) -> tuple[Session, ...]:
        by_task, by_id = _workers_index(workers)
        sessions: list[Session] = []
        for task in tasks:
            try:
                sessions.append(
                    build_session(
                        task,
                        me=me,
                        web_server=self.web_server,
                        workers_by_task=by_task,
                        workers_by_id=by_id,
                        user_names=self._user_names,
                        project_names=self._project_names,
                        queue_names=self._queue_names,
                    )
                )
            except Exception as exc:  # one bad row must not hide the others
                log.warning(
                    "skipped session %s: the server sent a malformed task (%s)",
                    display_text(_text(task.get("id")), 40),
                    type(exc).__name__,
                )
        return order_sessions(sessions)

    async def _live_tasks(self, user_id: str | None) -> list[dict[str, Any]]:
        """Every live interactive task, in page order, each id once, malformed rows dropped.

        The pages the previous snapshot of this scope needed are requested together; only when
        the last of them comes back full do further pages follow, one at a time.
        """
        request: dict[str, Any] = {
            "system_tags": [INTERACTIVE_TAG],
            "status": list(LIVE_STATUSES),
            "only_fields": list(TASK_FIELDS),
            "order_by": ["-created"],
            "page_size": PAGE_SIZE,
        }
        if user_id:
            request["user"] = [user_id]
        scope = user_id or ""
        # Before the cap is known, the first snapshot asks for a second page in the same
        # round trip: that is how a cap below PAGE_SIZE shows.
        first_time = not self._cap_known and scope not in self._pages
        known = min(MAX_PAGES, max(2 if first_time else 1, self._pages.get(scope, 1)))

        async def page(number: int) -> list[Any]:
            data = await self.client.call("tasks.get_all_ex", {**request, "page": number})
            rows = data.get("tasks")
            if rows is None:
                return []
            if not isinstance(rows, list):
                raise ClearMLUnavailable(
                    f"The ClearML server {self.client.server} sent a malformed reply to "
                    "tasks.get_all_ex (its tasks are not a list)",
                    server=self.client.server,
                )
            return rows

        batches = list(await asyncio.gather(*(page(n) for n in range(known))))
        self._learn_cap(batches)
        if (
            not self._cap_known
            and len(batches) == 1
            and self._complete_max < len(batches[0]) < self.page_size
        ):
            # A first page longer than any list seen complete: the end, or a lower cap?
            batches.append(await page(1))
            self._learn_cap(batches)
        tasks: list[dict[str, Any]] = []
        seen: set[str] = set()
        skipped = 0
        for number in range(MAX_PAGES):
            if number == len(batches):
                if len(batches[-1]) < self.page_size:
                    break
                batches.append(await page(number))
            batch = batches[number]
            new_rows = 0
            for task in batch:
                problem = task_problem(task)
                if problem is not None:
                    skipped += 1
                    if skipped <= 3:
                        log.warning(
                            "skipped a malformed task from the server (%s)",
                            display_text(problem, 80),
                        )
                    continue
                if task["id"] in seen:
                    continue
                seen.add(task["id"])
                new_rows += 1
                # Belt and braces: whatever the server sent, secrets never enter a Session.
                runtime = task.get("runtime")
                if isinstance(runtime, dict):
                    for key in FORBIDDEN_RUNTIME_KEYS:
                        runtime.pop(key, None)
                tasks.append(task)
            if number > 0 and batch and new_rows == 0:
                log.warning(
                    "tasks.get_all_ex page %d repeats earlier rows: the server ignores paging; "
                    "showing the first %d sessions",
                    number,
                    len(tasks),
                )
                break
        else:
            log.warning(
                "tasks.get_all_ex still sent full pages after %d pages; showing the first %d "
                "sessions",
                MAX_PAGES,
                len(tasks),
            )
        if skipped > 3:
            log.warning("skipped %d malformed tasks from the server in all", skipped)
        # Pages past the first short one were not needed (the result shrank since last time).
        needed = next(
            (n + 1 for n, b in enumerate(batches) if len(b) < self.page_size), len(batches)
        )
        self._pages[scope] = min(needed, MAX_PAGES)
        if needed == 1 and batches and len(batches[0]) < self.page_size:
            self._complete_max = max(self._complete_max, len(batches[0]))
        return tasks

    def _learn_cap(self, batches: list[list[Any]]) -> None:
        """What the pages say about the server's page cap (see the module docstring)."""
        if self._cap_known or not batches:
            return
        first = len(batches[0])
        if first >= self.page_size:
            self._cap_known = True  # a full page: the cap is at least what we ask for
        elif len(batches) > 1 and first and batches[1] and not _same_ids(batches[0], batches[1]):
            self.page_size, self._cap_known = first, True
            log.info("the server's page cap is %d rows (not %d)", first, PAGE_SIZE)

    async def _fresh_workers(self) -> list[dict[str, Any]]:
        workers = await self._workers()
        self._workers_cache, self._workers_at = workers, self._clock()
        return workers

    async def _workers(self) -> list[dict[str, Any]]:
        data = await self.client.call("workers.get_all", {"last_seen": WORKER_LAST_SEEN_S})
        return [w for w in _list(data.get("workers")) if isinstance(w, dict)]

    async def _fill_name_caches(self, tasks: list[dict[str, Any]]) -> None:
        """Fetch (concurrently, one request per kind) the names the server did not join."""
        users: set[str] = set()
        projects: set[str] = set()
        queues: set[str] = set()
        for task in tasks:
            uid, uname = _ref(task.get("user"))
            pid, pname = _ref(task.get("project"))
            qid, qname = _ref(_mapping(task.get("execution")).get("queue"))
            if uid and uname:
                self._user_names[uid] = uname
            elif uid and uid not in self._user_names:
                users.add(uid)
            if pid and pname:
                self._project_names[pid] = pname
            elif pid and pid not in self._project_names:
                projects.add(pid)
            if qid and qname:
                self._queue_names[qid] = qname
            elif qid and qid not in self._queue_names:
                queues.add(qid)
        jobs = []
        if users:
            jobs.append(self._fetch_names("users.get_all_ex", "users", users, self._user_names))
        if projects:
            jobs.append(
                self._fetch_names("projects.get_all", "projects", projects, self._project_names)
            )
        if queues:
            jobs.append(self._fetch_names("queues.get_all", "queues", queues, self._queue_names))
        if jobs:
            await asyncio.gather(*jobs)

    async def _fetch_names(
        self, endpoint: str, key: str, ids: set[str], cache: dict[str, str]
    ) -> None:
        request = {"id": sorted(ids), "only_fields": ["id", "name"], "page_size": PAGE_SIZE}
        try:
            data = await self.client.call(endpoint, request)
        except ClearMLRequestError as exc:
            # A name is a nicety; the snapshot stands without it.
            log.debug("%s failed: %s", endpoint, exc)
            return
        for item in _list(data.get(key)):
            if isinstance(item, dict) and item.get("id"):
                cache[str(item["id"])] = str(item.get("name") or "")
        for missing in ids - cache.keys():
            cache[missing] = ""  # deleted user/project/queue: don't ask again every refresh

    # -- actions ---------------------------------------------------------------------------

    async def stop(self, session_id: str, *, force: bool = False) -> str:
        """Ask the session to stop; force it when nobody will act on the request.

        `tasks.stop` (force false) lets the agent shut the session down cleanly. It is followed
        by `tasks.stopped` (force true) when the server changed nothing, when no live worker is
        running the task, or when the task was already "stopping" before this call (a second
        Stop means "really stop"). `force=True` does not wait for the worker of a running
        session. A queued session is always stopped with `tasks.stop`: on a real server only
        that call takes it out of its queue; `tasks.stopped` leaves the entry there, and the
        agent's `queues.get_next_task` turns the task back into "queued" and runs it.
        Returns the task status afterwards: "stopped", or "in_progress" while a live worker
        is stopping it (the next snapshot shows it as STOPPING).
        """
        status, message = await self._status(session_id)
        if status not in LIVE_STATUSES:
            return status  # already stopped / failed / completed: nothing to do
        if status == "in_progress" and (force or message.strip().lower() == "stopping"):
            return await self._force_stopped(session_id)
        data = await self.change_task(
            "tasks.stop",
            {"task": session_id, "force": False, "status_reason": STOP_REASON},
            session_id,
        )
        fields = _mapping(data.get("fields"))
        if _int(data.get("updated")) == 0:
            return await self._force_stopped(session_id)
        if fields.get("status") == "stopped":
            return "stopped"
        # The server left it in_progress + "stopping": the worker's agent is expected to act.
        by_task, _ = _workers_index(await self._workers())
        if session_id in by_task:
            return "in_progress"
        return await self._force_stopped(session_id)

    async def _force_stopped(self, session_id: str) -> str:
        data = await self.change_task(
            "tasks.stopped",
            {"task": session_id, "force": True, "status_reason": STOP_REASON},
            session_id,
        )
        status = _text(_mapping(data.get("fields")).get("status"))
        return status or "stopped"

    async def _status(self, session_id: str) -> tuple[str, str]:
        """(status, status_message) of one task; raises ClearMLRequestError if unknown."""
        data = await self.client.call(
            "tasks.get_all_ex",
            {"id": [session_id], "only_fields": ["id", "status", "status_message"]},
        )
        tasks = [t for t in _list(data.get("tasks")) if isinstance(t, dict)]
        if not tasks:
            raise ClearMLRequestError(
                f"Session {session_id} does not exist (any more)",
                server=self.client.server,
                endpoint="tasks.get_all_ex",
                result_code=400,
                result_subcode=101,
                result_msg=f"Invalid task id: id={session_id}",
                http_status=200,
            )
        task = tasks[0]
        return str(task.get("status") or ""), str(task.get("status_message") or "")

    async def ssh_password(self, session_id: str) -> str:
        """The session's SSH password, as clearml-session itself reads it (runtime
        `_ssh_password`, written there by whoever launched it); "" when there is none. A
        secret: asked for on its own, never as part of a snapshot, and never logged."""
        data = await self.client.call(
            "tasks.get_all_ex",
            {"id": [session_id], "only_fields": ["id", "runtime._ssh_password"]},
        )
        # Only the row of this session: a server (or a proxy) that ignores the id filter must
        # not hand another session's password to this one's ssh.
        rows = [
            t for t in _list(data.get("tasks")) if isinstance(t, dict) and t.get("id") == session_id
        ]
        if len(rows) != 1:
            if _list(data.get("tasks")):
                log.warning(
                    "the server answered the password request of %s with other sessions' rows; "
                    "none is used",
                    session_id,
                )
            return ""
        password = _mapping(rows[0].get("runtime")).get("_ssh_password")
        return password if isinstance(password, str) else ""

    async def host_keys_pinned(self) -> bool:
        """Whether the server pins the sessions' SSH host keys (a `remote_session_ssh_server`
        vault): clearml-session then checks the key itself, and the tray does not log in
        ahead of it. A server without vaults (the open-source one) answers 404, "no such
        endpoint": not pinned. Any other failure (the server unreachable, a 500, a refusal)
        leaves it unknown and raises: then no password is handed over."""
        try:
            data = await self.client.call(
                "users.get_vaults", {"enabled": True, "types": ["remote_session_ssh_server"]}
            )
        except ClearMLRequestError as exc:
            if ENDPOINT_NOT_FOUND in (exc.result_code, exc.http_status):
                return False
            raise
        return bool(_list(data.get("vaults")))

    async def delete(self, session_id: str) -> bool:
        """Stop the session if it is live, then delete the task. True when it was deleted."""
        status, _ = await self._status(session_id)
        if status in LIVE_STATUSES:
            try:
                await self.stop(session_id)
            except ClearMLRequestError as exc:
                # A forced delete also dequeues and removes a running task.
                log.debug("stop before delete of %s failed: %s", session_id, exc)
        data = await self.change_task(
            "tasks.delete", {"task": session_id, "force": True}, session_id
        )
        return bool(data.get("deleted"))

    async def change_task(
        self, endpoint: str, payload: dict[str, Any], session_id: str
    ) -> dict[str, Any]:
        """Send a change of one task; when no answer comes (a gateway error, a timeout), the
        task's state says whether it went through before it is sent again: a delete that went
        through is a success, not "invalid task id" on the retry."""
        settled = _SETTLED.get(endpoint)
        for attempt in range(CHANGE_ATTEMPTS):
            try:
                return await self.client.call(endpoint, payload)
            except ClearMLOutcomeUnknown as exc:
                if settled is None or attempt + 1 == CHANGE_ATTEMPTS:
                    raise
                log.info("%s of %s: %s; looking at the task", endpoint, session_id, exc)
            # The look is a read (retried on its own); if it fails too, that error stands.
            done = settled(await self._state(session_id))
            if done is not None:
                log.info("%s of %s went through (seen in the task's state)", endpoint, session_id)
                return done
            await self._pause(CHANGE_PAUSE_S * (attempt + 1))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _state(self, session_id: str) -> TaskState:
        try:
            return await self._status(session_id)
        except ClearMLRequestError as exc:
            if exc.result_code == 400 and exc.result_subcode == 101:
                return None  # gone
            raise

    async def console_log(
        self, session_id: str, limit: int = 200, *, redact_secrets: bool = True
    ) -> list[LogLine]:
        """The newest `limit` console lines, newest first. Passwords are masked by default."""
        data = await self.client.call(
            "events.get_task_log",
            {"task": session_id, "batch_size": limit, "navigate_earlier": True, "order": "desc"},
        )
        lines = []
        for event in _list(data.get("events")):
            if not isinstance(event, dict):
                continue
            msg = str(event.get("msg") or "")
            lines.append(
                LogLine(
                    timestamp=parse_time(event.get("timestamp")),
                    msg=redact(msg) if redact_secrets else msg,
                    level=str(event.get("level") or "info"),
                    worker=str(event.get("worker") or ""),
                )
            )
        oldest = datetime.min.replace(tzinfo=UTC)
        lines.sort(key=lambda line: line.timestamp or oldest, reverse=True)
        return lines[:limit]

    async def queues(self) -> list[QueueInfo]:
        """Queues that are not internal, with free/total workers and pending entries."""
        queue_data, workers = await asyncio.gather(
            self.client.call(
                "queues.get_all",
                {
                    "system_tags": ["-internal"],
                    "only_fields": ["id", "name", "display_name", "system_tags", "tags", "entries"],
                    "page_size": PAGE_SIZE,
                },
            ),
            self._workers(),
        )
        total: dict[str, int] = {}
        free: dict[str, int] = {}
        for worker in workers:
            busy = bool(_ref(worker.get("task"))[0])
            for queue in _list(worker.get("queues")):
                qid = _ref(queue)[0]
                total[qid] = total.get(qid, 0) + 1
                if not busy:
                    free[qid] = free.get(qid, 0) + 1
        result = []
        for queue in _list(queue_data.get("queues")):
            if not isinstance(queue, dict):
                continue
            qid = str(queue.get("id") or "")
            name = str(queue.get("name") or "")
            self._queue_names[qid] = name
            system_tags = [str(t) for t in _list(queue.get("system_tags"))]
            result.append(
                QueueInfo(
                    id=qid,
                    name=name,
                    display_name=str(queue.get("display_name") or ""),
                    free_workers=free.get(qid, 0),
                    total_workers=total.get(qid, 0),
                    pending=len(_list(queue.get("entries"))),
                    interactive=INTERACTIVE_TAG in system_tags,
                    tags=tuple(str(t) for t in _list(queue.get("tags"))),
                )
            )
        result.sort(key=lambda q: (not q.interactive, q.name.lower()))
        return result

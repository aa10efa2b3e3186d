"""The demo sessions' SSH servers: what a real remote session runs, on loopback.

For every running session whose remote side has published its ports, an asyncssh server listens
on the session's advertised address (127.0.103.x) and SSH port (free ports the kernel picks, never
fixed ones, so that several demos and test runs share the machine), takes the session password
(`runtime._ssh_password`, which clearml-session writes), gives a shell that runs only `echo`
(nothing is ever executed on this machine), and forwards ports the way a remote sshd does:
"localhost" means the session's own address, where tiny HTTP responders stand in for JupyterLab
and the VS Code server. So the real `clearml-session` CLI completes its tunnel against the demo.

Each endpoint holds four listening sockets. A demo with 20,000 sessions would need far more file
descriptors than a process has (1,024 by default): endpoints are bounded to what the limit
allows (at most MAX_ENDPOINTS), given first to sessions that already have one (a tunnel through
it stays up), then to the user's own sessions, newest first, then to everyone else's. The rest
have none, said once in the log; a descriptor shortage anyway stops this round quietly instead
of failing session after session.

Machines greet a login differently, and clearml-session reads that greeting: each session gets
one of `SHELLS` (by its id) — bash's `$ `, zsh's `% ` after a 1.5 s message of the day, a
`❯ ` prompt after a login banner, a `$` without its space after a 2 s MOTD.

Tested in tests/unit/demo/test_demo_ssh_endpoint.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ipaddress
import logging
import shlex
import socket
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

with warnings.catch_warnings():
    # asyncssh still names DSA, which cryptography deprecates: a note for asyncssh's authors,
    # otherwise printed on the user's terminal at every `--demo`.
    warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
    import asyncssh

from tray_app.demo.seed import SessionPorts, move_ports
from tray_app.demo.state import EmulatorState

log = logging.getLogger(__name__)

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "")
MAX_ENDPOINTS = 200
FDS_PER_ENDPOINT = 4  # two SSH listeners (the port and the stable one), JupyterLab, VS Code
# The API's own sockets and connections, the SSH connections being served, files, the loop.
RESERVED_FDS = 256
_NO_FDS = (errno.EMFILE, errno.ENFILE)


def endpoint_budget(soft_limit: int | None = None) -> int:
    """How many session endpoints fit under the process's file descriptor limit."""
    if soft_limit is None:
        try:
            import resource

            soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError, ValueError):  # no such limit here (Windows)
            soft_limit = 2048
        if soft_limit < 0:  # RLIM_INFINITY
            soft_limit = 1 << 20
    return max(1, min(MAX_ENDPOINTS, (soft_limit - RESERVED_FDS) // FDS_PER_ENDPOINT))


@dataclass
class _Endpoint:
    address: str
    ports: SessionPorts
    servers: list[Any] = field(default_factory=list)


def _prop(task: dict[str, Any], name: str) -> str:
    section = (task.get("hyperparams") or {}).get("properties") or {}
    value = (section.get(name) or {}).get("value")
    return str(value) if value not in (None, "") else ""


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def pick_ports(address: str) -> SessionPorts:
    """Four distinct ports the kernel finds free on `address`.

    Never the usual fixed ones (10022, 8888, ...): another demo, a test run or a real Jupyter
    on this machine may hold those, and two emulators must be able to run side by side. All
    four probes stay bound until the last is chosen, so the kernel cannot hand one out twice.
    """
    probes: list[socket.socket] = []
    try:
        for _ in range(4):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probes.append(probe)
            probe.bind((address, 0))
        ssh, stable_ssh, jupyter, vscode = (int(p.getsockname()[1]) for p in probes)
    finally:
        for probe in probes:
            probe.close()
    return SessionPorts(ssh, stable_ssh, jupyter, vscode)


def _http_responder(title: str) -> Any:
    body = f"<html><body><h1>{title}</h1><p>ClearML demo session</p></body></html>".encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    return handle


@dataclass(frozen=True, slots=True)
class RemoteShell:
    """How a session's machine greets a login: its banner, message of the day and prompt."""

    name: str
    prompt: str
    motd_delay_s: float = 0.0  # a slow login: the MOTD (and the prompt) come this late
    motd: str = ""
    banner: str = ""  # the SSH banner, shown before the password prompt


SHELLS = (
    RemoteShell("bash", "$ "),
    RemoteShell(
        "zsh, slow MOTD",
        "% ",
        1.5,
        "Welcome to Ubuntu 22.04.4 LTS (GNU/Linux 5.15.0-105-generic x86_64)\r\n"
        " * 12 updates can be applied immediately.\r\n",
    ),
    RemoteShell("starship", "❯ ", 0.8, banner="Authorized use only. Activity may be monitored.\n"),
    RemoteShell("no space", "$", 2.0, "Last login: Tue Dec  8 09:12:44 2026 from 10.0.0.4\r\n"),
)


def remote_shell(task_id: str) -> RemoteShell:
    """The session's shell, the same for it every time (its id chooses)."""
    return SHELLS[int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % len(SHELLS)]


def _session_process(
    shell: RemoteShell,
) -> Callable[[asyncssh.SSHServerProcess[str]], Coroutine[Any, Any, None]]:
    async def run(process: asyncssh.SSHServerProcess[str]) -> None:
        await _serve(process, shell)

    return run


async def _serve(process: asyncssh.SSHServerProcess[str], shell: RemoteShell) -> None:
    command = process.command
    if command:
        argv = shlex.split(command)
        if argv[:1] == ["echo"]:
            process.stdout.write(" ".join(argv[1:]) + "\n")
            process.exit(0)
        else:
            process.stderr.write(f"demo session: only `echo` runs here, not {argv[:1]}\n")
            process.exit(127)
        return
    # An interactive shell (clearml-session's tunnel asks for one): a prompt, echo lines back.
    try:
        if shell.motd_delay_s:
            await asyncio.sleep(shell.motd_delay_s)
        process.stdout.write(
            f"{shell.motd}ClearML demo session (commands are not executed)\r\n{shell.prompt}"
        )
        async for line in process.stdin:
            process.stdout.write(f"{line.rstrip()}\r\n{shell.prompt}")
    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
        pass
    except BrokenPipeError:
        # The client closed the channel (a killed ssh): sshd ends that shell only. Left
        # uncaught, asyncssh would drop the whole connection, with every other channel on it.
        return
    process.exit(0)


class SessionEndpoints:
    """Keeps one SSH endpoint per ready, running demo session."""

    def __init__(self, state: EmulatorState, max_endpoints: int | None = None) -> None:
        self.state = state
        self.max_endpoints = max_endpoints if max_endpoints is not None else endpoint_budget()
        self._endpoints: dict[str, _Endpoint] = {}
        self._failed: dict[str, SessionPorts] = {}  # ports a session was moved away from
        self._host_key: Any = None
        self._left_out = 0  # sessions without an endpoint at the last sync (logged on change)

    @property
    def served(self) -> set[str]:
        """The sessions that have an endpoint now."""
        return set(self._endpoints)

    def _wanted(self) -> dict[str, tuple[str, SessionPorts]]:
        """The sessions that get an endpoint, at most `max_endpoints` of them."""
        candidates = self._candidates()
        with self.state.lock:
            me = self.state.current_user_id
            rank = {
                tid: (tid not in self._endpoints, task.get("user") != me, task.get("started") or "")
                for tid, task in self.state.tasks.items()
                if tid in candidates
            }
        # Kept ones first, then the user's own, newest first ("started" is ISO 8601 text).
        order = sorted(rank, key=lambda tid: rank[tid][2], reverse=True)
        order.sort(key=lambda tid: rank[tid][:2])
        chosen = order[: self.max_endpoints]
        left_out = len(order) - len(chosen)
        if left_out and not self._left_out:  # said when it begins, not at every change
            log.warning(
                "demo: SSH endpoints for %d of %d running sessions (at most %d: the file "
                "descriptor limit); the other sessions cannot be connected to",
                len(chosen),
                len(order),
                self.max_endpoints,
            )
        self._left_out = left_out
        return {tid: candidates[tid] for tid in chosen}

    def _candidates(self) -> dict[str, tuple[str, SessionPorts]]:
        wanted: dict[str, tuple[str, SessionPorts]] = {}
        with self.state.lock:
            for task in self.state.tasks.values():
                if task.get("status") != "in_progress":
                    continue
                if "interactive" not in (task.get("system_tags") or []):
                    continue
                address = _prop(task, "external_address")
                ssh_port = _prop(task, "internal_ssh_port")
                if not (address and ssh_port.isdigit() and _loopback(address)):
                    continue
                numbers = [
                    int(value) if value.isdigit() else 0
                    for value in (
                        _prop(task, "internal_stable_ssh_port"),
                        _prop(task, "jupyter_port"),
                        _prop(task, "vscode_port"),
                    )
                ]
                wanted[str(task["id"])] = (address, SessionPorts(int(ssh_port), *numbers))
        return wanted

    def password(self, task_id: str) -> str:
        with self.state.lock:
            task = self.state.tasks.get(task_id) or {}
            return str((task.get("runtime") or {}).get("_ssh_password") or "")

    async def sync(self) -> None:
        wanted = self._wanted()
        for task_id in list(self._endpoints):
            if task_id not in wanted or self._endpoints[task_id].ports != wanted[task_id][1]:
                await self._close(task_id)
        for task_id, (address, ports) in wanted.items():
            if task_id in self._endpoints or self._failed.get(task_id) == ports:
                continue
            try:
                self._endpoints[task_id] = await self._open(task_id, address, ports)
            except OSError as exc:
                if exc.errno in _NO_FDS:
                    # Out of descriptors (a lower limit than it looked, other files open):
                    # serve what is open, and try no more than that from now on.
                    self.max_endpoints = max(1, len(self._endpoints))
                    log.warning(
                        "demo: no file descriptors left for more SSH endpoints; serving %d",
                        len(self._endpoints),
                    )
                    break
                # Another program holds a port (a second emulator, a real Jupyter): move the
                # session to free ports and publish them, as a remote side would on start.
                self._failed[task_id] = ports  # the next sync opens the new ones
                try:
                    moved = pick_ports(address)
                except OSError:  # e.g. macOS, where only 127.0.0.1 is on the loopback
                    log.warning("demo session %s: no SSH endpoint on %s: %s", task_id, address, exc)
                    continue
                log.info("demo session %s: %s; moving it to free ports", task_id, exc)
                self._republish(task_id, address, moved)
                continue
            log.info("demo SSH endpoint for %s on %s:%s", task_id, address, ports.ssh)
        self._failed = {k: v for k, v in self._failed.items() if k in wanted}

    def _republish(self, task_id: str, address: str, ports: SessionPorts) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is not None:
                move_ports(self.state, task, address, ports)

    async def _open(self, task_id: str, address: str, ports: SessionPorts) -> _Endpoint:
        if self._host_key is None:
            self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        endpoints = self
        shell = remote_shell(task_id)

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn

            def begin_auth(self, username: str) -> bool:
                if shell.banner:
                    self._conn.send_auth_banner(shell.banner)
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                expected = endpoints.password(task_id)
                return bool(expected) and password == expected

            def connection_requested(
                self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
            ) -> Any:
                # "localhost" on the remote machine is the session's own address here.
                host = address if dest_host in LOCAL_NAMES else dest_host
                if not _loopback(host):
                    return False  # the demo never connects beyond this machine
                return self._conn.forward_connection(host, dest_port)

        endpoint = _Endpoint(address, ports)
        try:
            # The stable port is what `--keepalive` tunnels use; here it is the same server.
            for ssh_port in dict.fromkeys(p for p in (ports.ssh, ports.stable_ssh) if p):
                endpoint.servers.append(
                    await asyncssh.create_server(
                        Server,
                        address,
                        ssh_port,
                        server_host_keys=[self._host_key],
                        process_factory=_session_process(shell),
                    )
                )
            for port, title in (
                (ports.jupyter, "JupyterLab (demo)"),
                (ports.vscode, "VS Code server (demo)"),
            ):
                if port:
                    endpoint.servers.append(
                        await asyncio.start_server(_http_responder(title), address, port)
                    )
        except OSError:
            for server in endpoint.servers:
                server.close()
            raise
        return endpoint

    async def _close(self, task_id: str) -> None:
        endpoint = self._endpoints.pop(task_id, None)
        if endpoint is None:
            return
        for server in endpoint.servers:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def close_all(self) -> None:
        for task_id in list(self._endpoints):
            await self._close(task_id)

    async def run(self, tick: float) -> None:
        try:
            while True:
                try:
                    await self.sync()
                except Exception:  # keep serving the other sessions
                    log.exception("demo SSH endpoints: sync failed")
                await asyncio.sleep(tick)
        finally:
            await self.close_all()

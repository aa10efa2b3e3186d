"""The demo sessions' SSH servers: what a real remote session runs, on loopback.

For every running session whose remote side has published its ports, an asyncssh server listens
on the session's advertised address (127.0.103.x) and SSH port, takes the session password
(`runtime._ssh_password`, which clearml-session writes), gives a shell that runs only `echo`
(nothing is ever executed on this machine), and forwards ports the way a remote sshd does:
"localhost" means the session's own address, where tiny HTTP responders stand in for JupyterLab
and the VS Code server. So the real `clearml-session` CLI completes its tunnel against the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shlex
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from tray_app.demo.state import EmulatorState

log = logging.getLogger(__name__)

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "")


@dataclass
class _Endpoint:
    address: str
    ports: tuple[int, ...]
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


async def _session_process(process: asyncssh.SSHServerProcess[str]) -> None:
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
    process.stdout.write("ClearML demo session (commands are not executed)\r\n$ ")
    try:
        async for line in process.stdin:
            process.stdout.write(f"{line.rstrip()}\r\n$ ")
    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
        pass
    process.exit(0)


class SessionEndpoints:
    """Keeps one SSH endpoint per ready, running demo session."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._endpoints: dict[str, _Endpoint] = {}
        self._host_key: Any = None

    def _wanted(self) -> dict[str, tuple[str, int, int | None, int | None]]:
        wanted: dict[str, tuple[str, int, int | None, int | None]] = {}
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
                jupyter = _prop(task, "jupyter_port")
                vscode = _prop(task, "vscode_port")
                wanted[str(task["id"])] = (
                    address,
                    int(ssh_port),
                    int(jupyter) if jupyter.isdigit() else None,
                    int(vscode) if vscode.isdigit() and int(vscode) > 0 else None,
                )
        return wanted

    def password(self, task_id: str) -> str:
        with self.state.lock:
            task = self.state.tasks.get(task_id) or {}
            return str((task.get("runtime") or {}).get("_ssh_password") or "")

    async def sync(self) -> None:
        wanted = self._wanted()
        for task_id in list(self._endpoints):
            if task_id not in wanted:
                await self._close(task_id)
        for task_id, (address, ssh_port, jupyter, vscode) in wanted.items():
            if task_id not in self._endpoints:
                await self._open(task_id, address, ssh_port, jupyter, vscode)

    async def _open(
        self, task_id: str, address: str, ssh_port: int, jupyter: int | None, vscode: int | None
    ) -> None:
        if self._host_key is None:
            self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        endpoints = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn

            def begin_auth(self, username: str) -> bool:
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

        endpoint = _Endpoint(address, (ssh_port, jupyter or 0, vscode or 0))
        try:
            endpoint.servers.append(
                await asyncssh.create_server(
                    Server,
                    address,
                    ssh_port,
                    server_host_keys=[self._host_key],
                    process_factory=_session_process,
                )
            )
            for port, title in ((jupyter, "JupyterLab (demo)"), (vscode, "VS Code server (demo)")):
                if port:
                    endpoint.servers.append(
                        await asyncio.start_server(_http_responder(title), address, port)
                    )
        except OSError as exc:
            log.warning("demo SSH endpoint for %s on %s:%s: %s", task_id, address, ssh_port, exc)
            for server in endpoint.servers:
                server.close()
            return
        self._endpoints[task_id] = endpoint
        log.info("demo SSH endpoint for %s on %s:%s", task_id, address, ssh_port)

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

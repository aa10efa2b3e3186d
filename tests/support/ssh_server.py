"""A small real SSH server (asyncssh) on 127.0.0.1 for tests: password auth, exec of `echo`.

Runs its own event loop in a thread so that blocking `ssh` subprocesses can talk to it.
"""

from __future__ import annotations

import asyncio
import shlex
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import asyncssh


@dataclass
class SshServer:
    port: int
    user: str
    password: str = field(repr=False)
    logins: list[str] = field(default_factory=list)  # one entry per successful password login


def _free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_ssh_server(
    user: str = "root", password: str = "s3cret pw]", port: int | None = None, host: str = ""
) -> Iterator[SshServer]:
    """An sshd with a new host key each time, on a free port (or `port`, to reuse one), on
    127.0.0.1 (or another loopback address `host`)."""
    address = host or "127.0.0.1"
    info = SshServer(port or _free_port(address), user, password)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncssh.SSHAcceptor] = {}

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            ok = username == info.user and password == info.password
            if ok:
                info.logins.append(username)
            return ok

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        argv = shlex.split(process.command or "")
        if argv[:1] == ["echo"]:
            process.stdout.write(" ".join(argv[1:]) + "\n")
            process.exit(0)
        else:
            process.stderr.write(f"test server runs only echo, not {argv!r}\n")
            process.exit(127)

    async def start() -> None:
        key = asyncssh.generate_private_key("ssh-ed25519")
        holder["server"] = await asyncssh.create_server(
            Server, address, info.port, server_host_keys=[key], process_factory=handle
        )
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    if not ready.wait(15):
        raise RuntimeError("the test SSH server did not start")
    try:
        yield info
    finally:

        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

"""Run the emulator under uvicorn in a background thread, and the clearml.conf snippet for it.

Tested in tests/unit/demo/test_emulator_faults.py (real sockets, restart, the agent's tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from tray_app.core.atomic import atomic_write_text
from tray_app.demo.agent import SimulatedAgent
from tray_app.demo.app import create_app
from tray_app.demo.seed import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from tray_app.demo.state import EmulatorState

log = logging.getLogger(__name__)


class ServerStartError(RuntimeError):
    """The emulator could not bind or did not come up."""


def clearml_conf_text(
    url: str,
    access_key: str,
    secret_key: str,
    *,
    web_server: str | None = None,
    files_server: str | None = None,
) -> str:
    """A clearml.conf that points the SDK, clearml-session and the tray at `url`."""
    return (
        "# ClearML Session Tray demo server (emulated ClearML API; loopback only)\n"
        "api {\n"
        f"    api_server: {url}\n"
        f"    web_server: {web_server or url}\n"
        f"    files_server: {files_server or url}\n"
        "    credentials {\n"
        f'        "access_key": "{access_key}"\n'
        f'        "secret_key": "{secret_key}"\n'
        "    }\n"
        "}\n"
        "sdk {\n"
        "    development {\n"
        "        # nothing in the demo should reach beyond this machine\n"
        "        vcs_repo_detect: false\n"
        "        report_use_subprocess: false\n"
        "    }\n"
        "}\n"
    )


class DemoServer:
    """The emulator on a loopback port, served by uvicorn in a daemon thread.

    `start()` binds (port 0 picks a free one, remembered so that `stop()` + `start()` comes
    back on the same port, e.g. for outage tests). With `agent_tick` set, the simulated agent
    steps in the server's event loop every `agent_tick` seconds; otherwise drive it with
    `server.agent.step()`.
    """

    def __init__(
        self,
        state: EmulatorState,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        agent: SimulatedAgent | None = None,
        agent_tick: float | None = None,
        ssh_endpoints: bool = True,
    ) -> None:
        self.state = state
        self.ssh_endpoints = ssh_endpoints  # with a ticking agent: serve ready sessions' SSH
        self.host = host
        self.port = port
        self.agent = agent or SimulatedAgent(state)
        self.agent_tick = agent_tick
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> DemoServer:
        if self.running:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # uvicorn leaves Nagle on for sockets it is handed; with delayed ACKs every reply on a
        # keep-alive connection then waits ~40 ms. Accepted sockets inherit this on Linux.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ServerStartError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]

        tick = self.agent_tick
        agent = self.agent

        endpoints_task: list[asyncio.Task[None]] = []

        async def on_startup() -> None:
            if tick:
                # With a live agent, ready sessions also get their SSH endpoint (asyncssh) on
                # ports free on this machine.
                from tray_app.demo.ssh_endpoint import SessionEndpoints, pick_ports

                agent.use_port_picker(pick_ports)
                agent.start_in_loop(tick)
                if self.ssh_endpoints:
                    endpoints = SessionEndpoints(self.state)
                    loop = asyncio.get_running_loop()
                    endpoints_task.append(loop.create_task(endpoints.run(tick)))

        async def on_shutdown() -> None:
            await agent.stop_in_loop()
            for task in endpoints_task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        app = create_app(self.state, on_startup=on_startup, on_shutdown=on_shutdown)
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
            date_header=False,
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="clearml-emulator", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"emulator did not start on {self.url}")
            time.sleep(0.01)
        log.info("ClearML emulator listening on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None

    def serve_forever(self, stop: threading.Event | None = None) -> None:
        """Block until the server thread ends, `stop` is set or Ctrl-C comes; then stop."""
        stop = stop or threading.Event()
        try:
            while self.running and not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def write_config(
        self,
        path: str | Path,
        access_key: str = DEMO_ACCESS_KEY,
        secret_key: str = DEMO_SECRET_KEY,
    ) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, clearml_conf_text(self.url, access_key, secret_key), mode=0o600)
        return target

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["DemoServer", "ServerStartError", "clearml_conf_text"]

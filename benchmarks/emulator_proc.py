"""The emulator in a process of its own, for benchmarks that time or measure their own process.

`with ChildEmulator(n) as emu:` starts it (multiprocessing, spawn) on a free 127.0.0.1 port;
`emu.url`, `emu.set_latency(seconds)`; `config=` writes a clearml.conf for it; `agent=True` runs
the simulated agent, which also serves each ready session's SSH; `like_clearml_session=True`
gives the seeded sessions the task documents clearml-session writes (traffic.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType


def _serve(
    sessions: int, agent: bool, like_clearml_session: bool, config: str, conn: Connection
) -> None:
    """Child process: the emulator until told to stop."""
    from tray_app.demo import DemoServer, seeded_state

    state = seeded_state(sessions=sessions)
    if like_clearml_session:
        from benchmarks.traffic import prepare_like_clearml_session

        prepare_like_clearml_session(state)
    if agent:
        server = DemoServer(state, port=0, agent_tick=0.3, ssh_endpoints=True)
    else:
        server = DemoServer(state, port=0, ssh_endpoints=False)
    server.start()
    try:
        if config:
            server.write_config(Path(config))
        conn.send(server.url)
        while True:
            command, value = conn.recv()
            if command != "latency":
                break
            server.state.faults.latency = float(value)
            conn.send("ok")
    except EOFError:  # the benchmark is gone
        pass
    finally:
        server.stop()


class ChildEmulator:
    def __init__(
        self,
        sessions: int,
        *,
        latency: float = 0.0,
        agent: bool = False,
        like_clearml_session: bool = False,
        config: Path | None = None,
    ) -> None:
        self.sessions = sessions
        self.latency = latency
        self.url = ""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        args = (sessions, agent, like_clearml_session, str(config or ""), child)
        self._proc = ctx.Process(target=_serve, args=args, daemon=True)

    def __enter__(self) -> ChildEmulator:
        self._proc.start()
        if not self._conn.poll(120):
            self._proc.kill()
            raise RuntimeError("the emulator process did not start")
        self.url = self._conn.recv()
        if self.latency:
            self.set_latency(self.latency)
        return self

    def set_latency(self, seconds: float) -> None:
        self._conn.send(("latency", seconds))
        self._conn.recv()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):  # the child may be gone already
            self._conn.send(("stop", None))
        self._proc.join(15)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()

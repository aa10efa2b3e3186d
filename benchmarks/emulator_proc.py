"""The emulator in a process of its own, for benchmarks that measure the process they run in.

`python -m benchmarks.emulator_proc --sessions N [--latency-ms L] --config PATH` serves on a free
127.0.0.1 port, writes a clearml.conf for it, prints one JSON line ({"url": ...}) and serves
until its stdin closes. `EmulatorProcess` wraps that for a benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from types import TracebackType


class EmulatorProcess:
    def __init__(
        self, sessions: int, config: Path, latency_ms: float = 0.0, agent: bool = False
    ) -> None:
        self.agent = agent  # the simulated agent runs sessions and serves their SSH
        self.sessions = sessions
        self.config = config
        self.latency_ms = latency_ms
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        argv = [sys.executable, "-m", "benchmarks.emulator_proc", "--sessions", str(self.sessions)]
        argv += ["--latency-ms", str(self.latency_ms), "--config", str(self.config)]
        argv += ["--agent"] if self.agent else []
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process did not start")
        self.url = json.loads(line)["url"]
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def main() -> int:
    from tray_app.demo import DemoServer, EmulatorState

    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--agent", action="store_true")
    args = parser.parse_args()
    state = EmulatorState.seeded(sessions=args.sessions)
    state.faults.latency = args.latency_ms / 1000
    if args.agent:
        server = DemoServer(state, port=0, agent_tick=0.3, ssh_endpoints=True).start()
    else:
        server = DemoServer(state, port=0, ssh_endpoints=False).start()
    server.write_config(args.config)
    print(json.dumps({"url": server.url}), flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin (or dies)
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

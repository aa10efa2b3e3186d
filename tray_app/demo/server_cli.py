"""`clearml-tray demo-server`: the emulator and its simulated agent in the foreground.

Tested in tests/unit/demo/test_emulator_faults.py (the command serves, Ctrl-C stops it).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tray_app.demo.seed import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_USER_NAME, seeded_state
from tray_app.demo.server import DemoServer, ServerStartError, clearml_conf_text

DEFAULT_AGENT_TICK = 1.0
# Windows has no SIGHUP.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C, SIGTERM and SIGHUP set `stop`, whatever dispositions this process inherited.

    A shell starts background commands (`... &`, CI jobs) with SIGINT ignored, and Python then
    leaves it ignored instead of raising KeyboardInterrupt: the server would never stop on Ctrl-C.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def run_demo_server(args: argparse.Namespace) -> int:
    host = str(getattr(args, "host", "127.0.0.1"))
    try:
        if not ipaddress.ip_address(host).is_loopback:
            print(f"error: {host} is not a loopback address", file=sys.stderr)
            return 2
    except ValueError:
        print(f"error: {host} is not an IP address", file=sys.stderr)
        return 2
    state = seeded_state(sessions=max(0, int(args.sessions)), seed=int(args.seed))
    server = DemoServer(state, host=host, port=int(args.port), agent_tick=DEFAULT_AGENT_TICK)
    stop = threading.Event()  # a signal during the start stops the server right after it
    stop_on_signals(stop)
    try:
        server.start()
    except ServerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    conf = clearml_conf_text(server.url, DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    print(f"ClearML API emulator on {server.url} ({args.sessions} sessions, seed {args.seed})")
    print(f"Signed in as {DEMO_USER_NAME!r}. clearml.conf:\n")
    print(conf)
    if args.write_config:
        path = server.write_config(Path(args.write_config).expanduser())
        print(f"Wrote {path}  (use: CLEARML_CONFIG_FILE={path})")
    print("Press Ctrl-C to stop.", flush=True)
    server.serve_forever(stop)
    print("Stopped.")
    return 0

"""Command line: argparse only, every command imported lazily.

Headless commands (`list`, `demo-server`, `--version`) must never import PySide6 so that they
start fast and work on machines without a display; only the tray path imports Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tray_app import APP_DISPLAY_NAME, APP_NAME, __version__


def _watch_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} s is not in 1..3600 s")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=APP_NAME,
        description=f"{APP_DISPLAY_NAME}: your ClearML interactive sessions in the system tray.",
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    parser.add_argument(
        "--config-file",
        metavar="PATH",
        help="clearml.conf to use instead of the SDK lookup (CLEARML_CONFIG_FILE, ~/clearml.conf)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in ClearML demo server on a free loopback port and use it",
    )
    parser.add_argument(
        "--show", action="store_true", help="show the running instance's window and menu"
    )
    parser.add_argument(
        "--benchmark-startup",
        action="store_true",
        help="print the tray's startup milestones (seconds since process start) as JSON and quit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_list = sub.add_parser("list", help="print your live sessions (headless)")
    p_list.add_argument("--all-users", action="store_true", help="include other users' sessions")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.add_argument(
        "--status",
        action="store_true",
        help="one status-bar line: text, or with --json waybar's {text, tooltip, class}",
    )
    p_list.add_argument(
        "--watch",
        nargs="?",
        const=5.0,
        type=_watch_interval,
        metavar="SECONDS",
        help="look every SECONDS (default 5, 1..3600) and print again when it changes: the "
        "table redrawn in place, or with --status one line per change",
    )
    p_list.add_argument(
        "--no-tray",
        action="store_true",
        help="ask the server even when a running tray could answer from its latest refresh",
    )

    p_demo = sub.add_parser("demo-server", help="run the ClearML API emulator in the foreground")
    p_demo.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p_demo.add_argument("--port", type=int, default=8008, help="port (0 picks a free one)")
    p_demo.add_argument("--sessions", type=int, default=5, help="seeded sessions (default 5)")
    p_demo.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    p_demo.add_argument("--write-config", metavar="PATH", help="also write a clearml.conf here")

    sub.add_parser("self-test", help="check this installation without a display or server")

    p_connect = sub.add_parser("connect", help="ask the running tray to connect to a session")
    p_connect.add_argument("session_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        from tray_app.list_command import run_list

        return run_list(args)
    if args.command == "demo-server":
        from tray_app.demo.server_cli import run_demo_server

        return run_demo_server(args)
    if args.command == "self-test":
        from tray_app.selftest import run_selftest

        return run_selftest()
    from tray_app.display_check import display_problem

    problem = display_problem(os.environ)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from tray_app.run import run_app  # imports Qt

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())

"""`clearml-tray list [--all-users] [--json] [--status [--watch [SECONDS]]] [--no-tray]`.

Your live sessions, headless (never imports Qt). When a tray is running, it renders the answer
from its latest snapshot and sends it over the instance socket (no network, milliseconds);
otherwise, when the tray's data is not current, or with `--config-file` / `--no-tray`, the
server is asked and the same functions (core/view/list_output.py) render it here. So the path
that asks the tray imports only the socket and JSON code: this module keeps its imports lazy, and
the console script asks the tray before argparse is loaded (`run_from_tray`). The server path
reads clearml.conf through its cache (core/server/config_cache.py) and, for a plain-http server
without a proxy, sends its requests with http.client instead of httpx (core/server/http_plain.py).

Exit codes: 0 ok, 1 other server error, 2 configuration, 3 authentication, 4 server unavailable.
Errors are one line on stderr: `clearml-tray: <reason>`. `--status` prints a status-bar line
(core/view/status_line.py) and exits 0 even on errors, which it shows in the line (so the bar
keeps the module); `--watch` prints it again whenever it changes, until SIGINT (exit 130),
SIGTERM or the reader closing the pipe (exit 0).
"""

from __future__ import annotations

import os
import sys
import time

from tray_app import APP_NAME

TYPE_CHECKING = False  # typing itself is an import this module's fast path does without
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping

    from tray_app.core.idle.policy import IdleVerdict
    from tray_app.core.server.api import ClearMLClient
    from tray_app.core.server.config import ServerConfig
    from tray_app.core.server.models import Snapshot
    from tray_app.core.server.sessions import SessionService

    # A snapshot and the idle verdicts of the user's running sessions in it.
    Listing = tuple[Snapshot, Mapping[str, IdleVerdict]]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130
STATUS_FORMATS = ("status", "waybar")
# The tray answers from memory within milliseconds; one that accepts and then hangs (stopped in
# a debugger, swapping) must not hold a status bar for long.
TRAY_TIMEOUT_S = 1.5
# The whole request to the server (login, pages, retries) ends by this: a server that trickles
# bytes or a gateway that keeps failing gets a clear "did not answer within" instead of a
# script waiting a minute and more.
LIST_DEADLINE_S = 15.0


class Failure:
    """Why there is no snapshot: an exit code and a reason. (Not a dataclass: `dataclasses`
    imports `inspect`, milliseconds that an answer from the tray does without.)"""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Failure) and (self.code, self.reason) == (other.code, other.reason)

    def __hash__(self) -> int:
        return hash((self.code, self.reason))

    def __repr__(self) -> str:
        return f"Failure({self.code!r}, {self.reason!r})"


def format_of(status: bool, as_json: bool) -> str:
    """One of list_output.FORMATS."""
    if status:
        return "waybar" if as_json else "status"
    return "json" if as_json else "table"


def output_format(args: argparse.Namespace) -> str:
    # --watch follows whatever was asked for: the table, JSON, or the status line.
    return format_of(bool(getattr(args, "status", False)), bool(getattr(args, "json", False)))


def tray_allowed(args: argparse.Namespace) -> bool:
    # Another clearml.conf may name another server than the tray's: ask that server.
    return not getattr(args, "no_tray", False) and getattr(args, "config_file", None) is None


def output_from_tray(all_users: bool, fmt: str, timeout_s: float = TRAY_TIMEOUT_S) -> str | None:
    """The running tray's answer, rendered by it from its latest snapshot; None when there is no
    tray or it declines (no snapshot yet, last refresh failed or too old, scope not polled)."""
    from tray_app.core.instance_socket import ask_running

    answer = ask_running({"cmd": "snapshot", "all_users": all_users, "format": fmt}, timeout_s)
    if answer is None or answer.get("ok") is not True:
        if answer is not None:
            _debug(f"the running tray did not answer list: {answer.get('message')}")
        return None
    output = answer.get("output")
    return output if isinstance(output, str) else None


def config_of_tray(timeout_s: float = TRAY_TIMEOUT_S) -> str | None:
    """The clearml.conf the running tray reads, when `list` was given none and the environment
    names none: `list` then asks the server the tray shows (the demo's, a profile's)."""
    if os.environ.get("CLEARML_CONFIG_FILE", "").strip():
        return None
    from tray_app.core.instance_socket import ask_running

    answer = ask_running({"cmd": "config"}, timeout_s)
    path = answer.get("config_file") if answer is not None and answer.get("ok") is True else None
    if isinstance(path, str) and path:
        _debug(f"asking the server of the running tray's configuration: {path}")
        return path
    return None


def config_for(args: argparse.Namespace) -> str | None:
    """`--config-file`, else the running tray's clearml.conf, else None (the SDK's search)."""
    return getattr(args, "config_file", None) or config_of_tray()


def load_server_config(path: str | None = None) -> ServerConfig:
    # Cached while the files are unchanged: no pyhocon import, no parse (server/config_cache.py).
    from tray_app.core.server.config_cache import load_server_config_cached

    return load_server_config_cached(path)


async def fetch_snapshot(
    config: ServerConfig,
    all_users: bool,
    *,
    request_timeout: float = 10.0,
    deadline: float | None = None,
) -> Listing:
    from tray_app.core.server.api import ClearMLClient, default_headers
    from tray_app.core.server.http_plain import plain_exchange_for
    from tray_app.core.server.sessions import SessionService

    deadline = LIST_DEADLINE_S if deadline is None else deadline
    # A plain-http server without a proxy: the standard library's HTTP, not httpx's ~50 ms of
    # imports (None otherwise: httpx). The API protocol is ClearMLClient's either way.
    exchange = plain_exchange_for(config, request_timeout, default_headers())
    # Scripts and status bars want an answer soon: fewer retries than the tray's poller.
    async with ClearMLClient(
        config, timeout=request_timeout, max_retries=2, exchange=exchange
    ) as client:
        return await within(deadline, config.api_server, SessionService(client), all_users)


async def within(seconds: float, server: str, service: SessionService, all_users: bool) -> Listing:
    """The sessions, and the idle verdicts of the user's running ones, within `seconds` (the
    whole request): ClearMLUnavailable when the sessions are not in by then. The verdicts get
    what is left: on a server too slow (or too big) for them in time, the sessions are listed
    without them ("not checked yet") rather than not at all."""
    import asyncio

    from tray_app.core.server.errors import ClearMLUnavailable

    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    try:
        async with asyncio.timeout(seconds):
            snapshot = await service.snapshot(all_users=all_users)
    except TimeoutError:
        raise ClearMLUnavailable(
            f"The ClearML server {server} did not send the session list within {seconds:g} s "
            "(it answers too slowly, or not at all)",
            server=server,
        ) from None
    try:
        async with asyncio.timeout(max(0.0, end - loop.time())):
            return snapshot, await idle_verdicts(service.client, snapshot)
    except TimeoutError:
        return snapshot, {}


async def idle_verdicts(client: ClearMLClient, snapshot: Snapshot) -> Mapping[str, IdleVerdict]:
    """The idle verdicts of the user's running sessions, by the policy of the user's settings
    and the code the tray warns and stops by (core/idle/monitor.py)."""
    from tray_app.core.idle.policy import judged

    if not judged(snapshot):
        return {}
    from tray_app.core.idle.monitor import session_verdicts
    from tray_app.core.settings.settings import read_idle_policy

    return await session_verdicts(client, snapshot, read_idle_policy())


def failure_of(exc: Exception) -> Failure | None:
    """The exit code and reason for an error of the config or the server; None for others."""
    from tray_app.core.server.errors import (
        ClearMLAuthError,
        ClearMLError,
        ClearMLUnavailable,
        ConfigError,
    )

    if isinstance(exc, ConfigError):
        return Failure(EXIT_CONFIG, f"configuration error: {exc}")
    if isinstance(exc, ClearMLAuthError):
        return Failure(EXIT_AUTH, str(exc))
    if isinstance(exc, ClearMLUnavailable):
        return Failure(EXIT_UNAVAILABLE, str(exc))
    if isinstance(exc, ClearMLError):
        return Failure(EXIT_ERROR, str(exc))
    return None


def snapshot_from_server(config_file: str | None, all_users: bool) -> Listing | Failure:
    import asyncio  # tens of milliseconds of imports that an answer from the tray does without

    try:
        config = load_server_config(config_file)
        return asyncio.run(fetch_snapshot(config, all_users))
    except Exception as exc:
        if (failure := failure_of(exc)) is None:
            raise
        return failure


def list_output(args: argparse.Namespace, fmt: str) -> str | Failure:
    all_users = bool(args.all_users)
    if tray_allowed(args) and (output := output_from_tray(all_users, fmt)) is not None:
        return output
    result = snapshot_from_server(config_for(args), all_users)
    if isinstance(result, Failure):
        return result
    from tray_app.core.view.list_output import render

    snapshot, idle = result
    return render(snapshot, fmt, idle=idle)


def safe_reason(reason: str) -> str:
    from tray_app.core.redact import redact
    from tray_app.core.untrusted import display_text

    # A password inside a server URL (http://user:pw@host) never reaches the terminal.
    return display_text(redact(" ".join(str(reason).split())), 2000)


def failure_line(failure: Failure, fmt: str) -> str:
    from tray_app.core.view.status_line import render_line, status_of_failure

    return render_line(status_of_failure(safe_reason(failure.reason)), fmt == "waybar")


def _fail(code: int, reason: str) -> int:
    print(f"{APP_NAME}: {safe_reason(reason)}", file=sys.stderr)
    return code


_debugging = False


def _setup_logging(debug: bool) -> None:
    global _debugging
    if not debug:
        return
    import logging

    from tray_app.core.redact import install_redaction

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")
    install_redaction()
    _debugging = True


def _debug(message: str) -> None:
    if _debugging:  # logging is imported only with --debug
        import logging

        logging.getLogger(__name__).debug("%s", message)


def quiet_broken_pipe() -> None:
    """`clearml-tray list | head`: the reader has what it wanted. Point stdout at nothing so
    that the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _emit(text: str) -> None:
    print(text, flush=True)


# -- answered by the tray before the command line is parsed ------------------------------------

# The `list` flags a running tray can answer for. Anything else (--watch, --no-tray, --help, an
# abbreviation, an option before `list`) goes through argparse: its import and the parser it
# builds are ~6 ms, a sixth of an answer from the tray.
_TRAY_FLAGS = frozenset({"--json", "--all-users", "--status"})


def tray_request(argv: list[str]) -> tuple[bool, str] | None:
    """(all_users, format) when `argv` (without the program name) is a plain `list` that a
    running tray may answer; None for any other command line."""
    if not argv or argv[0] != "list":
        return None
    flags = argv[1:]
    if len(set(flags)) != len(flags) or not _TRAY_FLAGS.issuperset(flags):
        return None
    return "--all-users" in flags, format_of("--status" in flags, "--json" in flags)


def run_from_tray(argv: list[str]) -> int | None:
    """`clearml-tray list …` printed from the running tray's answer, or None: not such a command
    line, or no tray answered (the caller then runs the command in full, which asks again: a
    refused or missing socket costs well under a millisecond)."""
    request = tray_request(argv)
    if request is None:
        return None
    output = output_from_tray(*request)
    if output is None:
        return None
    try:
        _emit(output)
    except BrokenPipeError:
        quiet_broken_pipe()
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    _setup_logging(bool(getattr(args, "debug", False)))
    fmt = output_format(args)
    interval = getattr(args, "watch", None)
    if interval is not None:
        return run_watch(args, fmt, float(interval))
    result = list_output(args, fmt)
    code = EXIT_OK
    if isinstance(result, Failure):
        if fmt not in STATUS_FORMATS:
            return _fail(result.code, result.reason)
        _fail(result.code, result.reason)  # the line shows it; the reason goes to stderr too
        result = failure_line(result, fmt)
    try:
        _emit(result)
    except BrokenPipeError:
        quiet_broken_pipe()
    return code


# -- --watch ------------------------------------------------------------------------------------


def screen_emit(interval: float) -> Callable[[str], None]:
    """The table or JSON watched on a terminal: redrawn in place, like `watch`, with when."""

    def emit(text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        head = f"{APP_NAME} list — {stamp}, every {interval:g} s (Ctrl-C ends)"
        _emit(f"\x1b[H\x1b[2J{head}\n\n{text}")

    return emit


def run_watch(
    args: argparse.Namespace, fmt: str, interval: float, emit: Callable[[str], None] = _emit
) -> int:
    import asyncio
    import signal

    if fmt not in STATUS_FORMATS and emit is _emit:
        # A status bar reads lines; a person reads a table that changes in place (a pipe gets
        # each new table after a blank line).
        emit = screen_emit(interval) if sys.stdout.isatty() else (lambda t: _emit(t + "\n"))

    # Ctrl-C ends the watch whatever this process inherited: started in the background (a
    # status bar's child, `cmd &`), SIGINT arrives ignored and would never interrupt it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        asyncio.run(watch(args, fmt, interval, emit))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        quiet_broken_pipe()  # the bar went away
    return EXIT_OK


async def watch(
    args: argparse.Namespace,
    fmt: str,
    interval: float,
    show: Callable[[str], None],
    *,
    ticks: int | None = None,
) -> None:
    """Show the output now and whenever it changes; `ticks` bounds the loop (tests)."""
    import asyncio

    from tray_app.core.view.list_output import render

    server = _ServerSource(config_for(args), bool(args.all_users))
    last: str | None = None
    count = 0
    try:
        while ticks is None or count < ticks:
            count += 1
            started = time.monotonic()
            output = output_from_tray(bool(args.all_users), fmt) if tray_allowed(args) else None
            if output is None:
                result = await server.snapshot()
                if isinstance(result, Failure):
                    output = failure_line(result, fmt)
                    if output != last:
                        _fail(result.code, result.reason)
                else:
                    output = render(result[0], fmt, idle=result[1])
            if output != last:
                show(output)
                last = output
            if ticks is None or count < ticks:
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        await server.aclose()


class _ServerSource:
    """The server, asked with one client kept across ticks (one login, the workers cache)."""

    def __init__(self, config_file: str | None, all_users: bool) -> None:
        import contextlib

        self.config_file = config_file
        self.all_users = all_users
        self._stack = contextlib.AsyncExitStack()
        self._service: SessionService | None = None

    async def snapshot(self) -> Listing | Failure:
        try:
            if self._service is None:
                from tray_app.core.server.api import ClearMLClient
                from tray_app.core.server.sessions import SessionService

                config = load_server_config(self.config_file)
                client = ClearMLClient(config, timeout=10.0, max_retries=2)
                await self._stack.enter_async_context(client)
                self._service = SessionService(client)
            client = self._service.client
            return await within(LIST_DEADLINE_S, client.server, self._service, self.all_users)
        except Exception as exc:
            if (failure := failure_of(exc)) is None:
                raise
            return failure

    async def aclose(self) -> None:
        await self._stack.aclose()

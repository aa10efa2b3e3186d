"""How long the SSH_ASKPASS helper takes to answer ssh: a new process asking the running tray.

ssh starts the helper as a new process for every login that needs the session password (the
CLI's first ssh, the editor's master login), and that login waits for it: the interpreter's
start, the helper's few imports and one round trip over the tray's instance socket. This
section serves the socket as the tray does (its `InstanceRequests` and `SessionPasswords`, one
JSON line each way) and times the helper as ssh runs it:

- from this checkout's venv (`python -m tray_app.askpass`, what a pip install runs);
- from the packaged bundle, when one was built (`build/pyinstaller/dist`, the `.deb`'s
  content): the bundled executable's `_askpass` entry.

The tray's checks of the asking ssh (its command line) are answered for any process here: the
helper's parent is this benchmark, not an ssh.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import REPO, Context, Figure, at_most, median, packaged_bundle

SECTION = "askpass"
TARGET_MS = 250.0
PASSWORD = "bench-session-pw-0123"
PROMPT = "root@127.0.0.1's password: "


@contextmanager
def _tray_socket(workdir: Path) -> Iterator[tuple[str, object]]:
    """The tray's side: (socket path, SessionPasswords) served in a thread."""
    from tray_app.core.instance_requests import InstanceRequests
    from tray_app.core.server.refresh import PollStatus, TrayState
    from tray_app.core.tunnels.session_passwords import SessionPasswords

    ssh = ["ssh", "-p", "8022", "-N", "-f", "clearml-01234567"]
    grants = SessionPasswords(argv_of=lambda pid: ssh)
    requests = InstanceRequests(
        snapshot=lambda: None,
        status=lambda: PollStatus(TrayState.OK),
        connect=lambda snapshot, ref: (False, ""),
        show=lambda: None,
        askpass=grants.ask,
    )
    folder = Path(tempfile.mkdtemp(prefix="ab-", dir=workdir))
    path = str(folder / "s")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                data = b""
                while b"\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                reply = requests.handle(json.loads(data.split(b"\n", 1)[0] or b"{}"))
                answer = {**reply.extra, "ok": reply.ok, "message": reply.message}
                conn.sendall((json.dumps(answer) + "\n").encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path, grants
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _time_helper(command: list[str], path: str, grants: object, runs: int) -> list[float]:
    from tray_app.core.tunnels.askpass_words import ASKPASS_SOCKET_ENV, ASKPASS_TOKEN_ENV

    times = []
    for _ in range(runs):
        token = grants.new(  # type: ignore[attr-defined]
            PASSWORD, user="root", host="clearml-01234567", port=8022, prompt_host="127.0.0.1"
        )
        env = {**os.environ, ASKPASS_TOKEN_ENV: token, ASKPASS_SOCKET_ENV: path}
        env["PYTHONPATH"] = str(REPO)
        start = time.perf_counter()
        out = subprocess.run(
            [*command, PROMPT], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        times.append((time.perf_counter() - start) * 1000)
        if out.stdout != PASSWORD + "\n":
            raise RuntimeError(f"the helper answered {out.stdout!r} ({out.stderr.strip()})")
    return times


def run(ctx: Context) -> list[Figure]:
    runs = 3 if ctx.quick else 20
    figures: list[Figure] = []
    note = "a new process per answer: the interpreter's start, the helper's imports, one round"
    note += " trip over the tray's instance socket (the password is in the tray's memory)"
    with _tray_socket(ctx.workdir) as (path, grants):
        _time_helper([sys.executable, "-m", "tray_app.askpass"], path, grants, 1)  # .pyc
        venv = _time_helper([sys.executable, "-m", "tray_app.askpass"], path, grants, runs)
        figures += [
            Figure(
                SECTION,
                f"askpass answer, from the venv (median of {runs})",
                median(venv),
                "ms",
                f"<= {TARGET_MS:.0f}",
                at_most(median(venv), TARGET_MS),
                note,
            ),
            Figure(SECTION, f"askpass answer, from the venv (worst of {runs})", max(venv), "ms"),
        ]
        ctx.say(f"askpass: {median(venv):.0f} ms (venv)")
        bundle = packaged_bundle(ctx)
        if bundle is not None:
            bundled = _time_helper([str(bundle), "_askpass"], path, grants, runs)
            figures.append(
                Figure(
                    SECTION,
                    f"askpass answer, from the packaged bundle (median of {runs})",
                    median(bundled),
                    "ms",
                    f"<= {TARGET_MS:.0f}",
                    at_most(median(bundled), TARGET_MS),
                    "the bundled executable's `_askpass` entry (PyInstaller's start included)",
                )
            )
            ctx.say(f"askpass: {median(bundled):.0f} ms (bundle)")
    return figures
